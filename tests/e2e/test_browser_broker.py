"""'Login mit externem Servicekonto' in a real browser against ``servicekonto demo --seed``:
Düren asks our IdP, the citizen chooses "Servicekonto Musterland" (the demo's second instance of
our IdP), logs in and agrees there, comes back, continues without an account of ours, agrees
here, and Düren gets Musterland's data and a bPK2 with Musterland's prefix (docs/broker.md).
Every page is screenshotted and checked with axe-core (tests/e2e/browser.py).
"""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from sp_client.demo import DEMO_PASSWORD, MUSTERLAND_NAME, MUSTERLAND_UPSTREAM, MUSTERLAND_USERNAME
from tests.e2e.browser import Journey
from tests.e2e.processes import Demo
from tests.e2e.test_browser_demo import (
    CONSENT,
    DUEREN,
    agree,
    technical_details,
    to_the_servicekonto,
)

pytestmark = pytest.mark.slow

EXTERNAL = "Login mit externem Servicekonto"
FIRST_LOGIN = "Erste Anmeldung mit Ihrem externen Servicekonto"


def test_a_citizen_of_musterland_logs_in_at_dueren_through_the_broker_and_agrees_twice(
        journey: Journey, demo: Demo) -> None:
    page = to_the_servicekonto(journey, demo.dueren, "Düren")
    expect(page.get_by_role("heading", name="Anmelden mit Benutzername und Passwort")
           ).to_be_visible()
    journey.step("Anmelden beim Servicekonto.NRW")
    page.get_by_role("link", name=EXTERNAL).click()

    expect(page.get_by_role("heading", level=1, name=EXTERNAL)).to_be_visible()
    journey.step("Login mit externem Servicekonto: Auswahl")
    page.get_by_role("button", name=MUSTERLAND_NAME).click()

    page.wait_for_url(demo.musterland + "/anmelden?**")
    expect(page.get_by_role("heading", name="Anmelden mit Benutzername und Passwort")
           ).to_be_visible()
    journey.step("Servicekonto Musterland: Anmelden")
    page.fill("#username", MUSTERLAND_USERNAME)
    page.fill("#password", DEMO_PASSWORD)
    page.get_by_role("button", name="ANMELDEN").click()

    expect(page.get_by_role("heading", name=CONSENT)).to_be_visible()
    assert page.url.startswith(demo.musterland)
    expect(page.locator("main")).to_contain_text("Servicekonto.NRW")
    journey.step("Servicekonto Musterland: Zustimmung zur Weitergabe an das Servicekonto.NRW")
    page.get_by_role("button", name="ZUSTIMMEN").click()

    page.wait_for_url(demo.idp + "/extern/erste-anmeldung")
    expect(page.get_by_role("heading", level=1, name=FIRST_LOGIN)).to_be_visible()
    expect(page.locator("main")).to_contain_text(f"Sie haben sich mit Ihrem {MUSTERLAND_NAME} "
                                                 "angemeldet")
    journey.step("Erste Anmeldung mit Ihrem externen Servicekonto")
    page.get_by_role("button", name="WEITER OHNE BESTEHENDES KONTO").click()

    expect(page.locator("#datenquelle")).to_contain_text(
        f"Die Daten stammen aus Ihrem {MUSTERLAND_NAME}")
    page = agree(journey, demo.dueren, DUEREN, showing=("Max", "Mustermann"))
    technical = technical_details(journey, "Düren")
    # Düren's pairwise identifier for Musterland's citizen, never one of ours.
    assert technical["bPK2"].startswith(str(MUSTERLAND_UPSTREAM["bpk2_prefix"]))
    assert technical["NameID"] == technical["bPK2"]
    assert technical["givenName"] == "Max" and technical["surname"] == "Mustermann"
    assert technical["AuthnContextClassRef"].startswith("STORK-QAA-Level-1")
