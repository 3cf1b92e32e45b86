"""A citizen's data as one JSON document: the copy GDPR Art. 15 owes, machine-readable as
Art. 20 asks ("Meine Daten herunterladen", ``servicekonto user export``).

No Flask here. Every table holding the citizen's data is described once in :data:`TABLES`:
which column goes under which key, which is left out and why. The file itself lists what it
leaves out ("nicht_enthalten"), and tests/unit/accounts/test_export_completeness.py walks the
data model and fails for any column described nowhere, so a new one cannot be forgotten.
The format: docs/features.md, "Meine Daten herunterladen".
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from idp.accounts.models import AccountToken, Citizen, TokenPurpose
from idp.accounts.tokens import LinkState, link_state
from idp.broker.models import ExternalLink
from idp.consent.models import Consent
from idp.german import LOCAL_TIME
from idp.saml.models import PersistentNameId, PortalSession
from idp.samlkit.bundid import in_attribute_order, label_of
from idp.security.models import BrowserSession
from idp.security.sessions import TRUST_LEVEL_KEY
from idp.testing.models import EidTestCard

# Raised with every change of a key's name or meaning, so that a program reading the file can
# tell which version it holds.
FORMAT = "servicekonto-export/1"

NOTES = (
    "Alle Daten, die das Servicekonto über Sie gespeichert hat (Auskunft nach Art. 15 DSGVO, "
    "maschinenlesbar nach Art. 20 DSGVO).",
    "Zeitangaben: ISO 8601 in deutscher Zeit mit Abstand zu UTC "
    "(2026-07-01T12:30:00+02:00).",
    "Vertrauensniveau: 1 und 2 basisregistriert, 3 substantiell, 4 hoch "
    "(Online-Ausweisfunktion).",
    "Portal: die Kennung (Entity ID), unter der das Portal beim Servicekonto registriert ist.",
    "Was nicht enthalten ist und warum, steht unter „nicht_enthalten“.",
)


def _plain(value: Any) -> object:
    """A column's value as JSON: times in German local time with their offset, dates as ISO."""
    if isinstance(value, datetime):
        return value.astimezone(LOCAL_TIME).isoformat(timespec="seconds")
    if isinstance(value, date):
        return value.isoformat()
    return value


def _coded(words: Mapping[str, str]) -> Callable[[Any], object]:
    """A code column in German words; a code without a word as it is stored."""
    return lambda code: None if code is None else words.get(str(code), str(code))


def _attributes(names: str) -> list[dict[str, str]]:
    """A consent's attribute Names (space-separated) with their German labels, in BundID order."""
    return [{"name": name, "bezeichnung": label_of(name)}
            for name in in_attribute_order(names.split())]


def _trust_level(data: str) -> object:
    """Only the level a session's login reached; the rest of its data is left out (below)."""
    try:
        stored = json.loads(data)
    except ValueError:
        return None
    return stored.get(TRUST_LEVEL_KEY) if isinstance(stored, dict) else None


@dataclass(frozen=True)
class Field:
    """A column as the export shows it: under ``key``, its value made JSON by ``convert``."""

    key: str
    convert: Callable[[Any], object] = _plain


@dataclass(frozen=True)
class Omission:
    """Something the export leaves out, in the citizen's words, and why."""

    what: str
    why: str

    def as_entry(self) -> dict[str, str]:
        return {"was": self.what, "warum": self.why}


@dataclass(frozen=True)
class TableExport:
    """One table of the citizen's data: every column either exported (``fields``) or left out
    with its reason (``left_out``); the completeness test holds this true."""

    fields: Mapping[str, Field]
    left_out: Mapping[str, Omission]

    def row(self, record: object) -> dict[str, object]:
        return {entry.key: entry.convert(getattr(record, column))
                for column, entry in self.fields.items()}


# --- what is left out, and why -------------------------------------------------------------

ROW_NUMBERS = Omission("interne Nummern der Datenbankzeilen und ihre Verweise aufeinander",
                       "sie bedeuten außerhalb des Servicekontos nichts")
COMPARISON_FORMS = Omission(
    "die Vergleichsformen von Benutzername und E-Mail-Adresse (vereinheitlicht, klein "
    "geschrieben)", "sie werden aus den enthaltenen Angaben berechnet")
# A secret: it lets anyone who has it guess the password offline.
PASSWORD_HASH = Omission(
    "Ihr Passwort", "gespeichert ist nur ein Hashwert; auch er bleibt geheim, weil er das "
    "Erraten Ihres Passworts erleichtern würde")
# The SHA-256 of the links mailed: a security feature that says nothing about the citizen.
LINK_HASHES = Omission("die Prüfwerte der per E-Mail gesendeten Links",
                       "sie sind Sicherheitsmerkmale und sagen nichts über Sie")
# Whoever holds a session's id is logged in as the citizen; only its hash is stored.
SESSION_IDS = Omission(
    "die Kennungen Ihrer Sitzungen (Cookies)",
    "mit ihnen könnte sich jemand als Sie anmelden; gespeichert sind nur Prüfwerte")
