"""What the Servicekonto.NRW sent about a citizen, in two forms: in the citizen's words (German
dates, "Frau") for the page after login, and as received (Names, codes, ISO instants) for the
page's "Technische Angaben" that QA teams read.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from idp.samlkit.bundid import (
    BIRTH_NAME,
    GENDER,
    GIVEN_NAME,
    MAIL,
    SURNAME,
    Gender,
    in_attribute_order,
    label_of,
)
from sp_client.profiles import trust_level_of
from sp_client.sessions import Login

# The IdP's words for each ISO 5218 code, as its consent page shows them. "divers" and
# "keine Angabe" both travel as 9; the portal cannot tell them apart, so 9 reads "keine Angabe".
SALUTATIONS = {code.value: code.salutation for code in Gender}
GERMAN_TIME = ZoneInfo("Europe/Berlin")
MONTHS = ("Januar", "Februar", "März", "April", "Mai", "Juni", "Juli", "August", "September",
          "Oktober", "November", "Dezember")
TRUST_WORDS = {1: "basisregistriert (niedrig)", 2: "normal", 3: "substantiell", 4: "hoch"}
# The citizen's own data, as the page after login lists it (the bPK2 is a key, not her data).
PERSONAL = (GENDER, GIVEN_NAME, SURNAME, BIRTH_NAME, MAIL)


def german_time(instant: str | None) -> str:
    """An ISO 8601 instant as "1. Dezember 2026, 11:03 Uhr" in German local time; "" for none
    or an unreadable one (a value without zone is UTC, as SAML instants are)."""
    if not instant:
        return ""
    try:
        moment = datetime.fromisoformat(instant)
    except ValueError:
        return ""
    local = (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).astimezone(GERMAN_TIME)
    return f"{local.day}. {MONTHS[local.month - 1]} {local.year}, {local:%H:%M} Uhr"


def shown_value(name: str, value: str) -> str:
    """A released value in the citizen's words: the Anrede as the IdP shows it ("Frau (Code 2)")."""
    if name == GENDER:
        return f"{SALUTATIONS.get(value, 'unbekannt')} (Code {value})"
    return value


def trust_words(class_ref: str) -> str:
    """The trust level of the login in words ("basisregistriert (niedrig)")."""
    return TRUST_WORDS.get(trust_level_of(class_ref) or 0, class_ref)


def greeting_name(login: Login) -> str:
    """ "Frau Erika Mustermann": the Anrede (Herr or Frau only) and the name, as released."""
    salutation = SALUTATIONS.get(login.value(GENDER) or "")
    parts = [salutation if salutation in ("Herr", "Frau") else None,
             login.value(GIVEN_NAME), login.value(SURNAME)]
    return " ".join(part for part in parts if part)


def personal_data(login: Login) -> list[tuple[str, str]]:
    """(label, value in words) of the citizen's own data the portal received."""
    return [(label_of(name), shown_value(name, value))
            for name in PERSONAL if (value := login.value(name))]


@dataclass(frozen=True)
class ReceivedAttribute:
    """One attribute exactly as the assertion carried it, for the technical details."""

    label: str
    friendly_name: str
    name: str
    values: tuple[str, ...]
    trust_level: str


def received_attributes(login: Login) -> list[ReceivedAttribute]:
    """Every attribute received, catalogue ones first in catalogue order, then the rest by
    Name; the FriendlyName as sent ("" when the IdP sent none)."""
    return [ReceivedAttribute(
        label=label_of(name),
        friendly_name=login.friendly_names.get(name, ""),
        name=name, values=tuple(login.attributes[name]),
        trust_level=login.attribute_trust.get(name, ""))
        for name in in_attribute_order(login.attributes)]
