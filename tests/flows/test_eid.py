"""Anmelden mit der Online-Ausweisfunktion, simulated: a real pysaml2 portal asks, the citizen
picks a test card in the simulated AusweisApp step and enters the PIN; what the portal gets
(docs/architecture.md, "The Online-Ausweisfunktion" and "Trust levels")."""

from __future__ import annotations

import base64
from datetime import date, datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from flask import Flask
from saml2.response import StatusAuthnFailed, StatusNoAuthnContext
from saml2.saml import AuthnContextClassRef
from saml2.samlp import RequestedAuthnContext
from sqlalchemy import select

from idp.accounts.models import Citizen
from idp.db import db
from idp.testing.models import CardState, EidTestCard
from tests.conftest import Browser, Clock, activate, register
from tests.flows.conftest import Portal, decide, field_value, logged_in
from tests.flows.test_akdb import bundid

SAML = "urn:oasis:names:tc:SAML:2.0:assertion"
AKDB = "https://www.akdb.de/request/2018/09"
PIN = "123456"
PUK = "1234567890"
EID_ATTRIBUTES = ["birthdate", "placeOfBirth", "postalAddress", "postalCode", "localityName",
                  "country", "nationality", "documentType", "pseudonym", "personalTitle"]
EVERYTHING = ["gender", "givenName", "surname", "birthName", "mail", "bPK2",
              "EID-CITIZEN-QAA-LEVEL", "AssertionProvedBy", *EID_ATTRIBUTES]
PSEUDONYM = "5a2c7e31b0f94d6a8e1f3c5b7d9a0e2f"
# What Erika's card gives, by Name, with the value sent (her persona, policies/personas/).
CARD_VALUES = {
    "urn:oid:2.5.4.42": "Erika",
    "urn:oid:2.5.4.4": "Mustermann",
    "urn:oid:1.2.40.0.10.2.1.1.225566": "Gabler",
    "urn:oid:1.2.40.0.10.2.1.1.55": "1964-08-12",
    "urn:oid:1.3.6.1.5.5.7.9.2": "Berlin",
    "urn:oid:2.5.4.16": "Heidestraße 17",
    "urn:oid:2.5.4.17": "51147",
    "urn:oid:2.5.4.7": "Köln",
    "urn:oid:1.2.40.0.10.2.1.1.225599": "DE",
    "urn:oid:1.2.40.0.10.2.1.1.225577": "D",
    "urn:oid:1.2.40.0.10.2.1.1.552255": "ID",
    "urn:oid:1.2.40.0.10.2.1.1.226699": PSEUDONYM,
}
QAA_LEVEL = "urn:oid:1.2.40.0.10.2.1.1.261.94"
PROVED_BY = "urn:oid:1.3.6.1.4.1.25484.494450.2"
MAIL = "urn:oid:0.9.2342.19200300.100.1.3"
PERSONAL_TITLE = "urn:oid:0.9.2342.19200300.100.1.40"


@pytest.fixture
def portal_changes() -> dict[str, Any]:
    return {"attributes": EVERYTHING}


LEVEL_4_POLICY = {"attributes": EVERYTHING, "minimum_trust_level": "STORK-QAA-Level-4"}


def level(text: str, comparison: str = "minimum") -> RequestedAuthnContext:
    return RequestedAuthnContext(authn_context_class_ref=[AuthnContextClassRef(text=text)],
                                 comparison=comparison)


def registered(app: Flask, visitor: Browser) -> Browser:
    """Erika registered and activated her account (with username and password), not logged in."""
    register(visitor)
    activate(visitor, app)
    return visitor


