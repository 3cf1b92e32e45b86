"""A citizen's first visit, in a real browser against ``servicekonto run`` and a real SMTP
server: register, receive the activation mail, activate, log in, find "Mein Servicekonto".

Every page is screenshotted and checked with axe-core (tests/e2e/browser.py).
"""

from __future__ import annotations

import re
from pathlib import Path

from tests.conftest import GOOD_PASSWORD, LINK, REGISTRATION
from tests.e2e.browser import Journey
from tests.e2e.processes import HttpBrowser, eventually, start_idp
from tests.integration.mail.smtp import SmtpServer


def received_links(smtp_server: SmtpServer) -> list[str]:
    """The activation links of the mails received so far, in order."""
    links = []
    for message in list(smtp_server.inbox.received):
        body = message.get_body(preferencelist=("plain",))
        assert body is not None
        link = LINK.search(body.get_content())
        assert link is not None
        links.append(link.group(0))
    return links


def first_activation_link(smtp_server: SmtpServer) -> str:
    """The link of the first activation mail, once it has arrived."""
    return eventually(lambda: next(iter(received_links(smtp_server)), None))


def register_in_the_browser(journey: Journey, base_url: str) -> None:
    page = journey.page
    page.goto(base_url + "/")
    journey.step("Startseite des Servicekontos")
    page.locator("#inhalt").get_by_role("link", name="Registrieren", exact=True).click()
    journey.step("Registrierung auswählen")
    page.get_by_role("link", name=re.compile("Benutzername und Passwort")).click()
    page.get_by_role("button", name="nächster Schritt").click()
    journey.step("Formular mit Fehlern zu jedem Pflichtfeld")
    assert page.locator("#given_name[aria-invalid='true']").count() == 1
    page.select_option("#salutation", "frau")
    for field in ("given_name", "surname", "birth_name", "email", "username", "password",
                  "password_confirm"):
        page.fill(f"#{field}", REGISTRATION[field])
    page.check("#privacy_accepted")
    journey.step("Registrierungsformular ausgefüllt")
    page.get_by_role("button", name="nächster Schritt").click()
    journey.step("Angaben prüfen")
    assert "Mustermann" in page.content()
    page.get_by_role("button", name="Daten speichern").click()
    journey.step("Sie erhalten eine Mail")
    assert "Sie erhalten eine Mail" in page.content()


def log_in_in_the_browser(journey: Journey, password: str = GOOD_PASSWORD) -> None:
    page = journey.page
    page.fill("#username", REGISTRATION["username"])
    page.fill("#password", password)
    page.get_by_role("button", name="ANMELDEN").click()


def test_a_citizen_registers_activates_by_mail_and_logs_in(
        journey: Journey, idp_with_smtp: HttpBrowser, smtp_server: SmtpServer) -> None:
    base_url = idp_with_smtp.base_url
    register_in_the_browser(journey, base_url)
    link = first_activation_link(smtp_server)
    assert link.startswith(base_url + "/aktivieren/")
    page = journey.page
    page.goto(link)
    journey.step("Aktivierungslink geöffnet")
    page.get_by_role("button", name="Servicekonto aktivieren").click()
    journey.step("Sie sind erfolgreich registriert")
    assert "Sie sind erfolgreich registriert" in page.content()
    page.goto(base_url + "/anmelden")
    journey.step("Anmelden mit Benutzername und Passwort")
    log_in_in_the_browser(journey, password="Falsch-Falsch 1")
    journey.step("Anmeldung mit falschem Passwort")
    assert page.locator(".error, [role='alert']").count() >= 1
    log_in_in_the_browser(journey)
    page.goto(base_url + "/konto")
    journey.step("Mein Servicekonto")
    assert "Mein Servicekonto" in page.content() and "Erika" in page.content()


def test_an_expired_activation_link_offers_a_new_one_that_works(
        journey: Journey, idp_env: dict[str, str], tmp_path: Path,
        smtp_server: SmtpServer) -> None:
    env = idp_env | {"IDP_MAIL_SERVER": "127.0.0.1", "IDP_MAIL_PORT": str(smtp_server.port)}
    today = start_idp(env, tmp_path / "idp.log")
    idp = next(today)
    register_in_the_browser(journey, idp.base_url)
    old_link = first_activation_link(smtp_server)
    today.close()  # stops the process
    tomorrow = start_idp(env | {"IDP_CLOCK_OFFSET_HOURS": "25"}, tmp_path / "idp.log",
                         migrate=False)
    next(tomorrow)
    try:
        page = journey.page
        page.goto(old_link)
        journey.step("Aktivierungslink abgelaufen")
        assert "abgelaufen" in page.content()
        page.get_by_role("button", name="Aktivierungslink erneut senden").click()
        journey.step("Neuer Aktivierungslink verschickt")
        # (The first mail may arrive twice: the IdP was stopped right after sending it, before
        # the outbox noted that; the outbox delivers at least once.)
        new_link = eventually(lambda: next(
            (link for link in received_links(smtp_server) if link != old_link), None))
        page.goto(new_link)
        page.get_by_role("button", name="Servicekonto aktivieren").click()
        journey.step("Mit dem neuen Link aktiviert")
        assert "Sie sind erfolgreich registriert" in page.content()
    finally:
        tomorrow.close()
