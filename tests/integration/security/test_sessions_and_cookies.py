"""Session fixation, logout, cookie flags, open redirects after login, and enumeration."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlencode, urljoin, urlsplit

import pytest
from flask import Flask
from flask.testing import FlaskClient

from idp.accounts.authentication import LOGIN_FAILED, NOT_ACTIVATED
from tests.conftest import Browser, activate, link_in, log_in, outbox, register
from tests.integration.security.conftest import is_logged_in

COOKIE = "servicekonto"


def session_cookie(client: FlaskClient, name: str = COOKIE) -> str | None:
    cookie = client.get_cookie(name)
    return cookie.value if cookie else None


def with_cookie(app: Flask, value: str) -> FlaskClient:
    """Another browser into which an attacker pasted a copied cookie."""
    other = app.test_client()
    other.set_cookie(COOKIE, value)
    return other


# --- session fixation and logout ----------------------------------------------------------


def test_the_session_cookie_changes_at_login(citizen: Browser) -> None:
    citizen.get("/anmelden")
    before = session_cookie(citizen.client)
    assert before
    log_in(citizen)
    after = session_cookie(citizen.client)
    assert after and after != before
    assert is_logged_in(citizen.client)


def test_a_cookie_planted_before_login_does_not_log_the_attacker_in(
        app: Flask, citizen: Browser) -> None:
    citizen.get("/anmelden")
    planted = session_cookie(citizen.client)
    assert planted
    log_in(citizen)
    assert not is_logged_in(with_cookie(app, planted))


def test_a_cookie_copied_after_logout_is_not_logged_in(app: Flask, citizen: Browser) -> None:
    log_in(citizen)
    stolen = session_cookie(citizen.client)
    assert stolen and is_logged_in(with_cookie(app, stolen))
    citizen.get("/")
    citizen.submit("/abmelden")
    assert session_cookie(citizen.client) is None
    assert not is_logged_in(citizen.client)
    assert not is_logged_in(with_cookie(app, stolen))  # ended on the server, not just deleted


@pytest.mark.parametrize("value", ["x" * 101, "garbage", "\x00", "ä" * 50, "a;b=c", ""])
def test_a_made_up_session_cookie_is_just_an_anonymous_visit(app: Flask, value: str) -> None:
    client = with_cookie(app, value)
    response = client.get("/anmelden")
    assert response.status_code == 200
    assert not is_logged_in(client)


# --- cookie flags -------------------------------------------------------------------------


def set_cookie_header(response: Any, name: str) -> str:
    headers = [h for h in response.headers.getlist("Set-Cookie") if h.startswith(name + "=")]
    assert len(headers) == 1, response.headers.getlist("Set-Cookie")
    return str(headers[0])


def test_the_session_cookie_is_http_only_and_same_site_lax(browser: Browser) -> None:
    header = set_cookie_header(browser.get("/anmelden"), COOKIE)
    assert "HttpOnly" in header
    assert "SameSite=Lax" in header
    assert "Path=/" in header


@pytest.fixture
def https_app(settings: dict[str, Any], request: pytest.FixtureRequest) -> Iterator[Flask]:
    settings["base_url"] = "https://localhost"
    yield request.getfixturevalue("app")


@pytest.fixture
def https_browser(https_app: Flask) -> Browser:
    client = https_app.test_client()
    client.environ_base["wsgi.url_scheme"] = "https"
    return Browser(client)


def test_over_https_the_cookie_is_secure_and_host_bound(https_browser: Browser) -> None:
    header = set_cookie_header(https_browser.get("/anmelden"), "__Host-servicekonto")
    assert "Secure" in header and "HttpOnly" in header and "SameSite=Lax" in header
    assert "Path=/" in header
    assert "Domain=" not in header  # a __Host- cookie may not name a domain


def test_over_https_a_citizen_can_register_and_log_in_without_sending_a_referrer(
        https_app: Flask, https_browser: Browser) -> None:
    # Our Referrer-Policy is no-referrer, so browsers send no Referer with our forms.
    response = register(https_browser)
    assert response.status_code == 302, https_browser.last_html
    link = link_in(outbox(https_app)[-1])
    assert link.startswith("https://localhost/aktivieren/")  # IDP_BASE_URL
    path = urlsplit(link).path
    https_browser.get(path)
    assert "erfolgreich registriert" in https_browser.submit(path).get_data(as_text=True)
    assert log_in(https_browser).status_code == 302
    assert "Strict-Transport-Security" in https_browser.get("/").headers


# --- open redirect ------------------------------------------------------------------------


@pytest.mark.parametrize("target", [
    "https://evil.example", "//evil.example", "/\\evil.example", "\\\\evil.example",
    "javascript:alert(1)", "/\t/evil.example", "///evil.example", "https:/evil.example",
    " //evil.example", "/%0d%0aLocation:%20https://evil.example", "\x00//evil.example",
    "data:text/html,<script>alert(1)</script>", "http://localhost@evil.example",
    "/\r\nLocation: https://evil.example",
])
def test_after_login_the_citizen_lands_on_our_own_page_whatever_next_says(
        citizen: Browser, target: str) -> None:
    citizen.get("/anmelden", query_string={"next": target})
    response = citizen.submit("/anmelden?" + urlencode_next(target),
                              {"username": "ErikaM", "password": "Kräftig-Grün 42"})
    assert response.status_code == 302
    # Where a browser goes: resolved against the login page, it stays on our host.
    assert urlsplit(urljoin("http://localhost/anmelden", response.location)).netloc == "localhost"
    assert response.location.startswith("/") and not response.location.startswith("//")
    assert not set("\\\r\n\t\x00") & set(response.location)


def urlencode_next(target: str) -> str:
    return urlencode({"next": target})


def test_a_next_path_on_our_own_site_is_not_followed_either(citizen: Browser) -> None:
    """The login page takes no target from its URL at all (docs/security.md, "Login page")."""
    citizen.get("/anmelden?next=/konto/loeschen")
    response = citizen.submit("/anmelden?next=/konto/loeschen",
                              {"username": "ErikaM", "password": "Kräftig-Grün 42"})
    assert response.location == "/konto"


def test_after_login_the_citizen_returns_to_the_account_page_that_asked_for_it(
        citizen: Browser) -> None:
    assert citizen.get("/konto/daten").location == "/anmelden"
    citizen.get("/anmelden")
    response = citizen.submit("/anmelden", {"username": "ErikaM", "password": "Kräftig-Grün 42"})
    assert response.location == "/konto/daten"


# --- enumeration --------------------------------------------------------------------------


def comparable(html: str) -> str:
    """The page without what differs on every request (CSRF token) or was typed (username)."""
    html = re.sub(r'name="csrf_token" value="[^"]*"', "", html)
    return re.sub(r'id="username"([^>]*?)value="[^"]*"', r'id="username"\1', html)


def test_unknown_user_and_wrong_password_get_the_identical_answer(
        app: Flask, browser: Browser) -> None:
    register(browser)
    activate(browser, app)
    unknown, wrong = Browser(app.test_client()), Browser(app.test_client())
    first = log_in(unknown, username="NiemandHier", password="Kräftig-Grün 42")
    second = log_in(wrong, username="ErikaM", password="Falsch-Grün 42")
    assert first.status_code == second.status_code == 401
    assert comparable(unknown.last_html) == comparable(wrong.last_html)
    assert LOGIN_FAILED in unknown.last_html


def test_a_pending_account_with_a_wrong_password_looks_like_an_unknown_user(
        app: Flask, browser: Browser) -> None:
    register(browser)
    pending, unknown = Browser(app.test_client()), Browser(app.test_client())
    first = log_in(pending, username="ErikaM", password="Falsch-Grün 42")
    second = log_in(unknown, username="NiemandHier", password="Falsch-Grün 42")
    assert first.status_code == second.status_code == 401
    assert comparable(pending.last_html) == comparable(unknown.last_html)
    assert NOT_ACTIVATED not in pending.last_html


def test_only_the_right_password_learns_that_the_account_is_not_activated(
        app: Flask, browser: Browser) -> None:
    register(browser)
    response = log_in(browser)
    assert response.status_code == 401
    assert NOT_ACTIVATED in browser.last_html
    assert not is_logged_in(browser.client)
