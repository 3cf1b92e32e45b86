"""Single sign-on decides afresh from the database each time: a consent revoked elsewhere, a
session past its idle or absolute time and an account no longer active count at the next SSO."""

from __future__ import annotations

import base64
import re
from typing import Any

import pytest
from flask import Flask
from saml2 import BINDING_HTTP_REDIRECT, time_util
from sqlalchemy import update

from idp.accounts.models import AccountStatus, Citizen
from idp.clock import utcnow
from idp.db import db
from tests.conftest import Browser, Clock, log_in
from tests.flows.conftest import Portal, consent_page, decide, field_value, logged_in

REVOKE = re.compile(r'action="(/konto/zustimmungen/\d+/widerrufen)"')
SUCCESS = b"urn:oasis:names:tc:SAML:2.0:status:Success"


@pytest.fixture
def shared_clock(clock: Clock, monkeypatch: pytest.MonkeyPatch) -> Clock:
    """The IdP's clock, followed by the portal's requests (the IdP checks their IssueInstant)."""
    monkeypatch.setattr("saml2.entity.instant", lambda *_args, **_kwargs: time_util.instant(
        time_stamp=utcnow().timestamp()))
    return clock


def _agreed(app: Flask, visitor: Browser, portal: Portal) -> None:
    """Erika logs in and agrees once; the portal gets its assertion."""
    logged_in(app, visitor)
    consent_page(visitor, portal)
    assert portal.receive(decide(visitor).get_data(as_text=True)).assertion is not None


def _sso(visitor: Browser, portal: Portal) -> Any:
    path, _ = portal.login_url(BINDING_HTTP_REDIRECT)
    return visitor.client.get(path)


def _answered_at_once(visitor: Browser, portal: Portal) -> bool:
    """The IdP answers with a successful Response (the portal's own clock did not move, so the
    portal is not asked to accept it)."""
    response = _sso(visitor, portal)
    if response.status_code != 200:
        return False
    return SUCCESS in base64.b64decode(field_value(response.get_data(as_text=True),
                                                  "SAMLResponse"))


def _sent_to_login(visitor: Browser, portal: Portal) -> bool:
    response = _sso(visitor, portal)
    return response.status_code == 302 and response.location.startswith("/anmelden?anfrage=")


def test_a_consent_revoked_on_another_device_is_asked_for_again_at_the_next_sso(
        sso_app: Flask, visitor: Browser, portal: Portal) -> None:
    _agreed(sso_app, visitor, portal)
    other_device = Browser(sso_app.test_client())
    log_in(other_device)
    revoke = REVOKE.search(other_device.get("/konto/zustimmungen").get_data(as_text=True))
    assert revoke is not None
    assert other_device.submit(revoke.group(1)).status_code == 302
    consent_page(visitor, portal)


def test_after_an_hour_without_activity_the_next_sso_asks_for_the_password(
        sso_app: Flask, visitor: Browser, portal: Portal, shared_clock: Clock) -> None:
    _agreed(sso_app, visitor, portal)
    shared_clock.advance(minutes=59)
    assert _answered_at_once(visitor, portal)  # activity keeps the session alive
    shared_clock.advance(minutes=61)
    assert _sent_to_login(visitor, portal)


def test_after_twelve_hours_the_next_sso_asks_for_the_password_however_active(
        sso_app: Flask, visitor: Browser, portal: Portal, shared_clock: Clock) -> None:
    _agreed(sso_app, visitor, portal)
    for _ in range(14):  # 11 h 40 min, never idle for an hour
        shared_clock.advance(minutes=50)
        assert _answered_at_once(visitor, portal)
    shared_clock.advance(minutes=50)
    assert _sent_to_login(visitor, portal)


def test_an_account_no_longer_active_gets_no_assertion_but_the_login_page(
        sso_app: Flask, visitor: Browser, portal: Portal) -> None:
    _agreed(sso_app, visitor, portal)
    with sso_app.app_context():
        db.session.execute(update(Citizen).values(status=AccountStatus.PENDING))
        db.session.commit()
    assert _sent_to_login(visitor, portal)
