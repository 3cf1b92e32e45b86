""""Konto hochstufen" on "Mein Servicekonto": a basisregistriert account reads a test card once
and, when the names match, takes the card's level and data (docs/architecture.md, "Konto
hochstufen")."""

from __future__ import annotations

from datetime import date

import pytest
from flask import Flask
from sqlalchemy import select

from idp.accounts.models import Citizen
from idp.db import db
from idp.testing.models import CardState, EidTestCard
from tests.conftest import Browser, Clock, activate, log_in, register

PIN = "123456"


def card(app: Flask, *, given_name: str = "Erika", surname: str = "Mustermann",
         holder: int | None = None, pseudonym: str = "a1b2c3",
         doctoral_degree: str | None = None) -> int:
    """Erika's test card (her persona's data), of nobody's account unless ``holder``."""
    with app.app_context():
        made = EidTestCard(
            persona="erika", citizen_id=holder, document_type="ID", given_name=given_name,
            surname=surname, birth_name="Gabler", date_of_birth=date(1964, 8, 12),
            place_of_birth="Berlin", street="Heidestraße 17", postal_code="51147",
            locality="Köln", country="DE", nationality="D", pseudonym=pseudonym, pin=PIN,
            state=CardState.VALID, doctoral_degree=doctoral_degree)
        db.session.add(made)
        db.session.commit()
        return made.id


def account(app: Flask, username: str = "ErikaM") -> Citizen:
    with app.app_context():
        found = db.session.scalar(select(Citizen).where(Citizen.username == username))
        assert found is not None
        db.session.expunge(found)
        return found


@pytest.fixture
def erika(app: Flask, browser: Browser) -> Browser:
    """Erika registered with username and password (basisregistriert) and is logged in."""
    register(browser, birth_name="")
    activate(browser, app)
    log_in(browser)
    return browser


def read(browser: Browser, card_id: int, pin: str = PIN) -> object:
    browser.get("/konto/hochstufen")
    return browser.submit("/konto/hochstufen", {"card": str(card_id), "pin": pin})


def test_the_account_page_offers_hochstufen_to_a_basisregistriert_account(
        erika: Browser) -> None:
    page = erika.get("/konto").get_data(as_text=True)
    assert "Vertrauensniveau" in page and "basisregistriert" in page
    assert 'href="/konto/hochstufen"' in page


def test_hochstufen_shows_old_and_new_values_and_then_takes_the_cards_level_and_data(
        app: Flask, erika: Browser) -> None:
    card_id = card(app)
    page = erika.get("/konto/hochstufen").get_data(as_text=True)
    assert "Simulation – kein echter Ausweis" in page
    response = erika.submit("/konto/hochstufen", {"card": str(card_id), "pin": PIN})
    assert response.status_code == 302
    confirm = erika.get(response.location).get_data(as_text=True)
    assert "<tr><th scope=\"row\">Geburtsname</th><td>–</td><td>Gabler</td></tr>" in confirm
    assert "<td>basisregistriert</td><td>hoch</td>" in confirm
    assert "<td>–</td><td>12.08.1964</td>" in confirm
    assert "<tr><th scope=\"row\">Doktorgrad</th><td>–</td><td>–</td></tr>" in confirm
    done = erika.submit("/konto/hochstufen/bestaetigen")
    assert done.status_code == 302 and done.location.endswith("/konto")
    assert "Ihr Servicekonto ist jetzt hochgestuft" in erika.get("/konto").get_data(
        as_text=True)
    citizen = account(app)
    assert citizen.trust_level == 4 and citizen.birth_name == "Gabler"
    with app.app_context():
        assert db.session.get(EidTestCard, card_id).citizen_id == citizen.id
    assert 'href="/konto/hochstufen"' not in erika.get("/konto").get_data(as_text=True)


def test_a_second_given_name_and_another_spelling_of_case_and_hyphens_still_match(
        app: Flask, erika: Browser) -> None:
    card_id = card(app, given_name="ERIKA Maria", surname="MUSTERMANN")
    erika.get(read(erika, card_id).location)  # type: ignore[attr-defined]
    assert "Konto hochstufen</button>" in erika.last_html


@pytest.mark.parametrize(("given_name", "surname", "message"), [
    ("Gabriele", "Mustermann", "Der Vorname in Ihrem Servicekonto („Erika“) stimmt mit keinem"),
    ("Erika", "Musterfrau", "Der Nachname in Ihrem Servicekonto („Mustermann“) stimmt nicht"),
])
def test_names_that_do_not_match_are_refused_with_a_clear_message(
        app: Flask, erika: Browser, given_name: str, surname: str, message: str) -> None:
    card_id = card(app, given_name=given_name, surname=surname)
    erika.get(read(erika, card_id).location)  # type: ignore[attr-defined]
    assert message in erika.last_html
    assert "Konto hochstufen</button>" not in erika.last_html
    refused = erika.submit("/konto/hochstufen/bestaetigen")
    assert refused.status_code == 409
    assert account(app).trust_level == 1


