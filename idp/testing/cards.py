"""The test eID cards of the personas: their data, and storing them for the simulated eID."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from sqlalchemy import select
from sqlalchemy.orm import Session

from idp.accounts.models import Citizen
from idp.testing.errors import Conflict
from idp.testing.models import CardState, DocumentType, EidTestCard


@dataclass(frozen=True)
class PostalAddress:
    street: str  # with the house number
    postal_code: str
    locality: str
    country: str  # ISO 3166-1 alpha-2


@dataclass(frozen=True)
class EidCard:
    """What a test card holds besides the holder's names (those are the persona's)."""

    document_type: DocumentType
    date_of_birth: date
    place_of_birth: str
    address: PostalAddress
    nationality: str  # ICAO 9303: "D" for Germany, three letters otherwise
    pseudonym: str
    pin: str
    state: CardState
    doctoral_degree: str | None = None  # "Dr.", as the card prints it
    puk: str | None = None  # ten digits; None: no PIN letter, a blocked PIN stays blocked


def card_owner(session: Session, pseudonym: str) -> Citizen | None:
    """The account a card with ``pseudonym`` belongs to, if any."""
    card = session.scalar(select(EidTestCard).where(EidTestCard.pseudonym == pseudonym))
    return None if card is None or card.citizen_id is None else session.get(Citizen,
                                                                           card.citizen_id)


def store_card(session: Session, persona: str, card: EidCard, holder: Citizen) -> EidTestCard:
    """Give ``holder`` the card (in the caller's transaction). A card with the same pseudonym
    that no account holds any more is taken over and set back to the persona's state;
    one held by another account is a :class:`Conflict`."""
    row = session.scalar(select(EidTestCard).where(EidTestCard.pseudonym == card.pseudonym))
    if row is None:
        row = EidTestCard(pseudonym=card.pseudonym)
        session.add(row)
    elif row.citizen_id not in (None, holder.id):
        raise Conflict(f"Die Ausweiskarte mit dem Pseudonym {card.pseudonym} gehört schon zu "
                       "einem anderen Konto.")
    row.persona, row.citizen_id = persona, holder.id
    row.given_name, row.surname, row.birth_name = (holder.given_name, holder.surname,
                                                   holder.birth_name)
    row.document_type, row.date_of_birth = card.document_type, card.date_of_birth
    row.place_of_birth, row.nationality = card.place_of_birth, card.nationality
    row.street, row.postal_code = card.address.street, card.address.postal_code
    row.locality, row.country = card.address.locality, card.address.country
    row.doctoral_degree = card.doctoral_degree
    row.pin, row.state, row.wrong_pins = card.pin, card.state, 0
    row.puk, row.puk_uses = card.puk, 0
    return row
