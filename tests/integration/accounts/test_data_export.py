""""Meine Daten herunterladen": a citizen downloads everything the Servicekonto holds about her
(GDPR Art. 15 and 20) as a JSON file, and nothing secret is in it."""

from __future__ import annotations

import hashlib
import json
import re
from datetime import UTC, date, datetime
from typing import Any

from flask import Flask
from sqlalchemy import select
from werkzeug.http import parse_options_header

from idp.accounts import export
from idp.accounts.models import AccountToken, Citizen
from idp.clock import utcnow
from idp.consent import records
from idp.db import db
from idp.saml.identifiers import persistent_name_id
from idp.saml.state import remember_portal_session
from idp.samlkit.bundid import BPK2, GIVEN_NAME, MAIL, SURNAME
from idp.security.models import BrowserSession
from idp.testing.models import CardState, EidTestCard
from tests.conftest import GOOD_PASSWORD, Browser, csrf_from, log_in

DOWNLOAD = "/konto/daten-herunterladen"
DUEREN = "https://buergerportal.dueren.example/saml/metadata"
MAGS = "https://mags.moenchengladbach.example/sp"
PERSISTENT = "urn:oasis:names:tc:SAML:2.0:nameid-format:persistent"
# Distinctive, so that finding them anywhere in the file is no coincidence.
CARD_PIN, CARD_PUK = "918273", "5647382910"


def erika(app: Flask) -> int:
    with app.app_context():
        found = db.session.scalar(select(Citizen.id).where(Citizen.username == "ErikaM"))
    assert found is not None
    return found


def download(browser: Browser) -> dict[str, Any]:
    response = browser.get(DOWNLOAD)
    assert response.status_code == 200, browser.last_html
    document: dict[str, Any] = json.loads(response.get_data(as_text=True))
    return document


def agree(app: Flask, citizen: int, portal: str, names: tuple[str, ...], at: datetime) -> int:
    with app.app_context():
        return records.give_consent(db.session, citizen, portal, names, at, "2026-11").id


def link_card(app: Flask, citizen: int) -> None:
    """Erika's test card, linked to her account (as "Konto hochstufen" leaves it)."""
    with app.app_context():
        db.session.add(EidTestCard(
            persona="erika", citizen_id=citizen, document_type="ID", given_name="Erika",
            surname="Mustermann", birth_name="Gabler", date_of_birth=date(1964, 8, 12),
            place_of_birth="Berlin", street="Heidestraße 17", postal_code="51147",
            locality="Köln", country="DE", nationality="D", pseudonym="a1b2c3",
            doctoral_degree="Dr.", pin=CARD_PIN, puk=CARD_PUK, state=CardState.VALID))
        db.session.commit()


def test_a_logged_in_citizen_downloads_her_data_as_a_json_file(citizen: Browser) -> None:
    log_in(citizen)
    page = citizen.get("/konto").get_data(as_text=True)
    assert f'href="{DOWNLOAD}">Meine Daten herunterladen</a>' in page

    response = citizen.get(DOWNLOAD)
    assert response.status_code == 200
    assert response.mimetype == "application/json"
    assert response.headers["Cache-Control"] == "no-store"
    disposition, options = parse_options_header(response.headers["Content-Disposition"])
    assert disposition == "attachment"
    document = json.loads(response.get_data(as_text=True))
    day = document["erstellt_am"][:10]
    assert options["filename"] == f"servicekonto-daten-ErikaM-{day}.json"
    assert document["format"] == "servicekonto-export/1"
    account = document["konto"]
    assert {key: account[key] for key in (
        "benutzername", "e_mail", "anrede", "vorname", "nachname", "geburtsname", "status",
        "vertrauensniveau", "datenschutzhinweis_version")} == {
        "benutzername": "ErikaM", "e_mail": "erika.mustermann@example.org", "anrede": "frau",
        "vorname": "Erika", "nachname": "Mustermann", "geburtsname": "Gabler",
        "status": "aktiv", "vertrauensniveau": 1, "datenschutzhinweis_version": "2026-11"}
    # Times in German local time with their offset, as the file's notes say.
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+0[12]:00", account["registriert_am"])
    # This very session is one of her sessions, at the level of her password login.
    assert [entry["vertrauensniveau"] for entry in document["sitzungen"]] == [1]
    assert [link["zweck"] for link in document["links"]] == ["aktivierung"]
    assert document["links"][0]["status"] == "verwendet"
    assert document["ausstehende_e_mail_aenderung"] is None
    assert document["ausweise"] == []


def test_without_a_login_the_download_leads_to_the_login_page(citizen: Browser) -> None:
    response = citizen.get(DOWNLOAD)
    assert response.status_code == 302
    assert response.location == "/anmelden"


