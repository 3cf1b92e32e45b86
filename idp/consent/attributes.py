"""The BundID attribute catalogue and the values an account releases (docs/architecture.md,
"Attributes").

BundID's names and their order are in :mod:`idp.samlkit.bundid`; here each gets the value an
account has for it and an akdb:TrustLevel saying how well that value is verified.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from idp.accounts.models import Citizen, Salutation
from idp.samlkit import bundid
from idp.samlkit.bundid import (
    ASSERTION_PROVED_BY,
    BIRTH_NAME,
    BIRTHDATE,
    BPK2,
    COUNTRY,
    DOCUMENT_TYPE,
    GENDER,
    GIVEN_NAME,
    LOCALITY,
    MAIL,
    NATIONALITY,
    PERSONAL_TITLE,
    PLACE_OF_BIRTH,
    POSTAL_ADDRESS,
    POSTAL_CODE,
    PSEUDONYM,
    QAA_LEVEL,
    SURNAME,
    Gender,
    in_attribute_order,
    label_of,
)


class AttributeTrust(enum.StrEnum):
    """akdb:TrustLevel of one released value: how well we know it is true."""

    UNTERGEORDNET = "UNTERGEORDNET"  # entered by the citizen, unchecked
    NORMAL = "NORMAL"  # checked by us (a confirmed e-mail address, our own identifiers)
    SUBSTANTIELL = "SUBSTANTIELL"
    HOCH = "HOCH"  # read from an eID


@dataclass(frozen=True)
class Proof:
    """How the citizen was identified, as EID-CITIZEN-QAA-LEVEL and AssertionProvedBy say it."""

    qaa_level: str
    proved_by: str
    qaa_label: str  # the level in the citizen's words, for the consent page


# "Anmelden mit Benutzername und Passwort": basisregistriert, the lowest level.
BY_USERNAME = Proof(qaa_level="STORK-QAA-Level-1", proved_by="Benutzername",
                    qaa_label="basisregistriert")
# "Anmelden mit der Online-Ausweisfunktion": the card's data, level "hoch" (an eAT persona of
# level "substantiell" logs in at its own level, see idp/eid/simulation.py).
BY_EID = Proof(qaa_level="STORK-QAA-Level-4", proved_by="eID", qaa_label="hoch")
BY_EID_SUBSTANTIAL = Proof(qaa_level="STORK-QAA-Level-3", proved_by="eID",
                           qaa_label="substantiell")
# "Login mit externem Servicekonto" (idp/broker/): the upstream's level, capped by the registry.
FINK = "FINK"
# The key under which a broker login's identity names its upstream (idp.broker.login).
UPSTREAM_KEY = "upstream"

# ISO 5218 codes. "divers" has none; it is released as 9 like "keine Angabe"
# (docs/architecture.md, "Attributes").
GENDER_CODES: dict[Salutation, Gender] = {
    Salutation.HERR: Gender.MALE, Salutation.FRAU: Gender.FEMALE,
    Salutation.DIVERS: Gender.NOT_STATED, Salutation.KEINE_ANGABE: Gender.NOT_STATED,
}


@dataclass(frozen=True)
class Facts:
    """What a value is computed from: the account, the portal's pairwise id, the login."""

    citizen: Citizen
    pairwise_id: str | None
    proof: Proof
    # What an eID login read from the card, by the card's field names
    # (idp.testing.models.EidTestCard: given_name, date_of_birth, street, …); None otherwise.
    identity: Mapping[str, str] | None = None


@dataclass(frozen=True)
class Value:
    """A value as sent, and as the consent page shows it to the citizen."""

    sent: str
    shown: str
    # Read from an eID card: akdb:TrustLevel HOCH, whatever the attribute's usual level.
    from_card: bool = False


def _gender(facts: Facts) -> Value | None:
    salutation = Salutation(facts.citizen.salutation)
    code = GENDER_CODES[salutation].value
    shown = f"{salutation.label} (Code {code})"
    if salutation is Salutation.DIVERS:
        # Say what is sent: the portal cannot tell "divers" from "keine Angabe".
        shown = f"divers, übermittelt als „keine Angabe“ (Code {code})"
    return Value(code, shown)


