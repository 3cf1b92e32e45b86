"""A citizen who forgot the username has it mailed to the account's address."""

from __future__ import annotations

from typing import Any

from flask import Flask

from tests.conftest import REGISTRATION, Browser, outbox, register, run_mail_sender

SENT = "Wenn ein Servicekonto mit dieser E-Mail-Adresse existiert, erhalten Sie eine E-Mail"


def ask_for_username(browser: Browser, email: str) -> Any:
    """Ask for the username; the mail sender then answers the request."""
    browser.get("/benutzername-vergessen")
    response = browser.submit("/benutzername-vergessen", {"email": email})
    run_mail_sender(browser.client.application)
    return response


def test_forgotten_username_is_mailed_to_the_account_address(app: Flask,
                                                              citizen: Browser) -> None:
    response = ask_for_username(citizen, "Erika.Mustermann@EXAMPLE.org")
    assert response.status_code == 200
    assert SENT in citizen.last_html

    mail = outbox(app)[-1]
    assert mail.recipient == REGISTRATION["email"]
    assert mail.subject == "Servicekonto: Ihr Benutzername"
    assert "ErikaM" in mail.body_text
    assert "ErikaM" in mail.body_html


def test_page_is_the_same_for_known_and_unknown_addresses(app: Flask, citizen: Browser) -> None:
    mails_before = len(outbox(app))
    known = ask_for_username(citizen, REGISTRATION["email"]).get_data(as_text=True)
    unknown = ask_for_username(citizen, "niemand@example.org").get_data(as_text=True)
    assert known == unknown
    assert len(outbox(app)) == mails_before + 1
    assert outbox(app)[-1].recipient == REGISTRATION["email"]


def test_unactivated_registration_gets_no_username_mail(app: Flask, browser: Browser) -> None:
    register(browser)
    ask_for_username(browser, REGISTRATION["email"])
    assert SENT in browser.last_html
    assert len(outbox(app)) == 1  # the activation mail only


def test_invalid_address_is_named_on_the_form(app: Flask, browser: Browser) -> None:
    response = ask_for_username(browser, "keine-adresse")
    assert response.status_code == 422
    assert "Bitte geben Sie eine gültige E-Mail-Adresse an" in browser.last_html
    assert 'aria-describedby="email-fehler"' in browser.last_html
    assert 'value="keine-adresse"' in browser.last_html

    response = ask_for_username(browser, "erika@example.org\r\nBcc: alle@example.org")
    assert response.status_code == 422
    assert "ungültige Zeichen" in browser.last_html
    assert outbox(app) == []


def test_address_sent_twice_is_a_bad_request(app: Flask, citizen: Browser) -> None:
    citizen.get("/benutzername-vergessen")
    response = citizen.submit("/benutzername-vergessen",
                              {"email": ["niemand@example.org", REGISTRATION["email"]]})
    assert response.status_code == 400
    assert "Ungültige Anfrage" in citizen.last_html