def test_the_file_shows_consents_at_two_portals_with_their_proof(
        app: Flask, citizen: Browser) -> None:
    erika_id = erika(app)
    # 10:30 UTC is 12:30 in Germany in summer, 11:30 in winter.
    agree(app, erika_id, DUEREN, (GIVEN_NAME, SURNAME, MAIL),
          datetime(2026, 7, 1, 10, 30, tzinfo=UTC))
    mags = agree(app, erika_id, MAGS, (BPK2, GIVEN_NAME),
                 datetime(2026, 11, 2, 10, 30, tzinfo=UTC))
    with app.app_context():
        records.revoke_consent(db.session, erika_id, mags,
                               datetime(2026, 11, 3, 9, 0, tzinfo=UTC))
        identifier = persistent_name_id(db.session, erika_id, MAGS, utcnow())
    log_in(citizen)
    document = download(citizen)

    assert document["zustimmungen"] == [
        {"portal": DUEREN, "portalname": None,
         "daten": [{"name": GIVEN_NAME, "bezeichnung": "Vorname"},
                   {"name": SURNAME, "bezeichnung": "Nachname"},
                   {"name": MAIL, "bezeichnung": "E-Mail-Adresse"}],
         "erteilt_am": "2026-07-01T12:30:00+02:00", "datenschutzhinweis_version": "2026-11",
         "onlinedienst": None, "widerrufen_am": None},
        {"portal": MAGS, "portalname": None,
         "daten": [{"name": GIVEN_NAME, "bezeichnung": "Vorname"},
                   {"name": BPK2, "bezeichnung": "Servicekonto-Kennung (bPK2)"}],
         "erteilt_am": "2026-11-02T11:30:00+01:00", "datenschutzhinweis_version": "2026-11",
         "onlinedienst": None, "widerrufen_am": "2026-11-03T10:00:00+01:00"},
    ]
    assert [(entry["portal"], entry["kennung"]) for entry in document["portal_kennungen"]] == [
        (MAGS, identifier)]


def test_the_file_names_linked_portals_the_card_and_a_waiting_address_change(
        app: Flask, citizen: Browser) -> None:
    erika_id = erika(app)
    link_card(app, erika_id)
    log_in(citizen)
    citizen.get("/konto/email")
    citizen.submit("/konto/email", {"email": "erika@neu.example.org",
                                    "password": GOOD_PASSWORD})
    with app.app_context():
        identifier = persistent_name_id(db.session, erika_id, MAGS, utcnow())
        document = export.export(db.session, db.session.get(Citizen, erika_id), utcnow(),
                                 {MAGS: "Stadt Mönchengladbach"})
        index = remember_portal_session(db.session, "a-browser-session", erika_id, MAGS,
                                        identifier, PERSISTENT, utcnow())
        later = export.export(db.session, db.session.get(Citizen, erika_id), utcnow(), {})

    assert document["portal_kennungen"][0]["portalname"] == "Stadt Mönchengladbach"
    assert [(entry["portal"], entry["name_id"], entry["name_id_format"], entry["session_index"])
            for entry in later["portal_anmeldungen"]] == [(MAGS, identifier, PERSISTENT, index)]
    assert document["ausstehende_e_mail_aenderung"] == "erika@neu.example.org"
    change = document["links"][-1]
    assert (change["zweck"], change["neue_e_mail"], change["status"]) == (
        "e_mail_aendern", "erika@neu.example.org", "gueltig")
    [card] = document["ausweise"]
    assert card | {"falsche_pin_eingaben": 0} == {
        "testperson": "erika", "ausweisart": "ID", "vornamen": "Erika",
        "familienname": "Mustermann", "geburtsname": "Gabler", "doktorgrad": "Dr.",
        "geburtsdatum": "1964-08-12", "geburtsort": "Berlin", "strasse": "Heidestraße 17",
        "postleitzahl": "51147", "wohnort": "Köln", "land": "DE", "staatsangehoerigkeit": "D",
        "pseudonym": "a1b2c3", "status": "gueltig", "falsche_pin_eingaben": 0,
        "puk_eingaben": 0}


def test_no_secret_is_in_the_file_and_the_file_says_what_it_leaves_out(
        app: Flask, citizen: Browser) -> None:
    erika_id = erika(app)
    link_card(app, erika_id)
    log_in(citizen)
    csrf_token = csrf_from(citizen.get("/konto/email").get_data(as_text=True))
    cookie = citizen.client.get_cookie("servicekonto")
    assert cookie is not None
    with app.app_context():
        remember_portal_session(db.session, cookie.value, erika_id, MAGS, "transient-1",
                                PERSISTENT, utcnow())
        secrets = [
            db.session.scalar(select(Citizen.password_hash).where(Citizen.id == erika_id)),
            *db.session.scalars(select(AccountToken.token_hash)),
            *db.session.scalars(select(BrowserSession.id_hash)),
            *(json.loads(data)["csrf_token"]
              for data in db.session.scalars(select(BrowserSession.data))),
            cookie.value, hashlib.sha256(cookie.value.encode()).hexdigest(), csrf_token,
            CARD_PIN, CARD_PUK]
    text = citizen.get(DOWNLOAD).get_data(as_text=True)
    assert len(secrets) >= 9 and all(secrets)
    for secret in secrets:
        assert secret not in text
    left_out = {entry["was"]: entry["warum"] for entry in json.loads(text)["nicht_enthalten"]}
    assert "Ihr Passwort" in left_out
    assert "PIN und PUK des Ausweises" in left_out
    assert "die Kennungen Ihrer Sitzungen (Cookies)" in left_out
