"""Writing mails into the outbox, in the caller's transaction (no Flask needed)."""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from idp.mail.models import OutboxMail


class MailTemplates:
    """German mail templates ``templates/mail/NAME.txt`` and ``NAME.html``.

    The first line of the text template is the subject, the rest the plain-text body.
    """

    def __init__(self, template_dir: Path, sender_domain: str) -> None:
        self._env = Environment(loader=FileSystemLoader(template_dir / "mail"),
                                autoescape=select_autoescape(["html"]),
                                undefined=StrictUndefined, keep_trailing_newline=True)
        self.sender_domain = sender_domain

    def render(self, name: str, context: dict[str, Any]) -> tuple[str, str, str]:
        """Return (subject, plain text, HTML) of mail ``name``."""
        text = self._env.get_template(f"{name}.txt").render(context)
        subject, _, body = text.partition("\n")
        html = self._env.get_template(f"{name}.html").render(context, subject=subject.strip())
        # A subject never spans lines: that would inject headers.
        return " ".join(subject.split()), body.lstrip("\n"), html


# Anonymous requests may make us mail an address at most this often per window; beyond that
# the request is answered as usual but nothing is sent (no mail bombing through our forms).
MAILS_PER_ADDRESS = 5
MAIL_WINDOW = timedelta(hours=1)


class Outbox:
    """Adds mails to the outbox within ``session``'s transaction."""

    def __init__(self, session: Session, templates: MailTemplates, now: datetime) -> None:
        self._session = session
        self._templates = templates
        self._now = now

    def may_mail(self, address: str) -> bool:
        """False once ``address`` got :data:`MAILS_PER_ADDRESS` mails within the window."""
        sent = self._session.scalar(select(func.count()).select_from(OutboxMail).where(
            OutboxMail.recipient == address, OutboxMail.created_at > self._now - MAIL_WINDOW))
        return (sent or 0) < MAILS_PER_ADDRESS

    def enqueue(self, recipient: str, template: str, **context: Any) -> OutboxMail:
        """Queue mail ``template`` to ``recipient``; it is sent only if the transaction commits."""
        subject, text, html = self._templates.render(template, context)
        mail = OutboxMail(
            recipient=recipient, subject=subject, body_text=text, body_html=html,
            message_id=f"<{secrets.token_hex(16)}@{self._templates.sender_domain}>",
            created_at=self._now, next_attempt_at=self._now, attempts=0)
        self._session.add(mail)
        return mail


def purge_finished_mails(session: Session, now: datetime, keep: timedelta) -> int:
    """Delete mails sent or given up longer than ``keep`` ago: they hold names and addresses,
    and once delivered the outbox has no reason to keep them."""
    cutoff = now - keep
    result = session.execute(delete(OutboxMail).where(
        (OutboxMail.sent_at < cutoff) | (OutboxMail.failed_at < cutoff)))
    return int(result.rowcount)  # type: ignore[attr-defined]
