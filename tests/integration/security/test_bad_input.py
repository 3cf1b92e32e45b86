"""Malformed, oversized and hostile form input: a German answer with a 4xx, nothing stored."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import quote

import pytest
from flask import Flask

from idp.accounts.authentication import LOGIN_FAILED
from tests.conftest import GOOD_PASSWORD, REGISTRATION, Browser, csrf_from, log_in
from tests.integration.security.conftest import assert_german_error, citizens

State = Callable[[], dict[str, Any]]
FORM = "/registrieren/benutzername"


def fill_in(browser: Browser, **changes: str) -> Any:
    """Step 1 of the registration with some fields changed."""
    browser.get(FORM)
    return browser.submit(FORM, REGISTRATION | changes)


def assert_nothing_to_save(browser: Browser) -> None:
    """The rejected input did not reach the review step (no draft in the session)."""
    assert browser.get("/registrieren/pruefen").status_code == 409


def raw_post(browser: Browser, url: str, body: bytes) -> Any:
    """POST a hand-made urlencoded body (with a valid CSRF token) as a script would."""
    browser.get(url)
    token = quote(csrf_from(browser.last_html)).encode()
    return browser.client.post(url, data=b"csrf_token=" + token + b"&" + body,
                               content_type="application/x-www-form-urlencoded")


# --- size limits ---------------------------------------------------------------------------


def test_a_body_over_the_configured_limit_gets_the_request_too_large_page(
        app: Flask, browser: Browser, state: State) -> None:
    limit = app.config["SERVICEKONTO"].max_request_bytes
    before = state()
    response = fill_in(browser, given_name="A" * (limit + 1))
    assert_german_error(response, 413, "Anfrage zu groß", "Bitte kürzen Sie Ihre Eingaben")
    assert state() == before
    assert_nothing_to_save(browser)


def test_a_multipart_field_over_the_form_memory_limit_gets_the_request_too_large_page(
        browser: Browser, state: State) -> None:
    browser.get(FORM)
    data = {"csrf_token": csrf_from(browser.last_html), **REGISTRATION, "surname": "B" * 100_000}
    before = state()
    # Under the body limit, over the limit of one field held in memory.
    response = browser.client.post(FORM, data=data, content_type="multipart/form-data")
    assert_german_error(response, 413)
    assert state() == before


def test_a_hundred_thousand_character_name_under_the_body_limit_is_a_form_error(
        browser: Browser, state: State) -> None:
    before = state()
    response = fill_in(browser, surname="B" * 100_000)
    assert response.status_code == 422
    assert "Der Nachname darf höchstens 100 Zeichen lang sein." in browser.last_html
    assert state() == before


def test_a_multipart_form_with_too_many_parts_gets_the_request_too_large_page(
        browser: Browser, state: State) -> None:
    browser.get(FORM)
    fields: dict[str, Any] = {"csrf_token": csrf_from(browser.last_html), **REGISTRATION}
    fields |= {f"extra{i}": "x" for i in range(60)}
    before = state()
    response = browser.client.post(FORM, data=fields, content_type="multipart/form-data")
    assert_german_error(response, 413)
    assert state() == before


@pytest.mark.parametrize(("field", "message"), [
    ("given_name", "Der Vorname darf höchstens 100 Zeichen lang sein."),
    ("surname", "Der Nachname darf höchstens 100 Zeichen lang sein."),
    ("birth_name", "Der Geburtsname darf höchstens 100 Zeichen lang sein."),
    ("username", "Der Benutzername muss 3 bis 64 Zeichen lang sein."),
    ("email", "Bitte geben Sie eine gültige E-Mail-Adresse an"),
])
def test_a_ten_thousand_character_field_is_named_in_the_form_and_nothing_is_stored(
        app: Flask, browser: Browser, state: State, field: str, message: str) -> None:
    value = "x" * 9_988 + "@example.org" if field == "email" else "Ä" * 10_000
    before = state()
    response = fill_in(browser, **{field: value})
    assert response.status_code == 422
    assert message in browser.last_html
    assert state() == before
    assert_nothing_to_save(browser)


def test_a_ten_thousand_character_password_is_refused_with_the_rule_it_breaks(
        browser: Browser) -> None:
    response = fill_in(browser, password="Aa1-" * 2_500, password_confirm="Aa1-" * 2_500)
    assert response.status_code == 422
    assert "Das Passwort darf höchstens" in browser.last_html
    assert "Aa1-Aa1-" not in browser.last_html  # a password is never echoed back


def test_a_username_whose_lower_case_form_grows_past_the_limit_is_a_form_error(
        app: Flask, browser: Browser, state: State) -> None:
    # 64 characters as typed, but "ß" case-folds to "ss": the uniqueness key would be 128 long.
    before = state()
    response = fill_in(browser, username="ß" * 64)
    assert response.status_code == 422
    assert "Der Benutzername muss 3 bis 64 Zeichen lang sein." in browser.last_html
    assert state() == before


def test_an_address_whose_lower_case_form_grows_past_the_limit_is_a_form_error(
        browser: Browser, state: State) -> None:
    # Valid as typed (134 characters); case-folded, as stored for uniqueness, 286.
    address = "ΐ" * 32 + "@" + ".".join(["ß" * 8] * 11) + ".de"
    before = state()
    response = fill_in(browser, email=address)
    assert response.status_code == 422
    assert "Die E-Mail-Adresse darf höchstens 254 Zeichen lang sein." in browser.last_html
    assert state() == before


def test_a_login_with_an_overlong_case_folded_username_fails_like_any_other(
        browser: Browser) -> None:
    response = log_in(browser, username="ΐ" * 64, password="irgendwas")
    assert response.status_code == 401
    assert LOGIN_FAILED in browser.last_html


def test_a_form_padded_with_thousands_of_unknown_fields_is_answered_normally(
        browser: Browser) -> None:
    padding = "&".join(f"junk{i}=x" for i in range(3_000)).encode()
    response = raw_post(browser, FORM, padding)
    assert response.status_code == 422
    assert "Bitte geben Sie Ihren Vornamen an." in response.get_data(as_text=True)


# --- encodings and control characters -----------------------------------------------------


@pytest.mark.parametrize("body", [b"given_name=%FF%FE", b"given_name=\xff\xfe\xfd",
                                  b"given_name=%C0%80rika"])
def test_a_name_that_is_not_utf8_is_refused_with_a_german_message(
        app: Flask, browser: Browser, state: State, body: bytes) -> None:
    rest = "&".join(f"{k}={quote(v)}" for k, v in REGISTRATION.items() if k != "given_name")
    before = state()
    response = raw_post(browser, FORM, body + b"&" + rest.encode())
    assert response.status_code == 422
    assert "Der Vorname enthält ungültige Zeichen." in response.get_data(as_text=True)
    assert state() == before


def test_a_login_body_that_is_not_utf8_fails_like_a_wrong_password(browser: Browser) -> None:
    response = raw_post(browser, "/anmelden", b"username=%FF%FE&password=%FF%00")
    assert response.status_code == 401
    assert LOGIN_FAILED in response.get_data(as_text=True)


def test_a_truncated_percent_escape_is_taken_literally_and_refused(browser: Browser) -> None:
    rest = "&".join(f"{k}={quote(v)}" for k, v in REGISTRATION.items() if k != "given_name")
    response = raw_post(browser, FORM, b"given_name=%25%2&" + rest.encode())
    assert response.status_code == 422
    assert "Der Vorname muss Buchstaben enthalten." in response.get_data(as_text=True)


def test_a_garbled_multipart_body_gets_the_german_bad_request_page(
        browser: Browser, state: State) -> None:
    browser.get(FORM)
    before = state()
    response = browser.client.post(FORM, data=b"--nope\r\ngarbage\xff\r\n",
                                   content_type="multipart/form-data; boundary=xyz")
    assert_german_error(response, 400)
    assert state() == before


CONTROL_CHARACTERS = ["\x00", "\r\n", "\x1b[31m", "\u202e", "\t", "\x7f"]


@pytest.mark.parametrize("bad", CONTROL_CHARACTERS, ids=repr)
@pytest.mark.parametrize(("field", "message"), [
    ("given_name", "Der Vorname enthält ungültige Zeichen."),
    ("surname", "Der Nachname enthält ungültige Zeichen."),
    ("birth_name", "Der Geburtsname enthält ungültige Zeichen."),
    ("username", "Der Benutzername enthält ungültige Zeichen."),
    ("email", "Die E-Mail-Adresse enthält ungültige Zeichen."),
])
def test_control_characters_in_a_field_are_named_and_nothing_is_stored(
        browser: Browser, state: State, field: str, message: str, bad: str) -> None:
    value = "erika" + bad + "@example.org" if field == "email" else "Eri" + bad + "ka"
    before = state()
    response = fill_in(browser, **{field: value})
    assert response.status_code == 422
    assert message in browser.last_html
    assert state() == before
    assert_nothing_to_save(browser)


@pytest.mark.parametrize("bad", CONTROL_CHARACTERS, ids=repr)
def test_control_characters_in_a_password_are_named_as_not_allowed(
        browser: Browser, bad: str) -> None:
    password = GOOD_PASSWORD + bad
    response = fill_in(browser, password=password, password_confirm=password)
    assert response.status_code == 422
    assert "Das Passwort enthält nicht erlaubte Zeichen." in browser.last_html


@pytest.mark.parametrize("username", ["Erika\x00M", "\x00", "Erika\r\nM", "‮ErikaM"])
def test_a_login_with_control_characters_fails_like_a_wrong_password(
        citizen: Browser, username: str) -> None:
    response = log_in(citizen, username=username)
    assert response.status_code == 401
    assert LOGIN_FAILED in citizen.last_html


def test_a_nul_in_the_password_at_login_fails_like_a_wrong_password(citizen: Browser) -> None:
    response = log_in(citizen, password=GOOD_PASSWORD + "\x00")
    assert response.status_code == 401
    assert LOGIN_FAILED in citizen.last_html


def test_an_unknown_salutation_is_named_in_the_form(browser: Browser, state: State) -> None:
    before = state()
    response = fill_in(browser, salutation="herr\r\nBcc: x@evil.example")
    assert response.status_code == 422
    assert "Bitte wählen Sie eine Anrede aus der Liste." in browser.last_html
    assert state() == before


# --- duplicated and missing fields --------------------------------------------------------


@pytest.mark.parametrize("field", ["username", "email", "password", "privacy_accepted"])
def test_a_registration_field_sent_twice_gets_the_bad_request_page(
        browser: Browser, state: State, field: str) -> None:
    browser.get(FORM)
    data: dict[str, Any] = {"csrf_token": csrf_from(browser.last_html), **REGISTRATION}
    data[field] = [REGISTRATION[field], "Zweitwert1"]
    before = state()
    assert_german_error(browser.client.post(FORM, data=data), 400)
    assert state() == before
    assert_nothing_to_save(browser)


@pytest.mark.parametrize("field", ["username", "password"])
def test_a_login_field_sent_twice_gets_the_bad_request_page(
        app: Flask, citizen: Browser, state: State, field: str) -> None:
    citizen.get("/anmelden")
    data: dict[str, Any] = {"csrf_token": csrf_from(citizen.last_html),
                            "username": "ErikaM", "password": GOOD_PASSWORD}
    data[field] = [data[field], data[field]]
    before = state()
    assert_german_error(citizen.client.post("/anmelden", data=data), 400)
    assert state() == before


def test_an_empty_registration_form_names_every_mandatory_field(
        app: Flask, browser: Browser) -> None:
    browser.get(FORM)
    response = browser.submit(FORM, {})
    assert response.status_code == 422
    for message in ("Bitte geben Sie Ihren Vornamen an.", "Bitte geben Sie Ihren Nachnamen an.",
                    "Bitte geben Sie Ihre E-Mail-Adresse an.",
                    "Bitte geben Sie einen Benutzernamen an.",
                    "Bitte geben Sie ein Passwort an.",
                    "Bitte bestätigen Sie, dass Sie die Datenschutzerklärung"):
        assert message in browser.last_html
    assert citizens(app) == []


@pytest.mark.parametrize("missing", ["given_name", "surname", "email", "username",
                                     "privacy_accepted"])
def test_a_missing_mandatory_field_is_named_and_nothing_is_stored(
        browser: Browser, state: State, missing: str) -> None:
    browser.get(FORM)
    before = state()
    response = browser.submit(FORM, {k: v for k, v in REGISTRATION.items() if k != missing})
    assert response.status_code == 422
    assert f'id="{missing}-fehler"' in browser.last_html
    assert state() == before


def test_a_login_without_fields_fails_like_a_wrong_password(browser: Browser) -> None:
    browser.get("/anmelden")
    response = browser.submit("/anmelden", {})
    assert response.status_code == 401
    assert LOGIN_FAILED in browser.last_html


# --- methods and paths --------------------------------------------------------------------


@pytest.mark.parametrize("method", ["PUT", "DELETE", "PATCH"])
@pytest.mark.parametrize("path", ["/", "/anmelden", "/abmelden", "/registrieren/benutzername",
                                  "/registrieren/pruefen", "/aktivieren/abc"])
def test_a_method_the_page_does_not_offer_gets_a_german_405_page(
        browser: Browser, method: str, path: str) -> None:
    response = browser.client.open(path, method=method)
    assert_german_error(response, 405)
    assert response.headers.get("Allow")  # says which methods the page does offer


def test_a_get_on_the_logout_button_is_not_a_logout(citizen: Browser) -> None:
    log_in(citizen)
    assert_german_error(citizen.client.get("/abmelden"), 405)
    from tests.integration.security.conftest import is_logged_in
    assert is_logged_in(citizen.client)


@pytest.mark.parametrize("path", ["/gibt-es-nicht", "/registrieren/../../etc/passwd",
                                  "/static/../idp/config.py", "/%00", "/%FF%FE",
                                  "/" + "a" * 20_000, "/anmelden/%0d%0aSet-Cookie:x=1"])
def test_an_unknown_path_gets_a_german_404_page(browser: Browser, path: str) -> None:
    response = browser.client.get(path)
    html = assert_german_error(response, 404, "Seite nicht gefunden",
                               "Bitte prüfen Sie die Adresse.")
    assert "Set-Cookie: x" not in str(response.headers)
    assert "aaaaaaaaaa" not in html  # the path is not echoed back
