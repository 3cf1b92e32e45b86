"""The Online-Ausweisfunktion through a portal, in a real browser against ``servicekonto demo
--seed``: Düren's "Meldebescheinigung anfordern" needs level "hoch", so a citizen logged in with
a password steps up with her card, one not logged in logs in with the card only, and cancelling
the AusweisApp step brings Düren a NoAuthnContext. Every page is screenshotted and checked with
axe-core (tests/e2e/browser.py)."""

from __future__ import annotations

import re
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.e2e.browser import Journey
from tests.e2e.processes import Demo
from tests.e2e.test_browser_demo import (
    AFTER_LOGIN,
    DUEREN,
    agree,
    log_in,
    technical_details,
    to_the_servicekonto,
)

pytestmark = pytest.mark.slow

SERVICE = "Meldebescheinigung anfordern"


def to_the_ausweisapp(journey: Journey, *, step_up: bool = False) -> Any:
    """On the IdP's login page that offers only the Online-Ausweisfunktion → the AusweisApp."""
    page = journey.page
    expect(page.get_by_role("heading", name="Anmelden mit der Online-Ausweisfunktion "
                                             "erforderlich")).to_be_visible()
    expect(page.locator("#password")).to_have_count(0)
    if step_up:
        expect(page.locator("#hochstufen-hinweis")).to_contain_text(
            "Sie sind mit Benutzername und Passwort angemeldet")
    journey.step("Login-Seite: nur die Online-Ausweisfunktion" + (" (Step-up)" if step_up
                                                                   else ""))
    page.get_by_role("link", name="Weiter zur Online-Ausweisfunktion").click()
    expect(page.locator("#simulation")).to_contain_text("Simulation – kein echter Ausweis")
    expect(page.locator("#anbieter")).to_contain_text(DUEREN)
    journey.step("Simulierte AusweisApp für Düren")
    return page


def read_card(journey: Journey, holder: str, pin: str) -> None:
    page = journey.page
    page.get_by_role("radio", name=re.compile(holder)).check()
    page.get_by_label("Sechsstellige PIN").fill(pin)
    page.get_by_role("button", name="PIN eingeben und Daten übermitteln").click()


def needs_hoch(journey: Journey, demo: Demo) -> Any:
    page = journey.page
    expect(page.locator("#hoch-erforderlich")).to_contain_text("Vertrauensniveau „hoch“")
    journey.step("Meldebescheinigung: Vertrauensniveau hoch erforderlich")
    page.get_by_role("button", name="Mit der Online-Ausweisfunktion anmelden").click()
    return page


def test_erika_logged_in_with_her_password_steps_up_with_her_card_for_a_meldebescheinigung(
        journey: Journey, demo: Demo) -> None:
    page = to_the_servicekonto(journey, demo.dueren, "Düren")
    log_in(journey, "ErikaM")
    page = agree(journey, demo.dueren, DUEREN)
    assert technical_details(journey, DUEREN)["AuthnContextClassRef"].startswith(
        "STORK-QAA-Level-1")
    page.locator("main").get_by_role("link", name=SERVICE).click()
    needs_hoch(journey, demo)
    to_the_ausweisapp(journey, step_up=True)
    read_card(journey, "Erika Mustermann", "123456")
    page.wait_for_url(demo.dueren + "/uebersicht")
    expect(page.get_by_role("heading", level=1, name=AFTER_LOGIN[DUEREN])).to_be_visible()
    journey.step("Mein Bereich nach dem Step-up")
    technical = technical_details(journey, DUEREN)
    assert technical["AuthnContextClassRef"].startswith("STORK-QAA-Level-4")
    page.locator("main").get_by_role("link", name=SERVICE).click()
    expect(page.get_by_role("heading", level=1, name=SERVICE)).to_be_visible()
    journey.step("Meldebescheinigung: der Service öffnet sich")


def test_jan_not_logged_in_logs_in_at_the_level_4_service_with_his_card_only(
        journey: Journey, demo: Demo) -> None:
    page = journey.page
    page.goto(demo.dueren + "/services/meldebescheinigung")
    needs_hoch(journey, demo)
    to_the_ausweisapp(journey)
    read_card(journey, "Jan Modaal", "135790")
    page = agree(journey, demo.dueren, DUEREN, showing=("Jan", "Modaal"))
    assert technical_details(journey, DUEREN)["AuthnContextClassRef"].startswith(
        "STORK-QAA-Level-4")


def test_cancelling_the_ausweisapp_at_the_level_4_service_tells_dueren_no_authn_context(
        journey: Journey, demo: Demo) -> None:
    page = journey.page
    page.goto(demo.dueren + "/services/meldebescheinigung")
    needs_hoch(journey, demo)
    to_the_ausweisapp(journey)
    page.get_by_role("button", name="ABBRECHEN").click()
    expect(page.locator("main")).to_contain_text("höheres Vertrauensniveau")
    journey.step("Düren: Vertrauensniveau nicht erreicht")