def card(app: Flask, *, holder: str | None = "ErikaM", state: CardState = CardState.VALID,
         pseudonym: str = PSEUDONYM, doctoral_degree: str | None = None,
         puk: str | None = PUK) -> int:
    """A test card of Erika's (her persona's data), belonging to ``holder``'s account."""
    with app.app_context():
        citizen_id = db.session.scalar(select(Citizen.id).where(Citizen.username == holder))
        made = EidTestCard(
            persona="erika", citizen_id=citizen_id, document_type="ID", given_name="Erika",
            surname="Mustermann", birth_name="Gabler", date_of_birth=date(1964, 8, 12),
            place_of_birth="Berlin", street="Heidestraße 17", postal_code="51147",
            locality="Köln", country="DE", nationality="D", pseudonym=pseudonym, pin=PIN,
            state=state, doctoral_degree=doctoral_degree, puk=puk)
        db.session.add(made)
        db.session.commit()
        return made.id


def to_login_page(visitor: Browser, portal: Portal, **request: Any) -> str:
    """The portal sends the request; the browser lands on the login page (its path)."""
    path, _ = portal.login_url(**request)
    response = visitor.client.get(path)
    assert response.status_code == 302 and "/anmelden?anfrage=" in response.location
    visitor.get(response.location)
    return str(response.location)


def ausweis_url(login_page: str) -> str:
    return "/ausweis?anfrage=" + parse_qs(urlsplit(login_page).query)["anfrage"][0]


def read_card(visitor: Browser, login_page: str, card_id: int, pin: str = PIN) -> Any:
    """The AusweisApp step: choose the card, enter the PIN."""
    url = ausweis_url(login_page)
    visitor.get(url)
    return visitor.submit(url, {"card": str(card_id), "pin": pin})


def answer(visitor: Browser, response: Any) -> str:
    """Follow the IdP's redirects to the auto-POST form, agreeing on the consent page."""
    while response.status_code == 302:
        response = visitor.get(response.location)
    page = response.get_data(as_text=True)
    if "Zustimmung zur Weitergabe" in page:
        visitor.last_html = page
        page = decide(visitor).get_data(as_text=True)
    assert "SAMLResponse" in page, page
    return str(page)


def assertion_of(page: str) -> Any:
    from lxml import etree

    encoded = field_value(page, "SAMLResponse")
    return etree.fromstring(base64.b64decode(encoded)).find(f".//{{{SAML}}}Assertion")


def attributes_of(page: str) -> dict[str, tuple[str, str | None]]:
    """Name → (value, akdb:TrustLevel) of every released attribute."""
    found = {}
    for attribute in assertion_of(page).iter(f"{{{SAML}}}Attribute"):
        assert attribute.get("NameFormat") == "urn:oasis:names:tc:SAML:2.0:attrname-format:uri"
        value = attribute.find(f"{{{SAML}}}AttributeValue").text
        found[attribute.get("Name")] = (value, attribute.get(f"{{{AKDB}}}TrustLevel"))
    return found


def class_ref_of(page: str) -> str:
    return str(assertion_of(page).find(f".//{{{SAML}}}AuthnContextClassRef").text)


def eid_login(app: Flask, visitor: Browser, portal: Portal, **request: Any) -> str:
    """Erika logs in at the portal with her card; the page with the answer."""
    card_id = card(app)
    login_page = to_login_page(visitor, portal, **request)
    return answer(visitor, read_card(visitor, login_page, card_id))


@pytest.mark.parametrize("portal_changes", [LEVEL_4_POLICY])
def test_a_level_4_portal_gets_a_login_page_offering_only_the_online_ausweisfunktion(
        sso_app: Flask, visitor: Browser, portal: Portal) -> None:
    to_login_page(registered(sso_app, visitor), portal)
    page = visitor.last_html
    assert "Anmelden mit der Online-Ausweisfunktion erforderlich" in page
    assert 'name="password"' not in page
    assert "Weiter zur Online-Ausweisfunktion" in page
    # Offered once: the panel is the Online-Ausweisfunktion, not listed below it again.
    assert 'id="anmelden-ausweis"' not in page


