"""axe-core in the page under test: the serious and critical violations, named for the failure message.

axe-core (Deque, MPL-2.0) comes from the ``axe-playwright-python`` wheel, which bundles
``axe.min.js``: nothing is fetched from a CDN when a test runs.
"""

from __future__ import annotations

from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import Page

BLOCKING = {"serious", "critical"}
_AXE = Axe()


def blocking_violations(page: Page) -> list[str]:
    """``rule id: impact, N nodes (first target)`` for each serious or critical violation on ``page``."""
    results = _AXE.run(page).response
    return [
        f"{v['id']}: {v['impact']}, {len(v['nodes'])} nodes ({v['nodes'][0]['target']})"
        for v in results["violations"]
        if v.get("impact") in BLOCKING
    ]
