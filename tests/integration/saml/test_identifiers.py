"""Persistent NameIDs are pairwise and stable."""

from __future__ import annotations

from flask import Flask
from sqlalchemy import select

from idp.accounts.models import Citizen
from idp.clock import utcnow
from idp.db import db
from idp.saml.identifiers import persistent_name_id
from tests.conftest import Browser


def test_a_persistent_name_id_is_stable_per_portal_and_differs_between_portals(
        app: Flask, citizen: Browser) -> None:
    with app.app_context():
        citizen_id = db.session.scalars(select(Citizen.id)).one()
        first = persistent_name_id(db.session, citizen_id, "https://a.example", utcnow())
        again = persistent_name_id(db.session, citizen_id, "https://a.example", utcnow())
        other = persistent_name_id(db.session, citizen_id, "https://b.example", utcnow())
    assert first == again
    assert first != other
    assert len(first) >= 40
