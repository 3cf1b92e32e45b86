"""Reading the outbox as a mailbox: the development mailbox page and the test-control API.

No Flask: the callers pass the database session.
"""

from __future__ import annotations

import enum
import re

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from idp.mail.models import OutboxMail

# Links end before whitespace and before characters that close a sentence or a bracket.
LINK = re.compile(r"https?://[^\s<>\"']+[^\s<>\"'.,;:!?)\]]")


def newest_mails(session: Session, limit: int) -> list[OutboxMail]:
    """The outbox, newest mail first."""
    return list(session.scalars(select(OutboxMail).order_by(OutboxMail.created_at.desc(),
                                                            OutboxMail.id.desc()).limit(limit)))


def mails_to(session: Session, address: str, limit: int) -> list[OutboxMail]:
    """The mails to ``address`` (case-blind, as mail systems compare), newest first."""
    return list(session.scalars(
        select(OutboxMail).where(func.lower(OutboxMail.recipient) == address.strip().lower())
        .order_by(OutboxMail.created_at.desc(), OutboxMail.id.desc()).limit(limit)))


class Delivery(enum.StrEnum):
    """Where a mail stands: waiting (or being retried), handed over, or given up on."""

    WAITING = "waiting"
    SENT = "sent"
    # Given up: refused for good (a bounce) or too many failed attempts; last_error says which.
    FAILED = "failed"

    @property
    def label(self) -> str:
        """As the development mailbox names it."""
        return {"waiting": "wartet", "sent": "versendet", "failed": "fehlgeschlagen"}[self.value]


def delivery_of(mail: OutboxMail) -> Delivery:
    if mail.sent_at is not None:
        return Delivery.SENT
    if mail.failed_at is not None:
        return Delivery.FAILED
    return Delivery.WAITING


def status_of(mail: OutboxMail) -> str:
    """The mail's state as the mailbox names it."""
    return delivery_of(mail).label


def links_in(text: str) -> list[str]:
    """The http(s) links of a mail's plain text, in order."""
    return LINK.findall(text)
