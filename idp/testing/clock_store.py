"""The offset of the IdP's clock set at run time, stored in the database for every worker.

Services without Flask: they take the database session (or connection) and the wall-clock
time. How the offset reaches :func:`idp.clock.utcnow`: :mod:`idp.testing.clock_hook`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, delete, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from idp import clock
from idp.testing.errors import Invalid
from idp.testing.models import ClockSetting

# The one row of testing_clock.
ROW_ID = 1
# Ten years either way: far enough for any expiry, near enough for every date type.
MAX_OFFSET_SECONDS = 10 * 365 * 24 * 3600
_OFFSET = select(ClockSetting.offset_seconds).where(ClockSetting.id == ROW_ID)


@dataclass(frozen=True)
class ClockState:
    """The run-time offset, and the IdP's time with it as a request sees it."""

    offset_seconds: int
    now: datetime


def stored_offset(connection: Connection | Session) -> timedelta:
    """The offset set at run time (zero when none is set)."""
    seconds = connection.execute(_OFFSET).scalar()
    return timedelta(seconds=seconds or 0)


def current(connection: Connection | Session) -> ClockState:
    """The stored offset, and the time as the current request (or command) sees it: moved by
    the offset read when its context began (idp/testing/clock_hook.py)."""
    return ClockState(int(stored_offset(connection).total_seconds()), clock.utcnow())


def state(offset: timedelta) -> ClockState:
    """The clock with the run-time ``offset`` in force, as the next request will see it."""
    now = datetime.now(UTC) + clock.clock_offset + offset
    return ClockState(int(offset.total_seconds()), now)


def set_offset(session: Session, seconds: Any, wall_now: datetime) -> ClockState:
    """Move the clock of every worker to ``seconds`` ahead of the wall clock (negative: back)
    and commit; :class:`Invalid` for anything but a whole number within ten years."""
    if not isinstance(seconds, int) or isinstance(seconds, bool):
        raise Invalid("offset_seconds muss eine ganze Zahl (Sekunden) sein.")
    if abs(seconds) > MAX_OFFSET_SECONDS:
        raise Invalid(f"offset_seconds darf höchstens {MAX_OFFSET_SECONDS} Sekunden "
                      "(zehn Jahre) vor oder zurück stellen.")
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    session.execute(insert(ClockSetting)
                    .values(id=ROW_ID, offset_seconds=seconds, changed_at=wall_now)
                    .on_conflict_do_update(index_elements=[ClockSetting.id],
                                           set_={"offset_seconds": seconds,
                                                 "changed_at": wall_now}))
    session.commit()
    return state(timedelta(seconds=seconds))


def reset_offset(session: Session) -> ClockState:
    """Back to the wall clock (plus ``IDP_CLOCK_OFFSET_HOURS``), for every worker; commit."""
    session.execute(delete(ClockSetting))
    session.commit()
    return state(timedelta(0))
