"""The throttle behaves the same whether its counters live in the database or in Redis."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from flask import Flask
from redis import Redis

from idp.cli import main
from idp.clock import utcnow
from idp.db import db
from idp.security.redis_throttle import RedisThrottleStore
from idp.security.throttle import ACCOUNT_RULE, SqlThrottleStore, Throttle, ThrottleStore
from tests.conftest import REDIS_URL, Browser, Clock, log_in


@pytest.fixture(params=["sql", "redis"])
def store(request: pytest.FixtureRequest, app: Flask) -> Iterator[ThrottleStore]:
    if request.param == "redis":
        yield RedisThrottleStore(request.getfixturevalue("redis_client"))
        return
    with app.app_context():
        yield SqlThrottleStore(db.session)


def test_five_failures_are_free_and_the_sixth_attempt_waits(store: ThrottleStore) -> None:
    throttle, now = Throttle(store), utcnow()
    outcomes = [throttle.record_failure("erikam", "192.0.2.1", now) for _ in range(4)]
    assert not throttle.blocked("erikam", "192.0.2.1", now)
    fifth = throttle.record_failure("erikam", "192.0.2.1", now)
    assert throttle.blocked("erikam", "192.0.2.1", now)
    assert not throttle.blocked("erikam", "192.0.2.1", now + timedelta(seconds=1.1))
    assert [o.account_newly_throttled for o in outcomes] == [False] * 4
    assert fifth.account_newly_throttled


def test_the_owner_is_told_only_once_per_window(store: ThrottleStore) -> None:
    throttle, now = Throttle(store), utcnow()
    told = [throttle.record_failure("erikam", "192.0.2.1", now + timedelta(seconds=70 * i))
            .account_newly_throttled for i in range(10)]
    assert told.count(True) == 1
    later = now + ACCOUNT_RULE.window + timedelta(hours=1)
    for _ in range(5):
        outcome = throttle.record_failure("erikam", "192.0.2.1", later)
    assert outcome.account_newly_throttled


def test_refused_attempts_do_not_lengthen_the_delay(store: ThrottleStore) -> None:
    throttle, now = Throttle(store), utcnow()
    for _ in range(5):
        throttle.record_failure("erikam", "192.0.2.1", now)
    for _ in range(50):
        throttle.record_refusal("erikam", "192.0.2.1", now)
    assert not throttle.blocked("erikam", "192.0.2.1", now + timedelta(seconds=1.1))


def test_the_hundredth_failure_blocks_until_the_window_ends(store: ThrottleStore) -> None:
    throttle, start = Throttle(store), utcnow()
    for i in range(100):
        throttle.record_failure("erikam", f"192.0.2.{i % 200}", start + timedelta(seconds=i))
    assert throttle.blocked("erikam", "198.51.100.1", start + timedelta(minutes=59))
    assert not throttle.blocked("erikam", "198.51.100.1", start + timedelta(minutes=61))


def test_clearing_an_account_lifts_its_delay(store: ThrottleStore) -> None:
    throttle, now = Throttle(store), utcnow()
    for _ in range(8):
        throttle.record_failure("erikam", "192.0.2.1", now)
    throttle.clear_account("erikam")
    assert not throttle.blocked("erikam", "192.0.2.2", now)


def test_logins_are_throttled_through_redis_when_it_is_configured(
        settings: dict[str, Any], redis_client: Redis, clock: Clock) -> None:
    from idp import create_app
    from tests.conftest import activate, register

    settings["redis_url"] = REDIS_URL
    app = create_app(test_config=settings, env={})
    browser = Browser(app.test_client())
    register(browser)
    activate(browser, app)
    for _ in range(5):
        log_in(browser, password="Falsch-123 x")
    assert redis_client.keys("servicekonto:throttle:account:*") == \
        [b"servicekonto:throttle:account:erikam"]
    assert log_in(browser).status_code == 401
    clock.advance(seconds=2)
    assert log_in(browser).status_code == 302
    db.bound(app).engine.dispose()


def test_purge_removes_counters_whose_window_ended_and_keeps_running_ones(app: Flask) -> None:
    """The table would otherwise keep every client address that ever failed or sent a form."""
    from sqlalchemy import select

    from idp.security.models import LoginThrottle
    from idp.security.throttle import counter_row

    now = utcnow()
    with app.app_context():
        counter_row(db.session, "address", "198.51.100.7", timedelta(hours=1),
                    now - timedelta(hours=3))
        counter_row(db.session, "register", "198.51.100.8", timedelta(hours=1),
                    now - timedelta(minutes=10))
        db.session.commit()
    result = app.test_cli_runner().invoke(main, args=["purge"])
    assert "1 abgelaufene Zähler" in result.output, result.output
    with app.app_context():
        assert db.session.scalars(select(LoginThrottle.key)).all() == ["198.51.100.8"]
