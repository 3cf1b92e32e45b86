"""SQLAlchemy wiring: the declarative base, a UTC timestamp type and the per-app session."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from flask import Flask, current_app, g
from sqlalchemy import DateTime, Engine, Executable, MetaData, Row, create_engine, event
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from sqlalchemy.types import TypeDecorator

# Stable constraint names, so that Alembic migrations can refer to them on every database.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class UtcDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes in Python, naive UTC in the database (SQLite keeps no zone)."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given; use an aware UTC datetime")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return None if value is None else value.replace(tzinfo=UTC)


def make_engine(url: str) -> Engine:
    """An engine for ``url``; SQLite gets foreign keys, a busy timeout and WAL."""
    kwargs: dict[str, Any] = {"pool_pre_ping": True}
    if url.startswith("sqlite"):
        kwargs = {"connect_args": {"timeout": 30, "check_same_thread": False}}
    engine = create_engine(url, **kwargs)
    if engine.dialect.name == "sqlite":
        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(connection: Any, _record: Any) -> None:
            # Python's sqlite3 opens transactions lazily; BEGIN IMMEDIATE on write would be
            # nicer, but WAL plus a busy timeout is enough for the embedded default.
            cursor = connection.cursor()
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.close()
    return engine


@dataclass(frozen=True)
class BoundDatabase:
    """One app's engine and session factory (kept in ``app.extensions["database"]``)."""

    engine: Engine
    sessionmaker: sessionmaker[Session]


def first_row(session: Session, statement: Executable, **params: Any) -> Row[Any] | None:
    """The first row of ``statement`` run with ``params`` on the session's connection.

    For the SSO hot path: a statement built once per module (with ``bindparam``) keeps its
    cache key, and running it on the connection skips the ORM's per-statement work (about a
    quarter of a ``session.get``). Rows are plain tuples, never entities in the session; no
    autoflush, so ORM changes not yet flushed are not seen.
    """
    return session.connection().execute(statement, params).first()


class Database:
    """Per-app engines and a request-scoped SQLAlchemy session (``db.session``).

    The engine belongs to the app, not to this object, so that several apps (tests, the demo)
    can live in one process, each with its own database.
    """

    def init_app(self, app: Flask, url: str) -> None:
        engine = make_engine(url)
        app.extensions["database"] = BoundDatabase(
            engine, sessionmaker(engine, expire_on_commit=False))
        app.teardown_appcontext(self._remove_session)

    @staticmethod
    def bound(app: Flask | None = None) -> BoundDatabase:
        """The engine and session factory of ``app`` (default: the current app)."""
        bound: BoundDatabase = (app or current_app).extensions["database"]
        return bound

    @property
    def engine(self) -> Engine:
        return self.bound().engine

    def new_session(self) -> Session:
        return self.bound().sessionmaker()

    @property
    def session(self) -> Session:
        """The session of the current app context, opened on first use."""
        if "db_session" not in g:
            g.db_session = self.new_session()
        session: Session = g.db_session
        return session

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """A session of its own that commits on success and rolls back on error."""
        session = self.new_session()
        try:
            with session.begin():
                yield session
        finally:
            session.close()

    def release(self) -> None:
        """Close the request's session now: uncommitted changes are rolled back, and the
        connection goes back to the pool before the browser session is saved (which needs a
        connection of its own; holding two per request can exhaust the pool under load)."""
        session: Session | None = g.pop("db_session", None)
        if session is not None:
            session.close()

    def _remove_session(self, _error: BaseException | None) -> None:
        self.release()


db = Database()
