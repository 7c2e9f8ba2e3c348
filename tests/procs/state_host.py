"""One "host" of a lake on object storage: every consumer of the shared state, built from the settings
(``MALLARD_LAKE_URL`` and ``MALLARD_S3_*`` in the environment) through
:func:`mallard._sharedstate.shared_state`, as :class:`mallard.Mallard` builds them, driven over stdin.

Usage: ``python -m tests.procs.state_host DATA_DIR`` (this host's own local directory). Prints
``ready``, then answers one line per command (arguments separated by single spaces):

* ``visitor SITE IP UA`` → the visitor id of today's salt
* ``secret`` → the SHA-256 of the instance secret (never the secret)
* ``setup PW`` → ``won`` / ``lost``; ``verify PW`` → ``True`` / ``False``; ``set-password PW`` → ``ok``
* ``session`` → a new session token; ``check-session T`` → ``True`` / ``False``; ``logout T`` → ``ok``
* ``create-key NAME`` → an Admin key; ``revoke-key PLAIN`` → ``True`` / ``False``;
  ``check-key PLAIN`` → the scope or ``None``
* ``fail IP N`` → records N failed logins, prints the lockout seconds; ``lockout IP`` → the seconds
* ``goal SITE EVENT`` → the goal's id; ``goals SITE`` → the event names, comma-separated
* ``funnel SITE NAME`` → the id; ``funnels SITE`` → the names, comma-separated
* ``share SITE NAME`` → the link's secret; ``revoke-share SITE ID``; ``find-share SECRET`` → ``ID revoked``
  or ``None``
* ``quit``
"""

from __future__ import annotations

import hashlib
import sys
from datetime import UTC, datetime
from pathlib import Path

import argon2

from mallard._auth import Auth
from mallard._funnels import SavedFunnels
from mallard._goals import Goals
from mallard._privacy import Salts, canonical_ip, load_secret, visitor_id
from mallard._settings import Settings
from mallard._sharedstate import SharedState, shared_state
from mallard._shares import SharedLinks

#: Cheap Argon2id parameters (the defaults cost ~100 ms per hash).
CHEAP = argon2.PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)


class Host:
    def __init__(self, state: SharedState, settings: Settings) -> None:
        self.secret = load_secret(state, settings.secret)
        self.salts = Salts(state, rotation_days=settings.visitor_salt_rotation_days)
        self.auth = Auth(state, settings, secret=self.secret, hasher=CHEAP)
        self.goals = Goals(state)
        self.funnels = SavedFunnels(state)
        self.links = SharedLinks(state)

    def answer(self, command: str, args: list[str]) -> str:
        auth = self.auth
        simple = {
            "secret": lambda: hashlib.sha256(self.secret).hexdigest(),
            "verify": lambda: auth.verify(args[0]),
            "session": lambda: auth.create_session()[0],
            "check-session": lambda: auth.check_session(args[0]),
            "create-key": lambda: auth.create_key(args[0], "Admin")[0],
            "check-key": lambda: auth.check_key(args[0]),
            "lockout": lambda: auth.lockout_remaining(args[0]),
            "goal": lambda: self.goals.add(args[0], event_name=args[1]).id,
            "goals": lambda: ",".join(str(g.event_name) for g in self.goals.list(args[0])),
            "funnel": lambda: self.funnels.add(args[0], args[1], ["page:/", "event:Signup"]).id,
            "funnels": lambda: ",".join(f.name for f in self.funnels.list(args[0])),
            "share": lambda: self.links.create(args[0], args[1])[0],
            "revoke-share": lambda: self.links.revoke(int(args[1]), args[0]),
        }
        if command in simple:
            return str(simple[command]())
        if command == "visitor":
            salt = self.salts.salts(datetime.now(UTC))[0]
            return visitor_id(salt, args[0], canonical_ip(args[1]), args[2])
        if command == "setup":
            try:
                auth.setup(args[0])
            except Exception as exc:
                return f"lost {type(exc).__name__}"
            return "won"
        if command == "set-password":
            auth.set_password(args[0])
            return "ok"
        if command == "logout":
            return str(auth.revoke_session(args[0]))
        if command == "revoke-key":
            return str(auth.revoke_key(hashlib.sha256(args[0].encode()).hexdigest()))
        if command == "fail":
            for _ in range(int(args[1])):
                auth.record_failure(args[0])
            return str(auth.lockout_remaining(args[0]))
        if command == "find-share":
            link = self.links.find(args[0])
            return "None" if link is None else f"{link.id} {link.revoked}"
        raise SystemExit(f"unknown command {command!r}")


def main() -> None:
    settings = Settings.load(None, data_dir=sys.argv[1])
    host = Host(shared_state(settings, Path(settings.data_dir) / "state"), settings)
    print("ready", flush=True)
    for line in sys.stdin:
        command, *args = line.rstrip("\n").split(" ")
        if command == "quit":
            break
        print(host.answer(command, args), flush=True)
    host.auth.close()


if __name__ == "__main__":
    main()
