"""The S3 server of a shared lake stops for a while under load (mallard/_store/sharedstore.py): a real
`mallard serve` host keeps acknowledging events into its spool, /health/detailed and /metrics say so,
and once the server is back everything is published, once, in the order it was accepted."""

from __future__ import annotations

import io
import itertools
import re
import time
import uuid
from pathlib import Path

import boto3
import httpx
import orjson
import pyarrow.parquet as pq
import pytest

import mallard
from tests.http.conftest import eventually, start, stop
from tests.test_durability import assert_exactly_once

from ..s3server import ACCESS_KEY, BUCKET, REGION, SECRET_KEY, restarted, seaweedfs
from ..s3server import stop as stop_server

pytestmark = pytest.mark.slow  # a real S3 server, stopped and started again, and a real server
UA = "Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0"
SITE = "outage.example"


def _post(client: httpx.Client, i: int) -> httpx.Response:
    return client.post("/api/event", json={"d": SITE, "n": "pageview", "u": f"https://{SITE}/{i}"},
                       headers={"User-Agent": UA, "X-Forwarded-For": f"10.3.{i % 200}.{i % 7}"})


def _waiting_bytes(client: httpx.Client) -> float:
    found = re.search(r"^mallard_spool_waiting_bytes (\S+)$", client.get("/metrics").text, re.MULTILINE)
    assert found is not None
    return float(found.group(1))


@pytest.mark.heavy
def test_an_outage_of_the_store_keeps_events_in_the_spool_and_publishes_them_in_order(
        tmp_path: Path) -> None:
    with seaweedfs(tmp_path / "weed") as server:
        prefix = f"outage-{uuid.uuid4().hex[:8]}"
        env = {"MALLARD_LAKE_URL": f"s3://{BUCKET}/{prefix}", "MALLARD_S3_ENDPOINT_URL": server.endpoint,
               "MALLARD_S3_REGION": REGION, "MALLARD_S3_ACCESS_KEY_ID": ACCESS_KEY,
               "MALLARD_S3_SECRET_ACCESS_KEY": SECRET_KEY, "MALLARD_COMPACT_AFTER_FILES": "0"}
        live = start("serve", tmp_path / "host", env=env)
        acked: list[int] = []
        back = server
        try:
            with live.client() as client:
                def send(n: int) -> None:
                    for _ in range(n):
                        i = len(acked)
                        assert _post(client, i).status_code == 202, i
                        acked.append(i)

                send(100)
                eventually(lambda: client.get("/health/detailed").json()["buffered_events"] == 0)
                stop_server(server)
                outage = time.monotonic()
                while time.monotonic() - outage < 6:  # under load while the store is down: all acknowledged
                    send(20)
                    time.sleep(0.05)
                eventually(lambda: _waiting_bytes(client) > 0, timeout=30)
                detailed = client.get("/health/detailed").json()
                assert detailed["status"] == "degraded", detailed
                assert any("cannot be written" in w and "wait in the spool" in w
                           for w in detailed["warnings"])
                assert SECRET_KEY not in str(detailed) and ACCESS_KEY not in str(detailed)
                assert client.get("/health/ready").status_code == 200  # still accepting events
                back = restarted(server)
                send(50)
                eventually(lambda: client.get("/health/detailed").json()["status"] == "ok", timeout=60)
                eventually(lambda: _waiting_bytes(client) == 0, timeout=30)
                eventually(lambda: client.get("/health/detailed").json()["buffered_events"] == 0)
        finally:
            stop(live)
            log = live.logs()
            try:
                assert "Traceback" not in log, log[-4000:]
                with mallard.open(f"s3://{BUCKET}/{prefix}", s3_endpoint_url=back.endpoint, s3_region=REGION,
                                  s3_access_key_id=ACCESS_KEY, s3_secret_access_key=SECRET_KEY) as q:
                    rows = q.sql("SELECT pathname, count(*) AS n FROM events GROUP BY 1").to_pylist()
                    assert_exactly_once({r["pathname"]: r["n"] for r in rows}, [f"/{i}" for i in acked], "/")
                _in_order(back.endpoint, prefix)
            finally:
                if back is not server:
                    stop_server(back)
        assert len(acked) > 200


def _in_order(endpoint: str, prefix: str) -> None:
    """The commits added the events in the order they were accepted: each commit's events all come
    after the previous commit's."""
    s3 = boto3.client("s3", endpoint_url=endpoint, aws_access_key_id=ACCESS_KEY,
                      aws_secret_access_key=SECRET_KEY, region_name=REGION)
    listed = s3.list_objects_v2(Bucket=BUCKET, Prefix=f"{prefix}/_log/")["Contents"]
    commits = sorted(o["Key"] for o in listed)
    spans = []
    for key in commits:
        added = orjson.loads(s3.get_object(Bucket=BUCKET, Key=key)["Body"].read())["add"]
        numbers = []
        for entry in added:
            body = s3.get_object(Bucket=BUCKET, Key=f"{prefix}/{entry['path']}")["Body"].read()
            numbers += [int(p[1:]) for p in pq.read_table(io.BytesIO(body)).column("pathname").to_pylist()]
        if numbers:
            spans.append((min(numbers), max(numbers)))
    assert len(spans) > 2
    assert all(a[1] < b[0] for a, b in itertools.pairwise(spans)), spans