def test_a_level_1_portal_offers_username_and_password_and_the_online_ausweisfunktion(
        sso_app: Flask, visitor: Browser, portal: Portal) -> None:
    to_login_page(registered(sso_app, visitor), portal)
    assert 'name="password"' in visitor.last_html
    assert 'id="anmelden-ausweis"' in visitor.last_html


def test_the_ausweisapp_step_says_it_is_a_simulation_and_names_the_portal_and_its_data(
        sso_app: Flask, visitor: Browser, portal: Portal) -> None:
    card(sso_app, holder=None)
    login_page = to_login_page(visitor, portal, requested_authn_context=level(
        "STORK-QAA-Level-4"))
    visitor.get(ausweis_url(login_page))
    page = visitor.last_html
    assert "Simulation – kein echter Ausweis" in page
    assert "Bürgerportal Musterstadt über das Servicekonto" in page
    for label in ("Vorname", "Geburtsdatum", "Geburtsort", "Postleitzahl", "Ausweisart"):
        assert f"<li>{label}</li>" in page
    assert "Erika Mustermann – Personalausweis (gültig)" in page


@pytest.mark.parametrize("portal_changes", [LEVEL_4_POLICY])
def test_an_eid_login_answers_level_4_proved_by_eid_with_every_card_value_at_trust_level_hoch(
        sso_app: Flask, visitor: Browser, portal: Portal) -> None:
    page = eid_login(sso_app, registered(sso_app, visitor), portal)
    response = portal.receive(page)  # pysaml2 takes it
    assert class_ref_of(page) == "STORK-QAA-Level-4"
    assert str(response.authn_info()[0][0]) == "STORK-QAA-Level-4"
    released = attributes_of(page)
    assert released[PROVED_BY][0] == "eID"
    assert released[QAA_LEVEL][0] == "STORK-QAA-Level-4"
    for name, value in CARD_VALUES.items():
        assert released[name] == (value, "HOCH"), name
    # The verified e-mail address is not on the card: NORMAL, as after a password login.
    assert released[MAIL] == ("erika.mustermann@example.org", "NORMAL")
    # This card carries no Doktorgrad: personalTitle is never invented.
    assert PERSONAL_TITLE not in released


def test_a_card_with_a_doktorgrad_releases_it_as_personal_title_at_trust_level_hoch(
        sso_app: Flask, visitor: Browser, portal: Portal) -> None:
    registered(sso_app, visitor)
    card_id = card(sso_app, doctoral_degree="Dr.")
    login_page = to_login_page(visitor, portal)
    response = read_card(visitor, login_page, card_id)
    while response.status_code == 302:
        response = visitor.get(response.location)
    assert "Doktorgrad" in visitor.last_html and "Dr." in visitor.last_html  # consent page
    page = answer(visitor, response)
    portal.receive(page)
    assert attributes_of(page)[PERSONAL_TITLE] == ("Dr.", "HOCH")


def test_the_consent_page_lists_the_card_data_with_their_values(
        sso_app: Flask, visitor: Browser, portal: Portal) -> None:
    registered(sso_app, visitor)
    card_id = card(sso_app)
    login_page = to_login_page(visitor, portal)
    response = read_card(visitor, login_page, card_id)
    while response.status_code == 302:
        response = visitor.get(response.location)
    page = visitor.last_html
    assert "Zustimmung zur Weitergabe an ein Fachverfahren" in page
    for shown in ("12.08.1964", "Heidestraße 17", "51147", "Köln", "Personalausweis (ID)",
                  "hoch (STORK-QAA-Level-4)", PSEUDONYM):
        assert shown in page, shown


