"""A worker process using :class:`mallard._auth.Auth` on a shared state directory, driven over stdin.

Usage: ``python -m tests.procs.auth_worker STATE_DIR``. Prints ``ready`` once the Auth object exists,
then answers one line per command line read from stdin:

* ``setup PASSWORD`` → ``won`` or ``lost`` (AlreadyConfiguredError)
* ``verify PASSWORD`` → ``True`` / ``False``
* ``fail IP N`` → records N failed logins, prints the lockout seconds afterwards
* ``lockout IP`` → the lockout seconds
* ``create-key NAME SCOPE`` → the plaintext key
* ``create-keys PREFIX N`` → creates N ReadOnly keys named PREFIX-0 … and prints ``ok``
* ``check-key PLAINTEXT`` → the scope, or ``None``
* ``quit`` → exits 0

The real clock and the default Argon2 parameters are used.
"""

from __future__ import annotations

import sys
from pathlib import Path

from mallard._auth import AlreadyConfiguredError, Auth
from mallard._privacy import load_secret
from mallard._settings import Settings
from mallard._sharedstate import LocalState


def _answer(auth: Auth, command: str, args: list[str]) -> str:
    if command == "setup":
        try:
            auth.setup(args[0])
        except AlreadyConfiguredError:
            return "lost"
        return "won"
    if command == "verify":
        return str(auth.verify(args[0]))
    if command == "fail":
        for _ in range(int(args[1])):
            auth.record_failure(args[0])
        return str(auth.lockout_remaining(args[0]))
    if command == "lockout":
        return str(auth.lockout_remaining(args[0]))
    if command == "create-key":
        return auth.create_key(args[0], args[1])[0]
    if command == "create-keys":
        for i in range(int(args[1])):
            auth.create_key(f"{args[0]}-{i}", "ReadOnly")
        return "ok"
    if command == "check-key":
        return str(auth.check_key(args[0]))
    raise SystemExit(f"unknown command {command!r}")


def main() -> None:
    state = LocalState(Path(sys.argv[1]))
    with Auth(state, Settings(), secret=load_secret(state, None)) as auth:
        print("ready", flush=True)
        for line in sys.stdin:
            command, *args = line.split()
            if command == "quit":
                break
            print(_answer(auth, command, args), flush=True)


if __name__ == "__main__":
    main()
