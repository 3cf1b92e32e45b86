"""Replay cache and pending requests live in the database, shared by every worker."""

from __future__ import annotations

import threading
from datetime import timedelta

from flask import Flask

from idp.cli import main
from idp.clock import utcnow
from idp.db import db
from idp.saml import state
from tests.conftest import Browser, log_in


def test_a_request_id_is_accepted_once_per_issuer(app: Flask) -> None:
    now = utcnow()
    with app.app_context():
        assert state.first_sighting(db.session, "https://a.example", "_1", now)
        assert not state.first_sighting(db.session, "https://a.example", "_1", now)
        assert state.first_sighting(db.session, "https://b.example", "_1", now)


def test_parallel_arrivals_of_one_request_are_accepted_exactly_once(app: Flask) -> None:
    now, results = utcnow(), []
    barrier = threading.Barrier(8)

    def arrive() -> None:
        with app.app_context():
            barrier.wait()
            results.append(state.first_sighting(db.session, "https://a.example", "_race", now))

    threads = [threading.Thread(target=arrive) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == [False] * 7 + [True]


def test_old_request_ids_are_forgotten_after_the_window(app: Flask) -> None:
    now = utcnow()
    with app.app_context():
        state.first_sighting(db.session, "https://a.example", "_old", now)
        assert state.forget_old_requests(db.session, now + timedelta(minutes=11)) == 1


def test_a_pending_request_is_found_while_fresh_and_finished_once(app: Flask) -> None:
    now = utcnow()
    with app.app_context():
        reference = state.keep_pending(db.session, "https://a.example", {"id": "_1"}, now)
        assert state.pending(db.session, reference, now) == ("https://a.example", {"id": "_1"})
        assert state.pending(db.session, "forged", now) is None
        assert state.pending(db.session, reference, now + timedelta(hours=1)) is None
        assert state.finish_pending(db.session, reference)
        assert not state.finish_pending(db.session, reference)
        assert state.pending(db.session, reference, now) is None


def test_a_portal_session_is_noted_once_per_browser_and_portal(app: Flask,
                                                                 citizen: object) -> None:
    from sqlalchemy import select

    from idp.accounts.models import Citizen

    now = utcnow()
    with app.app_context():
        citizen_id = db.session.scalars(select(Citizen.id)).one()
        indexes = {state.remember_portal_session(db.session, "browser-1", citizen_id,
                                                 "https://a.example", name_id, "transient", now)
                   for name_id in ("_a", "_a", "_b")}
        other = state.remember_portal_session(db.session, "browser-1", citizen_id,
                                              "https://b.example", "_c", "transient", now)
        rows = state.portal_sessions(db.session, "browser-1")
    assert sorted((row.portal_entity_id, row.name_id) for row in rows) == \
        [("https://a.example", "_b"), ("https://b.example", "_c")]
    # One SessionIndex per portal, kept across its logins, another for the other portal.
    assert len(indexes) == 1 and other not in indexes


def test_purge_removes_stale_saml_state_and_keeps_what_is_still_needed(
        app: Flask, citizen: Browser) -> None:
    from sqlalchemy import select

    from idp.accounts.models import Citizen
    from idp.saml.models import PendingRequest, PortalSession, SeenRequest

    now = utcnow()
    with app.app_context():
        citizen_id = db.session.scalars(select(Citizen.id)).one()
        state.first_sighting(db.session, "https://a.example", "_old", now - timedelta(hours=1))
        state.first_sighting(db.session, "https://a.example", "_fresh", now)
        state.keep_pending(db.session, "https://a.example", {"id": "_1"},
                           now - timedelta(hours=1))
        state.remember_portal_session(db.session, "no-such-browser-session", citizen_id,
                                      "https://a.example", "_n", "transient", now)
        log_in(citizen)
        live = citizen.client.get_cookie(app.config["SESSION_COOKIE_NAME"])
        assert live is not None
        state.remember_portal_session(db.session, live.value, citizen_id,
                                      "https://a.example", "_m", "transient", now)
    result = app.test_cli_runner().invoke(main, args=["purge"])
    assert "3 abgelaufene SAML-Einträge" in result.output, result.output
    with app.app_context():
        assert db.session.scalars(select(SeenRequest.request_id)).all() == ["_fresh"]
        assert db.session.scalars(select(PendingRequest.id_hash)).all() == []
        assert db.session.scalars(select(PortalSession.name_id)).all() == ["_m"]