def test_a_level_3_persona_logs_in_at_level_3_for_2_hours(
        sso_app: Flask, visitor: Browser, portal: Portal) -> None:
    """An eAT persona of level "substantiell" (docs/qa-workbench.md) reaches its level."""
    registered(sso_app, visitor)
    with sso_app.app_context():
        db.session.execute(Citizen.__table__.update().values(trust_level=3))
        db.session.commit()
    page = eid_login(sso_app, visitor, portal, requested_authn_context=level(
        "STORK-QAA-Level-3"))
    assert class_ref_of(page) == "STORK-QAA-Level-3"
    assert attributes_of(page)[QAA_LEVEL][0] == "STORK-QAA-Level-3"
    instant, not_after = authn_times(page)
    assert (not_after - instant).total_seconds() == 2 * 3600


def test_a_password_login_answers_level_1_proved_by_benutzername_without_card_data(
        sso_app: Flask, visitor: Browser, portal: Portal) -> None:
    logged_in(sso_app, visitor)
    card(sso_app)
    path, _ = portal.login_url()
    page = answer(visitor, visitor.get(path))
    assert class_ref_of(page) == "STORK-QAA-Level-1"
    released = attributes_of(page)
    assert released[PROVED_BY][0] == "Benutzername"
    assert released["urn:oid:2.5.4.42"] == ("Erika", "UNTERGEORDNET")
    assert "urn:oid:1.2.40.0.10.2.1.1.55" not in released


def test_a_citizen_logged_in_with_a_password_steps_up_with_the_eid_and_the_session_rises(
        sso_app: Flask, visitor: Browser, portal: Portal) -> None:
    logged_in(sso_app, visitor)
    card_id = card(sso_app)
    login_page = to_login_page(visitor, portal, requested_authn_context=level(
        "STORK-QAA-Level-4"))
    assert "Sie sind mit Benutzername und Passwort angemeldet" in visitor.last_html
    page = answer(visitor, read_card(visitor, login_page, card_id))
    assert class_ref_of(page) == "STORK-QAA-Level-4"
    portal.receive(page)
    # The session stays at level 4: the next login of the portal needs no card.
    path, _ = portal.login_url()
    again = answer(visitor, visitor.get(path))
    assert class_ref_of(again) == "STORK-QAA-Level-4"
    assert attributes_of(again)[PROVED_BY][0] == "eID"


def test_a_password_login_at_a_level_3_request_is_told_the_level_needed_is_substantiell(
        sso_app: Flask, visitor: Browser, portal: Portal) -> None:
    logged_in(sso_app, visitor)
    to_login_page(visitor, portal, requested_authn_context=level("STORK-QAA-Level-3"))
    assert "verlangt das Vertrauensniveau „substantiell“" in visitor.last_html
    assert "Vertrauensniveau „basisregistriert“" in visitor.last_html


@pytest.mark.parametrize("portal_changes", [LEVEL_4_POLICY])
def test_a_card_of_level_substantiell_at_a_portal_needing_hoch_is_told_why_and_may_cancel(
        sso_app: Flask, visitor: Browser, portal: Portal) -> None:
    """An eAT persona of level 3 (docs/qa-workbench.md) reads its card for a level-4 portal."""
    registered(sso_app, visitor)
    with sso_app.app_context():
        db.session.execute(Citizen.__table__.update().values(trust_level=3))
        db.session.commit()
    login_page = to_login_page(visitor, portal)
    response = read_card(visitor, login_page, card(sso_app))
    while response.status_code == 302:
        response = visitor.get(response.location)
    page = visitor.last_html
    assert "Ihr Ausweis erreicht das Vertrauensniveau „substantiell“" in page
    assert "verlangt das Vertrauensniveau „hoch“" in page
    assert "Mit einem anderen Ausweis anmelden" in page
    reference = parse_qs(urlsplit(login_page).query)["anfrage"][0]
    cancelled = visitor.submit(f"/saml/abbrechen/{reference}", {"ausweis": "1"})
    with pytest.raises(StatusNoAuthnContext):
        portal.receive(cancelled.get_data(as_text=True))


