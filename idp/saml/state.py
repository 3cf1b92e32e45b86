"""SAML state in the database: the replay cache, pending requests, the portals of a browser
session and single logouts in progress (any worker can finish each).

No Flask here; callers pass the session and the time.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, delete, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from sqlalchemy.sql.expression import Executable

from idp.db import first_row
from idp.saml.models import LogoutChain, PendingRequest, PortalSession, SeenRequest
from idp.samlkit.ids import new_id

# A request ID is remembered at least as long as its IssueInstant would still be accepted.
REPLAY_MEMORY = timedelta(minutes=10)
# A citizen has this long between the portal's request and our answer (login, consent).
PENDING_LIFETIME = timedelta(minutes=30)
# A portal has this long to answer a LogoutRequest before the chain is given up.
LOGOUT_STEP_LIFETIME = timedelta(minutes=10)


def _committed_rowcount(session: Session, statement: Executable) -> int:
    """Run a DELETE or UPDATE, commit, and say how many rows it touched."""
    result = session.execute(statement)
    session.commit()
    return int(result.rowcount)  # type: ignore[attr-defined]


def _hash(reference: str) -> str:
    return hashlib.sha256(reference.encode("utf-8", "surrogatepass")).hexdigest()


# Run at every SSO: built once, run on the connection (see idp.db.first_row).
_SIGHTING = insert(SeenRequest)


def first_sighting(session: Session, issuer: str, request_id: str, now: datetime) -> bool:
    """Record (issuer, request ID); False if it was seen before (a replay).

    The unique constraint decides, so two workers receiving the same request at once accept
    it exactly once.
    """
    # A Core INSERT: the ORM's unit of work costs more than the statement on this hot path.
    try:
        session.connection().execute(_SIGHTING, {"issuer": issuer[:1024],
                                                 "request_id": request_id[:256], "seen_at": now})
        session.commit()
    except IntegrityError:
        session.rollback()
        return False
    return True


def forget_old_requests(session: Session, now: datetime) -> int:
    return _committed_rowcount(session, delete(SeenRequest).where(
        SeenRequest.seen_at < now - REPLAY_MEMORY))


def keep_pending(session: Session, portal_entity_id: str, data: dict[str, Any],
                 now: datetime) -> str:
    """Store a parsed request; return the random reference the browser carries.

    Which browser may use the reference is decided by the caller (it keeps the reference in
    that browser's server-side session).
    """
    reference = secrets.token_urlsafe(24)
    session.add(PendingRequest(
        id_hash=_hash(reference), portal_entity_id=portal_entity_id,
        data=json.dumps(data, separators=(",", ":")), created_at=now,
        expires_at=now + PENDING_LIFETIME))
    session.commit()
    return reference


def pending(session: Session, reference: str, now: datetime) -> tuple[str, dict[str, Any]] | None:
    """The pending request (portal, data) if it exists and is fresh."""
    if not reference or len(reference) > 64:
        return None
    record = session.get(PendingRequest, _hash(reference))
    if record is None or record.expires_at <= now:
        return None
    data: dict[str, Any] = json.loads(record.data)
    return record.portal_entity_id, data


def finish_pending(session: Session, reference: str) -> bool:
    """Use the pending request up; of two concurrent finishes exactly one gets True."""
    return _committed_rowcount(session, delete(PendingRequest).where(
        PendingRequest.id_hash == _hash(reference))) == 1


def forget_expired_pending(session: Session, now: datetime) -> int:
    return _committed_rowcount(session, delete(PendingRequest).where(
        PendingRequest.expires_at <= now))


# Read at every SSO (a write is rare): built once (see idp.db.first_row).
_PORTAL_SESSION = select(PortalSession.id, PortalSession.name_id,
                         PortalSession.session_index).where(
    PortalSession.browser_session_hash == bindparam("browser_hash"),
    PortalSession.portal_entity_id == bindparam("portal_entity_id"))


def remember_portal_session(session: Session, browser_session: str, citizen_id: int,
                            portal_entity_id: str, name_id: str, name_id_format: str,
                            now: datetime) -> str:
    """Note that this browser session logged in to a portal (single logout tells it later), and
    return the SessionIndex that portal gets.

    One row per browser session and portal, holding the NameID last sent there. The SessionIndex
    is the portal's own: random and kept for the browser session's logins there, never shared
    with another portal, so two portals cannot link their pairwise identifiers by comparing it.
    A repeated login with the same NameID writes nothing.
    """
    browser_hash = _hash(browser_session)
    existing = first_row(session, _PORTAL_SESSION, browser_hash=browser_hash,
                         portal_entity_id=portal_entity_id)
    if existing is None:
        session_index = new_id()
        session.add(PortalSession(browser_session_hash=browser_hash, citizen_id=citizen_id,
                                  portal_entity_id=portal_entity_id, name_id=name_id,
                                  name_id_format=name_id_format, session_index=session_index,
                                  created_at=now))
    elif existing.name_id != name_id:
        session_index = str(existing.session_index)
        session.execute(update(PortalSession).where(PortalSession.id == existing.id).values(
            name_id=name_id, name_id_format=name_id_format))
    else:
        return str(existing.session_index)
    session.commit()
    return session_index


def citizen_of_portal_name_id(session: Session, portal_entity_id: str,
                              name_id: str) -> int | None:
    """Whom this portal knows by ``name_id`` in a session still open (transient NameIDs)."""
    found = session.scalar(select(PortalSession.citizen_id).where(
        PortalSession.portal_entity_id == portal_entity_id, PortalSession.name_id == name_id)
        .order_by(PortalSession.created_at.desc()).limit(1))
    return int(found) if found is not None else None


def portal_sessions(session: Session, browser_session: str) -> list[PortalSession]:
    return list(session.scalars(select(PortalSession).where(
        PortalSession.browser_session_hash == _hash(browser_session))))


def forget_portal_sessions(session: Session, browser_session: str) -> int:
    """Forget the portals of a browser session (its single logout has started)."""
    return _committed_rowcount(session, delete(PortalSession).where(
        PortalSession.browser_session_hash == _hash(browser_session)))


def keep_logout_chain(session: Session, data: dict[str, Any], awaiting_portal: str,
                      awaiting_request: str, now: datetime) -> str:
    """Store a single logout that now waits for ``awaiting_portal``; return its reference."""
    reference = secrets.token_urlsafe(24)
    session.add(LogoutChain(
        id_hash=_hash(reference), awaiting_portal=awaiting_portal,
        awaiting_request=awaiting_request, data=json.dumps(data, separators=(",", ":")),
        created_at=now, expires_at=now + LOGOUT_STEP_LIFETIME))
    session.commit()
    return reference


def logout_chain(session: Session, reference: str | None,
                 now: datetime) -> tuple[str, str, dict[str, Any]] | None:
    """(awaited portal, awaited request ID, data) of a fresh chain; None if unknown or expired."""
    if not reference or len(reference) > 64:
        return None
    record = session.get(LogoutChain, _hash(reference))
    if record is None or record.expires_at <= now:
        return None
    data: dict[str, Any] = json.loads(record.data)
    return record.awaiting_portal, record.awaiting_request, data


def advance_logout_chain(session: Session, reference: str, answered_request: str,
                         data: dict[str, Any], awaiting_portal: str, awaiting_request: str,
                         now: datetime) -> bool:
    """Move the chain on to the next portal, if ``answered_request`` is still the awaited one.

    Compare and set in one UPDATE: of two answers to the same step (a double submit, two
    workers), exactly one gets True.
    """
    return _committed_rowcount(session, update(LogoutChain).where(
        LogoutChain.id_hash == _hash(reference),
        LogoutChain.awaiting_request == answered_request).values(
        awaiting_portal=awaiting_portal, awaiting_request=awaiting_request,
        data=json.dumps(data, separators=(",", ":")), expires_at=now + LOGOUT_STEP_LIFETIME)) == 1


def finish_logout_chain(session: Session, reference: str, answered_request: str) -> bool:
    """Remove a chain whose last awaited answer came; of two finishes exactly one gets True."""
    return _committed_rowcount(session, delete(LogoutChain).where(
        LogoutChain.id_hash == _hash(reference),
        LogoutChain.awaiting_request == answered_request)) == 1


def forget_expired_logout_chains(session: Session, now: datetime) -> int:
    return _committed_rowcount(session, delete(LogoutChain).where(
        LogoutChain.expires_at <= now))


def purge_saml_state(session: Session, now: datetime) -> int:
    """What ``servicekonto purge`` removes of the SAML side; returns the number of rows.

    Request IDs past the replay window, pending logins and logout chains past their expiry,
    and portal logins of browser sessions that no longer exist (logged out, expired, purged).
    """
    from idp.security.models import BrowserSession

    return forget_old_requests(session, now) + forget_expired_pending(session, now) + \
        forget_expired_logout_chains(session, now) + _committed_rowcount(
            session, delete(PortalSession).where(
                PortalSession.browser_session_hash.not_in(select(BrowserSession.id_hash))))


def move_portal_sessions(session: Session, old_browser_session: str,
                         new_browser_session: str, citizen_id: int) -> None:
    """A login gave the browser session a new id: its portal logins (the same citizen's) go
    with it, so that single logout still finds them. Runs in the caller's transaction."""
    session.execute(update(PortalSession).where(
        PortalSession.browser_session_hash == _hash(old_browser_session),
        PortalSession.citizen_id == citizen_id).values(
        browser_session_hash=_hash(new_browser_session)))
