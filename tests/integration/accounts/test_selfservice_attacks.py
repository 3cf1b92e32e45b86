"""Forged, duplicated, oversized and racing requests against the self-service pages."""

from __future__ import annotations

import threading

import pytest
from flask import Flask
from sqlalchemy import select

from idp.accounts.models import Citizen
from idp.db import db
from tests.conftest import (
    GOOD_PASSWORD,
    REGISTRATION,
    Browser,
    activate,
    link_in,
    log_in,
    outbox,
    path_of,
    register,
    run_mail_sender,
)

SIGNED_IN_FORMS = {
    "/konto/daten": {"salutation": "herr", "given_name": "Mallory", "surname": "Böse",
                     "birth_name": ""},
    "/konto/email": {"email": "mallory@example.net", "password": GOOD_PASSWORD},
    "/konto/passwort": {"current_password": GOOD_PASSWORD, "password": "Wolken-Meer 731",
                        "password_confirm": "Wolken-Meer 731"},
    "/konto/loeschen": {"password": GOOD_PASSWORD},
}


def emails(app: Flask) -> list[str]:
    with app.app_context():
        return list(db.session.scalars(select(Citizen.email).order_by(Citizen.id)))


@pytest.mark.parametrize("path", sorted(SIGNED_IN_FORMS))
def test_forged_cross_site_form_without_csrf_token_is_refused(app: Flask, citizen: Browser,
                                                              path: str) -> None:
    log_in(citizen)
    response = citizen.client.post(path, data=SIGNED_IN_FORMS[path])
    assert response.status_code == 400
    assert "Das Formular ist abgelaufen" in response.get_data(as_text=True)
    page = citizen.get("/konto").get_data(as_text=True)
    assert "Mustermann" in page and REGISTRATION["email"] in page
    assert log_in(Browser(app.test_client())).status_code == 302


@pytest.mark.parametrize("path", ["/passwort-vergessen", "/benutzername-vergessen"])
def test_anonymous_forms_need_the_csrf_token_too(app: Flask, citizen: Browser,
                                                 path: str) -> None:
    mails_before = len(outbox(app))
    field = "username" if "passwort" in path else "email"
    value = "ErikaM" if field == "username" else REGISTRATION["email"]
    response = citizen.client.post(path, data={field: value})
    assert response.status_code == 400
    run_mail_sender(app)
    assert len(outbox(app)) == mails_before


def test_reset_and_confirmation_posts_need_the_csrf_token(app: Flask, citizen: Browser) -> None:
    citizen.get("/passwort-vergessen")
    citizen.submit("/passwort-vergessen", {"username": "ErikaM"})
    run_mail_sender(app)
    reset = path_of(link_in(outbox(app)[-1]))
    response = citizen.client.post(reset, data={"password": "Wolken-Meer 731",
                                                "password_confirm": "Wolken-Meer 731"})
    assert response.status_code == 400
    assert citizen.get(reset).status_code == 200  # the link is still usable


@pytest.mark.parametrize("path", sorted(SIGNED_IN_FORMS))
def test_field_sent_twice_is_a_bad_request_and_changes_nothing(app: Flask, citizen: Browser,
                                                                path: str) -> None:
    log_in(citizen)
    citizen.get(path)
    data: dict[str, object] = dict(SIGNED_IN_FORMS[path])
    first = next(iter(data))
    data[first] = [str(data[first]), "zweiter Wert"]
    response = citizen.submit(path, data)
    assert response.status_code == 400
    assert emails(app) == [REGISTRATION["email"]]
    assert "Mustermann" in citizen.get("/konto").get_data(as_text=True)


def test_oversized_input_is_refused_without_a_crash(app: Flask, citizen: Browser) -> None:
    log_in(citizen)
    citizen.get("/konto/daten")
    response = citizen.submit("/konto/daten", {"given_name": "E" * 70_000, "surname": "X"})
    assert response.status_code in (413, 422)
    citizen.get("/konto/daten")
    response = citizen.submit("/konto/daten", {"given_name": "E" * 5_000, "surname": "X"})
    assert response.status_code == 422
    assert "höchstens 100 Zeichen" in citizen.last_html
    citizen.get("/konto/email")
    response = citizen.submit("/konto/email", {"email": "a" * 300 + "@example.org",
                                               "password": GOOD_PASSWORD})
    assert response.status_code == 422
    citizen.get("/passwort-vergessen")
    response = citizen.submit("/passwort-vergessen", {"username": "u" * 5_000})
    assert response.status_code == 422
    assert "Mustermann" in citizen.get("/konto").get_data(as_text=True)


def test_missing_fields_are_named_not_crashed_on(citizen: Browser) -> None:
    log_in(citizen)
    for path in SIGNED_IN_FORMS:
        citizen.get(path)
        response = citizen.submit(path, {})
        assert response.status_code == 422, path
        assert "Bitte prüfen Sie Ihre Eingaben" in citizen.last_html


@pytest.mark.parametrize("token", ["%00", "..%2F..%2Fkonto", "a" * 65, "%E2%80%AE" * 3,
                                   "ZZZZ%0D%0ASet-Cookie:x=y"])
def test_tampered_links_get_a_clear_page(citizen: Browser, token: str) -> None:
    for prefix in ("/passwort-vergessen/", "/email-bestaetigen/"):
        response = citizen.get(prefix + token)
        assert response.status_code == 404, prefix + token
        assert "Set-Cookie" not in response.headers.get("Location", "")


def test_two_accounts_confirming_the_same_new_address_at_once(app: Flask,
                                                              citizen: Browser) -> None:
    max_browser = Browser(app.test_client())
    register(max_browser, email="max@example.org", username="MaxM", given_name="Max")
    activate(max_browser, app, "max@example.org")
    paths = []
    for browser, username in ((citizen, "ErikaM"), (max_browser, "MaxM")):
        log_in(browser, username=username)
        browser.get("/konto/email")
        browser.submit("/konto/email", {"email": "gemeinsam@example.org",
                                        "password": GOOD_PASSWORD})
        paths.append(path_of(link_in(outbox(app)[-1])))
    for browser, path in zip((citizen, max_browser), paths, strict=True):
        browser.get(path)
    start = threading.Barrier(2)
    statuses: list[int] = []

    def confirm(browser: Browser, path: str) -> None:
        start.wait()
        statuses.append(browser.submit(path).status_code)

    threads = [threading.Thread(target=confirm, args=pair)
               for pair in zip((citizen, max_browser), paths, strict=True)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(statuses) == [200, 409]
    assert emails(app).count("gemeinsam@example.org") == 1
