"""The citizen guides of Düren and mags, clicked through in a real browser against
``servicekonto demo`` (the IdP and both portals as one real process, mails over real SMTP).

One demo serves the whole module; each test is a fresh browser and uses a citizen of its own
(the seeded ones, or one it registers), so that the tests do not depend on each other's order.
Every page is screenshotted and checked with axe-core (tests/e2e/browser.py).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from email.message import EmailMessage
from typing import Any

import pytest
from playwright.sync_api import expect

from sp_client.demo import DEMO_PASSWORD
from tests.conftest import LINK
from tests.e2e.browser import Journey
from tests.e2e.processes import Demo, eventually
from tests.integration.mail.smtp import SmtpServer

pytestmark = pytest.mark.slow

DUEREN = "Bürgerportal der Stadt Düren"
MAGS = "mags Bürgerportal"
CONSENT = "Zustimmung zur Weitergabe an ein Fachverfahren"
AFTER_LOGIN = {DUEREN: "Mein Bereich", MAGS: "Übersicht der Services"}
NEW_CITIZEN = {"given_name": "Lena", "surname": "Beispiel", "birth_name": "",
               "email": "lena.beispiel@example.org", "username": "LenaB",
               "password": "Rurufer-Weg 17!", "password_confirm": "Rurufer-Weg 17!"}


# --- steps of the guides ---------------------------------------------------------------------

def to_the_servicekonto(journey: Journey, portal: str, name: str) -> Any:
    """Portal start page → "Anmelden" → "Zum Servicekonto.NRW"; returns the page."""
    page = journey.page
    page.goto(portal + "/")
    journey.step(f"Startseite {name}")
    page.get_by_role("navigation").get_by_role("link", name="Anmelden").click()
    journey.step(f"Servicekonto.NRW erforderlich ({name})")
    page.get_by_role("button", name="Zum Servicekonto.NRW").click()
    return page


def log_in(journey: Journey, username: str, password: str = DEMO_PASSWORD) -> None:
    """On the IdP's login page: "Anmelden mit Benutzername und Passwort" → ANMELDEN."""
    page = journey.page
    expect(page.get_by_role("heading", name="Anmelden mit Benutzername und Passwort")
           ).to_be_visible()
    journey.step("Anmelden mit Benutzername und Passwort")
    page.fill("#username", username)
    page.fill("#password", password)
    page.get_by_role("button", name="ANMELDEN").click()


def consent_page(journey: Journey, portal_name: str) -> Any:
    """The consent page, checked to name the portal; returns the page."""
    page = journey.page
    expect(page.get_by_role("heading", name=CONSENT)).to_be_visible()
    journey.step(f"Zustimmung zur Weitergabe an {portal_name}")
    expect(page.locator("main")).to_contain_text(portal_name)
    return page


def agree(journey: Journey, portal: str, portal_name: str, showing: tuple[str, ...] = ()) -> Any:
    """On the consent page (listing the values ``showing``): ZUSTIMMEN → back at the portal's
    page after login ("Mein Bereich", mags: "Übersicht der Services"); returns the page."""
    page = consent_page(journey, portal_name)
    for value in showing:
        expect(page.locator("main dd", has_text=value).first).to_be_visible()
    page.get_by_role("button", name="ZUSTIMMEN").click()
    page.wait_for_url(portal + "/uebersicht")
    expect(page.get_by_role("heading", level=1, name=AFTER_LOGIN[portal_name])).to_be_visible()
    expect(page.locator("main")).to_contain_text("Sie sind angemeldet.")
    journey.step(f"{AFTER_LOGIN[portal_name]} ({portal_name})")
    return page


def received_data(page: Any) -> dict[str, str]:
    """The citizen's data on the page after login ("Ihre Daten"): label → value."""
    facts = page.locator("main dl.facts > div")
    return {facts.nth(i).locator("dt").inner_text(): facts.nth(i).locator("dd").inner_text()
            for i in range(facts.count())}


