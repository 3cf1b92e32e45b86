"""The simulated eID service: read a test card with its PIN, as the AusweisApp and an eID
server would (docs/architecture.md, "The Online-Ausweisfunktion").

No Flask here: the caller passes the database session. A wrong PIN counts down three tries and
the third blocks the PIN; the ten-digit PUK of the PIN letter unblocks it (:func:`unblock_pin`,
at most ten PUK entries per card). Expired and revoked cards are refused with the messages
citizens know from the AusweisApp.
"""

from __future__ import annotations

import enum
import hmac
import re
from dataclasses import dataclass

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from idp.accounts.models import Citizen
from idp.testing.models import CardState, DocumentType, EidTestCard

PIN_TRIES = 3
PUK_USES = 10
_PIN = re.compile(r"[0-9]{6}")
_PUK = re.compile(r"[0-9]{10}")

NO_CARD = "Bitte wählen Sie einen Testausweis aus."
PIN_FORMAT = "Die PIN besteht aus sechs Ziffern. Bitte geben Sie Ihre sechsstellige PIN ein."
WRONG_PIN = ("Die eingegebene PIN ist nicht korrekt. Sie haben noch {tries} Versuche, die "
             "richtige PIN einzugeben.")
LAST_TRY = ("Die eingegebene PIN ist nicht korrekt. Sie haben noch einen Versuch. Wird die PIN "
            "erneut falsch eingegeben, wird sie gesperrt.")
PIN_BLOCKED = ("Die PIN Ihres Ausweises ist gesperrt, weil sie dreimal falsch eingegeben wurde. "
               "Sie können die PIN mit der PUK aus Ihrem PIN-Brief entsperren oder in Ihrem "
               "Bürgeramt eine neue PIN setzen lassen.")
PUK_FORMAT = ("Die PUK besteht aus zehn Ziffern. Sie finden sie in Ihrem PIN-Brief unter dem "
              "Rubbelfeld.")
WRONG_PUK = ("Die eingegebene PUK ist nicht korrekt. Sie können die PUK noch {uses}-mal "
             "eingeben.")
PUK_USED_UP = ("Die PUK Ihres Ausweises ist verbraucht, weil sie zehnmal eingegeben wurde. Eine "
               "neue PIN kann Ihnen nur Ihr Bürgeramt setzen.")
NO_PUK = ("Zu diesem Testausweis gibt es keinen PIN-Brief mit PUK. Eine neue PIN kann Ihnen nur "
          "Ihr Bürgeramt setzen.")
NOT_BLOCKED = "Die PIN dieses Ausweises ist nicht gesperrt: Sie können sie eingeben."
UNBLOCKED = ("Die PIN Ihres Ausweises ist entsperrt. Sie haben wieder drei Versuche, Ihre PIN "
             "einzugeben.")
EXPIRED = ("Ihr Ausweis ist abgelaufen. Mit einem abgelaufenen Ausweis können Sie die "
           "Online-Ausweisfunktion nicht nutzen. Bitte beantragen Sie in Ihrem Bürgeramt einen "
           "neuen Ausweis.")
REVOKED = ("Ihr Ausweis wurde gesperrt, zum Beispiel nach einer Verlustmeldung. Mit einem "
           "gesperrten Ausweis können Sie die Online-Ausweisfunktion nicht nutzen. Bitte wenden "
           "Sie sich an Ihr Bürgeramt.")
NO_ACCOUNT = ("Zu diesem Ausweis gibt es noch kein Servicekonto. Die Registrierung mit der "
              "Online-Ausweisfunktion folgt in Kürze; bis dahin registrieren Sie sich bitte mit "
              "Benutzername und Passwort.")
NOT_ACTIVATED = ("Das Servicekonto zu diesem Ausweis ist noch nicht aktiviert. Bitte öffnen Sie "
                 "den Link aus der E-Mail, die wir Ihnen nach der Registrierung gesendet haben.")

