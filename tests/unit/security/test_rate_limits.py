"""Limits on the anonymous forms, per client address and overall, on counters in memory."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from redis.exceptions import ConnectionError as RedisConnectionError

from idp.config import FormLimits, RequestLimit
from idp.security.rate_limits import (
    Count,
    FormLimiter,
    LimitReached,
    RedisOrDatabaseCounters,
    client_key,
)

NOW = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)


class MemoryCounters:
    """Fixed-window counters in a dict, as the database and Redis keep them."""

    def __init__(self) -> None:
        self.windows: dict[tuple[str, str], tuple[datetime, int]] = {}

    def count(self, scope: str, key: str, window: timedelta, now: datetime) -> Count:
        started, requests = self.windows.get((scope, key), (now, 0))
        if started + window <= now:
            started, requests = now, 0
        self.windows[scope, key] = (started, requests + 1)
        return Count(requests + 1, started + window)


class UnreachableRedis:
    def count(self, scope: str, key: str, window: timedelta, now: datetime) -> Count:
        raise RedisConnectionError("Connection refused")


def limiter(per_address: int = 10, overall: int = 1000) -> FormLimiter:
    return FormLimiter(MemoryCounters(), FormLimits(
        register=RequestLimit(per_address, overall, HOUR)))


def test_one_registration_over_the_limit_of_an_address_is_refused_until_its_hour_ends() -> None:
    limits = limiter()
    admitted = [limits.admit("register", "192.0.2.1", NOW + timedelta(minutes=i))
                for i in range(10)]
    assert admitted == [None] * 10
    refusal = limits.admit("register", "192.0.2.1", NOW + timedelta(minutes=15))
    assert refusal == LimitReached(retry_after=timedelta(minutes=45), overall=False)


def test_registration_works_again_when_the_hour_is_over() -> None:
    limits = limiter()
    for _ in range(11):
        limits.admit("register", "192.0.2.1", NOW)
    assert limits.admit("register", "192.0.2.1", NOW + HOUR) is None


def test_another_address_is_not_held_up_by_one_that_is_refused() -> None:
    limits = limiter()
    for _ in range(20):
        limits.admit("register", "192.0.2.1", NOW)
    assert limits.admit("register", "198.51.100.7", NOW) is None


def test_all_addresses_together_are_refused_over_the_overall_limit() -> None:
    limits = limiter(per_address=10, overall=3)
    for number in range(3):
        assert limits.admit("register", f"192.0.2.{number}", NOW) is None
    refusal = limits.admit("register", "198.51.100.7", NOW + timedelta(minutes=50))
    assert refusal == LimitReached(retry_after=timedelta(minutes=10), overall=True)


def test_a_client_over_its_own_limit_does_not_use_up_everyone_elses() -> None:
    limits = limiter(per_address=2, overall=5)
    for _ in range(50):
        limits.admit("register", "192.0.2.1", NOW)
    admitted = [limits.admit("register", f"198.51.100.{n}", NOW) for n in range(3)]
    assert admitted == [None] * 3


def test_each_form_has_counters_of_its_own() -> None:
    limits = FormLimiter(MemoryCounters(), FormLimits(
        register=RequestLimit(1, 1000, HOUR), mail_request=RequestLimit(1, 1000, HOUR)))
    assert limits.admit("register", "192.0.2.1", NOW) is None
    assert limits.admit("mail_request", "192.0.2.1", NOW) is None
    assert limits.admit("register", "192.0.2.1", NOW) is not None


def test_forms_stay_limited_in_the_database_while_redis_does_not_answer() -> None:
    database = MemoryCounters()
    limits = FormLimiter(RedisOrDatabaseCounters(UnreachableRedis(), database), FormLimits(
        register=RequestLimit(2, 1000, HOUR)))
    assert limits.admit("register", "192.0.2.1", NOW) is None
    assert limits.admit("register", "192.0.2.1", NOW) is None
    assert limits.admit("register", "192.0.2.1", NOW) is not None
    assert ("register", "address:192.0.2.1") in database.windows


@pytest.mark.parametrize(("form", "per_address", "overall", "window"), [
    ("register", 20, 1000, timedelta(hours=1)),
    ("register_form", 60, 3000, timedelta(hours=1)),
    ("mail_request", 10, 1000, timedelta(minutes=15)),
    ("password_reset", 10, 1000, timedelta(minutes=15)),
])
def test_the_default_limits_leave_an_office_behind_one_address_room(
        form: str, per_address: int, overall: int, window: timedelta) -> None:
    assert getattr(FormLimits(), form) == RequestLimit(per_address, overall, window)


@pytest.mark.parametrize(("address", "key"), [
    ("192.0.2.1", "address:192.0.2.1"),
    ("2001:db8:1:2:3:4:5:6", "address:2001:db8:1:2::/64"),
    ("2001:0db8:0001:0002::ffff", "address:2001:db8:1:2::/64"),
    ("::ffff:192.0.2.1", "address:192.0.2.1"),
    ("unknown", "address:unknown"),
    ("x" * 500, "address:" + "x" * 100),
])
def test_a_client_is_its_ipv4_address_or_its_ipv6_network(address: str, key: str) -> None:
    assert client_key(address) == key


def test_addresses_of_one_ipv6_network_share_one_limit() -> None:
    limits = limiter(per_address=2)
    limits.admit("register", "2001:db8:1:2::1", NOW)
    limits.admit("register", "2001:db8:1:2::2", NOW)
    assert limits.admit("register", "2001:db8:1:2:ffff::3", NOW) is not None
    assert limits.admit("register", "2001:db8:1:3::1", NOW) is None


def test_an_operator_sets_a_forms_limits_in_the_environment(tmp_path: Path) -> None:
    from idp.config import load_config

    config = load_config({"IDP_ENV": "development", "IDP_LIMIT_REGISTER": "200/5000/1800"},
                         instance_path=tmp_path, secret_key="s" * 40)
    assert config.form_limits.register == RequestLimit(200, 5000, timedelta(minutes=30))
    assert config.form_limits.mail_request == FormLimits().mail_request  # the others stay


@pytest.mark.parametrize("raw", ["200/5000", "200/5000/0", "viele/5000/60", "1/2/3/4"])
def test_a_malformed_limit_stops_the_start_with_its_name(raw: str, tmp_path: Path) -> None:
    from idp.config import ConfigError, load_config

    with pytest.raises(ConfigError, match="IDP_LIMIT_MAIL_REQUEST"):
        load_config({"IDP_ENV": "development", "IDP_LIMIT_MAIL_REQUEST": raw},
                    instance_path=tmp_path, secret_key="s" * 40)
