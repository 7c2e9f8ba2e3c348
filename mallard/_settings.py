"""Settings: every tunable of mallard, its type, default and one line of help.

Values come from, highest precedence first: keyword arguments, a TOML file, ``MALLARD_*`` environment
variables, then the defaults below. Every key of Mallard Metrics is accepted under its own name (TOML)
and its own environment variable (``MALLARD_FLUSH_COUNT`` as well as ``MALLARD_FLUSH_EVENT_COUNT``).
This is the only module that reads ``os.environ``.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import json
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, get_type_hints
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ._errors import ConfigurationError
from ._setting_values import check_origin, coerce, split_lake_url

GeoPrecision = Literal["city", "region", "country", "none"]
LogFormat = Literal["text", "json"]
Engine = Literal["duckdb", "clickhouse"]

def _opt(default: Any, help: str, *, env: tuple[str, ...] = (), minimum: float | None = None,
         maximum: float | None = None, secret: bool = False) -> Any:
    return field(default=default, metadata={"help": help, "env": env, "min": minimum,
                                            "max": maximum, "secret": secret})


@dataclass(frozen=True, slots=True, kw_only=True)
class Settings:
    """Configuration of one :class:`mallard.Mallard` instance.

    Build it with :meth:`Settings.load` to honour a TOML file and the environment, or directly with
    keyword arguments (then the environment is not read).
    """

    # -- server (used by `mallard serve`) --------------------------------------------------------
    host: str = _opt("127.0.0.1", "Address `mallard serve` binds to.")
    port: int = _opt(8000, "Port `mallard serve` listens on.", minimum=0, maximum=65_535)
    limit_concurrency: int = _opt(1000, "Open connections (or running requests) per `mallard serve` "
                                  "worker past which new requests get 503 (0 = unlimited).", minimum=0)
    backlog: int = _opt(2048, "Connections the kernel queues for `mallard serve` before accepting.",
                        minimum=1)
    keep_alive_timeout_secs: int = _opt(5, "Seconds `mallard serve` keeps an idle connection open "
                                        "between requests.", minimum=1)
    header_timeout_secs: float = _opt(10.0, "Seconds `mallard serve` gives a connection to send a "
                                      "request's headers, then closes it (checked each period).",
                                      minimum=0.1)
    body_timeout_secs: float = _opt(15.0, "Seconds the ASGI adapter waits for a request body before "
                                    "answering 408.", minimum=0.1)
    # -- storage ----------------------------------------------------------------------------------
    data_dir: Path = _opt(Path("mallard-data"), "Directory holding events/, spool/ and state/.")
    lake_url: str | None = _opt(None, "Where the lake is: empty for data_dir itself, or s3://bucket/prefix "
                                "on S3-compatible object storage, shared by every host writing it "
                                "(each keeps its spool and state in its own data_dir).")
    s3_endpoint_url: str | None = _opt(None, "Endpoint of an S3-compatible store, e.g. "
                                       "http://127.0.0.1:8333 (empty: AWS S3).",
                                       env=("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3"))
    s3_region: str | None = _opt(None, "Region of the bucket (empty: AWS_REGION, AWS_DEFAULT_REGION or "
                                 "the AWS config file, else us-east-1).")
    s3_access_key_id: str | None = _opt(None, "Access key id for the lake's bucket (empty, with the "
                                        "secret: AWS_ACCESS_KEY_ID, ~/.aws or the host's role).",
                                        secret=True)
    s3_secret_access_key: str | None = _opt(None, "Secret access key for the lake's bucket.", secret=True)
    s3_spool_max_bytes: int = _opt(1 << 30, "Bytes of accepted events the spool may hold while the lake "
                                   "on object storage cannot be written; past it events are refused (503).",
                                   minimum=1 << 20)
    flush_event_count: int = _opt(1000, "Buffered events that trigger a flush to Parquet.",
                                  env=("MALLARD_FLUSH_COUNT",), minimum=1)
    flush_interval_secs: float = _opt(5.0, "Seconds between background flushes of the buffer.",
                                      env=("MALLARD_FLUSH_INTERVAL",), minimum=0.01)
    min_flush_gap_secs: float = _opt(1.0, "Least time between two flushes triggered by "
                                     "flush_event_count (fewer, larger files under load).", minimum=0)
    max_buffered_events: int = _opt(100_000, "Events held in memory before new ones are dropped "
                                    "(counted, never blocking).", minimum=1)
    spool_fsync: bool = _opt(False, "fsync the spool after every event (survives power loss, slower).")
    compact_after_files: int = _opt(24, "Small files in one partition that trigger compaction "
                                    "(0 disables).", minimum=0)
    compact_target_bytes: int = _opt(64 * 1024 * 1024, "Files at least this large are left alone "
                                     "by compaction.", minimum=1)
    retention_days: int = _opt(0, "Delete partitions older than this many days (0 keeps all; at "
                               "most 365000).", minimum=0, maximum=365_000)
    quarantine_grace_secs: float = _opt(60.0, "Seconds after its last modification before an unreadable "
                                        "lake file is moved to quarantine/ (until then queries skip "
                                        "it: another tool may still be writing it).", minimum=0)
    duckdb_memory_limit: str | None = _opt(None, "DuckDB memory_limit for queries, e.g. '2GB'.")
    duckdb_threads: int | None = _opt(None, "DuckDB threads per query connection.", minimum=1)
    read_connections: int = _opt(4, "Query connections (threads) that may run at once.", minimum=1)
    # -- ingestion --------------------------------------------------------------------------------
    site_ids: tuple[str, ...] = _opt((), "Allowed site ids (and Origin hosts); empty accepts any. "
                                     "`MALLARD_SITE_IDS=a.com,b.com`; `mallard serve --site a.com`.")
    filter_bots: bool = _opt(True, "Drop events whose User-Agent is a known bot or crawler.")
    honor_dnt: bool = _opt(False, "Drop events from clients sending DNT: 1 or Sec-GPC: 1.")
    strict: bool = _opt(False, "Re-raise ingestion errors from Mallard.track() (debugging).")
    ua_cache_size: int = _opt(10_000, "Parsed User-Agents kept in the per-process cache.", minimum=0)
    geoip_db_path: Path | None = _opt(None, "MaxMind .mmdb (City or Country) for geolocation.",
                                      env=("MALLARD_GEOIP_DB",))
    geoip_precision: GeoPrecision = _opt("city", "Finest location stored: city|region|country|none.")
    geoip_builtin_countries: bool = _opt(True, "Without geoip_db_path, take the country (only) from the "
                                         "registries' allocation data built into iptocc.")
    trust_proxy_headers: bool = _opt(False, "Take the client IP from X-Forwarded-For / X-Real-IP "
                                     "(from trusted_proxies only, or any peer if that is empty).")
    trusted_proxies: tuple[str, ...] = _opt((), "Proxy addresses/CIDRs whose forwarding headers "
                                            "are believed.")
    rate_limit_per_site: int = _opt(0, "Events per second accepted per site (0 = unlimited).",
                                    env=("MALLARD_RATE_LIMIT",), minimum=0)
    rate_limit_per_ip: int = _opt(0, "Events per second accepted per client IP (0 = unlimited).",
                                  minimum=0)
    max_body_bytes: int = _opt(65_536, "Largest accepted ingestion request body.", minimum=1024)
    # -- privacy ----------------------------------------------------------------------------------
    gdpr_mode: bool = _opt(False, "Preset: strip referrer queries, round timestamps, suppress "
                           "versions and screen size, country-level geo.")
    strip_referrer_query: bool = _opt(False, "Remove ?query and #fragment from stored referrers.")
    round_timestamps: bool = _opt(False, "Floor stored timestamps to the hour.")
    suppress_visitor_id: bool = _opt(False, "Store a random id per event instead of the visitor hash.")
    suppress_browser_version: bool = _opt(False, "Do not store browser versions.")
    suppress_os_version: bool = _opt(False, "Do not store OS versions.")
    suppress_screen_size: bool = _opt(False, "Do not store screen width or width-derived device.")
    redact_pii: bool = _opt(True, "Replace e-mail addresses, card and phone numbers and secret URL "
                            "parameters in paths, UTM tags, referrers and props with markers.")
    redact_extra_params: tuple[str, ...] = _opt((), "More URL parameter / props key names whose "
                                                "values are redacted (case-insensitive).")
    redact_extra_patterns: tuple[str, ...] = _opt((), "More regular expressions (RE2 syntax) whose "
                                                  "matches are redacted (in the environment: a "
                                                  "JSON array if one holds a comma).")
    visitor_salt_rotation_days: int = _opt(1, "Days one random visitor-id salt lives.", minimum=1)
    secret: str | None = _opt(None, "Key for user_id pseudonyms and session tokens (default: a "
                              "random key kept in state/).", secret=True)
    # -- queries ----------------------------------------------------------------------------------
    engine: Engine = _opt("duckdb", "Engine that runs queries: duckdb, or clickhouse (in-process through "
                          "chdb, the `clickhouse` extra), over the same lake with the same answers.")
    timezone: str = _opt("UTC", "IANA time zone for day boundaries and time buckets.")
    session_window_minutes: int = _opt(30, "Inactivity gap (minutes) that starts a new session.",
                                       minimum=1)
    realtime_window_minutes: int = _opt(5, "Minutes back the realtime figures count (current "
                                           "visitors, their pages and sources).", minimum=1)
    cache_ttl_secs: int = _opt(60, "Seconds a query result is cached (0 disables).",
                               env=("MALLARD_CACHE_TTL",), minimum=0)
    cache_max_entries: int = _opt(10_000, "Cached query results kept (LRU).", minimum=0)
    cache_stale_secs: int = _opt(240, "Seconds past cache_ttl_secs an expired result is still answered "
                                 "(X-Mallard-Cache: stale) while one background refresh recomputes it "
                                 "(0 disables).", minimum=0)
    max_concurrent_queries: int = _opt(10, "Heavy queries running at once (0 = unlimited).",
                                       minimum=0)
    query_timeout_secs: float = _opt(30.0, "Seconds before a request is abandoned.", minimum=0.1)
    # -- auth -------------------------------------------------------------------------------------
    admin_password: str | None = _opt(None, "Admin password (hashed at start, never stored).",
                                      secret=True)
    metrics_token: str | None = _opt(None, "Bearer token required by /metrics.", secret=True)
    dashboard_origin: str | None = _opt(None, "Origin of a dashboard served elsewhere (CORS, CSRF).")
    embed_origins: tuple[str, ...] = _opt((), "Origins allowed to frame the dashboard opened with a "
                                          "shared link (CSP frame-ancestors); empty: no framing.")
    secure_cookies: bool = _opt(False, "Mark session cookies Secure.")
    session_ttl_secs: int = _opt(86_400, "Lifetime of a dashboard login.",
                                 env=("MALLARD_SESSION_TTL",), minimum=1)
    max_login_attempts: int = _opt(5, "Failed logins per IP before lockout (0 disables).", minimum=0)
    login_lockout_secs: int = _opt(300, "Lockout duration after too many failed logins.",
                                   env=("MALLARD_LOGIN_LOCKOUT",), minimum=1)
    max_tracked_keys: int = _opt(10_000, "Rate-limit and lockout entries kept in memory.",
                                 minimum=1)
    shutdown_timeout_secs: float = _opt(30.0, "Seconds allowed for the final flush on close.",
                                        env=("MALLARD_SHUTDOWN_TIMEOUT",), minimum=0)
    log_format: LogFormat = _opt("text", "Log lines of `mallard serve`: text (uvicorn's) or json (one "
                                 "object a line: time, level, logger, message).")

    def __post_init__(self) -> None:
        hints = _hints()
        for f in dataclasses.fields(self):
            try:
                value = coerce(f.name, getattr(self, f.name), hints[f.name])
            except ConfigurationError:
                if not f.metadata["secret"]:
                    raise
                # The message would quote the value: never echo a secret into logs.
                raise ConfigurationError(f"{f.name} must be a string (value not shown).") from None
            minimum, maximum = f.metadata.get("min"), f.metadata.get("max")
            if minimum is not None and value is not None and value < minimum:
                raise ConfigurationError(f"{f.name} must be >= {minimum:g}, got {value!r}.")
            if maximum is not None and value is not None and value > maximum:
                raise ConfigurationError(f"{f.name} must be <= {maximum:g}, got {value!r}.")
            object.__setattr__(self, f.name, value)
        for site in self.site_ids:
            from ._events import validate_site_id

            validate_site_id(site, setting="site_ids")
        for proxy in self.trusted_proxies:
            try:
                ipaddress.ip_network(proxy, strict=False)
            except ValueError:
                raise ConfigurationError(
                    f"trusted_proxies: {proxy!r} is not an IP address or CIDR network."
                ) from None
        try:
            ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise ConfigurationError(
                f"timezone: {self.timezone!r} is not an IANA time zone name (e.g. 'Europe/Berlin')."
            ) from None
        if self.dashboard_origin is not None:
            check_origin(self.dashboard_origin)
        if self.lake_url:
            split_lake_url(self.lake_url)
        if self.s3_endpoint_url:
            check_origin(self.s3_endpoint_url, "s3_endpoint_url", "http://127.0.0.1:8333")
        if (self.s3_access_key_id is None) != (self.s3_secret_access_key is None):
            raise ConfigurationError("s3_access_key_id and s3_secret_access_key go together: set both "
                                     "(or neither, for the AWS credential chain).")
        for origin in self.embed_origins:
            check_origin(origin, "embed_origins")
        if self.redact_extra_params or self.redact_extra_patterns:
            from ._enrich.redact import Redactor

            Redactor(extra_params=self.redact_extra_params, extra_patterns=self.redact_extra_patterns)
        if self.gdpr_mode:
            # The preset is applied last, over any individual flag (as in Mallard Metrics v0.2).
            for name in ("strip_referrer_query", "round_timestamps", "suppress_browser_version",
                         "suppress_os_version", "suppress_screen_size"):
                object.__setattr__(self, name, True)
            if self.geoip_precision in ("city", "region"):
                object.__setattr__(self, "geoip_precision", "country")

    # -- construction -----------------------------------------------------------------------------
    @classmethod
    def load(cls, config_file: str | os.PathLike[str] | None = None, *,
             environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Settings from keyword arguments, then a TOML file, then ``MALLARD_*`` variables.

        Args:
            config_file: TOML file; defaults to ``$MALLARD_CONFIG`` when set.
            environ: the environment to read (``os.environ`` by default).
            **overrides: values that win over everything else.

        Raises:
            ConfigurationError: unknown key, unreadable file, or a value of the wrong type or range.
        """
        env = os.environ if environ is None else environ
        values = cls._from_env(env)
        path = config_file if config_file is not None else env.get("MALLARD_CONFIG") or None
        if path is not None:
            values.update(cls._from_toml(Path(path)))
        unknown = set(overrides) - cls.field_names()
        if unknown:
            raise ConfigurationError(
                f"Unknown setting(s) {', '.join(sorted(unknown))}. "
                f"Valid settings: {', '.join(sorted(cls.field_names()))}."
            )
        values.update({k: v for k, v in overrides.items()})
        return cls(**values)

    @classmethod
    def from_mapping(cls, mapping: Mapping[str, Any], *, prefix: str = "MALLARD_",
                     base: Settings | None = None) -> Settings:
        """Settings from a mapping such as Flask's ``app.config`` (keys ``MALLARD_DATA_DIR``, …).

        With ``base`` (e.g. ``Settings.load()``, the environment), the mapping's values override it.
        """
        values: dict[str, Any] = {}
        aliases = cls._env_names()
        for key, value in mapping.items():
            if not key.startswith(prefix):
                continue
            name = aliases.get(key) if prefix == "MALLARD_" else key[len(prefix):].lower()
            if name is None or name not in cls.field_names():
                if key == "MALLARD_CONFIG":
                    continue
                raise ConfigurationError(f"Unknown setting {key!r}.")
            values[name] = value
        return base.replace(**values) if base is not None else cls(**values)

    @classmethod
    def field_names(cls) -> frozenset[str]:
        return frozenset(f.name for f in dataclasses.fields(cls))

    @classmethod
    def describe(cls) -> list[tuple[str, str, str, str]]:
        """(name, environment variables, default, help) for every setting, for docs and ``--help``."""
        rows = []
        for f in dataclasses.fields(cls):
            envs = ", ".join((f"MALLARD_{f.name.upper()}", *f.metadata["env"]))
            rows.append((f.name, envs, repr(f.default), f.metadata["help"]))
        return rows

    def replace(self, **changes: Any) -> Settings:
        """A copy with some values changed (validated again)."""
        return dataclasses.replace(self, **changes)

    @classmethod
    def given(cls, settings: Settings | None, **options: Any) -> Settings:
        """What an API taking ``settings`` and keyword ``options`` runs with: ``settings`` with the
        options applied, or, without it, :meth:`load` of the options."""
        if settings is None:
            return cls.load(**options)
        return settings.replace(**options) if options else settings

    def __repr__(self) -> str:
        parts = []
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.metadata["secret"] and value is not None:
                value = "***"
            parts.append(f"{f.name}={value!r}")
        return f"Settings({', '.join(parts)})"

    # -- sources ----------------------------------------------------------------------------------
    @classmethod
    def _env_names(cls) -> dict[str, str]:
        names: dict[str, str] = {}
        for f in dataclasses.fields(cls):
            for alias in f.metadata["env"]:
                names[alias] = f.name
        for f in dataclasses.fields(cls):  # inserted last: the canonical name wins over an alias
            names[f"MALLARD_{f.name.upper()}"] = f.name
        return names

    @classmethod
    def _from_env(cls, environ: Mapping[str, str]) -> dict[str, Any]:
        values: dict[str, Any] = {}
        for var, name in cls._env_names().items():
            if var in environ and environ[var] != "":
                values[name] = environ[var]
        return values

    @classmethod
    def _from_toml(cls, path: Path) -> dict[str, Any]:
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise ConfigurationError(f"Cannot read config file {path}: {exc.strerror}.") from None
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise ConfigurationError(f"Config file {path} is not valid TOML: {exc}.") from None
        # Mallard Metrics' example file groups the privacy flags in a [privacy] table: accept it.
        privacy = data.pop("privacy", None)
        if isinstance(privacy, dict):
            twice = set(privacy) & set(data)
            if twice:
                raise ConfigurationError(
                    f"Key(s) {', '.join(sorted(twice))} given both in [privacy] and at the top "
                    f"level of {path}. Keep one."
                )
            data.update(privacy)
        elif privacy is not None:
            raise ConfigurationError(
                f"privacy in {path} must be a table ([privacy]) of privacy settings; got {privacy!r}."
            )
        unknown = set(data) - cls.field_names()
        if unknown:
            raise ConfigurationError(
                f"Unknown key(s) {', '.join(sorted(unknown))} in {path}. "
                f"Valid keys: {', '.join(sorted(cls.field_names()))}."
            )
        return data


