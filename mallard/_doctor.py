"""``mallard doctor``: check a setup and say what to fix.

Each check gives one line, ``ok``, ``warn`` or ``fail``, with what it found, and for a warning or a
failure what to do. It reads and never writes the data directory (the tracker check, with ``--url``,
posts one test event to the server named, which stores it like any other).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import stat
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Literal

from . import _drops as drops
from ._auth.admin import ADMIN_FILE
from ._errors import ConfigurationError
from ._settings import Settings, config_file

__all__ = ["Check", "doctor_parser", "run"]

Status = Literal["ok", "warn", "fail"]

#: Free space under which a data directory fails (ingestion stops at a full disk), and warns.
FAIL_FREE: Final = 100 * 1024**2
WARN_FREE: Final = 1024**3
#: A browser's User-Agent for the test event (a bot's would be dropped by filter_bots).
BROWSER: Final = ("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
                  "Chrome/124.0.0.0 Safari/537.36")
_SECRET_FIELDS: Final = ("admin_password", "secret", "metrics_token", "s3_access_key_id",
                         "s3_secret_access_key")


@dataclass(frozen=True, slots=True)
class Check:
    """One finding: its ``status``, the ``area`` checked, what was found and (unless ok) the remedy."""

    status: Status
    area: str
    found: str
    remedy: str = ""

    def lines(self) -> list[str]:
        out = [f"{self.status:<5} {self.area}: {self.found}"]
        if self.remedy:
            out.append(f"      fix: {self.remedy}")
        return out


def run(settings: Settings, *, config: str | None = None, url: str | None = None,
        site: str | None = None, user_agent: str = BROWSER, timeout: float = 10.0) -> list[Check]:
    """Every check of ``settings`` (read from the TOML file ``config``, when one was given); with
    ``url``, also the tracker served there, with a test event for ``site`` sent as ``user_agent``."""
    data = settings.data_dir
    stored, shared = _object_store(settings)
    checks = [*_data_dir(data), *_lake(data), *stored, _geoip(settings), *_secrets(settings, config, shared),
              _writers(data / "spool"), _proxies(settings), _drop_rules(settings)]
    if url is not None:
        checks.extend(_tracker(url, site or (settings.site_ids[0] if settings.site_ids
                                             else "doctor.invalid"), user_agent, timeout))
    return checks


def doctor_parser(sub: Any, settings_args: Callable[[argparse.ArgumentParser], None]) -> None:
    """Add the ``doctor`` command to ``sub`` (``settings_args`` adds ``--data-dir`` and ``--config``)."""
    p = sub.add_parser("doctor", help="check a setup (data dir, lake, GeoIP, secrets, writers, proxies, "
                                      "drop rules, the tracker) and say what to fix")
    settings_args(p)
    p.add_argument("--url", help="where mallard is served or mounted, e.g. http://127.0.0.1:8000/: "
                                 "fetch the tracker and post a test event (stored) with ?debug=1")
    p.add_argument("--site", help="site id of the test event (default: the first of site_ids, else "
                                  "doctor.invalid)")
    p.add_argument("--user-agent", default=BROWSER, help="User-Agent of the test event (default: a "
                                                           "desktop Chrome's)")
    p.add_argument("--timeout", type=float, default=10.0, help="seconds per HTTP request (default 10)")
    p.set_defaults(func=cmd_doctor)


def cmd_doctor(args: argparse.Namespace) -> int:
    """Print every check; exit status 1 when one failed."""
    overrides = {"data_dir": args.data_dir} if args.data_dir else {}
    config = config_file(args.config)
    checks = run(Settings.load(config, **overrides), config=config, url=args.url, site=args.site,
                 user_agent=args.user_agent, timeout=args.timeout)
    for check in checks:
        print("\n".join(check.lines()))
    failed = sum(c.status == "fail" for c in checks)
    warned = sum(c.status == "warn" for c in checks)
    print(f"\n{failed} failed, {warned} warning(s), {len(checks) - failed - warned} ok")
    return 1 if failed else 0


# -- the data directory ------------------------------------------------------------------------------
def _data_dir(data: Path) -> Iterator[Check]:
    if not data.exists():
        parent = next((p for p in data.parents if p.exists()), Path("/"))
        if os.access(parent, os.W_OK | os.X_OK):
            yield Check("warn", "data dir", f"{data} does not exist yet",
                        "it is created at the first start (mallard serve, Mallard()); check the path")
        else:
            yield Check("fail", "data dir", f"{data} does not exist and {parent} is not writable",
                        f"create {data} and give the server's user write access to it")
        return
    if not data.is_dir():
        yield Check("fail", "data dir", f"{data} is not a directory", "point data_dir at a directory")
        return
    missing = [d for d in ("", "events", "spool", "state") if (data / d).is_dir()
               and not os.access(data / d, os.W_OK | os.X_OK)]
    if missing:
        where = ", ".join(str(data / d) for d in missing)
        yield Check("fail", "data dir", f"not writable by this user: {where}",
                    "give the user that runs mallard write access (chown/chmod), or run it as the owner")
    else:
        yield Check("ok", "data dir", f"{data} exists and is writable")
    free = shutil.disk_usage(data).free
    shown = f"{free / 1024**3:.1f} GB free on its filesystem"
    if free < FAIL_FREE:
        yield Check("fail", "disk space", shown,
                    "free space: with a full disk events are refused (503) until space is back")
    elif free < WARN_FREE:
        yield Check("warn", "disk space", shown, "free space, or set retention_days to delete old days")
    else:
        yield Check("ok", "disk space", shown)


def _lake(data: Path) -> Iterator[Check]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    events = data / "events"
    files = sorted(p for p in events.glob("site_id=*/date=*/*.parquet") if not p.name.startswith("."))
    bad: list[str] = []
    for path in files:
        try:
            pq.read_metadata(path)
        except (OSError, pa.ArrowException):
            bad.append(path.relative_to(events).as_posix())
    if bad:
        yield Check("fail", "lake", f"{len(bad)} of {len(files)} Parquet file(s) cannot be read: "
                    + ", ".join(bad[:3]) + (" …" if len(bad) > 3 else ""),
                    "run `mallard compact` (queries move unreadable files to quarantine/ and answer "
                    "without them), or restore the files from a backup")
    else:
        sites = len({p.parent.parent.name for p in files})
        yield Check("ok", "lake", f"{len(files)} Parquet file(s) of {sites} site(s), every footer readable")
    quarantined = sorted((data / "quarantine").glob("site_id=*/date=*/*.parquet"))
    if quarantined:
        yield Check("warn", "quarantine", f"{len(quarantined)} unreadable file(s) were moved to "
                    f"{data / 'quarantine'} (their events are not counted)",
                    "inspect or restore them (docs/storage.md, 'Inspecting and restoring a quarantined "
                    "file'), then delete them")


@dataclass(frozen=True, slots=True)
class _Shared:
    """What the bucket's shared state holds (``names``: "secret", the admin credential) and where."""

    where: str
    names: frozenset[str]
    salts: int