DOCUMENT_NAMES = {DocumentType.ID_CARD: "Personalausweis",
                  DocumentType.RESIDENCE_PERMIT: "elektronischer Aufenthaltstitel",
                  DocumentType.EU_CARD: "eID-Karte für Unionsbürger"}
STATE_NAMES = {CardState.VALID: "gültig", CardState.EXPIRED: "abgelaufen",
               CardState.REVOKED: "gesperrt", CardState.PIN_BLOCKED: "PIN gesperrt"}


class Reading(enum.Enum):
    """How reading a card ended."""

    SUCCESS = "success"
    NO_CARD = "no_card"
    PIN_FORMAT = "pin_format"
    WRONG_PIN = "wrong_pin"
    PIN_BLOCKED = "pin_blocked"
    EXPIRED = "expired"
    REVOKED = "revoked"
    NO_ACCOUNT = "no_account"
    # Entering the PUK (unblock_pin).
    UNBLOCKED = "unblocked"
    PUK_FORMAT = "puk_format"
    WRONG_PUK = "wrong_puk"
    PUK_USED_UP = "puk_used_up"
    NO_PUK = "no_puk"
    NOT_BLOCKED = "not_blocked"


@dataclass(frozen=True)
class CardRead:
    """The result: on success whose account it is, the level reached and the card's data."""

    reading: Reading
    message: str = ""
    citizen_id: int | None = None
    trust_level: int = 4
    # The card's fields by EidTestCard's names, as the attributes read them
    # (idp.consent.attributes); kept with the login in the server-side session.
    identity: dict[str, str] | None = None


@dataclass(frozen=True)
class TestCardChoice:
    """A test card as the AusweisApp step lists it."""

    id: int
    label: str


def test_cards(session: Session) -> list[TestCardChoice]:
    """Every test card, by holder's name: "Erika Mustermann – Personalausweis (gültig)"."""
    cards = session.scalars(select(EidTestCard).order_by(
        EidTestCard.surname, EidTestCard.given_name, EidTestCard.id))
    return [TestCardChoice(card.id, f"{card.given_name} {card.surname} – "
                           f"{DOCUMENT_NAMES[DocumentType(card.document_type)]} "
                           f"({STATE_NAMES[CardState(card.state)]})") for card in cards]


def read_card(session: Session, card_id: int | None, pin: str) -> CardRead:
    """Log in with a card: :func:`open_card`, then whose account it belongs to, the level
    reached and the card's data."""
    opened = open_card(session, card_id, pin)
    if isinstance(opened, CardRead):
        return opened
    citizen = session.get(Citizen, opened.citizen_id) if opened.citizen_id is not None else None
    if citizen is None:
        return CardRead(Reading.NO_ACCOUNT, NO_ACCOUNT)
    if not citizen.is_active:
        return CardRead(Reading.NO_ACCOUNT, NOT_ACTIVATED)
    # A persona of level "substantiell" (an eAT of level 3) logs in at its level; every other
    # card reaches "hoch".
    level = 3 if citizen.trust_level == 3 else 4
    return CardRead(Reading.SUCCESS, citizen_id=citizen.id, trust_level=level,
                    identity=identity_of(opened))


def open_card(session: Session, card_id: int | None, pin: str) -> EidTestCard | CardRead:
    """The card, when its state allows reading it and the PIN is right; else the refusal. A
    wrong PIN counts (and commits), the third blocks the card; the right one resets the count."""
    card = session.get(EidTestCard, card_id) if card_id is not None else None
    if card is None:
        return CardRead(Reading.NO_CARD, NO_CARD)
    if (refusal := _UNUSABLE.get(CardState(card.state))) is not None:
        return refusal
    if card.state == CardState.PIN_BLOCKED:
        return CardRead(Reading.PIN_BLOCKED, PIN_BLOCKED)
    if not _PIN.fullmatch(pin):
        # The AusweisApp sends no PIN of another length: not a try.
        return CardRead(Reading.PIN_FORMAT, PIN_FORMAT)
    if not hmac.compare_digest(pin.encode(), card.pin.encode()):
        return _wrong_pin(session, card)
    if card.wrong_pins:
        card.wrong_pins = 0
        session.commit()
    return card


