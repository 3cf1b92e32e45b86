"""Growing delays after failed logins, without permanent lockout."""

from __future__ import annotations

from datetime import timedelta

from idp.security.throttle import ACCOUNT_RULE, ADDRESS_RULE


def test_the_first_failures_cost_no_delay() -> None:
    assert all(ACCOUNT_RULE.delay_after(n) == timedelta(0) for n in range(5))


def test_the_delay_doubles_after_the_free_failures() -> None:
    delays = [ACCOUNT_RULE.delay_after(n).total_seconds() for n in range(5, 10)]
    assert delays == [1, 2, 4, 8, 16]


def test_the_delay_is_capped_so_no_account_is_locked_for_good() -> None:
    assert ACCOUNT_RULE.delay_after(10_000) == ACCOUNT_RULE.max_delay == timedelta(seconds=60)


def test_at_most_100_failures_per_account_and_hour() -> None:
    assert ACCOUNT_RULE.max_failures == 100
    assert ACCOUNT_RULE.window == timedelta(hours=1)


def test_an_address_gets_more_room_than_one_account() -> None:
    assert ADDRESS_RULE.free_failures > ACCOUNT_RULE.free_failures