def _object_store(settings: Settings) -> tuple[list[Check], _Shared | None]:
    """With ``lake_url`` on object storage: whether the store answers and the lake's log reads, and what
    the state every host shares holds (None: no lake there, or it could not be read). Reads only."""
    if not settings.lake_url:
        return [], None
    from ._setting_values import split_lake_url
    from ._store.objectclient import client, storage_error
    from ._store.objectlog import ObjectLog
    from ._store.objectstate import ObjectState

    url = settings.lake_url
    bucket, prefix = split_lake_url(url)
    try:
        s3 = client(settings, what="mallard doctor", attempts=1)
        snapshot = ObjectLog(s3, bucket, prefix).snapshot()
        state = ObjectState(s3, bucket, prefix)
        names = frozenset(n for n in ("secret", ADMIN_FILE) if state.read(n) is not None)
        shared = _Shared(state.where(""), names, len(state.names("salts/")))
    except ConfigurationError as exc:
        return [Check("fail", "object store", str(exc), "pip install 'mallard-metrics[s3]'")], None
    except Exception as exc:  # the store's or the network's: said as the lake's errors are
        said = storage_error(url, "read", exc, settings.s3_endpoint_url or "AWS")
        return [Check("fail", "object store", str(said), "fix the s3_* settings or the store; meanwhile "
                      "each host keeps accepting events in its own spool (up to s3_spool_max_bytes) "
                      "and publishes them once it answers")], None
    return [Check("ok", "object store", f"{url} answers: the lake's log at commit {snapshot.version}, "
                  f"{len(snapshot.files)} live file(s), {len(snapshot.tombstones)} erasure(s)")], shared


