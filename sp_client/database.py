"""The portal's own database: an engine per app, a session per request, UTC timestamps.

A demo portal is an application of its own, as a third party's portal would be: it shares no
tables and no machinery with the IdP.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from flask import Flask, current_app, g
from sqlalchemy import DateTime, Engine, create_engine, event
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.types import TypeDecorator

# Added to the wall clock; tests move the portal's time with it (an answer that has expired).
clock_offset = timedelta(0)


def utcnow() -> datetime:
    """The portal's current time, in UTC."""
    return datetime.now(UTC) + clock_offset


class UtcDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes in Python, naive UTC in the database (SQLite keeps no zone)."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("naive datetime given; use an aware UTC datetime")
        return None if value is None else value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return None if value is None else value.replace(tzinfo=UTC)


@dataclass(frozen=True)
class BoundDatabase:
    """One app's engine and session factory."""

    engine: Engine
    sessionmaker: sessionmaker[Session]


class PortalDatabase:
    """The engine of each portal app (the demo runs two in one process) and the request's
    session (``portal_db.session``), closed when the app context ends."""

    def init_app(self, app: Flask, url: str) -> None:
        sqlite = url.startswith("sqlite")
        engine = create_engine(url, **({"connect_args": {"timeout": 30,
                                                         "check_same_thread": False}}
                                       if sqlite else {"pool_pre_ping": True}))
        if sqlite:
            # Cascades need foreign keys on; WAL lets the page and the housekeeping overlap.
            @event.listens_for(engine, "connect")
            def _pragmas(connection: Any, _record: Any) -> None:
                connection.execute("PRAGMA foreign_keys=ON")
                connection.execute("PRAGMA journal_mode=WAL")

        app.extensions["portal_database"] = BoundDatabase(
            engine, sessionmaker(engine, expire_on_commit=False))
        app.teardown_appcontext(lambda _error: self.release())

    @staticmethod
    def bound(app: Flask | None = None) -> BoundDatabase:
        """The engine and session factory of ``app`` (default: the current app)."""
        bound: BoundDatabase = (app or current_app).extensions["portal_database"]
        return bound

    def new_session(self) -> Session:
        return self.bound().sessionmaker()

    @property
    def session(self) -> Session:
        """The session of the current app context, opened on first use."""
        if "portal_db_session" not in g:
            g.portal_db_session = self.new_session()
        session: Session = g.portal_db_session
        return session

    def release(self) -> None:
        """Close the request's session now (uncommitted changes are rolled back)."""
        session: Session | None = g.pop("portal_db_session", None)
        if session is not None:
            session.close()