def config_file(given: str | os.PathLike[str] | None) -> str | None:
    """The TOML file :meth:`Settings.load` reads: ``given``, else ``$MALLARD_CONFIG`` (None: none)."""
    return os.fspath(given) if given is not None else os.environ.get("MALLARD_CONFIG") or None


def aws_endpoint_url(environ: Mapping[str, str] | None = None) -> str | None:
    """The S3 endpoint the standard AWS variables name (``AWS_ENDPOINT_URL_S3``, else
    ``AWS_ENDPOINT_URL``), for ``mallard.open("s3://…")``, which reads no ``MALLARD_*`` variable (pyarrow
    reads the AWS credentials and region itself, but not these)."""
    env = os.environ if environ is None else environ
    return env.get("AWS_ENDPOINT_URL_S3") or env.get("AWS_ENDPOINT_URL") or None


def export_to_environ(values: Mapping[str, Any]) -> None:
    """Put settings into this process's environment as ``MALLARD_<NAME>`` variables.

    For ``mallard serve``: server worker processes are new interpreters that build their settings with
    :meth:`Settings.load`, from the environment. Lists are joined with commas, None is skipped.
    """
    names = Settings.field_names() | {"config"}
    for name, value in values.items():
        if name not in names:
            raise ConfigurationError(f"Unknown setting {name!r}.")
        if value is None:
            continue
        if isinstance(value, (list, tuple)):
            items = list(map(str, value))
            value = json.dumps(items) if any("," in i for i in items) else ",".join(items)
        elif isinstance(value, bool):
            value = "true" if value else "false"
        os.environ[f"MALLARD_{name.upper()}"] = str(value)


_HINTS: dict[str, Any] = {}


def _hints() -> dict[str, Any]:
    if not _HINTS:
        _HINTS.update(get_type_hints(Settings))
    return _HINTS
