"""``IDP_SESSION_LEVEL4_*``: an operator who shortens the sessions of eID logins sees them end
at the configured times (the defaults, 30 and 5 minutes, are tested in test_eid.py)."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select

from idp.db import db
from idp.testing.models import EidTestCard
from tests.conftest import Browser, Clock
from tests.flows.conftest import Portal
from tests.flows.test_eid import PIN, authn_times, card, eid_login, registered


@pytest.fixture
def settings(settings: dict[str, Any]) -> dict[str, Any]:
    return settings | {"session_level4_absolute_minutes": 12, "session_level4_idle_minutes": 3}


def eid_login_here(app: Flask, visitor: Browser) -> None:
    """Erika logs in with her card at the IdP itself (level 4, hoch)."""
    with app.app_context():
        card_id = db.session.scalar(select(EidTestCard.id))
    visitor.get("/ausweis")
    assert visitor.submit("/ausweis", {"card": str(card_id), "pin": PIN}).status_code == 302


def test_an_eid_session_ends_after_the_configured_idle_and_absolute_minutes(
        sso_app: Flask, visitor: Browser, clock: Clock) -> None:
    registered(sso_app, visitor)
    card(sso_app)
    eid_login_here(sso_app, visitor)
    clock.advance(minutes=2)
    assert visitor.get("/konto").status_code == 200
    clock.advance(minutes=3, seconds=1)
    assert visitor.get("/konto").status_code == 302  # 3 minutes without a request: ended

    eid_login_here(sso_app, visitor)
    for _ in range(5):
        clock.advance(minutes=2)
        assert visitor.get("/konto").status_code == 200
    clock.advance(minutes=2, seconds=1)
    assert visitor.get("/konto").status_code == 302  # 12 minutes after the login


def test_the_portal_is_told_the_configured_end_of_an_eid_session(
        sso_app: Flask, visitor: Browser, portal: Portal) -> None:
    page = eid_login(sso_app, registered(sso_app, visitor), portal)

    instant, not_after = authn_times(page)

    assert (not_after - instant).total_seconds() == 12 * 60  # SessionNotOnOrAfter
