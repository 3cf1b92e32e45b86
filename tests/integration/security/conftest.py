"""Helpers of the attack tests: what the database holds, and what a German error page is."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select, update
from werkzeug.test import TestResponse

from idp.accounts.models import AccountToken, Citizen
from idp.clock import utcnow
from idp.db import db
from idp.mail.models import OutboxMail
from idp.security.models import BrowserSession
from tests.conftest import Browser, link_in, outbox, path_of

TITLES = {400: "Ungültige Anfrage", 404: "Seite nicht gefunden", 405: "Aktion nicht möglich",
          413: "Anfrage zu groß"}
CSRF_MESSAGE = "Das Formular ist abgelaufen oder wurde nicht von dieser Seite gesendet"
INVALID_LINK = "Aktivierungslink ungültig"


def database_state(app: Flask) -> dict[str, Any]:
    """Everything an attack could change: accounts, links, mails and logged-in sessions."""
    with app.app_context():
        session = db.session
        return {
            "citizens": sorted((c.username, c.email, str(c.status), c.given_name, c.surname)
                               for c in session.scalars(select(Citizen))),
            "links": sorted((t.id, t.used_at, t.voided_at, t.expires_at)
                            for t in session.scalars(select(AccountToken))),
            "mails": session.scalar(select(func.count()).select_from(OutboxMail)),
            "logged_in": session.scalar(select(func.count()).select_from(BrowserSession)
                                        .where(BrowserSession.citizen_id.is_not(None))),
        }


def citizens(app: Flask) -> list[Citizen]:
    with app.app_context():
        return list(db.session.scalars(select(Citizen).order_by(Citizen.id)))


def assert_german_error(response: TestResponse, status: int, *phrases: str) -> str:
    """The answer is a German page with ``status`` saying ``phrases`` (default: its title)."""
    html = response.get_data(as_text=True)
    assert response.status_code == status, html[:2000]
    assert response.mimetype == "text/html"
    assert '<html lang="de">' in html
    for phrase in phrases or (TITLES[status],):
        assert phrase in html, f"{phrase!r} missing from the {status} page"
    return html


def is_logged_in(client: FlaskClient) -> bool:
    """What a citizen sees: the header offers "Abmelden" only to someone logged in."""
    return "Abmelden" in client.get("/").get_data(as_text=True)


def activation_path(app: Flask, recipient: str | None = None) -> str:
    """The path of the newest activation link in the outbox."""
    mails = [m for m in outbox(app) if recipient is None or m.recipient == recipient]
    return path_of(link_in(mails[-1]))


def expire_links(app: Flask) -> None:
    """Let every link run out, as if its 24 hours had passed."""
    with app.app_context():
        db.session.execute(update(AccountToken).values(expires_at=utcnow()))
        db.session.commit()


@pytest.fixture
def stranger(client: FlaskClient, app: Flask) -> Browser:
    """A second browser (the attacker's), with cookies of its own."""
    return Browser(app.test_client())


@pytest.fixture
def state(app: Flask) -> Callable[[], dict[str, Any]]:
    return lambda: database_state(app)
