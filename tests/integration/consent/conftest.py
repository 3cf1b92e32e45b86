"""Consents given straight through the service (the SSO flow is tested elsewhere)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from flask import Flask
from sqlalchemy import select

from idp.accounts.models import Citizen
from idp.clock import utcnow
from idp.consent import records
from idp.db import db
from idp.samlkit.bundid import GIVEN_NAME, MAIL, SURNAME

DUEREN = "https://buergerportal.dueren.example/saml/metadata"
MAGS = "https://mags.moenchengladbach.example/sp"
NAMES = (GIVEN_NAME, SURNAME, MAIL)
PRIVACY_VERSION = "2026-11"


def citizen_id(app: Flask, username_key: str = "erikam") -> int:
    with app.app_context():
        found = db.session.scalar(select(Citizen.id).where(Citizen.username_key == username_key))
    assert found is not None, f"no account {username_key}"
    return found


def agree(app: Flask, citizen: int, portal: str = DUEREN, names: Iterable[str] = NAMES,
          at: datetime | None = None) -> int:
    """The citizen presses ZUSTIMMEN for ``portal``; the new consent's id."""
    with app.app_context():
        return records.give_consent(db.session, citizen, portal, names, at or utcnow(),
                                     PRIVACY_VERSION).id