def technical_details(journey: Journey, portal_name: str) -> dict[str, str]:
    """Open "Technische Angaben (für Test und Entwicklung)" on the page after login; returns
    the login's rows (NameID, …) and each attribute's FriendlyName → value as received."""
    page = journey.page
    details = page.locator("main details.technical")
    expect(details).not_to_have_attribute("open", "")  # collapsed until asked for
    details.get_by_text("Technische Angaben (für Test und Entwicklung)").click()
    expect(details.get_by_role("table", name="Attribute")).to_be_visible()
    journey.step(f"Technische Angaben ({portal_name})")
    shown = {}
    for table, key in (("Anmeldung", "th"), ("Attribute", "td[data-label=FriendlyName]")):
        rows = details.get_by_role("table", name=table).locator("tbody tr")
        for i in range(rows.count()):
            value = rows.nth(i).locator("td").last if table == "Anmeldung" else \
                rows.nth(i).locator("td[data-label=Wert]")
            shown[rows.nth(i).locator(key).inner_text()] = value.inner_text()
    return shown


def held(journey: Journey, leaving_for: str, action: Callable[[], object], name: str) -> Any:
    """Do ``action``, which leads to a page that goes on by itself at once (meta refresh or
    script) to a URL starting with ``leaving_for``; keep the browser on that page (the way on
    answers 204 No Content, which leaves a page where it is) and check it. Returns the page,
    whose "Weiter" the caller then follows for real."""
    page, tried = journey.page, []

    def no_content(route: Any) -> None:
        tried.append(route.request.url)
        route.fulfill(status=204)

    def went_on() -> bool | None:
        page.wait_for_timeout(50)  # Playwright's events (the route) are handled while waiting
        return bool(tried) or None

    page.route(lambda url: url.startswith(leaving_for), no_content)
    try:
        action()
        eventually(went_on, seconds=10)
        expect(page.locator("#saml-weiter-link, #saml-weiter button")).to_be_visible()
        journey.step(name)
    finally:
        page.unroute_all()
    return page


def link_in_mail_to(smtp_server: SmtpServer, address: str) -> str:
    """The link in the first mail the SMTP server received for ``address``, once it is there."""

    def arrived() -> EmailMessage | None:
        return next((m for m in smtp_server.inbox.received if m["To"] == address), None)

    body = eventually(arrived).get_body(preferencelist=("plain",))
    assert body is not None
    link = LINK.search(body.get_content())
    assert link is not None
    return link.group(0)


# --- 1. Düren: register, activate by mail, log in, agree ---------------------------------------

def test_a_citizen_registers_from_dueren_activates_by_mail_agrees_and_is_logged_in_at_dueren(
        journey: Journey, demo: Demo, demo_smtp_server: SmtpServer) -> None:
    page = to_the_servicekonto(journey, demo.dueren, "Düren")
    expect(page.get_by_role("heading", name="Anmelden mit Benutzername und Passwort")
           ).to_be_visible()
    first_request = page.url
    journey.step("Anmelden beim Servicekonto.NRW")
    page.locator("#inhalt").get_by_role("link", name="Registrieren", exact=True).click()
    journey.step("Registrieren")
    page.get_by_role("link", name=re.compile("Benutzername und Passwort")).click()
    journey.step("Registrieren mit Benutzername und Passwort")
    page.select_option("#salutation", "frau")
    for name, value in NEW_CITIZEN.items():
        page.fill(f"#{name}", value)
    page.check("#privacy_accepted")
    journey.step("Registrierungsformular ausgefüllt")
    page.get_by_role("button", name="nächster Schritt").click()
    journey.step("Angaben prüfen")
    expect(page.locator("main")).to_contain_text("Beispiel")
    page.get_by_role("button", name="Daten speichern").click()
    expect(page.get_by_role("heading", name="Sie erhalten eine E-Mail")).to_be_visible()
    journey.step("Sie erhalten eine Mail")

    link = link_in_mail_to(demo_smtp_server, NEW_CITIZEN["email"])
    assert link.startswith(demo.idp + "/aktivieren/")
    page.goto(link)
    journey.step("Aktivierungslink geöffnet")
    page.get_by_role("button", name="Servicekonto aktivieren").click()
    expect(page.get_by_role("heading", name="Sie sind erfolgreich registriert")).to_be_visible()
    journey.step("Sie sind erfolgreich registriert")

    to_the_servicekonto(journey, demo.dueren, "Düren")
    page.wait_for_url(demo.idp + "/anmelden?**")
    assert page.url != first_request  # Düren asks anew
    log_in(journey, NEW_CITIZEN["username"], NEW_CITIZEN["password"])
    page = agree(journey, demo.dueren, DUEREN, showing=("Lena", "Beispiel", NEW_CITIZEN["email"]))
    expect(page.locator("main")).to_contain_text("Guten Tag, Frau Lena Beispiel!")
    data = received_data(page)
    assert data["Vorname"] == "Lena" and data["Nachname"] == "Beispiel"
    assert data["E-Mail-Adresse"] == NEW_CITIZEN["email"] and data["Anrede"] == "Frau (Code 2)"
    assert re.fullmatch(r"\d{1,2}\. \w+ \d{4}, \d{2}:\d{2} Uhr",
                        data["Angemeldet beim Servicekonto.NRW"])
    technical = technical_details(journey, "Düren")
    assert technical["givenName"] == "Lena" and technical["mail"] == NEW_CITIZEN["email"]
    assert technical["gender"] == "2" and technical["bPK2"] == technical["NameID"]
    assert technical["NameID-Format"].endswith(":persistent")
    assert technical["AuthnContextClassRef"].startswith("STORK-QAA-Level-1")


