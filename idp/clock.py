"""The IdP's clock: the current time in UTC, movable for tests and QA of expiry."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

# Added to the wall clock; tests (and QA runs that need an expired link) move time with it.
clock_offset = timedelta(0)


def utcnow() -> datetime:
    """The current time in UTC, as every service sees it."""
    return datetime.now(UTC) + clock_offset
