"""Copy the dashboard screenshots of docs/dashboard.md's tour from the browser tests' artefacts.

The browser tests save a screenshot of every view under ``test-artifacts/dashboard/`` (real Chromium
against a real ``mallard serve`` filled with generated traffic). Run them first, then this script::

    python -m pytest -q tests/http/test_dashboard_a11y.py tests/http/test_dashboard_behaviour.py \
        tests/http/test_dashboard_filters.py tests/http/test_dashboard_top.py \
        tests/http/test_dashboard_sites.py
    python scripts/doc_screenshots.py

It exits 1 and names the artefacts that are missing.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = ROOT / "test-artifacts" / "dashboard"
OUT = ROOT / "docs" / "img" / "dashboard"

#: docs/img/dashboard/<name> ← test-artifacts/dashboard/<artefact>
SHOTS = {
    "overview.png": "a11y-dashboard-light.png",
    "overview-dark.png": "a11y-dashboard-dark.png",
    "filter-menu.png": "filters-menu-open.png",
    "segments.png": "filters-segments-menu.png",
    "funnel.png": "behaviour-panel-funnel.png",
    "saved-funnels.png": "sites-funnel-picker.png",
    "flow.png": "behaviour-panel-flow.png",
    "retention.png": "behaviour-panel-retention.png",
    "realtime.png": "a11y-realtime-light.png",
    "login.png": "a11y-login-light.png",
    "first-run.png": "a11y-first-run-light.png",
    "settings-sites.png": "a11y-settings-sites-light.png",
    "phone.png": "phone-7d.png",
}


def main() -> int:
    missing = [a for a in SHOTS.values() if not (ARTIFACTS / a).is_file()]
    if missing:
        print(f"missing in {ARTIFACTS}: {', '.join(missing)} (run the browser tests first: see this "
              "script's docstring)", file=sys.stderr)
        return 1
    OUT.mkdir(parents=True, exist_ok=True)
    for name, artefact in SHOTS.items():
        shutil.copyfile(ARTIFACTS / artefact, OUT / name)
    print(f"{len(SHOTS)} screenshots copied to {OUT.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
