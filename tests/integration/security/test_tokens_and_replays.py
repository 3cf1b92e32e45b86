"""Forged and replayed activation links, and forms sent twice."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask

from idp.accounts.models import AccountStatus
from tests.conftest import REGISTRATION, Browser, activate, log_in, outbox, register
from tests.integration.security.conftest import (
    CSRF_MESSAGE,
    INVALID_LINK,
    activation_path,
    assert_german_error,
    citizens,
    expire_links,
)

State = Callable[[], dict[str, Any]]


@pytest.fixture
def pending(app: Flask, browser: Browser) -> Browser:
    """A browser whose citizen registered but has not activated yet."""
    register(browser)
    return browser


def forged_paths(real: str) -> dict[str, str]:
    """Links an attacker might try, made from a real one (``/aktivieren/<token>``)."""
    token = real.rsplit("/", 1)[1]
    flipped = token[:-1] + ("A" if token[-1] != "A" else "B")
    return {
        "random": "/aktivieren/" + secrets.token_urlsafe(32),
        "tampered": "/aktivieren/" + flipped,
        "one character longer": real + "A",
        "one character shorter": real[:-1],
        "overlong": "/aktivieren/" + token * 200,
        "percent junk": "/aktivieren/%00%FF%FE%0D%0A%27%22%3Cscript%3E",
        "sql": "/aktivieren/' OR '1'='1",
        "case swapped": "/aktivieren/" + token.swapcase(),
    }


FORGERIES = list(forged_paths("/aktivieren/" + "x" * 43))


@pytest.mark.parametrize("forgery", FORGERIES)
def test_a_forged_activation_link_shows_the_invalid_link_page_and_changes_nothing(
        app: Flask, pending: Browser, state: State, forgery: str) -> None:
    path = forged_paths(activation_path(app))[forgery]
    before = state()
    assert_german_error(pending.get(path), 404, INVALID_LINK)
    for target in (path, path + "/erneut-senden"):
        pending.get("/anmelden")  # a page with a valid CSRF token, as the attacker's own
        assert_german_error(pending.submit(target), 404, INVALID_LINK)
    assert state() == before
    assert citizens(app)[0].status == AccountStatus.PENDING


@pytest.mark.parametrize("path", ["/aktivieren/", "/aktivieren/a/b", "/aktivieren/%2F..%2F",
                                  "/aktivieren/" + "A" * 100_000])
def test_a_mangled_activation_path_gets_a_german_not_found_page(
        app: Flask, pending: Browser, state: State, path: str) -> None:
    before = state()
    response = pending.get(path)
    assert response.status_code == 404
    assert '<html lang="de">' in pending.last_html
    assert state() == before


def test_opening_the_link_again_and_again_never_uses_it_up(app: Flask, pending: Browser) -> None:
    path = activation_path(app)
    for _ in range(3):  # a mail scanner, a preview, the citizen
        assert pending.get(path).status_code == 200
    assert citizens(app)[0].status == AccountStatus.PENDING
    assert "Sie sind erfolgreich registriert" in pending.submit(path).get_data(as_text=True)


def test_pressing_the_activation_button_twice_says_the_link_was_already_used(
        app: Flask, pending: Browser, state: State) -> None:
    path = activation_path(app)
    pending.get(path)
    token_page = pending.last_html
    assert pending.submit(path).status_code == 200
    after_first = state()
    pending.last_html = token_page  # the browser's back button: the same form again
    assert_german_error(pending.submit(path), 410, "bereits verwendet")
    assert state() == after_first
    assert assert_german_error(pending.get(path), 410, "bereits verwendet")


def test_an_expired_link_offers_a_new_one_and_only_the_new_one_works(
        app: Flask, pending: Browser) -> None:
    old = activation_path(app)
    expire_links(app)
    html = assert_german_error(pending.get(old), 410, "abgelaufen")
    assert "Aktivierungslink erneut senden" in html
    assert_german_error(pending.submit(old), 410, "abgelaufen")
    assert citizens(app)[0].status == AccountStatus.PENDING

    pending.get(old)
    assert pending.submit(old + "/erneut-senden").status_code == 200
    new = activation_path(app)
    assert new != old and len(outbox(app)) == 2
    assert_german_error(pending.get(old), 410, "durch einen neueren ersetzt")
    assert "Sie sind erfolgreich registriert" in activate(pending, app).get_data(as_text=True)


def test_a_used_link_cannot_order_new_mails(app: Flask, pending: Browser,
                                            state: State) -> None:
    path = activation_path(app)
    activate(pending, app)
    before = state()
    pending.get("/anmelden")
    assert_german_error(pending.submit(path + "/erneut-senden"), 404, INVALID_LINK)
    assert state() == before


def test_daten_speichern_sent_twice_makes_one_account_and_says_so(
        app: Flask, browser: Browser) -> None:
    browser.get("/registrieren/benutzername")
    browser.submit("/registrieren/benutzername", REGISTRATION)
    browser.get("/registrieren/pruefen")
    review = browser.last_html
    assert browser.submit("/registrieren/pruefen").status_code == 302
    browser.last_html = review  # the same button again (double click, back button, reload)
    second = browser.submit("/registrieren/pruefen")
    assert second.status_code == 409
    assert "Keine Daten zu speichern" in browser.last_html
    assert [c.username for c in citizens(app)] == [REGISTRATION["username"]]
    assert len(outbox(app)) == 1


def test_the_review_page_without_a_form_before_it_has_nothing_to_save(
        app: Flask, browser: Browser) -> None:
    browser.get("/anmelden")
    response = browser.submit("/registrieren/pruefen")
    assert response.status_code == 409
    assert "Keine Daten zu speichern" in browser.last_html
    assert citizens(app) == []


def test_a_second_registration_with_the_same_username_is_named_in_the_form(
        app: Flask, browser: Browser, stranger: Browser) -> None:
    # Two browsers fill in the same username; the slower one is told when it saves.
    for who in (browser, stranger):
        who.get("/registrieren/benutzername")
        who.submit("/registrieren/benutzername",
                   REGISTRATION | ({"email": "other@example.org"} if who is stranger else {}))
        who.get("/registrieren/pruefen")
    assert browser.submit("/registrieren/pruefen").status_code == 302
    assert stranger.submit("/registrieren/pruefen").status_code == 409
    assert "Dieser Benutzername ist bereits vergeben." in stranger.last_html
    assert len(citizens(app)) == 1


def test_an_old_csrf_token_is_refused_after_logout(
        app: Flask, citizen: Browser, state: State) -> None:
    log_in(citizen)
    citizen.get("/")
    page_before_logout = citizen.last_html
    citizen.submit("/abmelden")
    citizen.last_html = page_before_logout
    before = state()
    response = citizen.submit("/anmelden", {"username": "ErikaM", "password": "x"})
    assert_german_error(response, 400, CSRF_MESSAGE)
    assert state() == before
