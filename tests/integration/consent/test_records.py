"""Consents per citizen, portal and attribute set: covering, history, revocation, deletion."""

from __future__ import annotations

from datetime import timedelta

import pytest
from flask import Flask
from sqlalchemy import func, select

from idp.accounts import admin
from idp.accounts.models import Citizen
from idp.clock import utcnow
from idp.consent import records
from idp.consent.models import Consent
from idp.container import app_parts
from idp.db import db
from idp.samlkit.bundid import BIRTH_NAME, GENDER, GIVEN_NAME, MAIL, SURNAME
from tests.conftest import REGISTRATION, Browser, activate, register
from tests.integration.consent.conftest import DUEREN, MAGS, NAMES, agree, citizen_id


def covers(app: Flask, citizen: int, names: tuple[str, ...], portal: str = DUEREN) -> bool:
    with app.app_context():
        return records.consent_covers(db.session, citizen, portal, names, utcnow())


def consent_rows(app: Flask, citizen: int | None = None) -> list[Consent]:
    with app.app_context():
        query = select(Consent).order_by(Consent.id)
        if citizen is not None:
            query = query.where(Consent.citizen_id == citizen)
        rows = list(db.session.scalars(query))
        db.session.expunge_all()
        return rows


def second_citizen(app: Flask) -> int:
    """Max, a second activated account in a browser of his own."""
    other = Browser(app.test_client())
    register(other, given_name="Max", username="MaxM", email="max@example.org")
    activate(other, app, "max@example.org")
    return citizen_id(app, "maxm")


def test_consent_covers_the_same_attributes_and_fewer(app: Flask, citizen: Browser) -> None:
    erika = citizen_id(app)
    assert not covers(app, erika, NAMES)
    agree(app, erika)
    assert covers(app, erika, NAMES)
    assert covers(app, erika, (GIVEN_NAME,))
    assert covers(app, erika, ())


def test_a_portal_asking_for_more_attributes_asks_again(app: Flask, citizen: Browser) -> None:
    erika = citizen_id(app)
    agree(app, erika)
    assert not covers(app, erika, (*NAMES, BIRTH_NAME))
    agree(app, erika, names=(*NAMES, BIRTH_NAME))
    assert covers(app, erika, (*NAMES, BIRTH_NAME))


def test_consent_for_one_portal_does_not_cover_another(app: Flask, citizen: Browser) -> None:
    erika = citizen_id(app)
    agree(app, erika, portal=DUEREN)
    assert not covers(app, erika, NAMES, portal=MAGS)


def test_the_newest_consent_decides_what_is_covered(app: Flask, citizen: Browser) -> None:
    erika = citizen_id(app)
    agree(app, erika, names=(*NAMES, GENDER), at=utcnow() - timedelta(days=2))
    agree(app, erika, names=(GIVEN_NAME,), at=utcnow() - timedelta(days=1))
    assert covers(app, erika, (GIVEN_NAME,))
    assert not covers(app, erika, (GIVEN_NAME, GENDER))


def test_agreeing_twice_keeps_both_rows_as_history(app: Flask, citizen: Browser) -> None:
    erika = citizen_id(app)
    agree(app, erika, names=(GIVEN_NAME,))
    agree(app, erika, names=(GIVEN_NAME, SURNAME))
    rows = consent_rows(app, erika)
    assert [row.attribute_names for row in rows] == [
        frozenset({GIVEN_NAME}), frozenset({GIVEN_NAME, SURNAME})]
    assert all(row.privacy_version == "2026-11" and row.revoked_at is None for row in rows)


def test_the_online_service_id_of_a_bundid_request_is_kept(app: Flask, citizen: Browser) -> None:
    erika = citizen_id(app)
    with app.app_context():
        records.give_consent(db.session, erika, DUEREN, NAMES, utcnow(), "2026-11",
                              online_service_id="99123456760000")
    assert consent_rows(app, erika)[0].online_service_id == "99123456760000"