@pytest.mark.parametrize("portal_changes", [LEVEL_4_POLICY])
def test_after_hochstufen_the_session_is_at_level_hoch_and_a_level_4_portal_needs_no_card(
        sso_app: Flask, visitor: Browser, portal: Portal) -> None:
    logged_in(sso_app, visitor)
    card_id = card(sso_app, holder=None)
    visitor.get("/konto/hochstufen")
    read = visitor.submit("/konto/hochstufen", {"card": str(card_id), "pin": PIN})
    visitor.get(read.location)
    assert visitor.submit("/konto/hochstufen/bestaetigen").status_code == 302
    path, _ = portal.login_url()
    page = answer(visitor, visitor.get(path))
    portal.receive(page)
    assert class_ref_of(page) == "STORK-QAA-Level-4"
    released = attributes_of(page)
    assert released[PROVED_BY][0] == "eID"
    assert released["urn:oid:1.2.40.0.10.2.1.1.55"] == ("1964-08-12", "HOCH")


def test_a_password_login_after_an_eid_login_drops_the_session_to_level_1(
        sso_app: Flask, visitor: Browser, portal: Portal) -> None:
    eid_login(sso_app, registered(sso_app, visitor), portal)
    visitor.get("/anmelden")
    visitor.submit("/anmelden", {"username": "ErikaM", "password": "Kräftig-Grün 42"})
    path, _ = portal.login_url()
    page = answer(visitor, visitor.get(path))
    assert class_ref_of(page) == "STORK-QAA-Level-1"
    assert "urn:oid:1.2.40.0.10.2.1.1.55" not in attributes_of(page)


def test_three_wrong_pins_count_down_and_the_third_blocks_the_card(
        sso_app: Flask, visitor: Browser, portal: Portal) -> None:
    registered(sso_app, visitor)
    card_id = card(sso_app)
    login_page = to_login_page(visitor, portal)
    first = read_card(visitor, login_page, card_id, "000000")
    assert first.status_code == 401 and "Sie haben noch 2 Versuche" in visitor.last_html
    read_card(visitor, login_page, card_id, "000000")
    assert "Sie haben noch einen Versuch" in visitor.last_html
    third = read_card(visitor, login_page, card_id, "000000")
    assert third.status_code == 403 and "PUK" in visitor.last_html
    # Blocked: the right PIN no longer opens it.
    read_card(visitor, login_page, card_id, PIN)
    assert "PIN Ihres Ausweises ist gesperrt" in visitor.last_html
    with sso_app.app_context():
        assert db.session.get(EidTestCard, card_id).state == CardState.PIN_BLOCKED


def blocked(app: Flask, visitor: Browser, portal: Portal, **card_data: Any) -> tuple[int, str]:
    """Erika's card, its PIN blocked by three wrong entries; the card and the login page."""
    registered(app, visitor)
    card_id = card(app, **card_data)
    login_page = to_login_page(visitor, portal)
    for _ in range(3):
        read_card(visitor, login_page, card_id, "000000")
    return card_id, login_page


def enter_puk(visitor: Browser, login_page: str, card_id: int, puk: str) -> Any:
    anfrage = parse_qs(urlsplit(login_page).query)["anfrage"][0]
    return visitor.submit(f"/ausweis/puk?anfrage={anfrage}",
                          {"card": str(card_id), "puk": puk, "schritt": "anmelden"})


def test_a_blocked_pin_is_unblocked_with_the_puk_and_the_login_goes_on_with_the_pin(
        sso_app: Flask, visitor: Browser, portal: Portal) -> None:
    card_id, login_page = blocked(sso_app, visitor, portal)
    assert "PIN mit der PUK entsperren" in visitor.last_html
    response = enter_puk(visitor, login_page, card_id, PUK)
    assert response.status_code == 200
    assert "Die PIN Ihres Ausweises ist entsperrt" in visitor.last_html
    with sso_app.app_context():
        unblocked = db.session.get(EidTestCard, card_id)
        assert (unblocked.state, unblocked.wrong_pins, unblocked.puk_uses) == (
            CardState.VALID, 0, 1)
    page = answer(visitor, read_card(visitor, login_page, card_id))
    assert class_ref_of(page) == "STORK-QAA-Level-4"


