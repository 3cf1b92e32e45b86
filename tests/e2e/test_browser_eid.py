"""The simulated Online-Ausweisfunktion in a real browser against ``servicekonto run`` with the
personas loaded: Erika logs in with her card; three wrong PINs block Jan's, and his PUK
unblocks it; Hans's expired card
is refused; cancelling goes back; registering with a card; hochstufen of a basisregistriert
account, and its refusal for names that differ. Every page is screenshotted and checked with
axe-core (tests/e2e/browser.py)."""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.e2e.browser import Journey
from tests.e2e.processes import SERVICEKONTO, HttpBrowser, start_idp


@pytest.fixture
def idp_with_personas(idp_env: dict[str, str], tmp_path: Path) -> Iterator[HttpBrowser]:
    """``servicekonto run`` in development (the simulation on) with every persona loaded."""
    for browser in start_idp(idp_env, tmp_path / "idp.log"):
        loaded = subprocess.run([str(SERVICEKONTO), "persona", "load"], env=idp_env,
                                capture_output=True, text=True, timeout=60, check=False)
        assert loaded.returncode == 0, loaded.stderr
        yield browser


def to_the_ausweisapp(journey: Journey, base_url: str) -> None:
    page = journey.page
    page.goto(base_url + "/")
    journey.step("Startseite mit der Online-Ausweisfunktion")
    page.get_by_role("link", name=re.compile("Anmelden mit der Online-Ausweisfunktion")).click()
    expect(page.locator("#simulation")).to_contain_text("Simulation – kein echter Ausweis")
    journey.step("Simulierte AusweisApp")


def read_card(journey: Journey, holder: str, pin: str) -> None:
    page = journey.page
    page.get_by_role("radio", name=re.compile(holder)).check()
    page.get_by_label("Sechsstellige PIN").fill(pin)
    page.get_by_role("button", name="PIN eingeben und Daten übermitteln").click()


def test_erika_logs_in_with_her_card_at_level_hoch(
        journey: Journey, idp_with_personas: HttpBrowser) -> None:
    to_the_ausweisapp(journey, idp_with_personas.base_url)
    read_card(journey, "Erika Mustermann", "123456")
    page = journey.step("Mein Servicekonto nach der Anmeldung mit dem Ausweis")
    expect(page.get_by_role("heading", name="Mein Servicekonto")).to_be_visible()
    expect(page.locator("main")).to_contain_text("Mustermann")


def test_three_wrong_pins_count_down_and_block_the_card_and_the_puk_unblocks_it(
        journey: Journey, idp_with_personas: HttpBrowser) -> None:
    to_the_ausweisapp(journey, idp_with_personas.base_url)
    page = journey.page
    read_card(journey, "Jan Modaal", "000000")
    expect(page.get_by_role("alert")).to_contain_text("Sie haben noch 2 Versuche")
    journey.step("Falsche PIN, noch 2 Versuche")
    read_card(journey, "Jan Modaal", "000000")
    expect(page.get_by_role("alert")).to_contain_text("Sie haben noch einen Versuch")
    journey.step("Falsche PIN, noch ein Versuch")
    read_card(journey, "Jan Modaal", "000000")
    expect(page.get_by_role("alert")).to_contain_text("PUK")
    journey.step("PIN gesperrt")
    expect(page.get_by_role("radio", name=re.compile("Jan Modaal"))).to_have_accessible_name(
        re.compile(r"\(PIN gesperrt\)"))
    # Jan's PIN letter (policies/personas/jan.yaml) has the PUK.
    page.get_by_label("Zehnstellige PUK aus Ihrem PIN-Brief").fill("2718281828")
    page.get_by_role("button", name="PIN ENTSPERREN").click()
    expect(page.get_by_role("status")).to_contain_text("Die PIN Ihres Ausweises ist entsperrt")
    journey.step("PIN mit der PUK entsperrt")
    read_card(journey, "Jan Modaal", "135790")
    expect(page.get_by_role("heading", name="Mein Servicekonto")).to_be_visible()


def test_an_expired_card_is_refused(journey: Journey, idp_with_personas: HttpBrowser) -> None:
    to_the_ausweisapp(journey, idp_with_personas.base_url)
    read_card(journey, "Hans", "112233")
    expect(journey.page.get_by_role("alert")).to_contain_text("Ihr Ausweis ist abgelaufen")
    journey.step("Abgelaufener Ausweis")


def test_cancelling_the_ausweisapp_goes_back_to_the_start_page(
        journey: Journey, idp_with_personas: HttpBrowser) -> None:
    to_the_ausweisapp(journey, idp_with_personas.base_url)
    journey.page.get_by_role("link", name="ABBRECHEN").click()
    page = journey.step("Abgebrochen: zurück zur Startseite")
    expect(page.get_by_role("heading", name="Melden Sie sich hier an")).to_be_visible()