def _text(read: Callable[[Citizen], str | None],
          card_field: str | None = None) -> Callable[[Facts], Value | None]:
    """The account's value; after an eID login the card's (``card_field``) instead."""
    def value(facts: Facts) -> Value | None:
        if card_field is not None and facts.identity is not None:
            return _card(card_field)(facts)
        text = read(facts.citizen)
        return Value(text, text) if text else None
    return value


def _card(field: str, shown: Callable[[str], str] = str) -> Callable[[Facts], Value | None]:
    """A value only an eID login gives: read from the card, never from the account."""
    def value(facts: Facts) -> Value | None:
        text = facts.identity.get(field) if facts.identity is not None else None
        return Value(text, shown(text), from_card=True) if text else None
    return value


def _date(iso: str) -> str:
    year, month, day = iso.split("-")
    return f"{day}.{month}.{year}"


DOCUMENT_TYPES = {"ID": "Personalausweis", "AR": "elektronischer Aufenthaltstitel",
                  "UB": "eID-Karte für Unionsbürger"}


def _bpk2(facts: Facts) -> Value | None:
    return Value(facts.pairwise_id, facts.pairwise_id) if facts.pairwise_id else None


def _qaa_level(facts: Facts) -> Value | None:
    return Value(facts.proof.qaa_level, f"{facts.proof.qaa_label} ({facts.proof.qaa_level})")


def _proved_by(facts: Facts) -> Value | None:
    return Value(facts.proof.proved_by, facts.proof.proved_by)


@dataclass(frozen=True)
class CatalogueAttribute:
    """One attribute we can release: its BundID names, its trust level, its value."""

    attribute: bundid.Attribute
    trust_level: AttributeTrust
    value_of: Callable[[Facts], Value | None]

    @property
    def name(self) -> str:
        return self.attribute.name

    @property
    def friendly_name(self) -> str:
        return self.attribute.friendly_name

    @property
    def label(self) -> str:
        return self.attribute.label


_RELEASE: dict[str, tuple[AttributeTrust, Callable[[Facts], Value | None]]] = {
    GENDER: (AttributeTrust.UNTERGEORDNET, _gender),
    GIVEN_NAME: (AttributeTrust.UNTERGEORDNET,
                 _text(lambda citizen: citizen.given_name, "given_name")),
    SURNAME: (AttributeTrust.UNTERGEORDNET, _text(lambda citizen: citizen.surname, "surname")),
    BIRTH_NAME: (AttributeTrust.UNTERGEORDNET,
                 _text(lambda citizen: citizen.birth_name, "birth_name")),
    # Only activated accounts log in, and activation proves the mailbox: NORMAL.
    MAIL: (AttributeTrust.NORMAL, _text(lambda citizen: citizen.email)),
    BPK2: (AttributeTrust.NORMAL, _bpk2),
    QAA_LEVEL: (AttributeTrust.NORMAL, _qaa_level),
    ASSERTION_PROVED_BY: (AttributeTrust.NORMAL, _proved_by),
    # The Doktorgrad, only when the card carries one.
    PERSONAL_TITLE: (AttributeTrust.HOCH, _card("doctoral_degree")),
    BIRTHDATE: (AttributeTrust.HOCH, _card("date_of_birth", _date)),
    PLACE_OF_BIRTH: (AttributeTrust.HOCH, _card("place_of_birth")),
    POSTAL_ADDRESS: (AttributeTrust.HOCH, _card("street")),
    POSTAL_CODE: (AttributeTrust.HOCH, _card("postal_code")),
    LOCALITY: (AttributeTrust.HOCH, _card("locality")),
    COUNTRY: (AttributeTrust.HOCH, _card("country")),
    NATIONALITY: (AttributeTrust.HOCH, _card("nationality")),
    DOCUMENT_TYPE: (AttributeTrust.HOCH, _card(
        "document_type", lambda code: f"{DOCUMENT_TYPES.get(code, code)} ({code})")),
    PSEUDONYM: (AttributeTrust.HOCH, _card("pseudonym")),
}
# In BundID's order (the consent page's and the assertion's).
CATALOGUE: tuple[CatalogueAttribute, ...] = tuple(
    CatalogueAttribute(attribute, *_RELEASE[attribute.name]) for attribute in bundid.ATTRIBUTES)


