"""An IdP whose mails go to a real SMTP server (see :mod:`tests.integration.mail.smtp`)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask

from tests.integration.mail.smtp import SmtpServer, running_smtp_server


@pytest.fixture
def smtp_server() -> Iterator[SmtpServer]:
    yield from running_smtp_server()


@pytest.fixture
def smtp_settings(settings: dict[str, Any], smtp_server: SmtpServer) -> dict[str, Any]:
    """The test IdP's settings with the SMTP server configured (ask for it before ``app``)."""
    settings.update(mail_server="127.0.0.1", mail_port=smtp_server.port,
                    mail_timeout_seconds=5.0)
    return settings


@pytest.fixture
def mail_app(smtp_settings: dict[str, Any], app: Flask) -> Flask:
    """The test IdP, delivering its mails to ``smtp_server``."""
    return app
