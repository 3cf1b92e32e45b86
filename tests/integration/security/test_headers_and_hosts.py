"""Security headers on every answer, the Host header, and mail header injection."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from flask import Flask

from tests.conftest import BASE_URL, REGISTRATION, Browser, link_in, outbox, register
from tests.integration.security.conftest import assert_german_error

State = Callable[[], dict[str, Any]]

# Each request as a citizen or attacker might send it: (method, path, form data).
ANSWERS = {
    "start page": ("GET", "/", None),
    "login page": ("GET", "/anmelden", None),
    "failed login": ("POST", "/anmelden", "login"),
    "registration choice": ("GET", "/registrieren", None),
    "registration form": ("GET", "/registrieren/benutzername", None),
    "form with errors": ("POST", "/registrieren/benutzername", "empty"),
    "nothing to save": ("GET", "/registrieren/pruefen", None),
    "mail sent": ("GET", "/registrieren/mail-versendet", None),
    "logged out": ("GET", "/abgemeldet", None),
    "privacy": ("GET", "/datenschutz", None),
    "invalid activation link": ("GET", "/aktivieren/ungueltig", None),
    "unknown page": ("GET", "/gibt-es-nicht", None),
    "method not allowed": ("PUT", "/anmelden", None),
    "csrf failure": ("POST", "/anmelden", None),
    "too large": ("POST", "/anmelden", "huge"),
    "redirect to login": ("GET", "/konto", None),
}


@pytest.mark.parametrize("answer", list(ANSWERS))
def test_every_answer_carries_the_security_headers(browser: Browser, answer: str) -> None:
    method, path, form = ANSWERS[answer]
    browser.get("/anmelden")
    data: dict[str, Any] | None = None
    if form is not None:
        data = {"login": {"username": "x", "password": "y"}, "empty": {},
                "huge": {"username": "x" * 300_000}}[form]
        response = browser.submit(path, data)
    else:
        response = browser.client.open(path, method=method)
    assert response.status_code < 500
    headers = response.headers
    csp = headers["Content-Security-Policy"]
    assert "frame-ancestors 'none'" in csp and "default-src 'self'" in csp
    assert "unsafe-inline" not in csp
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Referrer-Policy"] == "no-referrer"
    assert headers["X-Frame-Options"] == "DENY"
    if response.mimetype == "text/html":
        assert headers["Cache-Control"] == "no-cache, no-store"
        assert headers["Pragma"] == "no-cache"
    assert "Strict-Transport-Security" not in headers  # only when served over https


def test_the_stylesheet_is_served_as_css_and_may_be_cached(browser: Browser) -> None:
    response = browser.client.get("/static/servicekonto.css")
    assert response.status_code == 200
    assert response.mimetype == "text/css"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert "no-store" not in response.headers.get("Cache-Control", "")


# --- the Host header ----------------------------------------------------------------------


@pytest.mark.parametrize("host", ["evil.example", "localhost.evil.example", "evil.example:80",
                                  "local host", "localhost\r\nX-Injected: 1", "", "127.0.0.1"])
@pytest.mark.parametrize("method", ["GET", "POST"])
def test_a_foreign_host_header_gets_the_german_bad_request_page(
        browser: Browser, state: State, host: str, method: str) -> None:
    before = state()
    # Set in the WSGI environ: the test client would refuse a header with a line break.
    response = browser.client.open("/anmelden", method=method,
                                   environ_overrides={"HTTP_HOST": host},
                                   data={"username": "ErikaM", "password": "x"})
    assert_german_error(response, 400)
    assert response.headers["X-Frame-Options"] == "DENY"
    assert "evil" not in response.get_data(as_text=True)
    assert state() == before


@pytest.fixture
def proxied_app(settings: dict[str, Any], request: pytest.FixtureRequest) -> Iterator[Flask]:
    """An IdP behind one proxy, also reachable under a second, trusted host name."""
    settings["trusted_hosts"] = ("idp.example",)
    settings["proxy_count"] = 1
    yield request.getfixturevalue("app")


def test_mail_links_use_the_base_url_whatever_host_the_registration_came_from(
        proxied_app: Flask) -> None:
    browser = Browser(proxied_app.test_client())
    forged = {"X-Forwarded-Host": "evil.example", "X-Forwarded-Proto": "https",
              "X-Forwarded-Port": "8443", "Forwarded": "host=evil.example"}
    other: dict[str, Any] = {"base_url": "http://idp.example", "headers": forged}
    browser.get("/registrieren/benutzername", **other)
    assert browser.submit("/registrieren/benutzername", REGISTRATION, **other).status_code == 302
    browser.get("/registrieren/pruefen", **other)
    assert browser.submit("/registrieren/pruefen", **other).status_code == 302
    (mail,) = outbox(proxied_app)
    assert link_in(mail).startswith(BASE_URL + "/aktivieren/")
    assert "evil" not in mail.body_text and "evil" not in mail.body_html
    assert "idp.example" not in mail.body_text


# --- mail header injection ----------------------------------------------------------------

INJECTIONS = ["Erika\r\nBcc: x@evil.example", "Erika\nBcc: x@evil.example",
              "Erika\rBcc: x@evil.example", "Erika\u2028Bcc: x@evil.example",
              "Erika\u0085Bcc: x@evil.example"]


@pytest.mark.parametrize("value", INJECTIONS, ids=repr)
@pytest.mark.parametrize("field", ["given_name", "surname", "birth_name", "username"])
def test_a_line_break_in_a_name_is_refused_and_no_mail_is_written(
        app: Flask, browser: Browser, state: State, field: str, value: str) -> None:
    before = state()
    browser.get("/registrieren/benutzername")
    response = browser.submit("/registrieren/benutzername", REGISTRATION | {field: value})
    assert response.status_code == 422
    assert "enthält ungültige Zeichen" in browser.last_html
    assert state() == before
    assert outbox(app) == []


@pytest.mark.parametrize("value", [
    "erika@example.org\r\nBcc: x@evil.example", "erika@example.org\nBcc: x@evil.example",
    "erika@example.org%0d%0aBcc:x@evil.example", "erika@example.org,x@evil.example",
    "Erika <erika@example.org>", "erika@example.org>\r\nBcc: <x@evil.example",
], ids=repr)
def test_an_address_with_extra_headers_or_recipients_is_refused(
        app: Flask, browser: Browser, state: State, value: str) -> None:
    before = state()
    browser.get("/registrieren/benutzername")
    response = browser.submit("/registrieren/benutzername", REGISTRATION | {"email": value})
    assert response.status_code == 422
    assert 'id="email-fehler"' in browser.last_html
    assert state() == before


def test_mails_to_an_unusual_but_valid_name_keep_one_line_headers(
        app: Flask, browser: Browser) -> None:
    register(browser, given_name="Zoë-Ann  Marie", surname="O'Brien – Müller",
             birth_name="Çelik", email="zoe+test@example.org", username="Zoe.OBrien")
    register(Browser(app.test_client()), username="Andere1",
             email="Zoe+Test@Example.org")  # the address again: "already registered" mail
    mails = outbox(app)
    assert len(mails) == 2
    for mail in mails:
        for header in (mail.subject, mail.recipient, mail.message_id):
            assert not set("\r\n\x00\u2028\u0085") & set(header), header
        assert "\r" not in mail.body_text
