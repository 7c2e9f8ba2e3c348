"""mallard._auth.tokens: signed session tokens and their logouts."""

from __future__ import annotations

from pathlib import Path

import pytest

from mallard._auth import Auth
from mallard._settings import Settings
from mallard._sharedstate import LocalState
from tests.auth.conftest import (
    CHEAP,
    OTHER,
    PASSWORD,
    MakeAuth,
    count_rows,
)
from tests.conftest import FrozenClock


def test_session_verifies_until_it_expires(auth: Auth, clock: FrozenClock) -> None:
    """A token is valid for exactly session_ttl_secs (absolute) and has the documented shape."""
    token, max_age = auth.create_session()
    assert max_age == 86_400
    version, expires, nonce, mac = token.split(".")
    assert version == "v1" and int(expires) == int(clock().timestamp()) + max_age
    assert len(nonce) == 32 and len(mac) == 64
    assert auth.check_session(token)
    clock.advance(seconds=max_age - 1)
    assert auth.check_session(token)
    clock.advance(seconds=1)
    assert not auth.check_session(token)


def test_tampered_sessions_fail(auth: Auth, state: Path) -> None:
    """Flipping any one character, or a token from another secret, is rejected."""
    token, _ = auth.create_session()
    for i in range(3, len(token)):
        if token[i] == ".":
            continue
        flipped = "1" if token[i] != "1" else "2"
        assert not auth.check_session(token[:i] + flipped + token[i + 1:]), i
    for bad in ("", "v1", token + "0", token.upper(), "v2" + token[2:], 42):
        assert not auth.check_session(bad)  # type: ignore[arg-type]
    other = Auth(LocalState(state), Settings(), secret=b"another secret", hasher=CHEAP)
    try:
        assert not other.check_session(token)
    finally:
        other.close()


def test_revoked_session_fails_everywhere(auth: Auth, make_auth: MakeAuth) -> None:
    """A logout in one Auth object ends the session in another; other sessions live on."""
    token, _ = auth.create_session()
    kept, _ = auth.create_session()
    elsewhere = make_auth()
    assert elsewhere.check_session(token)
    assert auth.revoke_session(token)
    assert not elsewhere.check_session(token)
    assert elsewhere.check_session(kept)
    assert not auth.revoke_session("v1.garbage")


def test_revocations_are_pruned_once_expired(auth: Auth, clock: FrozenClock, state: Path) -> None:
    """The logout table forgets tokens that have expired anyway."""
    token, ttl = auth.create_session()
    auth.revoke_session(token)
    clock.advance(seconds=ttl + 1)
    later, _ = auth.create_session()
    auth.revoke_session(later)
    assert count_rows(state, "revoked_sessions") == 1


@pytest.mark.parametrize("how", ["change", "set_password"])
def test_password_change_ends_every_session(auth: Auth, make_auth: MakeAuth, how: str) -> None:
    """Sessions are bound to the password hash: a new password (from any process) invalidates them."""
    token, _ = auth.create_session()
    other = make_auth()
    assert other.check_session(token)
    if how == "change":
        other.change(PASSWORD, OTHER)
    else:
        other.set_password(OTHER)
    assert not auth.check_session(token)
    assert not other.check_session(token)
    fresh, _ = auth.create_session()
    assert other.check_session(fresh)


def test_shortened_ttl_refuses_longer_tokens(auth: Auth, make_auth: MakeAuth) -> None:
    """A token issued under a longer session_ttl_secs is refused once the TTL is lowered."""
    token, _ = auth.create_session()
    assert not make_auth(session_ttl_secs=3600).check_session(token)
