"""A real SMTP server (aiosmtpd) on 127.0.0.1 that keeps what it receives."""

from __future__ import annotations

import asyncio
import email
import socket
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.policy import default as default_policy

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session


@dataclass
class Inbox:
    """The aiosmtpd handler: accepts every mail (after ``delay`` seconds) and keeps it."""

    delay: float = 0.0
    # Recipients the server refuses, with its answer (e.g. "550 5.1.1 Unbekannter Empfänger").
    refuse: dict[str, str] = field(default_factory=dict)
    received: list[EmailMessage] = field(default_factory=list)
    envelope_recipients: list[str] = field(default_factory=list)

    async def handle_RCPT(self, _server: SMTP, _session: Session, envelope: Envelope,
                          address: str, _options: list[str]) -> str:
        if address in self.refuse:
            return self.refuse[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, _server: SMTP, _session: Session, envelope: Envelope) -> str:
        if self.delay:
            await asyncio.sleep(self.delay)
        content = envelope.original_content or b""
        message = email.message_from_bytes(content, policy=default_policy)
        self.received.append(message)
        self.envelope_recipients.extend(envelope.rcpt_tos)
        return "250 Message accepted for delivery"

    def per_recipient(self) -> Counter[str]:
        """How many mails each envelope recipient got."""
        return Counter(self.envelope_recipients)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@dataclass
class SmtpServer:
    """An SMTP server that can be stopped and started again on the same port (an outage)."""

    inbox: Inbox
    port: int
    controller: Controller | None = None

    def start(self) -> None:
        self.controller = Controller(self.inbox, hostname="127.0.0.1", port=self.port)
        self.controller.start()

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()
            self.controller = None


def running_smtp_server() -> Iterator[SmtpServer]:
    """A started server on a free port, stopped afterwards (the body of the fixtures)."""
    server = SmtpServer(Inbox(), free_port())
    server.start()
    try:
        yield server
    finally:
        server.stop()