def test_a_wrong_puk_counts_down_its_ten_uses_and_then_only_the_buergeramt_helps(
        sso_app: Flask, visitor: Browser, portal: Portal) -> None:
    card_id, login_page = blocked(sso_app, visitor, portal)
    first = enter_puk(visitor, login_page, card_id, "0000000000")
    assert first.status_code == 401
    assert "Sie können die PUK noch 9-mal eingeben" in visitor.last_html
    for _ in range(9):
        enter_puk(visitor, login_page, card_id, "0000000000")
    assert "Die PUK Ihres Ausweises ist verbraucht" in visitor.last_html
    # Used up: the right PUK no longer helps, and the PIN stays blocked.
    assert enter_puk(visitor, login_page, card_id, PUK).status_code == 403
    assert "Die PUK Ihres Ausweises ist verbraucht" in visitor.last_html
    with sso_app.app_context():
        assert db.session.get(EidTestCard, card_id).state == CardState.PIN_BLOCKED


@pytest.mark.parametrize(("puk", "card_data", "status", "message"), [
    ("12345", {}, 422, "Die PUK besteht aus zehn Ziffern."),
    (PUK, {"puk": None}, 403, "Zu diesem Testausweis gibt es keinen PIN-Brief mit PUK."),
])
def test_a_puk_of_the_wrong_length_or_a_card_without_a_pin_letter_costs_no_use(
        sso_app: Flask, visitor: Browser, portal: Portal, puk: str, card_data: dict[str, Any],
        status: int, message: str) -> None:
    card_id, login_page = blocked(sso_app, visitor, portal, **card_data)
    assert enter_puk(visitor, login_page, card_id, puk).status_code == status
    assert message in visitor.last_html
    with sso_app.app_context():
        assert db.session.get(EidTestCard, card_id).puk_uses == 0


def test_the_puk_of_a_card_whose_pin_is_not_blocked_changes_nothing(
        sso_app: Flask, visitor: Browser, portal: Portal) -> None:
    registered(sso_app, visitor)
    card_id = card(sso_app)
    login_page = to_login_page(visitor, portal)
    visitor.get(ausweis_url(login_page))
    assert enter_puk(visitor, login_page, card_id, PUK).status_code == 409
    assert "Die PIN dieses Ausweises ist nicht gesperrt" in visitor.last_html
    with sso_app.app_context():
        assert db.session.get(EidTestCard, card_id).puk_uses == 0


def test_the_right_pin_after_a_wrong_one_resets_the_count(
        sso_app: Flask, visitor: Browser, portal: Portal) -> None:
    registered(sso_app, visitor)
    card_id = card(sso_app)
    login_page = to_login_page(visitor, portal)
    read_card(visitor, login_page, card_id, "000000")
    assert read_card(visitor, login_page, card_id).status_code == 302
    with sso_app.app_context():
        assert db.session.get(EidTestCard, card_id).wrong_pins == 0


@pytest.mark.parametrize(("state", "message"), [
    (CardState.EXPIRED, "Ihr Ausweis ist abgelaufen"),
    (CardState.REVOKED, "Ihr Ausweis wurde gesperrt"),
])
def test_expired_and_revoked_cards_are_refused_with_their_messages(
        sso_app: Flask, visitor: Browser, portal: Portal, state: CardState,
        message: str) -> None:
    registered(sso_app, visitor)
    card_id = card(sso_app, state=state)
    login_page = to_login_page(visitor, portal)
    response = read_card(visitor, login_page, card_id)
    assert response.status_code == 403 and message in visitor.last_html
    assert visitor.get("/konto").status_code == 302  # nobody logged in


