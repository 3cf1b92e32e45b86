"""The portal's own database (SQLite or PostgreSQL): everything a second worker or a restart needs.

The portal is a separate application with a database of its own; its tables are made at start
(``create_all``), since a demo portal has no deployed data to migrate.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from sp_client.database import UtcDateTime


class PortalBase(DeclarativeBase):
    pass


class BrowserSession(PortalBase):
    """A visitor's session: the cookie holds a random id, only its hash is stored."""

    __tablename__ = "portal_session"
    __table_args__ = (Index("ix_portal_session_name_id", "name_id"),)

    id_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    # The session's dict as JSON: the CSRF token and, once logged in, what the IdP sent.
    data: Mapped[str] = mapped_column(Text)
    # From the assertion, so that the IdP's LogoutRequest finds the session (it names only
    # these; the browser's cookie may not come along).
    name_id: Mapped[str | None] = mapped_column(String(512))
    session_index: Mapped[str | None] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    last_seen_at: Mapped[datetime] = mapped_column(UtcDateTime)
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime, index=True)


class OutstandingRequest(PortalBase):
    """A request we sent to the IdP and whose answer we still expect (used up by the answer)."""

    __tablename__ = "portal_outstanding_request"

    request_id: Mapped[str] = mapped_column(String(256), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))  # "login" | "logout"
    # The browser session that sent it (logins only): an answer brought by another browser
    # is refused, so nobody can log a victim in to the attacker's account.
    browser_hash: Mapped[str | None] = mapped_column(String(64))
    trust_level: Mapped[int] = mapped_column(default=1)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime, index=True)


class SeenAssertion(PortalBase):
    """The replay cache: each assertion of an issuer is accepted once."""

    __tablename__ = "portal_seen_assertion"
    __table_args__ = (UniqueConstraint("issuer", "assertion_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    issuer: Mapped[str] = mapped_column(String(1024))
    assertion_id: Mapped[str] = mapped_column(String(256))
    # Kept until the assertion could no longer be accepted anyway.
    keep_until: Mapped[datetime] = mapped_column(UtcDateTime, index=True)


class PropertyRecord(PortalBase):
    """The municipality's property register (seeded in the demo): who owns which object."""

    __tablename__ = "portal_property_register"

    kassenzeichen: Mapped[str] = mapped_column(String(14), primary_key=True)
    owner_given_name: Mapped[str] = mapped_column(String(100))
    owner_surname: Mapped[str] = mapped_column(String(100))
    street: Mapped[str] = mapped_column(String(100))
    house_number: Mapped[str] = mapped_column(String(10))
    suffix: Mapped[str] = mapped_column(String(20), default="")
    postcode: Mapped[str] = mapped_column(String(5))
    city: Mapped[str] = mapped_column(String(60))


class AssignedKassenzeichen(PortalBase):
    """A Kassenzeichen assigned to a citizen (by code, or automatically after one)."""

    __tablename__ = "portal_assigned_kassenzeichen"
    __table_args__ = (UniqueConstraint("citizen_key", "kassenzeichen"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    # The citizen's bPK2 at this portal (the NameID is transient here).
    citizen_key: Mapped[str] = mapped_column(String(256), index=True)
    kassenzeichen: Mapped[str] = mapped_column(
        ForeignKey("portal_property_register.kassenzeichen", ondelete="CASCADE"))
    assigned_at: Mapped[datetime] = mapped_column(UtcDateTime)
    automatic: Mapped[bool] = mapped_column(default=False)


class ConfirmationCode(PortalBase):
    """A Bestätigungscode sent by letter; only its keyed hash is kept here."""

    __tablename__ = "portal_confirmation_code"

    id: Mapped[int] = mapped_column(primary_key=True)
    citizen_key: Mapped[str] = mapped_column(String(256), index=True)
    kassenzeichen: Mapped[str] = mapped_column(
        ForeignKey("portal_property_register.kassenzeichen", ondelete="CASCADE"))
    code_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime)
    failed_attempts: Mapped[int] = mapped_column(default=0)
    used_at: Mapped[datetime | None] = mapped_column(UtcDateTime)


class PostalLetter(PortalBase):
    """A letter in the postal outbox (in the demo: the printable "Post")."""

    __tablename__ = "portal_postal_letter"

    id: Mapped[int] = mapped_column(primary_key=True)
    recipient: Mapped[str] = mapped_column(String(200))
    # The address lines below the recipient, separated by newlines.
    address: Mapped[str] = mapped_column(String(300))
    subject: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, index=True)
