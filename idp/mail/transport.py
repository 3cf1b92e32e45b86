"""How mails leave: Flask-Mail over SMTP (or the development mailbox), and what a failure means."""

from __future__ import annotations

import smtplib
import ssl
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, suppress
from dataclasses import dataclass
from typing import Protocol

from flask import current_app
from flask_mail import BadHeaderError, Connection, Mail, Message

from idp.config import Config
from idp.mail.models import OutboxMail

ERROR_CHARS = 200

Deliver = Callable[[OutboxMail], None]


# --- what went wrong -----------------------------------------------------------------------

@dataclass(frozen=True)
class DeliveryFailure:
    """A failed delivery: a short reason for the operator, and what it means for retrying."""

    reason: str
    # Retrying cannot help (the recipient is refused for good, the mail cannot be built).
    permanent: bool = False
    # The SMTP connection is gone or in an unknown state: stop this batch.
    connection_lost: bool = False


def classify(error: Exception) -> DeliveryFailure:
    """What a delivery error means. The reason names the error, never a password or a body."""
    if isinstance(error, smtplib.SMTPRecipientsRefused):
        codes = [code for code, _ in error.recipients.values()]
        answers = "; ".join(f"{code} {_text(message)}" for code, message in
                            error.recipients.values())
        return DeliveryFailure(_short(f"Empfänger abgelehnt: {answers}"),
                               permanent=bool(codes) and all(code >= 500 for code in codes))
    if isinstance(error, smtplib.SMTPServerDisconnected):
        return DeliveryFailure(_short(f"Verbindung getrennt: {error}"), connection_lost=True)
    if isinstance(error, smtplib.SMTPResponseException):
        # The server answered (and smtplib reset the transaction): the connection stays usable.
        return DeliveryFailure(_short(f"SMTP {error.smtp_code}: {_text(error.smtp_error)}"))
    if isinstance(error, smtplib.SMTPException):
        return DeliveryFailure(_short(f"{type(error).__name__}: {error}"), connection_lost=True)
    if isinstance(error, OSError):
        reason = error.strerror or str(error) or "keine Antwort"
        return DeliveryFailure(_short(f"SMTP-Server nicht erreichbar ({type(error).__name__}: "
                                      f"{reason})"), connection_lost=True)
    if isinstance(error, BadHeaderError | ValueError):
        return DeliveryFailure(_short(f"Mail ungültig: {type(error).__name__}"), permanent=True)
    # Unknown: retry later, and do not trust the connection any more.
    return DeliveryFailure(_short(f"{type(error).__name__}: {error}"), connection_lost=True)


def _text(value: bytes | str) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value


def _short(reason: str) -> str:
    return " ".join(reason.split())[:ERROR_CHARS]


# --- how mails leave -----------------------------------------------------------------------

class Transport(Protocol):
    """Opens one delivery channel for a batch; ``deliver`` raises when a mail is not accepted."""

    def open(self) -> AbstractContextManager[Deliver]: ...

    @property
    def timeout_seconds(self) -> float: ...


class SmtpConnection(Connection):
    """Flask-Mail's connection, with a socket timeout and verified TLS.

    Flask-Mail opens ``smtplib.SMTP`` without a timeout (a hung server would hang the sender for
    ever) and calls ``starttls()`` without a context, which does not check the server's
    certificate (the mail password would go to anyone in between).
    """

    def __init__(self, mail: Mail, timeout: float) -> None:
        super().__init__(mail)
        self.timeout = timeout

    def configure_host(self) -> smtplib.SMTP | smtplib.SMTP_SSL:
        context = ssl.create_default_context()
        host: smtplib.SMTP | smtplib.SMTP_SSL
        if self.mail.use_ssl:
            host = smtplib.SMTP_SSL(self.mail.server, self.mail.port, timeout=self.timeout,
                                    context=context)
        else:
            host = smtplib.SMTP(self.mail.server, self.mail.port, timeout=self.timeout)
        try:
            host.set_debuglevel(int(self.mail.debug))
            if self.mail.use_tls:
                host.starttls(context=context)
            if self.mail.username and self.mail.password:
                host.login(self.mail.username, self.mail.password)
        except BaseException:
            host.close()
            raise
        return host

    def close(self) -> None:
        """Say goodbye if the server still listens; close the socket in any case."""
        if self.host is None:
            return
        with suppress(smtplib.SMTPException, OSError):
            self.host.quit()
        self.host.close()
        self.host = None


@dataclass(frozen=True)
class SmtpTransport:
    """Delivers through Flask-Mail over one SMTP connection per batch."""

    sender: str
    timeout_seconds: float

    @contextmanager
    def open(self) -> Iterator[Deliver]:
        connection = SmtpConnection(current_app.extensions["mail"], self.timeout_seconds)
        connection.__enter__()  # connects; Flask-Mail's MAIL_SUPPRESS_SEND is honoured
        try:
            yield lambda mail: connection.send(self.message(mail))
        finally:
            connection.close()

    def message(self, mail: OutboxMail) -> Message:
        """A multipart/alternative mail (text and HTML) with the outbox row's own Message-ID."""
        message = Message(subject=mail.subject, recipients=[mail.recipient], body=mail.body_text,
                          html=mail.body_html, sender=self.sender, charset="utf-8")
        # Set the id itself rather than as an extra header: Flask-Mail adds its own Message-ID
        # header, and an extra one would give the mail two.
        message.msgId = mail.message_id
        return message


# Development without SMTP: every address at this domain bounces (a test persona's, or one typed
# into the registration form), so that QA sees what an undeliverable address does. The domain is
# reserved (RFC 2606): no real mail could go there anyway. docs/qa-workbench.md, "Bounces".
BOUNCING_DOMAIN = "unzustellbar.example"
BOUNCE_ANSWER = (550, b"5.1.1 Postfach existiert nicht (Testadresse, Entwicklungsmodus)")


def bounces(address: str) -> bool:
    """Whether the development mailbox refuses mail to ``address``."""
    return address.rpartition("@")[2].lower() == BOUNCING_DOMAIN


def _into_mailbox(mail: OutboxMail) -> None:
    if bounces(mail.recipient):
        # As an SMTP server refuses an unknown mailbox: the sender records a permanent failure,
        # which the mailbox page and GET /testing/api/mails show.
        raise smtplib.SMTPRecipientsRefused({mail.recipient: BOUNCE_ANSWER})


@dataclass(frozen=True)
class DevMailboxTransport:
    """Development without SMTP: the mail "arrives" in the development mailbox page (or
    bounces, see :data:`BOUNCING_DOMAIN`)."""

    timeout_seconds: float = 1.0

    @contextmanager
    def open(self) -> Iterator[Deliver]:
        yield _into_mailbox


def transport_for(config: Config) -> Transport:
    if config.uses_dev_mailbox:
        return DevMailboxTransport()
    return SmtpTransport(sender=config.mail_sender, timeout_seconds=config.mail_timeout_seconds)
