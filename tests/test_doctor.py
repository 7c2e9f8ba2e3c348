"""``mallard doctor``: a line per check (ok, warn, fail) with a remedy, exit status 1 on any failure; run
against a good data directory, broken ones, and a real ``mallard serve`` on 127.0.0.1."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

import mallard
from mallard._cli import main
from mallard._store.spool import encode
from tests.fullfs import small_filesystem
from tests.http.conftest import free_port, start, stop
from tests.s3server import BUCKET, S3Server

from .queries.data import event

UA = ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
      "Chrome/124.0.0.0 Safari/537.36")


@pytest.fixture(autouse=True)
def _no_mallard_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("MALLARD_"):
            monkeypatch.delenv(name)


def doctor(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, dict[str, list[str]]]:
    """Run ``mallard doctor``; its exit status and its lines by area (status, text, remedy)."""
    code = main(["doctor", *args])
    out = capsys.readouterr().out
    found: dict[str, list[str]] = {}
    area = ""
    for line in out.splitlines():
        if line.startswith("      fix: "):
            found[area].append(line.removeprefix("      fix: "))
        elif line[:5].strip() in ("ok", "warn", "fail"):
            area, text = line[6:].split(": ", 1)
            found[area] = [line[:5].strip(), text]
    assert out.rstrip().splitlines()[-1].endswith(" ok")  # the summary line
    return code, found


def filled(data: Path) -> Path:
    with mallard.Mallard(data_dir=data) as m:
        assert m.track("pageview", site="example.com", url="/", ip="203.0.113.9", user_agent=UA)
        m.auth.set_password("a long enough password 1")
    return data


def test_a_good_data_directory(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = filled(tmp_path / "data")
    code, found = doctor(capsys, "--data-dir", str(data))
    assert code == 0
    assert {area: lines[0] for area, lines in found.items()} == {
        "data dir": "ok", "disk space": "ok", "lake": "ok", "geoip": "ok", "admin password": "ok",
        "secret key": "ok", "secret files": "ok", "writers": "ok", "proxies": "ok", "drop rules": "ok"}
    assert found["lake"][1] == "1 Parquet file(s) of 1 site(s), every footer readable"
    assert "iptocc" in found["geoip"][1]
    assert "User-Agent is a bot" in found["drop rules"][1]


def test_a_broken_data_directory(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = filled(tmp_path / "data")
    partition = data / "events" / "site_id=example.com" / "date=2024-05-01"
    partition.mkdir(parents=True)
    (partition / "0000000000000001-h-1-1-aaaaaa.parquet").write_bytes(b"PAR1 not parquet PAR1")
    moved = data / "quarantine" / "site_id=example.com" / "date=2024-04-30"
    moved.mkdir(parents=True)
    (moved / "x.parquet").write_bytes(b"junk")
    (data / "state" / "secret").chmod(0o644)
    config = tmp_path / "mallard.toml"
    config.write_text('admin_password = "hunter2 hunter2"\ntrust_proxy_headers = true\n'
                      f'geoip_db_path = "{tmp_path / "missing.mmdb"}"\n')
    config.chmod(0o644)
    code, found = doctor(capsys, "--data-dir", str(data), "--config", str(config))
    assert code == 1
    assert found["lake"][0] == "fail" and "date=2024-05-01/0000000000000001-h-1-1-aaaaaa.parquet" \
        in found["lake"][1] and "mallard compact" in found["lake"][2]
    assert found["quarantine"][0] == "warn" and found["quarantine"][1].startswith("1 unreadable")
    assert found["geoip"][0] == "fail" and "geoip_db_path" in found["geoip"][1]
    assert found["secret files"][0] == "fail"
    assert found["secret files"][2] == f"chmod 600 {data / 'state' / 'secret'} {config}"
    assert found["proxies"][0] == "warn" and "trusted_proxies" in found["proxies"][2]
    assert "hunter2" not in "".join("".join(v) for v in found.values())


def test_a_directory_that_does_not_exist_yet(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, found = doctor(capsys, "--data-dir", str(tmp_path / "new"))
    assert code == 0
    assert found["data dir"][0] == "warn" and "created at the first start" in found["data dir"][2]
    assert found["admin password"][0] == "warn" and "mallard password" in found["admin password"][2]
    assert found["secret key"][0] == "warn"


def test_spools_of_running_and_stopped_writers(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = filled(tmp_path / "data")
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True, check=True)
    host, row = socket.gethostname(), encode(event("v", "2024-05-01 10:00:00"))
    (data / "spool" / f"{host}-{os.getpid()}-aaaaaa.1").write_bytes(row * 2)
    (data / "spool" / f"{host}-{gone.stdout.strip()}-bbbbbb.3").write_bytes(row * 3 + b"\0" * 16)
    code, found = doctor(capsys, "--data-dir", str(data))
    assert code == 0
    assert found["writers"][0] == "warn"
    assert found["writers"][1].startswith("1 running writer process(es) hold 2 event(s)")
    assert "1 stopped process(es) left 3 event(s)" in found["writers"][1]
    assert "replayed" in found["writers"][2]


def test_a_nearly_full_disk_fails(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with small_filesystem(tmp_path / "small", 8192) as mount:
        code, found = doctor(capsys, "--data-dir", str(filled(mount / "data")))
    assert code == 1 and found["disk space"][0] == "fail" and "503" in found["disk space"][2]


@pytest.mark.slow
def test_the_tracker_of_a_real_server(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Against ``mallard serve``: the script is served and a test event stored; a bot's User-Agent is
    reported with its drop reason; a site outside site_ids and a wrong URL fail with what to fix."""
    data = tmp_path / "data"
    live = start("serve", data, args=("--site", "example.com"))
    try:
        code, found = doctor(capsys, "--data-dir", str(data), "--url", live.base + "/", "--site",
                             "example.com")
        assert found["writers"][1].startswith("1 running writer process(es)")  # the server's worker
        assert code == 0 and found["tracker"][0] == "ok" and found["test event"][0] == "ok"
        assert "pageview of example.com was accepted and stored" in found["test event"][1]
        code, found = doctor(capsys, "--data-dir", str(data), "--url", live.base, "--user-agent",
                             "curl/8.5.0", "--site", "example.com")
        assert code == 1 and found["test event"][0] == "fail"
        assert found["test event"][1].startswith("accepted but not stored: bot: The User-Agent is a "
                                                 "known bot")
        code, found = doctor(capsys, "--data-dir", str(data), "--url", live.base, "--site", "other.example")
        assert code == 1 and "answered 403" in found["test event"][1]
        code, found = doctor(capsys, "--data-dir", str(data), "--url", live.base + "/api/")
        assert code == 1 and found["tracker"][0] == "fail" and "answered 404" in found["tracker"][1]
    finally:
        stop(live)
    stored = mallard.open(data).sql("SELECT pathname, count(*) AS n FROM events GROUP BY ALL").to_pylist()
    assert stored == [{"pathname": "/mallard-doctor", "n": 1}]
    code, found = doctor(capsys, "--data-dir", str(data), "--url", f"http://127.0.0.1:{free_port()}/",
                         "--timeout", "2")
    assert code == 1 and found["tracker"][0] == "fail" and "start the server" in found["tracker"][2]