# -- GeoIP -------------------------------------------------------------------------------------------
def _geoip(settings: Settings) -> Check:
    from ._enrich.geo import GeoLookup

    if settings.geoip_precision == "none":
        return Check("ok", "geoip", "off (geoip_precision = none): no location is stored")
    try:
        geo = GeoLookup(settings.geoip_db_path, settings.geoip_precision,
                        builtin_countries=settings.geoip_builtin_countries)
    except ConfigurationError as exc:
        return Check("fail", "geoip", str(exc), "fix geoip_db_path (a MaxMind City or Country .mmdb), "
                     "or unset it to use the built-in countries")
    try:
        if geo.loaded:
            return Check("ok", "geoip", f"MaxMind database {settings.geoip_db_path} "
                         f"({geo.database_type}), precision {settings.geoip_precision}")
        if geo.locates:
            return Check("ok", "geoip", "countries from the registries' data built into iptocc (no "
                         "regions or cities; set geoip_db_path to a MaxMind database for them)")
        return Check("warn", "geoip", "no geolocation: geoip_db_path is unset and "
                     "geoip_builtin_countries is off", "turn geoip_builtin_countries on, or set "
                     "geoip_db_path, or geoip_precision = none to say it is on purpose")
    finally:
        geo.close()


# -- secrets -----------------------------------------------------------------------------------------
def _world_readable(path: Path) -> bool:
    try:
        return bool(path.stat().st_mode & stat.S_IROTH)
    except OSError:
        return False


def _secrets(settings: Settings, config: str | None, shared: _Shared | None) -> Iterator[Check]:
    """The admin password and the secret key, in ``state/`` or, on object storage, in the bucket's
    shared state (``shared``); secret files readable by other users."""
    state = settings.data_dir / "state"
    admin, key = state / ADMIN_FILE, state / "secret"
    where = str(admin) if shared is None else shared.where + ADMIN_FILE
    if settings.admin_password or (admin.is_file() if shared is None else ADMIN_FILE in shared.names):
        yield Check("ok", "admin password", f"set ({'admin_password' if settings.admin_password else where})")
    else:
        yield Check("warn", "admin password", "none set" + ("" if shared is None else f" in {shared.where}")
                    + ": the stats API and the dashboard answer only same-origin requests to this "
                    "machine's loopback address (open mode)",
                    "set one: `mallard password " + (f"--data-dir {settings.data_dir}`" if shared is None
                                                     else "--config <this file>` (every host uses it)")
                    + " (or admin_password)")
    if settings.secret:
        yield Check("ok", "secret key", "set (secret)")
    elif shared is not None and "secret" in shared.names:
        yield Check("ok", "secret key", f"{shared.where}secret and {shared.salts} salt(s): every host "
                    "derives the same visitor ids")
    elif shared is not None:
        yield Check("warn", "secret key", f"no secret in {shared.where} yet",
                    "the first host that starts creates it; give every host the same lake_url")
    elif key.is_file():
        yield Check("ok", "secret key", f"{key}")
    else:
        yield Check("warn", "secret key", f"{key} does not exist yet",
                    "it is created at the first start; back it up with state/ (user_id pseudonyms and "
                    "logins depend on it)")
    exposed = [p for p in (key, admin, state / "api_keys.json") if _world_readable(p)]
    if config is not None and _world_readable(Path(config)):
        import tomllib  # Settings.load read it already: it parses

        if set(tomllib.loads(Path(config).read_text(encoding="utf-8"))) & set(_SECRET_FIELDS):
            exposed.append(Path(config))
    if exposed:
        yield Check("fail", "secret files", "readable by every user: " + ", ".join(map(str, exposed)),
                    "chmod 600 " + " ".join(map(str, exposed)))
    else:
        yield Check("ok", "secret files", "not readable by other users")


