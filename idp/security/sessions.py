"""Server-side sessions: the cookie holds a random id, the data lives in the database.

Logging in issues a fresh id (no session fixation); logging out deletes the record, so a copied
cookie is worthless afterwards. Sessions end after an absolute lifetime and after idle time,
both shorter the higher the trust level of the login (``IDP_SESSION_*``, see
:func:`idp.security.lifetimes.session_lifetimes`).
"""

from __future__ import annotations

import hashlib
import json
import secrets
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import Any

from flask import Flask, Request, Response
from flask.sessions import SessionInterface, SessionMixin
from sqlalchemy import bindparam, delete, select, update
from sqlalchemy.orm import Session
from werkzeug.datastructures import CallbackDict

from idp.clock import utcnow
from idp.db import Database, first_row
from idp.security.lifetimes import LEVELS, Lifetime
from idp.security.models import BrowserSession

# Refresh last_seen_at at most this often, so that reading a page rarely writes.
TOUCH_INTERVAL = timedelta(seconds=60)
# Read on every request that brings a cookie: built once (see idp.db.first_row).
_RECORD = select(BrowserSession.data, BrowserSession.citizen_id, BrowserSession.authenticated_at,
                 BrowserSession.created_at, BrowserSession.last_seen_at,
                 BrowserSession.expires_at).where(BrowserSession.id_hash == bindparam("id_hash"))
# The keys in a session's data under which a login keeps its level and what an eID card gave.
TRUST_LEVEL_KEY = "trust_level"
IDENTITY_KEY = "identity"


def _level_of(data: dict[str, Any]) -> int:
    level = data.get(TRUST_LEVEL_KEY, 1)
    return level if isinstance(level, int) and level in LEVELS else 1


def _hash(session_id: str) -> str:
    return hashlib.sha256(session_id.encode()).hexdigest()


class ServerSession(CallbackDict[str, Any], SessionMixin):
    """Flask's ``session``: a dict plus the bookkeeping of the stored record."""

    def __init__(self, data: dict[str, Any] | None = None, session_id: str | None = None,
                 citizen_id: int | None = None, authenticated_at: datetime | None = None,
                 created_at: datetime | None = None, last_seen_at: datetime | None = None
                 ) -> None:
        def on_update(_: Any) -> None:
            self.modified = True

        super().__init__(data or {}, on_update)
        self.session_id = session_id
        self.citizen_id = citizen_id
        self.authenticated_at = authenticated_at
        self.created_at = created_at
        self.last_seen_at = last_seen_at
        # The level the login reached (1: username and password; 4: eID), kept in the data.
        self.trust_level = _level_of(self)
        self.modified = False
        self.rotate = False
        self.ended = False

    def log_in(self, citizen_id: int, now: datetime, trust_level: int = 1,
               identity: dict[str, str] | None = None) -> None:
        """Bind the session to a citizen under a new id (the old id stops working), at the
        level the login reached; ``identity``: what an eID card gave (none for a password)."""
        self.citizen_id = citizen_id
        self.authenticated_at = now
        self.trust_level = trust_level
        self[TRUST_LEVEL_KEY] = trust_level
        if identity is not None:
            self[IDENTITY_KEY] = identity
        else:
            self.pop(IDENTITY_KEY, None)
        self.rotate = True
        self.modified = True

    def end(self) -> None:
        """Log out: the record is deleted and the cookie removed."""
        self.clear()
        self.citizen_id = None
        self.ended = True


