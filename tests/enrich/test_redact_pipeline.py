"""PII redaction through the whole pipeline: ``Mallard.track()`` → buffer → Parquet, and ``/metrics``.

Every file under the data directory is scanned, as raw bytes and, for Parquet, decoded (the pages are
ZSTD-compressed, so a raw scan alone would miss most values).
"""

from __future__ import annotations

from pathlib import Path

import orjson
import pyarrow.parquet as pq
import pytest
from prometheus_client.parser import text_string_to_metric_families

import mallard

URL = ("https://shop.example/account/john.smith@example.com/orders"
       "?token=tok_SECRET123&utm_term=mary@example.org")
REFERRER = "https://mail.example/read?access_token=AT_SECRET456&x=1"
PROPS = {"email": "jane.doe@example.org", "card": "4111 1111 1111 1111", "phone": "+44 20 7946 0958",
         "password": "hunter2-SECRET", "plan": "pro"}
#: What must not reach any file (the page URL's query is never stored, redaction or not).
STORED_PII = (b"john.smith", b"mary@example", b"jane.doe", b"4111 1111 1111 1111", b"7946 0958",
              b"AT_SECRET456", b"hunter2-SECRET")
NEVER_STORED = (b"tok_SECRET123",)


def stored_bytes(data_dir: Path) -> dict[str, bytes]:
    """Every file's bytes, and for Parquet files also their decoded rows."""
    out = {}
    for path in sorted(p for p in data_dir.rglob("*") if p.is_file()):
        name = str(path.relative_to(data_dir))
        out[name] = path.read_bytes()
        if path.suffix == ".parquet":
            out[name + " (decoded)"] = orjson.dumps(pq.read_table(path).to_pylist(), default=str)
    return out


def found(data_dir: Path, needles: tuple[bytes, ...]) -> dict[str, list[bytes]]:
    hits = {}
    for name, blob in stored_bytes(data_dir).items():
        if any(n in blob for n in needles):
            hits[name] = [n for n in needles if n in blob]
    return hits


def redactions(m: mallard.Mallard) -> dict[str, float]:
    body, _ = m.metrics.render()
    return {s.labels["kind"]: s.value for f in text_string_to_metric_families(body.decode())
            for s in f.samples if s.name == "mallard_pii_redactions_total"}


def track_pii(m: mallard.Mallard) -> mallard.Outcome:
    return m.track("Signup", site="shop.example", url=URL, referrer=REFERRER, props=PROPS,
                   ip="198.51.100.7", user_agent="Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Firefox/121.0")


def test_track_stores_pii_redacted_and_counts_it(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with mallard.Mallard(data_dir=data) as m:
        outcome = track_pii(m)
        assert outcome.accepted and outcome.event is not None
        event = outcome.event
        assert event.pathname == "/account/[email]/orders"
        assert event.utm_term == "[email]"
        assert event.referrer == "https://mail.example/read?access_token=[redacted]&x=1"
        assert event.referrer_source == "mail.example" and event.hostname == "shop.example"
        assert orjson.loads(event.props or "") == {
            "email": "[email]", "card": "[card]", "phone": "[phone]", "password": "[redacted]",
            "plan": "pro"}
        assert m.flush() == 1
        # Counted for /metrics although no HTTP request was made: one per replacement, by kind.
        assert redactions(m) == {"email": 3, "card": 1, "phone": 1, "secret": 2, "custom": 0}
        rows = m.queries.sql("SELECT pathname, props FROM events").to_pylist()
        assert rows == [{"pathname": "/account/[email]/orders", "props": event.props}]
    assert list((data / "events").rglob("*.parquet"))
    assert found(data, STORED_PII + NEVER_STORED) == {}


def test_with_redaction_off_the_data_is_stored_as_sent(tmp_path: Path) -> None:
    """The setting turns it off, and the scan above does see PII where it is stored."""
    data = tmp_path / "data"
    with mallard.Mallard(data_dir=data, redact_pii=False) as m:
        event = track_pii(m).event
        assert event is not None and event.pathname == "/account/john.smith@example.com/orders"
        assert event.referrer == REFERRER and orjson.loads(event.props or "") == PROPS
        m.flush()
        assert redactions(m) == {"email": 0, "card": 0, "phone": 0, "secret": 0, "custom": 0}
    hits = found(data, STORED_PII + NEVER_STORED)
    assert {n for names in hits.values() for n in names} == set(STORED_PII)


def test_extra_params_and_patterns_from_settings(tmp_path: Path) -> None:
    with mallard.Mallard(data_dir=tmp_path / "data", redact_extra_params=["code"],
                         redact_extra_patterns=[r"\bCUST-\d+\b"]) as m:
        event = m.track("pageview", site="a.example", url="https://a.example/c/CUST-1234",
                        referrer="https://login.example/cb?code=abc&state=1").event
        assert event is not None
        assert event.pathname == "/c/[redacted]"
        assert event.referrer == "https://login.example/cb?code=[redacted]&state=1"
        assert redactions(m)["custom"] == 1 and redactions(m)["secret"] == 1


@pytest.mark.parametrize("options", [{"strip_referrer_query": True}, {"gdpr_mode": True}])
def test_redaction_composes_with_the_privacy_settings(tmp_path: Path, options: dict[str, bool]) -> None:
    with mallard.Mallard(data_dir=tmp_path / "data", **options) as m:
        event = m.track("pageview", site="a.example", url="https://a.example/u/a@b.example",
                        referrer="https://x:y@mail.example/p?token=1").event
        assert event is not None
        assert event.pathname == "/u/[email]" and event.referrer == "https://[redacted]@mail.example/p"