@dataclass(frozen=True)
class ReleasedAttribute:
    """One attribute as it leaves us: what the assertion carries and the consent page shows."""

    name: str
    friendly_name: str
    label: str
    values: tuple[str, ...]
    trust_level: AttributeTrust
    # The values in the citizen's words ("Frau (Code 2)"); same order as ``values``.
    shown_values: tuple[str, ...]


def release(citizen: Citizen, names: Iterable[str], pairwise_id: str | None,
            proof: Proof = BY_USERNAME,
            identity: Mapping[str, str] | None = None) -> list[ReleasedAttribute]:
    """The attributes of ``names`` the account (or the card an eID login read, ``identity``)
    has a value for, in catalogue order.

    Names outside the catalogue and attributes without a value (an empty Geburtsname, no
    pairwise id given, card data after a password login) are left out: never an empty or
    invented value.
    """
    wanted = set(names)
    upstream = identity is not None and UPSTREAM_KEY in identity
    # A broker login's identity holds the upstream's values by our Names (idp.broker.login),
    # not a card's: the card's fields are read from none.
    facts = Facts(citizen, pairwise_id, proof, None if upstream else identity)
    released = []
    for entry in CATALOGUE:
        if entry.name not in wanted:
            continue
        if upstream and (brought := _from_upstream(entry, identity or {})) is not None:
            released.append(brought)
            continue
        value = entry.value_of(facts)
        if value is not None:
            trust = AttributeTrust.HOCH if value.from_card else entry.trust_level
            released.append(ReleasedAttribute(entry.name, entry.friendly_name, entry.label,
                                              (value.sent,), trust, (value.shown,)))
    return released


def _gender_shown(code: str) -> str:
    """An upstream's ISO 5218 code in the citizen's words, as for our own ("Herr (Code 1)")."""
    label = next((salutation.label for salutation, gender in GENDER_CODES.items()
                  if gender.value == code and salutation is not Salutation.DIVERS), None)
    return f"{label} (Code {code})" if label else code


# What we compute for every login, whatever the upstream sent.
_COMPUTED = {BPK2, QAA_LEVEL, ASSERTION_PROVED_BY}


def _from_upstream(entry: CatalogueAttribute,
                   identity: Mapping[str, str]) -> ReleasedAttribute | None:
    """The upstream's value of ``entry`` with the level it came with (capped by the broker at
    the login's level); None when it sent none (the account's own value is used then)."""
    text = identity.get(entry.name)
    if entry.name in _COMPUTED or not text:
        return None
    level = identity.get(f"level:{entry.name}", "UNTERGEORDNET")
    trust = AttributeTrust(level) if level in set(AttributeTrust) else \
        AttributeTrust.UNTERGEORDNET
    shown = _date(text) if entry.name == BIRTHDATE and text.count("-") == 2 else \
        _gender_shown(text) if entry.name == GENDER else text
    return ReleasedAttribute(entry.name, entry.friendly_name, entry.label, (text,), trust,
                             (shown,))


def missing_required(citizen: Citizen, required: Iterable[str], pairwise_id: str | None,
                     proof: Proof = BY_USERNAME,
                     identity: Mapping[str, str] | None = None) -> list[str]:
    """The names of ``required`` we cannot give for this account (sorted).

    A portal that requires one of them gets RequestDenied, never a partial or padded release.
    """
    wanted = set(required)
    given = {item.name for item in release(citizen, wanted, pairwise_id, proof, identity)}
    return sorted(wanted - given)


def labels_in_catalogue_order(names: Iterable[str]) -> list[str]:
    """The labels of ``names``, catalogue attributes first in their order, others after."""
    return [label_of(name) for name in in_attribute_order(names)]