def _s3_config(path: Path, url: str, options: dict[str, str], **changed: str) -> str:
    """A TOML settings file (mode 600) naming the lake ``url`` on the test S3 server."""
    lines = [f'data_dir = "{path.parent / "data"}"', f'lake_url = "{url}"']
    lines += [f'{k} = "{v}"' for k, v in {**options, **changed}.items()]
    path.write_text("\n".join(lines) + "\n")
    path.chmod(0o600)
    return str(path)


@pytest.mark.slow  # a real S3 server
def test_a_lake_on_object_storage(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                  s3_server: S3Server) -> None:
    """With lake_url on a real SeaweedFS: before any host started, the state is missing (warnings);
    after one host tracked and set the password, the log, the secret and salts are found; a wrong key
    or a store that does not answer fail with what to fix, and never quote the secret key."""
    url = f"s3://{BUCKET}/doctor-{uuid.uuid4().hex[:10]}"
    config = _s3_config(tmp_path / "mallard.toml", url, s3_server.options())
    code, found = doctor(capsys, "--config", config)
    assert code == 0 and found["object store"][0] == "ok" and "commit -1, 0 live file(s)" in found[
        "object store"][1]
    assert found["secret key"][0] == "warn" and "no secret in s3://" in found["secret key"][1]
    assert found["admin password"][0] == "warn" and "every host uses it" in found["admin password"][2]

    with mallard.Mallard(data_dir=tmp_path / "host", lake_url=url, **s3_server.options()) as m:
        assert m.track("pageview", site="example.com", url="/", ip="203.0.113.9", user_agent=UA)
        m.auth.set_password("a long enough password 1")
    code, found = doctor(capsys, "--config", config)
    assert code == 0 and found["object store"][0] == "ok" and "1 live file(s)" in found["object store"][1]
    assert found["secret key"][0] == "ok" and "secret and 1 salt(s)" in found["secret key"][1]
    assert found["admin password"][0] == "ok" and f"{url}/state/admin.json" in found["admin password"][1]

    wrong = _s3_config(tmp_path / "wrong.toml", url, s3_server.options(),
                       s3_secret_access_key="not-the-secret-key-000")
    code, found = doctor(capsys, "--config", wrong)
    assert code == 1 and found["object store"][0] == "fail"
    assert "check s3_secret_access_key" in found["object store"][1] and "not-the-secret" not in str(found)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{s.getsockname()[1]}"
    gone = _s3_config(tmp_path / "gone.toml", url, s3_server.options(), s3_endpoint_url=closed)
    code, found = doctor(capsys, "--config", gone)
    assert code == 1 and found["object store"][0] == "fail" and "no answer" in found["object store"][1]
    assert "spool" in found["object store"][2]
