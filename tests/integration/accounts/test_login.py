"""Logging in with username and password: sessions, throttling, no enumeration."""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select

from idp.cli import main
from idp.clock import utcnow
from idp.db import db
from idp.security.models import LoginThrottle
from tests.conftest import GOOD_PASSWORD, Browser, Clock, activate, log_in, outbox, register

FAILED = "Die Anmeldung ist fehlgeschlagen"


def test_the_username_is_case_sensitive_at_login(citizen: Browser) -> None:
    assert log_in(citizen, username="erikam").status_code == 401
    assert log_in(citizen, username="ErikaM").status_code == 302


def test_a_full_width_username_logs_in_as_its_plain_form(citizen: Browser) -> None:
    assert log_in(citizen, username="ＥｒｉｋａＭ").status_code == 302


def test_a_pending_registration_is_told_to_activate_only_after_the_right_password(
        app: Flask, browser: Browser) -> None:
    register(browser)
    wrong = log_in(browser, password="Falsch-123 x")
    assert FAILED in wrong.get_data(as_text=True)
    right = log_in(browser)
    assert right.status_code == 401
    assert "noch nicht aktiviert" in right.get_data(as_text=True)


def test_unknown_user_and_wrong_password_get_the_same_answer(citizen: Browser) -> None:
    unknown = log_in(citizen, username="Niemand", password="Falsch-123 x")
    wrong = log_in(citizen, password="Falsch-123 x")
    assert unknown.status_code == wrong.status_code == 401
    assert _message(unknown) == _message(wrong)


def _message(response: Any) -> str:
    html = response.get_data(as_text=True)
    start = html.index('id="anmeldung-fehler"')
    return html[start:html.index("</p>", start)]


def test_logout_ends_the_session_on_the_server(citizen: Browser) -> None:
    log_in(citizen)
    assert citizen.get("/konto").status_code == 200
    citizen.submit("/abmelden")
    assert citizen.get("/konto").status_code == 302


def _fail(browser: Browser, n: int, username: str = "ErikaM", **kwargs: Any) -> Any:
    response = None
    for _ in range(n):
        response = log_in(browser, username=username, password="Falsch-123 x", **kwargs)
    return response


def test_after_five_failures_even_the_right_password_waits_then_works(
        citizen: Browser, clock: Clock) -> None:
    _fail(citizen, 5)
    throttled = log_in(citizen)
    assert throttled.status_code == 401
    assert FAILED in throttled.get_data(as_text=True)
    clock.advance(seconds=2)
    assert log_in(citizen).status_code == 302


def test_the_owner_gets_one_mail_when_the_account_is_first_throttled(
        app: Flask, citizen: Browser, clock: Clock) -> None:
    for _ in range(4):
        _fail(citizen, 5)
        clock.advance(seconds=61)
    warnings = [m for m in outbox(app) if "fehlgeschlagene Anmeldeversuche" in m.subject]
    assert len(warnings) == 1
    assert warnings[0].recipient == "erika.mustermann@example.org"


def test_no_more_than_100_failures_count_per_account_and_hour_and_none_lock_for_good(
        app: Flask, citizen: Browser, clock: Clock) -> None:
    attempts = 0
    while clock.offset.total_seconds() < 3600:
        _fail(citizen, 1)
        attempts += 1
        clock.advance(seconds=20)
    with app.app_context():
        counted = db.session.scalars(select(LoginThrottle.failures).where(
            LoginThrottle.scope == "account")).one()
    assert attempts == 180
    assert counted <= 100
    clock.advance(seconds=61)
    assert log_in(citizen).status_code == 302


def test_one_address_trying_many_accounts_is_slowed_down(app: Flask, citizen: Browser,
                                                         clock: Clock) -> None:
    attacker = {"environ_base": {"REMOTE_ADDR": "198.51.100.7"}}
    for number in range(21):
        citizen.get("/anmelden")
        citizen.submit("/anmelden", {"username": f"opfer{number}", "password": "Falsch-123 x"},
                       **attacker)
    citizen.get("/anmelden")
    blocked = citizen.submit("/anmelden", {"username": "ErikaM", "password": GOOD_PASSWORD},
                             **attacker)
    assert blocked.status_code == 401
    # The citizen herself, from her own address, is not affected.
    assert log_in(citizen).status_code == 302


@pytest.mark.slow
def test_unknown_user_wrong_password_and_throttled_take_the_same_time(
        settings: dict[str, Any]) -> None:
    from idp import create_app
    from idp.config import Argon2Parameters

    settings["argon2"] = Argon2Parameters(time_cost=2, memory_cost_kib=32768, parallelism=1)
    app = create_app(test_config=settings, env={})
    browser = Browser(app.test_client())
    register(browser)
    activate(browser, app)

    def timed(username: str, address: str) -> float:
        browser.get("/anmelden")
        start = time.perf_counter()
        browser.submit("/anmelden", {"username": username, "password": "Falsch-123 x"},
                       environ_base={"REMOTE_ADDR": address})
        return time.perf_counter() - start

    register(browser, username="Gesperrt", email="gesperrt@example.org")
    activate(browser, app, recipient="gesperrt@example.org")
    with app.app_context():  # this account is throttled for the whole measurement
        db.session.add(LoginThrottle(scope="account", key="gesperrt", window_started_at=utcnow(),
                                     failures=99, refused=0, notified_at=utcnow(),
                                     blocked_until=utcnow() + timedelta(minutes=50)))
        db.session.commit()
    # Interleaved, so that whatever changes over the run (the allocator, the machine's load)
    # touches all three alike; the fastest of each is the least disturbed measurement.
    unknown, wrong, throttled = [], [], []
    for _ in range(9):
        unknown.append(timed("Niemand", "192.0.2.1"))
        wrong.append(timed("ErikaM", "192.0.2.2"))
        throttled.append(timed("Gesperrt", "192.0.2.3"))
        app.test_cli_runner().invoke(main, args=["user", "unlock", "ErikaM"])
    timings = {"unknown": min(unknown), "wrong": min(wrong), "throttled": min(throttled)}
    with app.app_context():
        row = db.session.scalars(select(LoginThrottle).where(
            LoginThrottle.scope == "account", LoginThrottle.key == "gesperrt")).one()
        assert row.failures == 99 and row.refused == 9  # every try was refused unseen
    db.bound(app).engine.dispose()
    assert max(timings.values()) / min(timings.values()) < 1.3, timings


def test_a_hash_made_with_older_argon2_parameters_is_renewed_at_the_next_login(
        settings: dict[str, Any], citizen: Browser, app: Flask) -> None:
    from idp import create_app
    from idp.accounts.models import Citizen
    from idp.config import Argon2Parameters

    settings["argon2"] = Argon2Parameters(time_cost=2, memory_cost_kib=2048, parallelism=1)
    stronger = create_app(test_config=settings, env={})
    with stronger.app_context():
        before = db.session.scalars(select(Citizen.password_hash)).one()
    assert "t=1" in before
    assert log_in(Browser(stronger.test_client())).status_code == 302
    with stronger.app_context():
        after = db.session.scalars(select(Citizen.password_hash)).one()
    assert "m=2048,t=2,p=1" in after
    assert log_in(Browser(stronger.test_client())).status_code == 302
    db.bound(stronger).engine.dispose()
