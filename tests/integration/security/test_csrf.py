"""Every form refuses a POST without its own CSRF token: German 400 page, nothing changes."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from flask import Flask

from tests.conftest import GOOD_PASSWORD, REGISTRATION, Browser, csrf_from, log_in, register
from tests.integration.security.conftest import (
    CSRF_MESSAGE,
    activation_path,
    assert_german_error,
    expire_links,
    is_logged_in,
)

State = Callable[[], dict[str, Any]]


@dataclass(frozen=True)
class Target:
    """A form under attack: how to reach the moment before its POST, and what it posts."""

    prepare: Callable[[Flask, Browser], str]  # returns the URL the form posts to
    data: dict[str, str]


def _login(app: Flask, browser: Browser) -> str:
    register(browser)
    _activate(app, browser)
    return "/anmelden"


def _activate(app: Flask, browser: Browser) -> None:
    path = activation_path(app)
    browser.get(path)
    browser.submit(path)


def _registration_form(app: Flask, browser: Browser) -> str:
    browser.get("/registrieren/benutzername")
    return "/registrieren/benutzername"


def _review(app: Flask, browser: Browser) -> str:
    browser.get("/registrieren/benutzername")
    browser.submit("/registrieren/benutzername", REGISTRATION)
    browser.get("/registrieren/pruefen")
    return "/registrieren/pruefen"


def _activation(app: Flask, browser: Browser) -> str:
    register(browser)
    return activation_path(app)


def _resend(app: Flask, browser: Browser) -> str:
    register(browser)
    expire_links(app)
    return activation_path(app) + "/erneut-senden"


def _logout(app: Flask, browser: Browser) -> str:
    _login(app, browser)
    log_in(browser)
    return "/abmelden"


TARGETS = {
    "login": Target(_login, {"username": "ErikaM", "password": GOOD_PASSWORD}),
    "registration form": Target(_registration_form, REGISTRATION),
    "Daten speichern": Target(_review, {}),
    "activation": Target(_activation, {}),
    "resend activation": Target(_resend, {}),
    "logout": Target(_logout, {}),
}


def forged_tokens(browser: Browser, stranger: Browser) -> dict[str, dict[str, Any]]:
    """The token field as an attacker can fill it in."""
    stranger.get("/anmelden")
    own = csrf_from(stranger.last_html)
    return {
        "missing": {},
        "empty": {"csrf_token": ""},
        "garbage": {"csrf_token": "garbage"},
        "tampered": {"csrf_token": own[:-2] + ("AA" if own[-2:] != "AA" else "BB")},
        "foreign": {"csrf_token": own},  # valid, but for the attacker's own session
    }


@pytest.mark.parametrize("forgery", ["missing", "empty", "garbage", "tampered", "foreign"])
@pytest.mark.parametrize("form", list(TARGETS))
def test_a_post_without_the_pages_own_csrf_token_is_refused_and_changes_nothing(
        app: Flask, browser: Browser, stranger: Browser, state: State,
        form: str, forgery: str) -> None:
    target = TARGETS[form]
    url = target.prepare(app, browser)
    logged_in = is_logged_in(browser.client)
    before = state()
    token = forged_tokens(browser, stranger)[forgery]
    response = browser.client.post(url, data={**target.data, **token})
    assert_german_error(response, 400, CSRF_MESSAGE)
    assert state() == before
    assert is_logged_in(browser.client) == logged_in
    if form == "registration form":  # the data did not reach the review step
        assert browser.get("/registrieren/pruefen").status_code == 409


@pytest.mark.parametrize("form", list(TARGETS))
def test_a_cross_site_post_without_any_cookie_is_refused(
        app: Flask, browser: Browser, stranger: Browser, state: State, form: str) -> None:
    target = TARGETS[form]
    url = target.prepare(app, browser)
    before = state()
    # The attacker's page posts with the attacker's own browser state: no session of ours.
    attacker = Browser(app.test_client())
    response = attacker.client.post(url, data=target.data)
    assert_german_error(response, 400, CSRF_MESSAGE)
    assert state() == before


@pytest.mark.parametrize("form", list(TARGETS))
def test_the_csrf_token_sent_in_the_query_string_does_not_count(
        app: Flask, browser: Browser, state: State, form: str) -> None:
    target = TARGETS[form]
    url = target.prepare(app, browser)
    browser.get("/anmelden")
    token = csrf_from(browser.last_html)
    before = state()
    response = browser.client.post(url, query_string={"csrf_token": token}, data=target.data)
    assert_german_error(response, 400, CSRF_MESSAGE)
    assert state() == before


def test_a_csrf_token_sent_twice_with_one_forged_value_is_refused(
        app: Flask, browser: Browser, state: State) -> None:
    url = _login(app, browser)
    browser.get(url)
    data = {"csrf_token": ["garbage", csrf_from(browser.last_html)],
            "username": "ErikaM", "password": GOOD_PASSWORD}
    before = state()
    response = browser.client.post(url, data=data)
    assert response.status_code == 400
    assert state() == before