# --- 2. mags: log in, agree, add a Kassenzeichen with the code from the letter ----------------

def test_at_mags_a_kassenzeichen_added_with_the_code_from_the_letter_brings_the_owners_others(
        journey: Journey, demo: Demo) -> None:
    page = to_the_servicekonto(journey, demo.mags, "mags")
    log_in(journey, "ErikaM")
    page = agree(journey, demo.mags, MAGS)
    assert received_data(page)["Geburtsname"] == "Gabler"
    expect(page.locator("main")).to_contain_text(
        "Um die anmeldepflichtigen Services nutzen zu können, müssen Sie nun Ihr "
        "Kassenzeichen hinterlegen.")
    expect(page.locator("main").get_by_role("link", name="Abfallgebühren einsehen")
           ).to_have_count(0)  # not before a Kassenzeichen is confirmed
    page.locator("main").get_by_role("link", name="Kassenzeichen hinzufügen").click()
    expect(page.get_by_role("heading", name="Zuordnung Kassenzeichen")).to_be_visible()
    journey.step("Zuordnung Kassenzeichen (noch keins)")
    page.get_by_role("link", name="Kassenzeichen hinzufügen").click()
    journey.step("Kassenzeichen hinterlegen")

    field = page.get_by_role("textbox", name="Kassenzeichen")
    field.fill("1500.1.2")
    page.get_by_role("button", name="Bestätigungscode anfordern").click()
    journey.step("Kassenzeichen im falschen Format")
    expect(field).to_have_attribute("aria-invalid", "true")
    expect(field).to_have_accessible_description(re.compile(
        "Bitte geben Sie das Kassenzeichen im Format 1500.0000.0000 ein"))
    expect(page.get_by_role("alert")).to_contain_text("im Format 1500.0000.0000")

    field.fill("1500.0001.0002")
    page.get_by_role("button", name="Bestätigungscode anfordern").click()
    expect(page.get_by_role("heading", name="Bestätigungscode angefordert")).to_be_visible()
    journey.step("Bestätigungscode angefordert")
    page.get_by_role("link", name="Postausgang").first.click()
    journey.step("Postausgang des Portals")
    page.get_by_role("link", name=re.compile("Kassenzeichen 1500.0001.0002")).click()
    journey.step("Brief mit dem Bestätigungscode")
    letter = page.get_by_role("article", name="Brief").inner_text()
    code = re.search(r"Ihr Bestätigungscode lautet:\s+(\w{4} \w{4} \w{4})", letter)
    assert code, letter

    page.get_by_role("navigation").get_by_role("link", name="Kassenzeichen").click()
    journey.step("Zuordnung Kassenzeichen (Brief unterwegs)")
    page.get_by_role("link", name="Bestätigungscode eingeben").click()
    journey.step("Bestätigungscode eingeben")
    page.get_by_role("textbox", name="Bestätigungscode").fill(code.group(1))
    page.get_by_role("button", name="OK").click()
    expect(page.get_by_role("heading", name="Kassenzeichen hinzugefügt")).to_be_visible()
    journey.step("Kassenzeichen hinzugefügt")
    expect(page.get_by_role("status")).to_contain_text("ist erfolgreich geprüft worden")
    page.get_by_role("button", name="Beenden").click()
    expect(page.get_by_role("heading", name="Zuordnung Kassenzeichen")).to_be_visible()
    journey.step("Zuordnung Kassenzeichen mit allen Objekten")
    listed = page.get_by_role("table").inner_text()
    for kassenzeichen in ("1500.0001.0001", "1500.0001.0002", "1500.0001.0003"):
        assert kassenzeichen in listed
    assert "1500.0002.0001" not in listed  # Max Mustermann's stays his
    page.get_by_role("link", name="Zurück zu den Services").click()
    expect(page.get_by_role("heading", name="Übersicht der Services")).to_be_visible()
    journey.step("Übersicht der Services mit bestätigtem Kassenzeichen")
    page.locator("main").get_by_role("link", name="Abfallgebühren einsehen").click()
    expect(page.get_by_role("heading", name="Abfallgebühren einsehen")).to_be_visible()


