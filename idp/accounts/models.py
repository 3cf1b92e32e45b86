"""Citizen accounts and the single-use links sent to them."""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from idp.db import Base, UtcDateTime


class Salutation(enum.StrEnum):
    """Anrede as the registration form offers it. "divers" has no ISO 5218 code (released as 9)."""

    HERR = "herr"
    FRAU = "frau"
    DIVERS = "divers"
    KEINE_ANGABE = "keine_angabe"

    @property
    def label(self) -> str:
        return {"herr": "Herr", "frau": "Frau", "divers": "divers",
                "keine_angabe": "keine Angabe"}[self.value]


class AccountStatus(enum.StrEnum):
    PENDING = "pending"  # registered, activation link not yet used
    ACTIVE = "active"


class TokenPurpose(enum.StrEnum):
    ACTIVATION = "activation"
    PASSWORD_RESET = "password_reset"
    EMAIL_CHANGE = "email_change"


class Citizen(Base):
    """A citizen's account (a pending registration until its activation link is used)."""

    __tablename__ = "citizen"

    id: Mapped[int] = mapped_column(primary_key=True)
    # As entered (NFKC); login compares it case-sensitively, as the original does.
    username: Mapped[str] = mapped_column(String(64))
    # NFKC + casefold: "Max", "max" and "Ｍａｘ" cannot exist side by side.
    username_key: Mapped[str] = mapped_column(String(64), unique=True)
    email: Mapped[str] = mapped_column(String(254))
    email_key: Mapped[str] = mapped_column(String(254), unique=True)
    salutation: Mapped[Salutation] = mapped_column(String(16), default=Salutation.KEINE_ANGABE)
    given_name: Mapped[str] = mapped_column(String(100))
    surname: Mapped[str] = mapped_column(String(100))
    birth_name: Mapped[str | None] = mapped_column(String(100))
    password_hash: Mapped[str] = mapped_column(String(255))
    status: Mapped[AccountStatus] = mapped_column(String(16), default=AccountStatus.PENDING)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    activated_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    password_changed_at: Mapped[datetime] = mapped_column(UtcDateTime)
    # Proof of the privacy notice accepted at registration (which version, when).
    privacy_accepted_at: Mapped[datetime] = mapped_column(UtcDateTime)
    privacy_version: Mapped[str] = mapped_column(String(32))
    # How well the account's identity is verified, 1 … 4 (STORK-QAA-Level-n): 1 for a
    # registration with username and password; higher for an identity read from an eID card
    # (test personas say theirs, docs/qa-workbench.md). A login reaches at most this level.
    trust_level: Mapped[int] = mapped_column(default=1, server_default="1")

    tokens: Mapped[list[AccountToken]] = relationship(
        back_populates="citizen", cascade="all, delete-orphan", passive_deletes=True)

    @property
    def is_active(self) -> bool:
        return self.status == AccountStatus.ACTIVE

    @property
    def salutation_label(self) -> str:
        return Salutation(self.salutation).label


class AccountToken(Base):
    """A single-use link (activation, password reset, e-mail change).

    Only the SHA-256 of the token is stored: a leaked database does not yield usable links.
    """

    __tablename__ = "account_token"
    __table_args__ = (Index("ix_account_token_citizen_purpose", "citizen_id", "purpose"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    citizen_id: Mapped[int] = mapped_column(ForeignKey("citizen.id", ondelete="CASCADE"))
    purpose: Mapped[TokenPurpose] = mapped_column(String(32))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    # For an e-mail change: the new address, which only counts once this link is used.
    new_email: Mapped[str | None] = mapped_column(String(254))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime)
    used_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    # Set when a newer link of the same purpose replaced this one ("Erneut senden").
    voided_at: Mapped[datetime | None] = mapped_column(UtcDateTime)

    citizen: Mapped[Citizen] = relationship(back_populates="tokens")


class ForgottenPurpose(enum.StrEnum):
    PASSWORD_RESET = "password_reset"  # "Passwort vergessen": a reset link
    USERNAME_REMINDER = "username_reminder"  # "Benutzernamen vergessen": the username


class ForgottenRequest(Base):
    """A "vergessen" form as submitted, waiting for the mail sender to answer it.

    The request itself never looks the account up, so its answer takes the same time whether or
    not an account exists; the sender looks it up, mails, and deletes this row. What was typed
    stays here only until then (``servicekonto purge`` removes rows no sender answered).
    """

    __tablename__ = "forgotten_request"

    id: Mapped[int] = mapped_column(primary_key=True)
    purpose: Mapped[ForgottenPurpose] = mapped_column(String(32))
    # The normalised input: Citizen.username_key or Citizen.email_key of the account asked for.
    account_key: Mapped[str] = mapped_column(String(254))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, index=True)