def test_a_card_without_an_account_is_told_that_registration_with_the_eid_comes_later(
        sso_app: Flask, visitor: Browser, portal: Portal) -> None:
    card_id = card(sso_app, holder=None)
    login_page = to_login_page(visitor, portal)
    assert read_card(visitor, login_page, card_id).status_code == 403
    assert "Zu diesem Ausweis gibt es noch kein Servicekonto" in visitor.last_html


@pytest.mark.parametrize(("chosen", "pin", "message"), [
    ("", PIN, "Bitte wählen Sie einen Testausweis aus."),
    ("abc", PIN, "Bitte wählen Sie einen Testausweis aus."),
    ("99999999999999999999", PIN, "Bitte wählen Sie einen Testausweis aus."),
    (None, "12345", "Die PIN besteht aus sechs Ziffern."),
    (None, "１２３４５６", "Die PIN besteht aus sechs Ziffern."),
])
def test_bad_input_in_the_ausweisapp_step_gets_a_message_and_costs_no_try(
        sso_app: Flask, visitor: Browser, portal: Portal, chosen: str | None, pin: str,
        message: str) -> None:
    registered(sso_app, visitor)
    card_id = card(sso_app)
    login_page = to_login_page(visitor, portal)
    url = ausweis_url(login_page)
    visitor.get(url)
    response = visitor.submit(url, {"card": str(card_id) if chosen is None else chosen,
                                    "pin": pin})
    assert response.status_code == 422 and message in visitor.last_html
    with sso_app.app_context():
        assert db.session.get(EidTestCard, card_id).wrong_pins == 0


@pytest.mark.parametrize("portal_changes", [LEVEL_4_POLICY])
def test_cancelling_where_only_the_eid_reaches_the_level_answers_no_authn_context(
        sso_app: Flask, visitor: Browser, portal: Portal) -> None:
    login_page = to_login_page(visitor, portal)
    reference = parse_qs(urlsplit(login_page).query)["anfrage"][0]
    visitor.get(ausweis_url(login_page))
    page = visitor.submit(f"/saml/abbrechen/{reference}", {"ausweis": "1"}).get_data(
        as_text=True)
    with pytest.raises(StatusNoAuthnContext):
        portal.receive(page)


def test_cancelling_the_password_login_at_a_level_1_portal_stays_authn_failed(
        sso_app: Flask, visitor: Browser, portal: Portal) -> None:
    login_page = to_login_page(visitor, portal)
    reference = parse_qs(urlsplit(login_page).query)["anfrage"][0]
    # Also from the AusweisApp step: a password would still have done.
    page = visitor.submit(f"/saml/abbrechen/{reference}", {"ausweis": "1"}).get_data(
        as_text=True)
    with pytest.raises(StatusAuthnFailed):
        portal.receive(page)


def test_cancelling_the_ausweisapp_where_a_password_would_do_returns_to_the_login_page(
        sso_app: Flask, visitor: Browser, portal: Portal) -> None:
    login_page = to_login_page(visitor, portal)
    visitor.get(ausweis_url(login_page))
    assert 'form id="abbrechen" method="get" action="/anmelden"' in visitor.last_html


def test_a_portal_whose_authn_methods_disable_the_eid_gets_no_authn_context_for_level_4(
        sso_app: Flask, visitor: Browser, portal: Portal) -> None:
    path, _ = portal.login_url(requested_authn_context=level("STORK-QAA-Level-4"),
                               extensions=bundid(methods={"Benutzername": True, "eID": False}))
    with pytest.raises(StatusNoAuthnContext):
        portal.receive(visitor.client.get(path).get_data(as_text=True))


def test_a_portal_that_enables_only_the_eid_gets_a_login_page_without_the_password_form(
        sso_app: Flask, visitor: Browser, portal: Portal) -> None:
    to_login_page(visitor, portal, extensions=bundid(methods={"Benutzername": False,
                                                              "eID": True}))
    assert 'name="password"' not in visitor.last_html
    assert "Weiter zur Online-Ausweisfunktion" in visitor.last_html