# --- 3. declining consent ---------------------------------------------------------------------

def test_a_citizen_who_declines_consent_is_back_at_the_portal_without_data(
        journey: Journey, demo: Demo) -> None:
    page = to_the_servicekonto(journey, demo.dueren, "Düren")
    log_in(journey, "ErikaM")
    consent_page(journey, DUEREN).get_by_role("button", name="ABLEHNEN").click()
    expect(page.get_by_role("alert")).to_have_text(
        "Sie haben der Weitergabe Ihrer Daten nicht zugestimmt.")
    assert page.url.startswith(demo.dueren)
    journey.step("Weitergabe abgelehnt (Düren)")
    expect(page.get_by_role("navigation").get_by_role("link", name="Anmelden")).to_be_visible()
    page.goto(demo.dueren + "/uebersicht")
    expect(page.get_by_role("heading", name="Servicekonto.NRW erforderlich!")).to_be_visible()


def test_abbrechen_at_the_servicekonto_posts_no_credentials_and_is_back_at_the_portal(
        journey: Journey, demo: Demo) -> None:
    page = to_the_servicekonto(journey, demo.dueren, "Düren")
    expect(page.get_by_role("heading", name="Anmelden mit Benutzername und Passwort")
           ).to_be_visible()
    page.fill("#username", "ErikaM")
    page.fill("#password", DEMO_PASSWORD)
    journey.step("Anmeldeformular ausgefüllt")
    with page.expect_request(re.compile(r".*/saml/abbrechen/.*")) as cancelled:
        page.get_by_role("button", name="ABBRECHEN").click()
    sent = cancelled.value.post_data or ""
    assert "ErikaM" not in sent and "password" not in sent and "username" not in sent
    expect(page.get_by_role("alert")).to_contain_text(
        "Sie haben die Anmeldung beim Servicekonto.NRW abgebrochen.")
    assert page.url.startswith(demo.dueren)
    journey.step("Anmeldung abgebrochen (Düren)")


# --- 4. single logout -------------------------------------------------------------------------

def test_on_a_phone_logging_out_at_dueren_ends_the_mags_session_and_the_servicekonto_login(
        journey_on_a_phone: Journey, demo: Demo) -> None:
    journey = journey_on_a_phone
    page = to_the_servicekonto(journey, demo.dueren, "Düren")
    log_in(journey, "JSchmitz")
    agree(journey, demo.dueren, DUEREN)
    technical_details(journey, "Düren")  # the details fit the phone's width, too
    to_the_servicekonto(journey, demo.mags, "mags")  # single sign-on: no password asked
    agree(journey, demo.mags, MAGS)

    page.goto(demo.dueren + "/uebersicht")
    journey.step("Angemeldet bei Düren und mags")
    held(journey, demo.idp + "/saml/slo/redirect?SAMLRequest=",
         page.locator("main").get_by_role("button", name="Abmelden").click,
         "Sie werden abgemeldet (Düren)")
    page.get_by_role("link", name="Weiter zum Servicekonto.NRW").click()
    expect(page.get_by_role("heading", name="Sie sind abgemeldet")).to_be_visible()
    assert page.url.startswith(demo.dueren)
    journey.step("Abgemeldet bei Düren und beim Servicekonto.NRW")
    expect(page.get_by_role("status")).to_have_text(
        f"Sie haben sich beim {DUEREN} und beim Servicekonto.NRW abgemeldet.")

    page.goto(demo.mags + "/uebersicht")
    expect(page.get_by_role("heading", name="Servicekonto.NRW erforderlich!")).to_be_visible()
    journey.step("mags: nicht mehr angemeldet")
    page.goto(demo.idp + "/konto")
    expect(page.get_by_role("heading", name="Anmelden mit Benutzername und Passwort")
           ).to_be_visible()
    to_the_servicekonto(journey, demo.dueren, "Düren")
    log_in(journey, "JSchmitz")  # the password is asked again; the consent is remembered
    page.wait_for_url(demo.dueren + "/uebersicht")
    journey.step("Wieder angemeldet bei Düren")


