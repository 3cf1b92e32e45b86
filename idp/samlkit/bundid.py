"""BundID's names: the attributes (Name, FriendlyName, German label), the ISO 5218 codes of the
gender attribute, and the namespaces of the akdb request extension (docs/architecture.md,
"Attributes" and "The akdb:AuthenticationRequest extension").

Portals map attributes by Name (urn:oid:…), never by FriendlyName. The order of
:data:`ATTRIBUTES` is the order of the consent page and of the assertion.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass

GENDER = "urn:oid:1.3.6.1.4.1.33592.1.3.5"
GIVEN_NAME = "urn:oid:2.5.4.42"
SURNAME = "urn:oid:2.5.4.4"
BIRTH_NAME = "urn:oid:1.2.40.0.10.2.1.1.225566"
MAIL = "urn:oid:0.9.2342.19200300.100.1.3"
BPK2 = "urn:oid:1.3.6.1.4.1.25484.494450.3"
QAA_LEVEL = "urn:oid:1.2.40.0.10.2.1.1.261.94"
ASSERTION_PROVED_BY = "urn:oid:1.3.6.1.4.1.25484.494450.2"
# Read from an eID card (docs/architecture.md, "The Online-Ausweisfunktion").
PERSONAL_TITLE = "urn:oid:0.9.2342.19200300.100.1.40"
BIRTHDATE = "urn:oid:1.2.40.0.10.2.1.1.55"  # YYYY-MM-DD
PLACE_OF_BIRTH = "urn:oid:1.3.6.1.5.5.7.9.2"
POSTAL_ADDRESS = "urn:oid:2.5.4.16"  # street and number
POSTAL_CODE = "urn:oid:2.5.4.17"
LOCALITY = "urn:oid:2.5.4.7"
COUNTRY = "urn:oid:1.2.40.0.10.2.1.1.225599"  # ISO 3166-1 alpha-2
NATIONALITY = "urn:oid:1.2.40.0.10.2.1.1.225577"  # ICAO 9303 ("D")
DOCUMENT_TYPE = "urn:oid:1.2.40.0.10.2.1.1.552255"  # TR-03127 (ID, AR, UB)
PSEUDONYM = "urn:oid:1.2.40.0.10.2.1.1.226699"  # the card's restricted identifier

AKDB_NAMESPACE = "https://www.akdb.de/request/2018/09"
CLASSIC_UI_NAMESPACE = "https://www.akdb.de/request/2018/09/classic-ui/v1"


@dataclass(frozen=True)
class Attribute:
    """One BundID attribute: its Name on the wire, its FriendlyName, its German label."""

    name: str
    friendly_name: str
    label: str


ATTRIBUTES: tuple[Attribute, ...] = (
    Attribute(GENDER, "gender", "Anrede"),
    Attribute(GIVEN_NAME, "givenName", "Vorname"),
    Attribute(SURNAME, "surname", "Nachname"),
    Attribute(BIRTH_NAME, "birthName", "Geburtsname"),
    Attribute(MAIL, "mail", "E-Mail-Adresse"),
    Attribute(BPK2, "bPK2", "Servicekonto-Kennung (bPK2)"),
    Attribute(QAA_LEVEL, "EID-CITIZEN-QAA-LEVEL", "Vertrauensniveau"),
    Attribute(ASSERTION_PROVED_BY, "AssertionProvedBy", "Art der Anmeldung"),
    Attribute(PERSONAL_TITLE, "personalTitle", "Doktorgrad"),
    Attribute(BIRTHDATE, "birthdate", "Geburtsdatum"),
    Attribute(PLACE_OF_BIRTH, "placeOfBirth", "Geburtsort"),
    Attribute(POSTAL_ADDRESS, "postalAddress", "Straße und Hausnummer"),
    Attribute(POSTAL_CODE, "postalCode", "Postleitzahl"),
    Attribute(LOCALITY, "localityName", "Wohnort"),
    Attribute(COUNTRY, "country", "Land"),
    Attribute(NATIONALITY, "nationality", "Staatsangehörigkeit"),
    Attribute(DOCUMENT_TYPE, "documentType", "Ausweisart"),
    Attribute(PSEUDONYM, "pseudonym", "Pseudonym des Ausweises"),
)
BY_NAME: dict[str, Attribute] = {attribute.name: attribute for attribute in ATTRIBUTES}


class Gender(enum.StrEnum):
    """ISO 5218 codes, as the gender attribute carries them. "divers" has none and travels as
    9, like "keine Angabe"."""

    MALE = "1"
    FEMALE = "2"
    NOT_STATED = "9"

    @property
    def salutation(self) -> str:
        """The code in the citizen's words, as the consent page says it ("Frau")."""
        return {"1": "Herr", "2": "Frau", "9": "keine Angabe"}[self.value]


def label_of(name: str) -> str:
    """The German label of an attribute Name; the Name itself when BundID has no such one."""
    attribute = BY_NAME.get(name)
    return attribute.label if attribute is not None else name


def in_attribute_order(names: Iterable[str]) -> list[str]:
    """``names`` without repeats, BundID's attributes first in their order, the others after
    sorted."""
    wanted = set(names)
    return [attribute.name for attribute in ATTRIBUTES if attribute.name in wanted] + \
        sorted(name for name in wanted if name not in BY_NAME)
