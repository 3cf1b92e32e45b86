"""A single logout in progress lives in the database: found by its reference while fresh,
moved on once per awaited answer, whichever worker receives it."""

from __future__ import annotations

import threading
from datetime import timedelta

from flask import Flask

from idp.clock import utcnow
from idp.db import db
from idp.saml import state

PORTAL = "https://a.example"
DATA = {"initiator": None, "to_notify": [], "logged_out": [], "not_logged_out": []}


def test_a_chain_is_found_by_its_reference_while_fresh(app: Flask) -> None:
    now = utcnow()
    with app.app_context():
        reference = state.keep_logout_chain(db.session, DATA, PORTAL, "_lr1", now)
        assert state.logout_chain(db.session, reference, now) == (PORTAL, "_lr1", DATA)
        for made_up in ("forged", "", None, reference + "x", "x" * 65):
            assert state.logout_chain(db.session, made_up, now) is None
        assert state.logout_chain(db.session, reference, now + timedelta(minutes=11)) is None


def test_a_chain_moves_on_only_with_the_answer_it_awaits_and_only_once(app: Flask) -> None:
    now = utcnow()
    with app.app_context():
        reference = state.keep_logout_chain(db.session, DATA, PORTAL, "_lr1", now)
        assert not state.advance_logout_chain(db.session, reference, "_other", DATA,
                                              "https://b.example", "_lr2", now)
        assert state.advance_logout_chain(db.session, reference, "_lr1", DATA,
                                          "https://b.example", "_lr2", now)
        assert not state.advance_logout_chain(db.session, reference, "_lr1", DATA,
                                              "https://c.example", "_lr3", now)
        assert state.logout_chain(db.session, reference, now)[:2] == ("https://b.example",
                                                                      "_lr2")
        assert not state.finish_logout_chain(db.session, reference, "_lr1")
        assert state.finish_logout_chain(db.session, reference, "_lr2")
        assert not state.finish_logout_chain(db.session, reference, "_lr2")
        assert state.logout_chain(db.session, reference, now) is None


def test_parallel_answers_to_one_step_move_the_chain_exactly_once(app: Flask) -> None:
    now, results = utcnow(), []
    with app.app_context():
        reference = state.keep_logout_chain(db.session, DATA, PORTAL, "_race", now)
    barrier = threading.Barrier(8)

    def answer(n: int) -> None:
        with app.app_context():
            barrier.wait()
            results.append(state.advance_logout_chain(db.session, reference, "_race", DATA,
                                                      PORTAL, f"_next{n}", now))

    threads = [threading.Thread(target=answer, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == [False] * 7 + [True]


def test_expired_chains_are_forgotten(app: Flask) -> None:
    now = utcnow()
    with app.app_context():
        state.keep_logout_chain(db.session, DATA, PORTAL, "_old", now)
        fresh = state.keep_logout_chain(db.session, DATA, PORTAL, "_new", now + timedelta(
            minutes=9))
        assert state.forget_expired_logout_chains(db.session, now + timedelta(minutes=11)) == 1
        assert state.logout_chain(db.session, fresh, now + timedelta(minutes=11)) is not None


def test_the_portals_of_a_browser_session_are_forgotten_at_logout(
        app: Flask, citizen: object) -> None:
    from sqlalchemy import select

    from idp.accounts.models import Citizen

    now = utcnow()
    with app.app_context():
        citizen_id = db.session.scalars(select(Citizen.id)).one()
        for browser, portal in (("b1", PORTAL), ("b1", "https://b.example"), ("b2", PORTAL)):
            state.remember_portal_session(db.session, browser, citizen_id, portal, "_n",
                                          "transient", now)
        assert state.forget_portal_sessions(db.session, "b1") == 2
        assert state.portal_sessions(db.session, "b1") == []
        assert len(state.portal_sessions(db.session, "b2")) == 1