# --- 6. without JavaScript ----------------------------------------------------------------------

def test_without_javascript_the_weiter_buttons_carry_the_citizen_through_login_and_logout(
        journey_without_javascript: Journey, demo: Demo) -> None:
    journey = journey_without_javascript
    page = journey.page
    page.goto(demo.dueren + "/anmelden")
    journey.step("Servicekonto.NRW erforderlich (Düren)")
    held(journey, demo.idp + "/saml/sso/redirect?",
         page.get_by_role("button", name="Zum Servicekonto.NRW").click,
         "Sie werden zum Servicekonto.NRW weitergeleitet (Düren)")
    page.get_by_role("link", name="Weiter zum Servicekonto.NRW").click()
    log_in(journey, "MaxM")
    consent_page(journey, DUEREN).get_by_role("button", name="ZUSTIMMEN").click()
    expect(page.get_by_role("heading", name="Sie werden zum Portal weitergeleitet")
           ).to_be_visible()
    journey.step("Weiter zum Portal (Düren)")
    page.get_by_role("button", name="Weiter zum Portal").click()
    page.wait_for_url(demo.dueren + "/uebersicht")
    journey.step("Sie sind angemeldet (Düren, ohne JavaScript)")
    assert received_data(page)["Nachname"] == "Mustermann"

    to_the_servicekonto(journey, demo.mags, "mags")  # POST binding: a form to send on
    expect(page.get_by_role("heading", name="Sie werden zum Servicekonto.NRW weitergeleitet")
           ).to_be_visible()
    journey.step("Weiter zum Servicekonto.NRW (mags)")
    page.get_by_role("button", name="Weiter zum Servicekonto.NRW").click()
    consent_page(journey, MAGS).get_by_role("button", name="ZUSTIMMEN").click()
    journey.step("Weiter zum Portal (mags)")
    page.get_by_role("button", name="Weiter zum Portal").click()
    page.wait_for_url(demo.mags + "/uebersicht")
    journey.step("Sie sind angemeldet (mags, ohne JavaScript)")

    page.locator("main").get_by_role("button", name="Abmelden").click()
    expect(page.get_by_role("heading", name="Sie werden abgemeldet")).to_be_visible()
    journey.step("Sie werden abgemeldet (mags)")
    held(journey, demo.dueren + "/saml/slo/redirect?SAMLRequest=",
         page.get_by_role("button", name="Weiter zum Servicekonto.NRW").click,
         "Abmeldung beim Servicekonto.NRW: weiter zu Düren")
    page.get_by_role("link", name="Weiter").click()
    page.wait_for_url(demo.idp + "/saml/slo/**")
    journey.step("Abmeldung beim Servicekonto.NRW: zurück zu mags")
    page.get_by_role("button", name="Weiter").click()
    expect(page.get_by_role("heading", name="Sie sind abgemeldet")).to_be_visible()
    journey.step("Sie sind abgemeldet (mags, ohne JavaScript)")
    expect(page.get_by_role("status")).to_have_text(
        f"Sie haben sich beim {MAGS} und beim Servicekonto.NRW abgemeldet.")
    page.goto(demo.dueren + "/uebersicht")
    expect(page.get_by_role("heading", name="Servicekonto.NRW erforderlich!")).to_be_visible()
