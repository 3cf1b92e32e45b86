"""Login throttling per account and per client address, with growing delays.

After a few free failures each further failure makes the next attempt wait longer (1 s, 2 s,
4 s, … up to a cap). Nothing locks for good: a window ends an hour after its first failure, and
a successful login clears the account's counter. Throttled attempts are refused without looking
at the password, and the caller answers them exactly like a wrong password.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from sqlalchemy import delete, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from idp.security.models import LoginThrottle


@dataclass(frozen=True)
class ThrottleRule:
    """How one scope (account or address) slows down repeated failures."""

    scope: str
    free_failures: int
    max_delay: timedelta
    # A hard ceiling of failures per window (the "at most 100 per account per hour").
    max_failures: int
    window: timedelta = timedelta(hours=1)

    def delay_after(self, failures: int) -> timedelta:
        """How long to wait after the ``failures``-th failure: 0, then 1 s, 2 s, 4 s … capped."""
        if failures < self.free_failures:
            return timedelta(0)
        seconds = 2.0 ** min(failures - self.free_failures, 20)
        return min(timedelta(seconds=seconds), self.max_delay)


ACCOUNT_RULE = ThrottleRule("account", free_failures=5, max_delay=timedelta(seconds=60),
                            max_failures=100)
# An address may be a whole office behind NAT: more room, same ceiling logic.
ADDRESS_RULE = ThrottleRule("address", free_failures=20, max_delay=timedelta(seconds=60),
                            max_failures=1000)


@dataclass(frozen=True)
class FailureOutcome:
    # True the first time in a window that the account is throttled: time to tell its owner.
    account_newly_throttled: bool


class ThrottleStore(Protocol):
    """Where the counters live: the database by default, Redis when configured."""

    def blocked(self, rule: ThrottleRule, key: str, now: datetime) -> bool: ...

    def record(self, rule: ThrottleRule, key: str, now: datetime, counted: bool) -> bool:
        """Record an attempt; a ``counted`` one is a failure. True if it newly throttles."""
        ...

    def clear(self, rule: ThrottleRule, key: str) -> None: ...

    def commit(self) -> None: ...


def counter_row(session: Session, scope: str, key: str, window: timedelta,
                now: datetime) -> LoginThrottle:
    """The counter of ``scope``/``key``, created if missing and locked until the transaction
    ends (two workers counting at once cannot lose a count); a window that has ended starts
    anew at ``now``. Also used by the form limits (idp.security.rate_limits)."""
    insert = pg_insert if session.bind and session.bind.dialect.name == "postgresql" \
        else sqlite_insert
    session.execute(
        insert(LoginThrottle)
        .values(scope=scope, key=key, window_started_at=now, failures=0, refused=0)
        .on_conflict_do_nothing())
    row = session.scalars(
        select(LoginThrottle)
        .where(LoginThrottle.scope == scope, LoginThrottle.key == key)
        .with_for_update()
        .execution_options(populate_existing=True)).one()
    if row.window_started_at + window <= now:
        row.window_started_at, row.failures = now, 0
        row.blocked_until = row.notified_at = None
    return row


class SqlThrottleStore:
    """Counters in the ``login_throttle`` table, updated under a row lock."""

    def __init__(self, session: Session) -> None:
        self._session = session

    def _row(self, rule: ThrottleRule, key: str, now: datetime) -> LoginThrottle:
        return counter_row(self._session, rule.scope, key, rule.window, now)

    def blocked(self, rule: ThrottleRule, key: str, now: datetime) -> bool:
        row = self._session.scalar(select(LoginThrottle).where(
            LoginThrottle.scope == rule.scope, LoginThrottle.key == key))
        if row is None or row.window_started_at + rule.window <= now:
            return False
        return row.blocked_until is not None and row.blocked_until > now

    def record(self, rule: ThrottleRule, key: str, now: datetime, counted: bool) -> bool:
        row = self._row(rule, key, now)
        if not counted:
            row.refused += 1
            return False
        row.failures += 1
        if row.failures >= rule.max_failures:
            row.blocked_until = row.window_started_at + rule.window
        elif delay := rule.delay_after(row.failures):
            row.blocked_until = now + delay
        newly = row.blocked_until is not None and row.notified_at is None
        if newly:
            row.notified_at = now
        return newly

    def clear(self, rule: ThrottleRule, key: str) -> None:
        self._session.execute(delete(LoginThrottle).where(
            LoginThrottle.scope == rule.scope, LoginThrottle.key == key))
        self._session.commit()

    def commit(self) -> None:
        self._session.commit()


class Throttle:
    """Both rules together, as the login service uses them."""

    def __init__(self, store: ThrottleStore,
                 account_rule: ThrottleRule = ACCOUNT_RULE,
                 address_rule: ThrottleRule = ADDRESS_RULE) -> None:
        self._store = store
        self._account = account_rule
        self._address = address_rule

    def blocked(self, account_key: str, address: str, now: datetime) -> bool:
        return (self._store.blocked(self._account, account_key, now)
                or self._store.blocked(self._address, address, now))

    def record_failure(self, account_key: str, address: str, now: datetime) -> FailureOutcome:
        """Count a wrong password (or unknown user) against both the account and the address."""
        self._store.record(self._address, address, now, counted=True)
        newly = self._store.record(self._account, account_key, now, counted=True)
        self._store.commit()
        return FailureOutcome(newly)

    def record_refusal(self, account_key: str, address: str, now: datetime) -> None:
        """Note an attempt refused while throttled. It does not lengthen the delay, but it
        writes like a failure does, so that a throttled answer takes the same time."""
        self._store.record(self._address, address, now, counted=False)
        self._store.record(self._account, account_key, now, counted=False)
        self._store.commit()

    def clear_account(self, account_key: str) -> None:
        """After a successful login or an operator's ``user unlock``."""
        self._store.clear(self._account, account_key)


def purge_ended_counters(session: Session, now: datetime, longest_window: timedelta) -> int:
    """Remove counters whose window ended (login throttle and form limits alike): an ended
    window starts anew on its next use anyway, so the row only keeps a client address."""
    longest = max(longest_window, ACCOUNT_RULE.window, ADDRESS_RULE.window)
    result = session.execute(delete(LoginThrottle).where(
        LoginThrottle.window_started_at < now - longest))
    return int(result.rowcount)  # type: ignore[attr-defined]