# The card's secrets (a test card's are in its persona file, a real one's with its holder).
CARD_SECRETS = Omission("PIN und PUK des Ausweises",
                        "sie sind Geheimnisse, die nur Sie kennen sollen")
# Not rows of the citizen's tables, but what a reader might look for.
ELSEWHERE = (
    # The session's data beyond its level: the CSRF token (a secret), a login in progress, and
    # what a card gave at login (the card is exported under "ausweise").
    Omission("weitere Sitzungsdaten (Schutz gegen gefälschte Formulare, laufende Anmeldungen)",
             "sie sind Sicherheitsmerkmale oder gelten nur während einer Anmeldung; die Daten "
             "Ihres Ausweises stehen unter „ausweise“"),
    # Kept by address, not by account (an address may have had another owner before), and
    # they carry links that may still work.
    Omission("die E-Mails, die wir Ihnen gesendet haben",
             "sie enthalten Links, die noch gültig sein können, und werden nach einigen Tagen "
             "gelöscht; Sie haben sie in Ihrem Postfach"),
    Omission("Zähler fehlgeschlagener Anmeldungen und offene „vergessen“-Anfragen",
             "sie schützen vor dem Erraten von Passwörtern und verfallen nach kurzer Zeit"),
    Omission("Einträge im Protokoll des Servicekontos",
             "sie stehen in den Protokolldateien des Betreibers, nicht in der Datenbank; "
             "Auskunft daraus gibt der Betreiber auf Anfrage"),
)

# --- what is exported ----------------------------------------------------------------------

_STATUS = {"active": "aktiv", "pending": "nicht_aktiviert"}
_PURPOSE: dict[str, str] = {TokenPurpose.ACTIVATION: "aktivierung",
            TokenPurpose.PASSWORD_RESET: "passwort_zuruecksetzen",
            TokenPurpose.EMAIL_CHANGE: "e_mail_aendern"}
_LINK_STATE = {LinkState.USABLE: "gueltig", LinkState.USED: "verwendet",
               LinkState.REPLACED: "ersetzt", LinkState.EXPIRED: "abgelaufen"}
_CARD_STATE = {"valid": "gueltig", "expired": "abgelaufen", "revoked": "gesperrt",
               "pin_blocked": "pin_gesperrt"}
_PORTAL = Field("portal")

# Table name -> how its columns appear. Every table with a foreign key to citizen is here.
TABLES: dict[str, TableExport] = {
    "citizen": TableExport(
        fields={"username": Field("benutzername"), "email": Field("e_mail"),
                "salutation": Field("anrede"), "given_name": Field("vorname"),
                "surname": Field("nachname"), "birth_name": Field("geburtsname"),
                "status": Field("status", _coded(_STATUS)),
                "trust_level": Field("vertrauensniveau"),
                "created_at": Field("registriert_am"), "activated_at": Field("aktiviert_am"),
                "password_changed_at": Field("passwort_geaendert_am"),
                "privacy_version": Field("datenschutzhinweis_version"),
                "privacy_accepted_at": Field("datenschutzhinweis_akzeptiert_am")},
        left_out={"id": ROW_NUMBERS, "username_key": COMPARISON_FORMS,
                  "email_key": COMPARISON_FORMS, "password_hash": PASSWORD_HASH}),
    # Each "ZUSTIMMEN" with its proof, revoked ones too (the history is the proof).
    "consent": TableExport(
        fields={"portal_entity_id": _PORTAL, "attributes": Field("daten", _attributes),
                "given_at": Field("erteilt_am"),
                "privacy_version": Field("datenschutzhinweis_version"),
                "online_service_id": Field("onlinedienst"),
                "revoked_at": Field("widerrufen_am")},
        left_out={"id": ROW_NUMBERS, "citizen_id": ROW_NUMBERS}),
    # The pairwise identifier per portal, sent as persistent NameID and as bPK2.
    "saml_persistent_name_id": TableExport(
        fields={"portal_entity_id": _PORTAL, "value": Field("kennung"),
                "created_at": Field("erstellt_am")},
        left_out={"id": ROW_NUMBERS, "citizen_id": ROW_NUMBERS}),
    "saml_portal_session": TableExport(
        fields={"portal_entity_id": _PORTAL, "name_id": Field("name_id"),
                "name_id_format": Field("name_id_format"),
                "session_index": Field("session_index"), "created_at": Field("angemeldet_am")},
        left_out={"id": ROW_NUMBERS, "citizen_id": ROW_NUMBERS,
                  "browser_session_hash": SESSION_IDS}),
    "browser_session": TableExport(
        fields={"created_at": Field("begonnen_am"), "authenticated_at": Field("angemeldet_am"),
                "last_seen_at": Field("zuletzt_aktiv_am"),
                "expires_at": Field("endet_spaetestens_am"),
                "data": Field("vertrauensniveau", _trust_level)},
        left_out={"id_hash": SESSION_IDS, "citizen_id": ROW_NUMBERS}),
    "account_token": TableExport(
        fields={"purpose": Field("zweck", _coded(_PURPOSE)),
                "new_email": Field("neue_e_mail"), "created_at": Field("gesendet_am"),
                "expires_at": Field("gueltig_bis"), "used_at": Field("verwendet_am"),
                "voided_at": Field("ersetzt_am")},
        left_out={"id": ROW_NUMBERS, "citizen_id": ROW_NUMBERS, "token_hash": LINK_HASHES}),
    # The eID (test) card linked to the account.
    "eid_test_card": TableExport(
        fields={"document_type": Field("ausweisart"), "given_name": Field("vornamen"),
                "surname": Field("familienname"), "birth_name": Field("geburtsname"),
                "doctoral_degree": Field("doktorgrad"),
                "date_of_birth": Field("geburtsdatum"), "place_of_birth": Field("geburtsort"),
                "street": Field("strasse"), "postal_code": Field("postleitzahl"),
                "locality": Field("wohnort"), "country": Field("land"),
                "nationality": Field("staatsangehoerigkeit"),
                "pseudonym": Field("pseudonym"), "state": Field("status", _coded(_CARD_STATE)),
                "wrong_pins": Field("falsche_pin_eingaben"),
                "puk_uses": Field("puk_eingaben"), "persona": Field("testperson")},
        left_out={"id": ROW_NUMBERS, "citizen_id": ROW_NUMBERS, "pin": CARD_SECRETS,
                  "puk": CARD_SECRETS}),
    # The accounts of other states' Servicekonten linked to this one (idp/broker/).
    "broker_external_link": TableExport(
        fields={"upstream": Field("externes_servicekonto"), "name_id": Field("kennung_dort"),
                "made_for_it": Field("fuer_die_anmeldung_dort_angelegt"),
                "bpk2_prefix": Field("praefix_der_portal_kennungen"),
                "linked_at": Field("verknuepft_am"),
                "last_login_at": Field("zuletzt_angemeldet_am")},
        left_out={"id": ROW_NUMBERS, "citizen_id": ROW_NUMBERS}),
}


