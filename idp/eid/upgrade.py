""""Konto hochstufen": a basisregistriert account reads an eID card once and takes its level
and identity data (docs/architecture.md, "Konto hochstufen").

No Flask here. The names must match (:func:`name_problems`): the account's Vorname is one of the
card's given names, and its Nachname the card's surname; both compared after Unicode
normalisation (NFKC), case folding ("ß" as "ss") and with spaces and hyphens as one separator.
One card belongs to one account: a card that is already another account's is refused.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import date

from sqlalchemy import or_, update
from sqlalchemy.orm import Session

from idp.accounts.models import Citizen
from idp.saml.identifiers import TrustLevel
from idp.testing.models import EidTestCard

# The level an account reaches with a card ("hoch").
UPGRADED_LEVEL = 4

ALREADY_UPGRADED = ("Ihr Servicekonto ist bereits hochgestuft: Ihre Daten stammen aus Ihrem "
                    "Ausweis.")
CARD_TAKEN = ("Dieser Ausweis gehört bereits zu einem anderen Servicekonto. Ein Ausweis kann nur "
              "zu einem Servicekonto gehören.")
GIVEN_NAME_DIFFERS = ("Der Vorname in Ihrem Servicekonto („{account}“) stimmt mit keinem "
                      "Vornamen auf dem Ausweis („{card}“) überein.")
SURNAME_DIFFERS = ("Der Nachname in Ihrem Servicekonto („{account}“) stimmt nicht mit dem "
                   "Familiennamen auf dem Ausweis („{card}“) überein.")
_SEPARATORS = re.compile(r"[\s\-‐‑]+")


def _normalised(name: str) -> str:
    return _SEPARATORS.sub(" ", unicodedata.normalize("NFKC", name).casefold()).strip()


def name_problems(citizen: Citizen, card: EidTestCard) -> list[str]:
    """Why the card's names do not match the account's (empty: they match)."""
    problems = []
    given_names = _normalised(card.given_name)
    account_given = _normalised(citizen.given_name)
    if account_given != given_names and account_given not in given_names.split(" "):
        problems.append(GIVEN_NAME_DIFFERS.format(account=citizen.given_name,
                                                  card=card.given_name))
    if _normalised(citizen.surname) != _normalised(card.surname):
        problems.append(SURNAME_DIFFERS.format(account=citizen.surname, card=card.surname))
    return problems


@dataclass(frozen=True)
class Change:
    """One line of the confirmation page: what the account had, what the card gives."""

    label: str
    old: str
    new: str


@dataclass(frozen=True)
class Proposal:
    """What hochstufen would change, or why it cannot (``refusals`` not empty)."""

    changes: tuple[Change, ...] = ()
    refusals: tuple[str, ...] = ()


def _german_date(value: date) -> str:
    return value.strftime("%d.%m.%Y")


def proposal(citizen: Citizen, card: EidTestCard) -> Proposal:
    """The old and new values, or the refusals (already upgraded, card taken, names differ)."""
    if citizen.trust_level >= 3:
        return Proposal(refusals=(ALREADY_UPGRADED,))
    if card.citizen_id is not None and card.citizen_id != citizen.id:
        return Proposal(refusals=(CARD_TAKEN,))
    if problems := name_problems(citizen, card):
        return Proposal(refusals=tuple(problems))
    return Proposal(changes=(
        Change("Vorname", citizen.given_name, card.given_name),
        Change("Nachname", citizen.surname, card.surname),
        Change("Geburtsname", citizen.birth_name or "–", card.birth_name or "–"),
        Change("Geburtsdatum", "–", _german_date(card.date_of_birth)),
        Change("Doktorgrad", "–", card.doctoral_degree or "–"),
        Change("Vertrauensniveau", TrustLevel(citizen.trust_level).label,
               TrustLevel(UPGRADED_LEVEL).label),
    ))


def upgrade(session: Session, citizen: Citizen, card: EidTestCard) -> Proposal:
    """Take the card's level and names into the account and link the card to it (commits);
    the refusals instead when :func:`proposal` has any."""
    checked = proposal(citizen, card)
    if checked.refusals:
        return checked
    # Claimed in one statement: two accounts upgrading with one card at once cannot both win.
    claimed = session.execute(update(EidTestCard).where(
        EidTestCard.id == card.id,
        or_(EidTestCard.citizen_id.is_(None), EidTestCard.citizen_id == citizen.id)).values(
        citizen_id=citizen.id))
    if claimed.rowcount != 1:  # type: ignore[attr-defined]
        session.rollback()
        return Proposal(refusals=(CARD_TAKEN,))
    citizen.given_name = card.given_name
    citizen.surname = card.surname
    citizen.birth_name = card.birth_name
    citizen.trust_level = UPGRADED_LEVEL
    session.commit()
    return checked
