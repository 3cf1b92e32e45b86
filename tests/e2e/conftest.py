"""End-to-end fixtures: a real SMTP server for the real processes."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.integration.mail.smtp import SmtpServer, running_smtp_server


@pytest.fixture
def smtp_server() -> Iterator[SmtpServer]:
    yield from running_smtp_server()
