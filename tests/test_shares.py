"""Shared links as Python objects over ``state/`` (``mallard/_shares.py``): the secret shown once and never
stored, changes seen by a second instance (as by another worker process), and a cap on live links."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from mallard import SharedLinks
from mallard._records import RecordError
from mallard._shares import MAX_SHARED_LINKS

SITE = "a.example"


def test_shared_link_secret_is_shown_once_and_never_stored(tmp_path: Path) -> None:
    """create() answers the secret; the state file holds its hash only; find() knows live and revoked
    links (in another instance too) and nothing else."""
    links = SharedLinks(tmp_path, clock=lambda: datetime(2026, 5, 1, 12, 0, tzinfo=UTC))
    secret, link = links.create(SITE, "Investors")
    assert secret.startswith("sl_") and len(secret) == 51 and link.created_at == "2026-05-01T12:00:00Z"
    stored = (tmp_path / "shared_links.json").read_text()
    assert secret not in stored and secret[3:] not in stored and link.secret_hash in stored
    other = SharedLinks(tmp_path)
    altered = secret[:-1] + ("1" if secret[-1] == "0" else "0")
    assert other.find(secret) == link and other.find(altered) is None
    assert other.find("sl_" + "0" * 48) is None and other.find("not a secret") is None
    assert other.revoke(link.id, SITE)
    found = links.find(secret)
    assert found is not None and found.revoked
    assert [lk.revoked for lk in links.list(SITE)] == [True]
    assert not links.revoke(999)


def test_live_shared_links_are_capped_revoked_ones_are_not(tmp_path: Path) -> None:
    """A site holds at most MAX_SHARED_LINKS live links; revoking one makes room for another."""
    links = SharedLinks(tmp_path)
    made = [links.create(SITE, f"link {i}")[1] for i in range(MAX_SHARED_LINKS)]
    with pytest.raises(RecordError, match="at most 100 live shared links"):
        links.create(SITE, "one more")
    assert links.create("b.example", "elsewhere")[1].site_id == "b.example"
    assert links.revoke(made[0].id)
    assert links.create(SITE, "one more")[1].name == "one more"
