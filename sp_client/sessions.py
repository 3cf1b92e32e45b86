"""Server-side portal sessions: the cookie holds a random id, the data lives in the database.

Logging in issues a new id (no session fixation); logging out, locally or by the IdP's
LogoutRequest, deletes the record, so a copied cookie is worthless afterwards.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any

from flask import Flask, Request, Response
from flask import session as flask_session
from flask.sessions import SessionInterface, SessionMixin
from sqlalchemy import delete, update
from sqlalchemy.orm import Session
from werkzeug.datastructures import CallbackDict

from sp_client.database import PortalDatabase, utcnow
from sp_client.models import BrowserSession

ANONYMOUS_LIFETIME = timedelta(hours=2)
# A portal session never outlives this, whatever the IdP's SessionNotOnOrAfter says.
LOGIN_LIFETIME = timedelta(hours=8)
IDLE = timedelta(minutes=60)
TOUCH_INTERVAL = timedelta(seconds=60)


def session_hash(session_id: str) -> str:
    return hashlib.sha256(session_id.encode()).hexdigest()


@dataclass(frozen=True)
class Login:
    """What the IdP told us about the citizen (kept in the session as JSON)."""

    name_id: str
    name_id_format: str
    name_qualifier: str | None
    sp_name_qualifier: str | None
    session_index: str | None
    # Attribute Name → values, and Name → akdb:TrustLevel, as released.
    attributes: dict[str, list[str]]
    attribute_trust: dict[str, str]
    class_ref: str
    authenticated_at: str
    logged_in_at: str
    # The IdP's SessionNotOnOrAfter (ISO 8601), if it sent one.
    session_until: str | None = None
    # Attribute Name → FriendlyName, as sent; and the Response's IssueInstant (ISO 8601).
    friendly_names: dict[str, str] = field(default_factory=dict)
    issued_at: str | None = None

    def value(self, name: str) -> str | None:
        values = self.attributes.get(name) or []
        return values[0] if values else None

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Login | None:
        """The login kept in a session; None for a record this version cannot read."""
        try:
            return cls(**data)
        except TypeError:
            return None


class PortalSession(CallbackDict[str, Any], SessionMixin):
    """Flask's ``session``: a dict plus the bookkeeping of the stored record."""

    def __init__(self, data: dict[str, Any] | None = None, session_id: str | None = None,
                 last_seen_at: datetime | None = None,
                 expires_at: datetime | None = None) -> None:
        def on_update(_: Any) -> None:
            self.modified = True

        super().__init__(data or {}, on_update)
        self.session_id = session_id
        # Whether a record with this id is in the database (an id may be made before it is).
        self.stored = session_id is not None
        self.last_seen_at = last_seen_at
        self.expires_at = expires_at
        self.modified = False
        self.rotate = False
        self.ended = False

    @property
    def login(self) -> Login | None:
        data = self.get("login")
        return Login.from_dict(data) if isinstance(data, dict) else None

    def log_in(self, login: Login, expires_at: datetime) -> None:
        """Bind the session to a login under a new id (the old id stops working)."""
        self.clear()
        self["login"] = asdict(login)
        self.expires_at = expires_at
        self.rotate = True

    def ensure_id(self) -> str:
        """The session's id, made now if it has none yet (stored with the response)."""
        if self.session_id is None:
            self.session_id = secrets.token_urlsafe(32)
            self.modified = True
        return self.session_id

    @property
    def id_hash(self) -> str:
        return session_hash(self.ensure_id())

    def end(self) -> None:
        self.clear()
        self.ended = True


def current_session() -> PortalSession:
    assert isinstance(flask_session, PortalSession)
    return flask_session


class DatabaseSessionInterface(SessionInterface):
    """Stores :class:`PortalSession` in the ``portal_session`` table."""

    def __init__(self, database: PortalDatabase) -> None:
        self._db = database

    def open_session(self, app: Flask, request: Request) -> PortalSession:
        session_id = request.cookies.get(self.get_cookie_name(app), "")
        if not session_id or len(session_id) > 100:
            return PortalSession()
        now = utcnow()
        with self._db.new_session() as db_session:
            record = db_session.get(BrowserSession, session_hash(session_id))
            if record is None or record.expires_at <= now or record.last_seen_at + IDLE <= now:
                return PortalSession()
            try:
                data = json.loads(record.data)
            except ValueError:
                data = {}
            return PortalSession(data, session_id, record.last_seen_at, record.expires_at)

    def save_session(self, app: Flask, session: SessionMixin, response: Response) -> None:
        assert isinstance(session, PortalSession)
        # What a view meant to keep, it committed; the rest of a failed request is dropped.
        self._db.release()
        name = self.get_cookie_name(app)
        path, secure = self.get_cookie_path(app), self.get_cookie_secure(app)
        samesite = self.get_cookie_samesite(app)
        if session.ended:
            if session.session_id:
                self._delete(session.session_id)
            response.delete_cookie(name, path=path, secure=secure, httponly=True,
                                   samesite=samesite)
            return
        if not session and session.session_id is None:
            return  # nothing worth storing: no cookie for a visitor without state
        now = utcnow()
        touch_due = session.last_seen_at is None or session.last_seen_at + TOUCH_INTERVAL <= now
        if not (session.modified or session.rotate or touch_due or not session.stored):
            return
        login = session.login
        values = {"data": json.dumps(dict(session), separators=(",", ":")),
                  "last_seen_at": now,
                  "name_id": login.name_id if login else None,
                  "session_index": login.session_index if login else None}
        with self._db.new_session() as db_session, db_session.begin():
            if session.rotate and session.session_id:
                if session.stored:
                    db_session.execute(delete(BrowserSession).where(
                        BrowserSession.id_hash == session_hash(session.session_id)))
                session.session_id, session.stored = None, False
            if not session.stored:
                session_id = session.ensure_id()
                session.stored = True
                expires_at = session.expires_at or now + ANONYMOUS_LIFETIME
                db_session.add(BrowserSession(id_hash=session_hash(session_id), created_at=now,
                                              expires_at=expires_at, **values))
                response.set_cookie(name, session_id, path=path, secure=secure, httponly=True,
                                    samesite=samesite)
            else:
                # UPDATE, never upsert: a session the IdP ended meanwhile stays ended.
                db_session.execute(update(BrowserSession).where(
                    BrowserSession.id_hash == session.id_hash).values(**values))
        response.vary.add("Cookie")

    def _delete(self, session_id: str) -> None:
        with self._db.new_session() as db_session, db_session.begin():
            db_session.execute(delete(BrowserSession).where(
                BrowserSession.id_hash == session_hash(session_id)))


def end_sessions_of(db_session: Session, name_id: str, session_indexes: list[str]) -> int:
    """End the sessions of a NameID (only those of the given SessionIndexes, if any)."""
    query = delete(BrowserSession).where(BrowserSession.name_id == name_id)
    if session_indexes:
        query = query.where(BrowserSession.session_index.in_(session_indexes))
    result = db_session.execute(query)
    db_session.commit()
    return int(result.rowcount)  # type: ignore[attr-defined]


def purge_expired_sessions(db_session: Session, now: datetime) -> int:
    result = db_session.execute(delete(BrowserSession).where(
        (BrowserSession.expires_at <= now) | (BrowserSession.last_seen_at <= now - IDLE)))
    db_session.commit()
    return int(result.rowcount)  # type: ignore[attr-defined]
