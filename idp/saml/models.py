"""What the SAML side keeps between requests, so that any worker can finish a login."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from idp.db import Base, UtcDateTime


class PendingRequest(Base):
    """An AuthnRequest between its arrival and our response (login and consent in between).

    The browser gets only a random reference; the parsed request stays here.
    """

    __tablename__ = "saml_pending_request"

    id_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    portal_entity_id: Mapped[str] = mapped_column(String(1024))
    # The parsed request (ID, ACS, binding, RelayState, NameID policy, requested context and
    # attributes, display information) as JSON.
    data: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime, index=True)


class SeenRequest(Base):
    """The replay cache: each (issuer, request ID) is accepted once."""

    __tablename__ = "saml_seen_request"
    __table_args__ = (UniqueConstraint("issuer", "request_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    issuer: Mapped[str] = mapped_column(String(1024))
    request_id: Mapped[str] = mapped_column(String(256))
    seen_at: Mapped[datetime] = mapped_column(UtcDateTime, index=True)


class PersistentNameId(Base):
    """The pairwise, stable identifier of a citizen at one portal (also released as bPK2)."""

    __tablename__ = "saml_persistent_name_id"
    __table_args__ = (UniqueConstraint("citizen_id", "portal_entity_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    citizen_id: Mapped[int] = mapped_column(ForeignKey("citizen.id", ondelete="CASCADE"))
    portal_entity_id: Mapped[str] = mapped_column(String(1024))
    value: Mapped[str] = mapped_column(String(256), unique=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)


class PortalSession(Base):
    """A portal a browser session logged in to, for single logout."""

    __tablename__ = "saml_portal_session"
    __table_args__ = (Index("ix_saml_portal_session_browser", "browser_session_hash"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    browser_session_hash: Mapped[str] = mapped_column(String(64))
    citizen_id: Mapped[int] = mapped_column(ForeignKey("citizen.id", ondelete="CASCADE"))
    portal_entity_id: Mapped[str] = mapped_column(String(1024))
    name_id: Mapped[str] = mapped_column(String(256))
    name_id_format: Mapped[str] = mapped_column(String(256))
    session_index: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)


class LogoutChain(Base):
    """A single logout on its way through the portals of one browser session.

    The IdP session has ended before the chain starts, so the chain cannot live there: the
    browser carries only a random reference (as RelayState through each portal); which portals
    are still to be told and what each answered stays here, for any worker to continue. A row
    exists only while a portal's LogoutResponse is awaited.
    """

    __tablename__ = "saml_logout_chain"

    id_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    # The portal asked last and the ID of the LogoutRequest it got: only its answer, once,
    # moves the chain on.
    awaiting_portal: Mapped[str] = mapped_column(String(1024))
    awaiting_request: Mapped[str] = mapped_column(String(256))
    # The initiator (if a portal started it), the portals still to be told, the answers so far.
    data: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime, index=True)