def test_proof_is_never_stored_cut_short(app: Flask, citizen: Browser) -> None:
    erika = citizen_id(app)
    with app.app_context(), pytest.raises(ValueError, match="online_service_id"):
        records.give_consent(db.session, erika, DUEREN, NAMES, utcnow(), "2026-11",
                              online_service_id="x" * 201)
    assert consent_rows(app) == []


def test_a_revoked_consent_covers_nothing_and_older_ones_do_not_return(
        app: Flask, citizen: Browser) -> None:
    erika = citizen_id(app)
    agree(app, erika, names=(*NAMES, GENDER), at=utcnow() - timedelta(days=1))
    newest = agree(app, erika)
    with app.app_context():
        revoked = records.revoke_consent(db.session, erika, newest, utcnow())
        assert revoked is not None and revoked.portal_entity_id == DUEREN
    assert not covers(app, erika, (GIVEN_NAME,))
    # Both rows stay as history, both marked revoked.
    rows = consent_rows(app, erika)
    assert len(rows) == 2 and all(row.revoked_at is not None for row in rows)
    agree(app, erika)
    assert covers(app, erika, NAMES)


def test_revoking_one_portal_leaves_the_others(app: Flask, citizen: Browser) -> None:
    erika = citizen_id(app)
    dueren = agree(app, erika, portal=DUEREN)
    agree(app, erika, portal=MAGS)
    with app.app_context():
        records.revoke_consent(db.session, erika, dueren, utcnow())
    assert covers(app, erika, NAMES, portal=MAGS)
    assert not covers(app, erika, NAMES, portal=DUEREN)


def test_another_citizen_cannot_revoke_my_consent(app: Flask, citizen: Browser) -> None:
    erika = citizen_id(app)
    mine = agree(app, erika)
    max_ = second_citizen(app)
    with app.app_context():
        assert records.revoke_consent(db.session, max_, mine, utcnow()) is None
        assert records.revoke_consent(db.session, max_, mine + 1000, utcnow()) is None
    assert covers(app, erika, NAMES)
    assert consent_rows(app, erika)[0].revoked_at is None


def test_the_list_shows_one_current_consent_per_portal(app: Flask, citizen: Browser) -> None:
    erika = citizen_id(app)
    agree(app, erika, portal=DUEREN, names=(GIVEN_NAME,), at=utcnow() - timedelta(hours=3))
    newest_dueren = agree(app, erika, portal=DUEREN, names=(MAIL, GENDER, GIVEN_NAME),
                          at=utcnow() - timedelta(hours=2))
    mags = agree(app, erika, portal=MAGS, at=utcnow() - timedelta(hours=1))
    agree(app, second_citizen(app), portal=DUEREN)
    with app.app_context():
        listed = records.consents_of(db.session, erika)
        assert [(item.portal_entity_id, item.consent_id) for item in listed] == [
            (MAGS, mags), (DUEREN, newest_dueren)]
        assert listed[1].attribute_labels == ("Anrede", "Vorname", "E-Mail-Adresse")
        assert listed[1].privacy_version == "2026-11"
        records.revoke_consent(db.session, erika, mags, utcnow())
        assert [item.portal_entity_id for item in records.consents_of(db.session, erika)] == [
            DUEREN]


def test_deleting_an_account_removes_its_consents(app: Flask, citizen: Browser) -> None:
    erika = citizen_id(app)
    agree(app, erika, portal=DUEREN)
    agree(app, erika, portal=MAGS)
    max_ = second_citizen(app)
    agree(app, max_)
    with app.app_context():
        context = app_parts(app).services
        account = db.session.get(Citizen, erika)
        assert account is not None and account.email == REGISTRATION["email"]
        admin.delete_citizen(context.accounts(db.session), account)
        assert db.session.scalar(select(func.count()).select_from(Consent).where(
            Consent.citizen_id == erika)) == 0
    assert [row.citizen_id for row in consent_rows(app)] == [max_]
