"""What the QA workbench keeps: the clock offset set at run time, and the personas' eID cards."""

from __future__ import annotations

import enum
from datetime import date, datetime

from sqlalchemy import Date, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from idp.db import Base, UtcDateTime


class ClockSetting(Base):
    """The offset of the IdP's clock set through the test-control API (one row, ``id`` 1).

    In the database, not in a worker's memory: every worker and host reads it once per request
    (idp/testing/clock_hook.py), so a clock moved through one is moved for all.
    """

    __tablename__ = "testing_clock"

    id: Mapped[int] = mapped_column(primary_key=True)
    offset_seconds: Mapped[int] = mapped_column(default=0)
    # When it was set, by the wall clock (not the moved one).
    changed_at: Mapped[datetime] = mapped_column(UtcDateTime)


class DocumentType(enum.StrEnum):
    """The eID document types of TR-03127 a test card can be."""

    ID_CARD = "ID"  # Personalausweis
    RESIDENCE_PERMIT = "AR"  # elektronischer Aufenthaltstitel (eAT)
    EU_CARD = "UB"  # eID-Karte für Unionsbürger und EWR-Angehörige


class CardState(enum.StrEnum):
    VALID = "valid"
    EXPIRED = "expired"
    REVOKED = "revoked"
    # Three wrong PINs: the PUK of the PIN letter unblocks it (idp/eid/simulation.py).
    PIN_BLOCKED = "pin_blocked"


class EidTestCard(Base):
    """A test eID card, as a persona of level 3 or 4 defines it (policies/personas/).

    The simulated eID service (docs/qa-workbench.md, "Personas") reads the card's data from
    here. A card exists on its own: deleting the account unlinks it, so the card can register
    a new account.
    """

    __tablename__ = "eid_test_card"

    id: Mapped[int] = mapped_column(primary_key=True)
    # The persona it comes from (its file name).
    persona: Mapped[str] = mapped_column(String(40), index=True)
    citizen_id: Mapped[int | None] = mapped_column(
        ForeignKey("citizen.id", ondelete="SET NULL"), index=True)
    document_type: Mapped[DocumentType] = mapped_column(String(2))
    given_name: Mapped[str] = mapped_column(String(100))
    surname: Mapped[str] = mapped_column(String(100))
    birth_name: Mapped[str | None] = mapped_column(String(100))
    date_of_birth: Mapped[date] = mapped_column(Date)
    place_of_birth: Mapped[str] = mapped_column(String(100))
    street: Mapped[str] = mapped_column(String(200))
    postal_code: Mapped[str] = mapped_column(String(10))
    locality: Mapped[str] = mapped_column(String(100))
    country: Mapped[str] = mapped_column(String(2))  # ISO 3166-1 alpha-2
    nationality: Mapped[str] = mapped_column(String(3))  # ICAO 9303 ("D" for Germany)
    # The card's restricted identifier (pseudonym); one card belongs to one account.
    pseudonym: Mapped[str] = mapped_column(String(128), unique=True)
    # The Doktorgrad as the card prints it ("Dr."), released as personalTitle.
    doctoral_degree: Mapped[str | None] = mapped_column(String(40))
    # A test card's PIN and PUK are published in its persona file; kept as they are, not hashed.
    pin: Mapped[str] = mapped_column(String(6))
    # The ten-digit PUK of the PIN letter unblocks a blocked PIN; None: the persona has no PIN
    # letter, only the citizens' office helps.
    puk: Mapped[str | None] = mapped_column(String(10))
    state: Mapped[CardState] = mapped_column(String(16), default=CardState.VALID)
    wrong_pins: Mapped[int] = mapped_column(default=0)
    # Every PUK entry, right or wrong, uses one of its ten uses (idp/eid/simulation.py).
    puk_uses: Mapped[int] = mapped_column(default=0, server_default="0")
