"""Consents: proof that a citizen agreed to hand given attributes to a portal (GDPR Art. 7)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from idp.db import Base, UtcDateTime


class Consent(Base):
    """One "ZUSTIMMEN": who, to which portal, which attributes, when, under which privacy text.

    Rows are never changed but to note a revocation, so the history stays as proof.
    """

    __tablename__ = "consent"
    __table_args__ = (Index("ix_consent_citizen_portal", "citizen_id", "portal_entity_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    citizen_id: Mapped[int] = mapped_column(ForeignKey("citizen.id", ondelete="CASCADE"))
    portal_entity_id: Mapped[str] = mapped_column(String(1024))
    # The attribute Names (urn:oid:…) agreed to, sorted, separated by spaces.
    attributes: Mapped[str] = mapped_column(Text)
    given_at: Mapped[datetime] = mapped_column(UtcDateTime)
    privacy_version: Mapped[str] = mapped_column(String(32))
    # BundID requests name the online service; kept with the consent it was given for.
    online_service_id: Mapped[str | None] = mapped_column(String(200))
    revoked_at: Mapped[datetime | None] = mapped_column(UtcDateTime)

    @property
    def attribute_names(self) -> frozenset[str]:
        return frozenset(self.attributes.split())
