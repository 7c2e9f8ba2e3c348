"""Entry points of child processes started by the storage tests (run as ``python -m tests.procs.<name>``)."""