# Cards that neither PIN nor PUK make usable.
_UNUSABLE = {CardState.EXPIRED: CardRead(Reading.EXPIRED, EXPIRED),
             CardState.REVOKED: CardRead(Reading.REVOKED, REVOKED)}


def _wrong_pin(session: Session, card: EidTestCard) -> CardRead:
    # Counted in the database in one statement: two tabs cannot both use the last try.
    session.execute(update(EidTestCard).where(EidTestCard.id == card.id).values(
        wrong_pins=EidTestCard.wrong_pins + 1))
    session.refresh(card)
    if card.wrong_pins >= PIN_TRIES:
        card.state = CardState.PIN_BLOCKED
        session.commit()
        return CardRead(Reading.PIN_BLOCKED, PIN_BLOCKED)
    session.commit()
    tries = PIN_TRIES - card.wrong_pins
    return CardRead(Reading.WRONG_PIN, LAST_TRY if tries == 1 else WRONG_PIN.format(tries=tries))


def unblock_pin(session: Session, card_id: int | None, puk: str) -> CardRead:
    """Enter the PUK for a card whose PIN is blocked: the right one unblocks the PIN (three
    tries again, the PIN unchanged). Every entry of ten digits, right or wrong, uses one of the
    PUK's ten uses, counted in one statement (and committed)."""
    card = session.get(EidTestCard, card_id) if card_id is not None else None
    if card is None:
        return CardRead(Reading.NO_CARD, NO_CARD)
    if (refusal := _UNUSABLE.get(CardState(card.state))) is not None:
        return refusal
    if card.state != CardState.PIN_BLOCKED:
        return CardRead(Reading.NOT_BLOCKED, NOT_BLOCKED)
    if card.puk is None:
        return CardRead(Reading.NO_PUK, NO_PUK)
    if card.puk_uses >= PUK_USES:
        return CardRead(Reading.PUK_USED_UP, PUK_USED_UP)
    if not _PUK.fullmatch(puk):
        return CardRead(Reading.PUK_FORMAT, PUK_FORMAT)
    used = session.execute(update(EidTestCard).where(
        EidTestCard.id == card.id, EidTestCard.puk_uses < PUK_USES).values(
        puk_uses=EidTestCard.puk_uses + 1))
    if used.rowcount != 1:  # type: ignore[attr-defined]
        session.rollback()
        return CardRead(Reading.PUK_USED_UP, PUK_USED_UP)
    session.refresh(card)
    if not hmac.compare_digest(puk.encode(), card.puk.encode()):
        session.commit()
        left = PUK_USES - card.puk_uses
        return CardRead(Reading.PUK_USED_UP, PUK_USED_UP) if left == 0 else \
            CardRead(Reading.WRONG_PUK, WRONG_PUK.format(uses=left))
    card.state, card.wrong_pins = CardState.VALID, 0
    session.commit()
    return CardRead(Reading.UNBLOCKED, UNBLOCKED)


def identity_of(card: EidTestCard) -> dict[str, str]:
    """What the card tells a provider, by the card's field names (empty fields left out)."""
    values = {"given_name": card.given_name, "surname": card.surname,
              "doctoral_degree": card.doctoral_degree or "",
              "birth_name": card.birth_name or "",
              "date_of_birth": card.date_of_birth.isoformat(),
              "place_of_birth": card.place_of_birth, "street": card.street,
              "postal_code": card.postal_code, "locality": card.locality,
              "country": card.country, "nationality": card.nationality,
              "document_type": str(card.document_type), "pseudonym": card.pseudonym}
    return {key: value for key, value in values.items() if value}
