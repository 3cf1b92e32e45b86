"""What the test-control API answers and ``servicekonto testing … --json`` prints: mails and the
clock as JSON-ready records (no Flask)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy.orm import Session

from idp.mail.models import OutboxMail
from idp.mail.reading import delivery_of, links_in, mails_to
from idp.testing.clock_store import ClockState
from idp.testing.errors import WorkbenchError

MAILS_MAX = 200


def instant(value: datetime | None) -> str | None:
    """RFC 3339 in UTC ("2026-12-05T19:53:25.327445Z")."""
    return None if value is None else value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def mails_to_address(session: Session, address: str, limit: int) -> list[dict[str, Any]]:
    """The mails to ``address``, newest first, with their links and delivery state."""
    if not address.strip():
        raise WorkbenchError("Bitte die Adresse angeben: /testing/api/mails?to=ADRESSE.")
    if not 1 <= limit <= MAILS_MAX:
        raise WorkbenchError(f"limit muss eine Zahl von 1 bis {MAILS_MAX} sein.")
    return [mail_record(mail) for mail in mails_to(session, address, limit)]


def mail_record(mail: OutboxMail) -> dict[str, Any]:
    return {"id": mail.id, "to": mail.recipient, "subject": mail.subject,
            "created_at": instant(mail.created_at), "status": delivery_of(mail).value,
            "sent_at": instant(mail.sent_at), "failed_at": instant(mail.failed_at),
            "error": mail.last_error, "text": mail.body_text, "links": links_in(mail.body_text)}


def clock_record(state: ClockState) -> dict[str, Any]:
    return {"offset_seconds": state.offset_seconds, "now": instant(state.now)}