def authn_times(page: str) -> tuple[datetime, datetime]:
    statement = assertion_of(page).find(f"{{{SAML}}}AuthnStatement")
    return (datetime.fromisoformat(statement.get("AuthnInstant").replace("Z", "+00:00")),
            datetime.fromisoformat(statement.get("SessionNotOnOrAfter").replace("Z", "+00:00")))


def test_an_eid_session_lasts_30_minutes_and_5_without_a_request(
        sso_app: Flask, visitor: Browser, portal: Portal, clock: Clock) -> None:
    page = eid_login(sso_app, registered(sso_app, visitor), portal)
    instant, not_after = authn_times(page)
    assert (not_after - instant).total_seconds() == 30 * 60
    clock.advance(minutes=4)
    assert visitor.get("/konto").status_code == 200
    clock.advance(minutes=4)
    assert visitor.get("/konto").status_code == 200
    clock.advance(minutes=5, seconds=1)
    assert visitor.get("/konto").status_code == 302  # 5 minutes without a request: ended
    # A new eID login at the IdP itself; with a request every 4 minutes it ends after 30.
    with sso_app.app_context():
        card_id = db.session.scalar(select(EidTestCard.id))
    visitor.get("/ausweis")
    assert visitor.submit("/ausweis", {"card": str(card_id), "pin": PIN}).status_code == 302
    for _ in range(7):
        clock.advance(minutes=4)
        assert visitor.get("/konto").status_code == 200
    clock.advance(minutes=2, seconds=1)
    assert visitor.get("/konto").status_code == 302


def test_a_level_3_session_ends_after_30_minutes_without_a_request_and_2_hours_in_all(
        sso_app: Flask, visitor: Browser, clock: Clock) -> None:
    registered(sso_app, visitor)
    with sso_app.app_context():
        db.session.execute(Citizen.__table__.update().values(trust_level=3))
        db.session.commit()
    card_id = card(sso_app)
    visitor.get("/ausweis")
    assert visitor.submit("/ausweis", {"card": str(card_id), "pin": PIN}).status_code == 302
    clock.advance(minutes=29)
    assert visitor.get("/konto").status_code == 200
    clock.advance(minutes=30, seconds=1)
    assert visitor.get("/konto").status_code == 302
    visitor.get("/ausweis")
    assert visitor.submit("/ausweis", {"card": str(card_id), "pin": PIN}).status_code == 302
    for _ in range(4):
        clock.advance(minutes=29)
        assert visitor.get("/konto").status_code == 200
    clock.advance(minutes=5)
    assert visitor.get("/konto").status_code == 302  # 2 hours after the login


def test_a_password_session_lasts_12_hours_and_60_minutes_without_a_request(
        sso_app: Flask, visitor: Browser, portal: Portal, clock: Clock) -> None:
    logged_in(sso_app, visitor)
    path, _ = portal.login_url()
    instant, not_after = authn_times(answer(visitor, visitor.get(path)))
    assert (not_after - instant).total_seconds() == 12 * 3600
    clock.advance(minutes=55)
    assert visitor.get("/konto").status_code == 200
    clock.advance(minutes=61)
    assert visitor.get("/konto").status_code == 302


def test_without_the_simulation_the_login_page_says_not_yet_available_and_there_is_no_step(
        settings: dict[str, Any]) -> None:
    from idp import create_app

    app = create_app(test_config=settings | {"eid_simulation": False}, env={})
    client = app.test_client()
    page = client.get("/anmelden").get_data(as_text=True)
    assert "Anmelden mit der Online-Ausweisfunktion <small>(noch nicht verfügbar)</small>" in page
    assert client.get("/ausweis").status_code == 404
    db.bound(app).engine.dispose()
