"""The IdP's clock: the current time in UTC, movable for tests and QA of expiry.

Two offsets move it, both in development only (docs/qa-workbench.md, "The clock"):

- :data:`clock_offset`, fixed for the process: ``IDP_CLOCK_OFFSET_HOURS`` at start, and the
  tests' ``clock`` fixture;
- the offset set at run time through the test-control API (``PUT /testing/api/clock``). It is
  kept in the database, so that every worker and host sees it, and read once per app context
  (each request, each run of the mail sender, each command) by :mod:`idp.testing.clock_hook`,
  which hands it to :func:`move_by` for that context. In production nothing reads or sets it,
  and the context variable below keeps its default of zero.
"""

from __future__ import annotations

from contextvars import ContextVar, Token
from datetime import UTC, datetime, timedelta

# Added to the wall clock; tests (and QA runs that need an expired link) move time with it.
clock_offset = timedelta(0)

# The run-time offset of the current request (or sender run, or command); a context variable,
# so that threads serving different requests each see the value read for their own.
_run_time_offset: ContextVar[timedelta] = ContextVar("run_time_clock_offset",
                                                     default=timedelta(0))


def utcnow() -> datetime:
    """The current time in UTC, as every service sees it."""
    return datetime.now(UTC) + clock_offset + _run_time_offset.get()


def move_by(offset: timedelta) -> Token[timedelta]:
    """Move the clock of the current context by ``offset`` (on top of :data:`clock_offset`)
    until :func:`restore` is given the returned token."""
    return _run_time_offset.set(offset)


def restore(token: Token[timedelta]) -> None:
    """Undo the :func:`move_by` that returned ``token``."""
    _run_time_offset.reset(token)