def test_a_card_of_another_account_is_refused(app: Flask, erika: Browser) -> None:
    other = Browser(app.test_client())
    register(other, username="MaxM", email="max.mustermann@example.org", given_name="Max")
    card_id = card(app, holder=account(app, "MaxM").id)
    erika.get(read(erika, card_id).location)  # type: ignore[attr-defined]
    assert "gehört bereits zu einem anderen Servicekonto" in erika.last_html
    assert erika.submit("/konto/hochstufen/bestaetigen").status_code == 409


def test_an_account_already_upgraded_is_told_so(app: Flask, erika: Browser) -> None:
    with app.app_context():
        db.session.execute(Citizen.__table__.update().values(trust_level=4))
        db.session.commit()
    card_id = card(app)
    erika.get(read(erika, card_id).location)  # type: ignore[attr-defined]
    assert "bereits hochgestuft" in erika.last_html


def test_a_wrong_pin_counts_as_at_the_login(app: Flask, erika: Browser) -> None:
    card_id = card(app)
    response = read(erika, card_id, "000000")
    assert response.status_code == 401  # type: ignore[attr-defined]
    assert "Sie haben noch 2 Versuche" in erika.last_html


def test_a_confirmation_without_a_card_read_or_too_late_asks_to_read_it_again(
        app: Flask, erika: Browser, clock: Clock) -> None:
    erika.get("/konto")
    assert erika.submit("/konto/hochstufen/bestaetigen").status_code == 409
    assert "Bitte lesen Sie Ihren Ausweis erneut" in erika.last_html
    card_id = card(app)
    read(erika, card_id)
    clock.advance(minutes=11)
    assert erika.get("/konto/hochstufen/bestaetigen").status_code == 409
    assert account(app).trust_level == 1


def test_hochstufen_needs_a_login(browser: Browser) -> None:
    response = browser.get("/konto/hochstufen")
    assert response.status_code == 302 and "/anmelden" in response.location


def upgraded(app: Flask, erika: Browser) -> Browser:
    """Erika read her card and confirmed: her account is at level "hoch"."""
    erika.get(read(erika, card(app)).location)  # type: ignore[attr-defined]
    assert erika.submit("/konto/hochstufen/bestaetigen").status_code == 302
    return erika


def test_after_hochstufen_the_names_are_shown_as_the_cards_and_offer_no_field_to_change(
        app: Flask, erika: Browser) -> None:
    page = upgraded(app, erika).get("/konto/daten").get_data(as_text=True)
    assert "Ihre Namen stammen aus Ihrem Ausweis" in page
    assert "<dt>Geburtsname</dt><dd>Gabler</dd>" in page
    for field in ("given_name", "surname", "birth_name"):
        assert f'name="{field}"' not in page
    assert 'name="salutation"' in page


@pytest.mark.parametrize(("field", "message"), [
    ("given_name", "Der Vorname stammt aus Ihrem Ausweis"),
    ("surname", "Der Nachname stammt aus Ihrem Ausweis"),
    ("birth_name", "Der Geburtsname stammt aus Ihrem Ausweis"),
])
def test_after_hochstufen_a_changed_name_sent_anyway_is_refused_and_nothing_changes(
        app: Flask, erika: Browser, field: str, message: str) -> None:
    upgraded(app, erika).get("/konto/daten")
    response = erika.submit("/konto/daten", {"salutation": "divers", field: "Musterfrau"})
    assert response.status_code == 422
    assert message in erika.last_html
    citizen = account(app)
    assert (citizen.given_name, citizen.surname, citizen.birth_name) == (
        "Erika", "Mustermann", "Gabler")
    assert citizen.salutation != "divers"


def test_after_hochstufen_the_salutation_can_still_be_changed(app: Flask, erika: Browser) -> None:
    upgraded(app, erika).get("/konto/daten")
    response = erika.submit("/konto/daten", {"salutation": "divers", "given_name": "Erika"})
    assert response.status_code == 302
    citizen = account(app)
    assert citizen.salutation == "divers" and citizen.given_name == "Erika"


def test_a_basisregistriert_account_still_changes_its_names(app: Flask, erika: Browser) -> None:
    erika.get("/konto/daten")
    response = erika.submit("/konto/daten", {"salutation": "frau", "given_name": "Erika",
                                             "surname": "Musterfrau", "birth_name": ""})
    assert response.status_code == 302
    assert account(app).surname == "Musterfrau"
