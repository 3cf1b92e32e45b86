""""Registrieren mit der Online-Ausweisfunktion": read the card, then only the e-mail address
(verified by link as at every registration) and optionally username and password; the identity
comes from the card (docs/architecture.md, "Registrieren mit der Online-Ausweisfunktion")."""

from __future__ import annotations

from typing import Any

from flask import Flask
from sqlalchemy import select

from idp.accounts.models import AccountStatus, Citizen
from idp.db import db
from idp.testing.models import EidTestCard
from tests.conftest import GOOD_PASSWORD, Browser, Clock, activate, log_in, outbox, register
from tests.integration.eid.test_upgrade import PIN, card

EMAIL = "erika.mustermann@example.org"


def read_card(browser: Browser, card_id: int, pin: str = PIN) -> Any:
    browser.get("/registrieren/ausweis")
    return browser.submit("/registrieren/ausweis", {"card": str(card_id), "pin": pin})


def register_with_card(browser: Browser, card_id: int, **fields: str) -> Any:
    response = read_card(browser, card_id)
    assert response.status_code == 302, browser.last_html
    browser.get(response.location)
    return browser.submit(response.location, {"email": EMAIL, "privacy_accepted": "yes"}
                          | fields)


def the_account(app: Flask) -> Citizen:
    with app.app_context():
        found = db.session.scalar(select(Citizen))
        assert found is not None
        db.session.expunge(found)
        return found


def test_the_registration_choice_offers_the_online_ausweisfunktion(browser: Browser) -> None:
    page = browser.get("/registrieren").get_data(as_text=True)
    assert 'href="/registrieren/ausweis"' in page


def test_registering_with_the_card_asks_only_for_the_email_and_takes_the_identity_from_it(
        app: Flask, browser: Browser) -> None:
    card_id = card(app, doctoral_degree="Dr.")
    response = read_card(browser, card_id)
    form = browser.get(response.location).get_data(as_text=True)
    assert "Simulation – kein echter Ausweis" in form
    for shown in ("<dt>Doktorgrad</dt><dd>Dr.</dd>", "Erika", "Mustermann", "Gabler",
                  "12.08.1964", "Berlin", "Heidestraße 17, 51147 Köln"):
        assert shown in form, shown
    assert 'name="given_name"' not in form
    done = browser.submit(response.location, {"email": EMAIL, "privacy_accepted": "yes"})
    assert done.status_code == 302 and done.location.endswith("/registrieren/mail-versendet")
    citizen = the_account(app)
    assert citizen.status == AccountStatus.PENDING and citizen.trust_level == 4
    assert (citizen.given_name, citizen.surname, citizen.birth_name) == (
        "Erika", "Mustermann", "Gabler")
    assert citizen.username.startswith("eID-")
    with app.app_context():
        assert db.session.get(EidTestCard, card_id).citizen_id == citizen.id
    # Not before the address is verified: the card tells so.
    browser.get("/ausweis")
    assert browser.submit("/ausweis", {"card": str(card_id), "pin": PIN}).status_code == 403
    assert "noch nicht aktiviert" in browser.last_html
    activate(browser, app, recipient=EMAIL)
    browser.get("/ausweis")
    assert browser.submit("/ausweis", {"card": str(card_id), "pin": PIN}).status_code == 302
    assert "Mustermann" in browser.get("/konto").get_data(as_text=True)


def test_a_username_and_password_given_at_registration_are_a_second_way_in(
        app: Flask, browser: Browser) -> None:
    card_id = card(app)
    register_with_card(browser, card_id, username="ErikaM", password=GOOD_PASSWORD,
                       password_confirm=GOOD_PASSWORD)
    activate(browser, app, recipient=EMAIL)
    assert log_in(browser).status_code == 302
    assert the_account(app).username == "ErikaM"


def test_a_username_without_a_password_is_refused(app: Flask, browser: Browser) -> None:
    response = register_with_card(browser, card(app), username="ErikaM")
    assert response.status_code == 422
    assert "Bitte geben Sie Benutzername und Passwort an" in browser.last_html


def test_a_weak_password_is_refused_as_at_every_registration(
        app: Flask, browser: Browser) -> None:
    response = register_with_card(browser, card(app), username="ErikaM", password="kurz",
                                  password_confirm="kurz")
    assert response.status_code == 422 and 'id="password"' in browser.last_html
    with app.app_context():
        assert db.session.scalar(select(Citizen)) is None


def test_without_email_and_privacy_consent_each_is_named(app: Flask, browser: Browser) -> None:
    response = register_with_card(browser, card(app), email="", privacy_accepted="")
    assert response.status_code == 422
    assert "Datenschutzerklärung gelesen haben" in browser.last_html
    assert 'href="#email"' in browser.last_html


def test_a_card_that_has_an_account_is_sent_to_the_login(app: Flask, browser: Browser) -> None:
    register(Browser(app.test_client()))
    with app.app_context():
        holder = db.session.scalar(select(Citizen.id))
    card_id = card(app, holder=holder)
    assert read_card(browser, card_id).status_code == 409
    assert "Zu diesem Ausweis gibt es bereits ein Servicekonto" in browser.last_html


def test_an_address_with_an_account_gets_the_same_page_and_no_second_account(
        app: Flask, browser: Browser) -> None:
    register(Browser(app.test_client()))
    card_id = card(app)
    done = register_with_card(browser, card_id)
    assert done.status_code == 302 and done.location.endswith("/registrieren/mail-versendet")
    with app.app_context():
        assert len(db.session.scalars(select(Citizen)).all()) == 1
        assert db.session.get(EidTestCard, card_id).citizen_id is None
    assert "gibt es bereits ein Servicekonto" in outbox(app)[-1].body_text


def test_the_data_page_without_a_card_read_or_too_late_asks_to_read_it_again(
        app: Flask, browser: Browser, clock: Clock) -> None:
    assert browser.get("/registrieren/ausweis/daten").status_code == 409
    assert "Bitte lesen Sie Ihren Ausweis erneut" in browser.last_html
    response = read_card(browser, card(app))
    clock.advance(minutes=11)
    assert browser.get(response.location).status_code == 409
