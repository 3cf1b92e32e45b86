"""What the broker keeps: its requests waiting for an upstream's answer, the assertions it has
taken (replay cache), and which upstream account belongs to which of our accounts."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from idp.db import Base, UtcDateTime


class BrokerRequest(Base):
    """An AuthnRequest we sent to an upstream, until its answer comes or it expires.

    Kept server-side: the answer must name it (InResponseTo) and come back in the browser that
    sent it; then it is used up.
    """

    __tablename__ = "broker_request"

    request_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    upstream: Mapped[str] = mapped_column(String(40))
    # The hash of the browser session that sent it.
    browser_session_hash: Mapped[str] = mapped_column(String(64))
    # The portal's login waiting for it (its parked reference), None at our own start page.
    reference: Mapped[str | None] = mapped_column(String(64))
    # The level asked of the upstream (the portal's RequestedAuthnContext, passed on).
    requested_level: Mapped[int] = mapped_column(default=1)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime, index=True)
    used_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    # A LogoutRequest: what happens once the upstream answered (idp/broker/logout.py, JSON).
    after: Mapped[str | None] = mapped_column(Text)


class BrokerSeenAssertion(Base):
    """Each upstream assertion ID is taken once, remembered until it could no longer be valid."""

    __tablename__ = "broker_seen_assertion"
    __table_args__ = (UniqueConstraint("upstream", "assertion_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    upstream: Mapped[str] = mapped_column(String(40))
    assertion_id: Mapped[str] = mapped_column(String(256))
    keep_until: Mapped[datetime] = mapped_column(UtcDateTime, index=True)


class ExternalLink(Base):
    """An upstream account (its persistent NameID) bound to one of our accounts: an "external"
    account made for it at its first login (``made_for_it``), or a local account the citizen
    linked it to after logging in to that account once."""

    __tablename__ = "broker_external_link"
    __table_args__ = (UniqueConstraint("upstream", "name_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    upstream: Mapped[str] = mapped_column(String(40))
    name_id: Mapped[str] = mapped_column(String(512))
    citizen_id: Mapped[int] = mapped_column(ForeignKey("citizen.id", ondelete="CASCADE"),
                                            index=True)
    made_for_it: Mapped[bool] = mapped_column(default=False)
    # The upstream's bPK2 prefix when the link was made: an external account's pairwise
    # identifiers carry it for good, even if the registry's prefix changes later.
    bpk2_prefix: Mapped[str] = mapped_column(String(20))
    linked_at: Mapped[datetime] = mapped_column(UtcDateTime)
    last_login_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
