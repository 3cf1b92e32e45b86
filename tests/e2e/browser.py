"""Headless Chromium for the browser tests: Debian's ``chromium`` driven by Playwright.

No browser is downloaded: Playwright starts ``/usr/bin/chromium`` (``IDP_TEST_CHROMIUM``
elsewhere). Every page a test visits goes through :meth:`Journey.step`, which saves a
screenshot under ``test-artifacts/screenshots/<test>/`` and runs axe-core (installed from the
npm registry into ``tests/e2e/node_modules`` by ``npm ci --prefix tests/e2e``) on it: a serious
or critical accessibility violation fails the test, as BITV 2.0 / WCAG 2.1 AA would.
"""

from __future__ import annotations

import html
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

E2E = Path(__file__).resolve().parent
PROJECT_ROOT = E2E.parents[1]
CHROMIUM = Path(os.environ.get("IDP_TEST_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu",
                  "--disable-background-networking", "--disable-component-update",
                  "--disable-sync"]
AXE = E2E / "node_modules" / "axe-core" / "axe.min.js"
SCREENSHOTS = PROJECT_ROOT / "test-artifacts" / "screenshots"
BLOCKING_IMPACTS = {"serious", "critical"}
UMLAUTS = str.maketrans({"ä": "ae", "ö": "oe", "ü": "ue", "ß": "ss"})


def axe_violations(page: Any) -> list[dict[str, Any]]:
    """Serious and critical WCAG 2.x A/AA violations axe-core finds on the page as it is.

    The script is evaluated over the DevTools protocol, so the page's own CSP (no inline
    scripts) stays in force for everything else.
    """
    if not page.evaluate("() => typeof window.axe !== 'undefined'"):
        page.evaluate(AXE.read_text(encoding="utf-8"))
    result = page.evaluate("""() => axe.run(document, {
        runOnly: {type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa']},
        resultTypes: ['violations']})""")
    return [violation for violation in result["violations"]
            if violation["impact"] in BLOCKING_IMPACTS]


SCRIPT = re.compile(r"<script\b.*?</script>", re.DOTALL | re.IGNORECASE)
REFRESH = re.compile(r"<meta[^>]*http-equiv=[\"']?refresh[^>]*>", re.IGNORECASE)


def axe_violations_of_copy(page: Any, checker: Any) -> list[dict[str, Any]]:
    """:func:`axe_violations` for a page without JavaScript, where axe cannot run (its timers
    never fire): a copy of the page as it is, without scripts or refresh, in ``checker``.

    ``checker`` is a page of a context with JavaScript; the copy keeps the page's address as
    its base, so its style sheets load from the server as they did for the page.
    """
    copy = REFRESH.sub("", SCRIPT.sub("", page.content()))
    copy = copy.replace("<head>", f'<head><base href="{html.escape(page.url)}">', 1)
    checker.set_content(copy, wait_until="load")
    return axe_violations(checker)


def describe(violations: list[dict[str, Any]]) -> str:
    return "\n".join(f"{v['impact']}: {v['id']} – {v['help']} ({len(v['nodes'])}× e.g. "
                     f"{v['nodes'][0]['target']})" for v in violations)


@dataclass
class Journey:
    """One test's way through the pages: numbered screenshots and an axe check per page."""

    page: Any
    folder: Path
    steps: list[str] = field(default_factory=list)
    # Set when ``page`` runs without JavaScript: a page with it, for axe (axe_violations_of_copy).
    checker: Any = None
    # On a phone: no page may be wider than the screen (WCAG 1.4.10 Reflow, 320 CSS pixels).
    phone: bool = False

    def step(self, name: str) -> Any:
        """Screenshot the page as it is now and check it with axe; returns the page."""
        self.page.wait_for_load_state("load")
        self.steps.append(name)
        slug = re.sub(r"[^a-z0-9]+", "-", name.lower().translate(UMLAUTS)).strip("-")
        self.folder.mkdir(parents=True, exist_ok=True)
        self.page.screenshot(path=str(self.folder / f"{len(self.steps):02d}-{slug}.png"),
                             full_page=True)
        violations = (axe_violations(self.page) if self.checker is None
                      else axe_violations_of_copy(self.page, self.checker))
        assert not violations, f"{name} ({self.page.url}):\n{describe(violations)}"
        if self.phone:
            width = self.page.evaluate("() => document.documentElement.scrollWidth")
            assert width <= self.page.viewport_size["width"], f"{name}: {width} px wide"
        return self.page