def left_out() -> list[Omission]:
    """Everything the export leaves out, each once, in the order of :data:`TABLES`."""
    omissions = [omission for table in TABLES.values() for omission in table.left_out.values()]
    return list(dict.fromkeys([*omissions, *ELSEWHERE]))


def export(session: Session, citizen: Citizen, now: datetime,
           portal_names: Mapping[str, str] | None = None) -> dict[str, object]:
    """Everything the database holds about ``citizen`` but secrets, in :data:`FORMAT`;
    ``portal_names`` (entity id -> display name) names the portals for the reader."""
    names = portal_names or {}

    def rows(model: Any, *order: Any) -> list[tuple[Any, dict[str, object]]]:
        found = session.scalars(
            select(model).where(model.citizen_id == citizen.id).order_by(*order))
        table = TABLES[model.__tablename__]
        return [(record, table.row(record)) for record in found]

    def at_portals(model: Any, *order: Any) -> list[dict[str, object]]:
        return [{**row, "portalname": names.get(record.portal_entity_id)}
                for record, row in rows(model, *order)]

    links = [{**row, "status": _LINK_STATE[link_state(record, now)]}
             for record, row in rows(AccountToken, AccountToken.created_at, AccountToken.id)]
    return {
        "format": FORMAT,
        "erstellt_am": _plain(now),
        "hinweise": list(NOTES),
        "konto": TABLES["citizen"].row(citizen),
        # A new link voids the older ones of its purpose: at most one is usable.
        "ausstehende_e_mail_aenderung": next(
            (link["neue_e_mail"] for link in links
             if link["zweck"] == _PURPOSE[TokenPurpose.EMAIL_CHANGE]
             and link["status"] == _LINK_STATE[LinkState.USABLE]), None),
        "zustimmungen": at_portals(Consent, Consent.given_at, Consent.id),
        "portal_kennungen": at_portals(PersistentNameId, PersistentNameId.created_at,
                                       PersistentNameId.id),
        "portal_anmeldungen": at_portals(PortalSession, PortalSession.created_at,
                                         PortalSession.id),
        "sitzungen": [row for _, row in rows(BrowserSession, BrowserSession.created_at)],
        "links": links,
        "ausweise": [row for _, row in rows(EidTestCard, EidTestCard.id)],
        "externe_servicekonten": [row for _, row in rows(ExternalLink, ExternalLink.linked_at,
                                                         ExternalLink.id)],
        "nicht_enthalten": [omission.as_entry() for omission in left_out()],
    }


def as_json(document: Mapping[str, object]) -> str:
    """The document as the file holds it: UTF-8 text, indented, umlauts as they are."""
    return json.dumps(document, ensure_ascii=False, indent=2) + "\n"


def file_name(citizen: Citizen, now: datetime) -> str:
    """"servicekonto-daten-ErikaM-2026-12-05.json" (the date in German local time)."""
    return f"servicekonto-daten-{citizen.username}-{now.astimezone(LOCAL_TIME):%Y-%m-%d}.json"