def test_a_citizen_registers_with_the_card_and_only_types_the_email(
        journey: Journey, idp_with_personas: HttpBrowser, idp_env: dict[str, str]) -> None:
    # Erika's account goes, her card stays (it has no account now).
    deleted = subprocess.run([str(SERVICEKONTO), "user", "delete", "ErikaM", "--yes"],
                             env=idp_env, capture_output=True, text=True, timeout=60,
                             check=False)
    assert deleted.returncode == 0, deleted.stderr
    page = journey.page
    page.goto(idp_with_personas.base_url + "/registrieren")
    journey.step("Registrieren: zwei Wege")
    page.get_by_role("link", name=re.compile("Registrieren mit der Online-Ausweisfunktion")).click()
    journey.step("Registrieren: simulierte AusweisApp")
    read_card(journey, "Erika Mustermann", "123456")
    expect(page.locator("#ausweisdaten")).to_contain_text("12.08.1964")
    journey.step("Registrieren: Daten aus dem Ausweis")
    page.get_by_label("E-Mail").fill("erika.mustermann@example.org")
    page.get_by_label("Ich habe die Datenschutzerklärung gelesen").check()
    page.get_by_role("button", name="Daten speichern").click()
    journey.step("Registrieren: Sie erhalten eine Mail")
    expect(page.locator("main")).to_contain_text("Sie erhalten eine Mail")


def test_hochstufen_with_a_card_whose_names_differ_is_refused_with_the_reason(
        journey: Journey, idp_with_personas: HttpBrowser, idp_env: dict[str, str]) -> None:
    # Erika's account goes, so her card is free; Max (basisregistriert) tries it.
    made = subprocess.run([str(SERVICEKONTO), "user", "delete", "ErikaM", "--yes"],
                          env=idp_env, capture_output=True, text=True, timeout=60, check=False)
    assert made.returncode == 0, made.stderr
    page = journey.page
    page.goto(idp_with_personas.base_url + "/anmelden")
    page.fill("#username", "MaxM")
    page.fill("#password", "Servicekonto-Demo 2026!")
    page.get_by_role("button", name="ANMELDEN").click()
    journey.step("Mein Servicekonto, basisregistriert")
    page.get_by_role("link", name="Konto hochstufen").click()
    journey.step("Konto hochstufen: simulierte AusweisApp")
    read_card(journey, "Erika Mustermann", "123456")
    expect(page.get_by_role("alert")).to_contain_text("Der Vorname in Ihrem Servicekonto")
    journey.step("Konto hochstufen: Namen passen nicht")


def test_a_basisregistriert_erika_upgrades_her_account_with_her_card(
        journey: Journey, idp_with_personas: HttpBrowser, idp_env: dict[str, str]) -> None:
    # Erika's persona account goes (her card stays, without an account); she has registered
    # anew with username and password only: basisregistriert.
    for command in (["user", "delete", "ErikaM", "--yes"],
                    ["user", "create", "--username", "ErikaNeu", "--email",
                     "erika.neu@example.org", "--given-name", "Erika", "--surname",
                     "Mustermann", "--password", "Servicekonto-Demo 2026!"]):
        done = subprocess.run([str(SERVICEKONTO), *command], env=idp_env, capture_output=True,
                              text=True, timeout=60, check=False)
        assert done.returncode == 0, done.stderr
    page = journey.page
    page.goto(idp_with_personas.base_url + "/anmelden")
    page.fill("#username", "ErikaNeu")
    page.fill("#password", "Servicekonto-Demo 2026!")
    page.get_by_role("button", name="ANMELDEN").click()
    expect(page.locator("main")).to_contain_text("basisregistriert")
    journey.step("Mein Servicekonto, basisregistriert, Konto hochstufen")
    page.get_by_role("link", name="Konto hochstufen").click()
    read_card(journey, "Erika Mustermann", "123456")
    expect(page.get_by_role("table")).to_contain_text("Gabler")
    journey.step("Konto hochstufen: bisherige und neue Daten")
    page.get_by_role("button", name="Konto hochstufen").click()
    expect(page.locator("main")).to_contain_text("Ihr Servicekonto ist jetzt hochgestuft")
    journey.step("Mein Servicekonto, hochgestuft")
    expect(page.get_by_role("link", name="Konto hochstufen")).to_have_count(0)
    page.get_by_role("link", name="Persönliche Daten ändern").click()
    expect(page.locator("main")).to_contain_text("Ihre Namen stammen aus Ihrem Ausweis")
    expect(page.get_by_label("Vorname")).to_have_count(0)
    journey.step("Persönliche Daten: Namen aus dem Ausweis")
