"""What fault injection keeps: the faults waiting for a portal, and its last right answer."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import String, Text
from sqlalchemy.orm import Mapped, mapped_column

from idp.db import Base, UtcDateTime


class PortalFault(Base):
    """The next ``remaining`` answers to a portal carry ``fault`` (docs/qa-workbench.md,
    "Fault injection"). In the database, so that every worker and host injects it; the last
    right Response to the portal is kept beside it for the ``replayed`` fault."""

    __tablename__ = "testing_portal_fault"

    # The portal's entity ID.
    portal: Mapped[str] = mapped_column(String(1024), primary_key=True)
    fault: Mapped[str | None] = mapped_column(String(64))
    remaining: Mapped[int] = mapped_column(default=0)
    set_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    # The last Response with an assertion that went to the portal unbroken (XML).
    last_answer: Mapped[str | None] = mapped_column(Text)