# -- processes ---------------------------------------------------------------------------------------
def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _writers(spool: Path) -> Check:
    from ._store.spool import waiting

    held = waiting(spool)
    here = socket.gethostname()
    live: list[int] = []
    stopped: list[int] = []
    elsewhere: list[int] = []
    for writer, count in held.items():
        host, _, rest = writer.rpartition("-")[0].rpartition("-")
        pid = int(rest) if rest.isdigit() else -1
        (elsewhere if host != here else live if _alive(pid) else stopped).append(count)
    found = (f"{len(live)} running writer process(es) hold {sum(live)} event(s) not flushed yet "
             "(they flush every flush_interval_secs)")
    if elsewhere:
        found += f"; {len(elsewhere)} of other hosts hold {sum(elsewhere)}"
    if stopped:
        return Check("warn", "writers", found + f"; {len(stopped)} stopped process(es) left "
                     f"{sum(stopped)} event(s) in {spool}", "start mallard (serve, or any Mallard on "
                     "this data_dir): the spools of stopped processes are replayed into the lake")
    return Check("ok", "writers", found)


# -- configuration -----------------------------------------------------------------------------------
def _proxies(settings: Settings) -> Check:
    if not settings.trust_proxy_headers:
        return Check("ok", "proxies", "X-Forwarded-For is ignored: the client IP is the connection's "
                     "peer (behind a reverse proxy every visitor would have the proxy's IP: then set "
                     "trust_proxy_headers and trusted_proxies)")
    if not settings.trusted_proxies:
        return Check("warn", "proxies", "X-Forwarded-For is believed from any peer: clients can forge "
                     "their IP (visitor ids, countries, rate limits)",
                     "set trusted_proxies to your proxy's address or network (e.g. 10.0.0.0/8)")
    return Check("ok", "proxies", "X-Forwarded-For is believed from " + ", ".join(settings.trusted_proxies))


def _drop_rules(settings: Settings) -> Check:
    rules = drops.rules(settings)
    if not rules:
        return Check("ok", "drop rules", "none: every valid event is stored")
    return Check("ok", "drop rules", "not stored: " + "; ".join(rules))


# -- the tracker -------------------------------------------------------------------------------------
def _fetch(request: urllib.request.Request, timeout: float) -> tuple[int, dict[str, str], bytes]:
    try:
        with urllib.request.urlopen(request, timeout=timeout) as answer:
            return answer.status, dict(answer.headers), answer.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


def _tracker(url: str, site: str, user_agent: str, timeout: float) -> Iterator[Check]:
    base = url if url.endswith("/") else url + "/"
    try:
        status, headers, body = _fetch(urllib.request.Request(base + "mallard.js"), timeout)
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        yield Check("fail", "tracker", f"cannot reach {base}: {reason}",
                    "start the server (mallard serve) or fix --url: the URL mallard is mounted at")
        return
    kind = {k.lower(): v for k, v in headers.items()}.get("content-type", "")
    if status != 200 or "javascript" not in kind:
        yield Check("fail", "tracker", f"GET {base}mallard.js answered {status} ({kind or 'no type'})",
                    "--url must be where mallard is served or mounted (e.g. https://example.com/_m/)")
        return
    yield Check("ok", "tracker", f"{base}mallard.js is served ({len(body)} bytes)")
    event = json.dumps({"name": "pageview", "domain": site,
                        "url": f"https://{site}/mallard-doctor"}).encode()
    request = urllib.request.Request(base + "api/event?debug=1", data=event, method="POST",
                                     headers={"Content-Type": "application/json", "User-Agent": user_agent})
    try:
        status, headers, body = _fetch(request, timeout)
    except (urllib.error.URLError, OSError) as exc:
        yield Check("fail", "test event", f"POST {base}api/event failed: {getattr(exc, 'reason', exc)}",
                    "check the server's logs")
        return
    try:
        answer = json.loads(body) if body else {}
    except ValueError:
        answer = {}
    if status == 202 and answer.get("accepted") == 1:
        yield Check("ok", "test event", f"a pageview of {site} was accepted and stored (erase it with "
                    f"`mallard erase {site}` if the site is real)")
    elif status == 202:
        why = "; ".join(f"{d.get('reason')}: {d.get('why')}" for d in answer.get("dropped", []))
        yield Check("fail", "test event", f"accepted but not stored: {why or 'no reason given'}",
                    "change the setting the reason names; browsers' events are dropped the same way")
    else:
        message = answer.get("error", body[:200].decode(errors="replace"))
        yield Check("fail", "test event", f"POST {base}api/event answered {status}: {message}",
                    "--site must be a site the server accepts (site_ids); see the server's logs")