class DatabaseSessionInterface(SessionInterface):
    """Stores :class:`ServerSession` in the ``browser_session`` table."""

    def __init__(self, database: Database, lifetimes: Mapping[int, Lifetime]) -> None:
        self._db = database
        self._lifetimes = lifetimes
        # Called as (db_session, old_id, new_id, citizen_id) in the transaction that gives a
        # session its new id at login, for what other domains keep per browser session
        # (the portals logged in to, for single logout).
        self.on_rotate: list[Callable[[Session, str, str, int], None]] = []

    def open_session(self, app: Flask, request: Request) -> ServerSession:
        session_id = request.cookies.get(self.get_cookie_name(app), "")
        if not session_id or len(session_id) > 100:
            return ServerSession()
        now = utcnow()
        # On the request's database session: one pooled connection per request, not two.
        record = first_row(self._db.session, _RECORD, id_hash=_hash(session_id))
        if record is None or record.expires_at <= now:
            return ServerSession()
        try:
            data = json.loads(record.data)
        except ValueError:
            data = {}
        if not isinstance(data, dict) or record.last_seen_at + self.lifetime(
                _level_of(data)).idle <= now:
            return ServerSession()
        return ServerSession(data, session_id, record.citizen_id, record.authenticated_at,
                             record.created_at, record.last_seen_at)

    def lifetime(self, level: int) -> Lifetime:
        """How long a session of a login at ``level`` lasts here."""
        return self._lifetimes[level]

    def save_session(self, app: Flask, session: SessionMixin, response: Response) -> None:
        assert isinstance(session, ServerSession)
        # Every service commits what it means to keep; whatever is left uncommitted now (a
        # failed request) is rolled back here, never committed along with the session.
        self._db.release()
        name = self.get_cookie_name(app)
        now = utcnow()
        if session.ended or (session.session_id and not session and not session.citizen_id):
            if session.session_id:
                self._delete(session.session_id)
            if session.session_id or session.ended:
                response.delete_cookie(name, path=self.get_cookie_path(app),
                                       secure=self.get_cookie_secure(app),
                                       httponly=True, samesite=self.get_cookie_samesite(app))
            return
        if not session and not session.citizen_id:
            return  # nothing worth storing: no cookie for anonymous visitors without state
        touch_due = session.last_seen_at is None or session.last_seen_at + TOUCH_INTERVAL <= now
        if not (session.modified or session.rotate or touch_due or not session.session_id):
            return
        with self._db.new_session() as db_session, db_session.begin():
            rotated_from = None
            if session.rotate and session.session_id:
                db_session.execute(delete(BrowserSession).where(
                    BrowserSession.id_hash == _hash(session.session_id)))
                rotated_from, session.session_id = session.session_id, None
            values = {"citizen_id": session.citizen_id,
                      "data": json.dumps(dict(session), separators=(",", ":")),
                      "last_seen_at": now, "authenticated_at": session.authenticated_at}
            if session.session_id is None:
                session_id = session.session_id = secrets.token_urlsafe(32)
                session.created_at = now
                db_session.add(BrowserSession(
                    id_hash=_hash(session_id), created_at=now,
                    expires_at=now + self.lifetime(session.trust_level).absolute, **values))
                response.set_cookie(name, session_id, path=self.get_cookie_path(app),
                                    secure=self.get_cookie_secure(app), httponly=True,
                                    samesite=self.get_cookie_samesite(app))
                if rotated_from is not None and session.citizen_id is not None:
                    for listener in self.on_rotate:
                        listener(db_session, rotated_from, session_id, session.citizen_id)
            else:
                # UPDATE, never upsert: a session ended meanwhile (logout elsewhere, password
                # reset) must not come back to life.
                db_session.execute(update(BrowserSession).where(
                    BrowserSession.id_hash == _hash(session.session_id)).values(**values))
        response.vary.add("Cookie")

    def _delete(self, session_id: str) -> None:
        with self._db.new_session() as db_session, db_session.begin():
            db_session.execute(delete(BrowserSession).where(
                BrowserSession.id_hash == _hash(session_id)))


def end_sessions_of(db_session: Session, citizen_id: int, keep: str | None = None) -> int:
    """End every session of a citizen (password reset, password change); keep one by id."""
    query = delete(BrowserSession).where(BrowserSession.citizen_id == citizen_id)
    if keep:
        query = query.where(BrowserSession.id_hash != _hash(keep))
    return int(db_session.execute(query).rowcount)  # type: ignore[attr-defined]


def purge_expired_sessions(db_session: Session, now: datetime, idle: timedelta) -> int:
    result = db_session.execute(delete(BrowserSession).where(
        (BrowserSession.expires_at <= now) | (BrowserSession.last_seen_at <= now - idle)))
    return int(result.rowcount)  # type: ignore[attr-defined]
