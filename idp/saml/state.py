"""SAML state in the database: the replay cache and pending requests (any worker can finish).

No Flask here; callers pass the session and the time.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from idp.saml.models import PendingRequest, PortalSession, SeenRequest

# A request ID is remembered at least as long as its IssueInstant would still be accepted.
REPLAY_MEMORY = timedelta(minutes=10)
# A citizen has this long between the portal's request and our answer (login, consent).
PENDING_LIFETIME = timedelta(minutes=30)


def _hash(reference: str) -> str:
    return hashlib.sha256(reference.encode("utf-8", "surrogatepass")).hexdigest()


def first_sighting(session: Session, issuer: str, request_id: str, now: datetime) -> bool:
    """Record (issuer, request ID); False if it was seen before (a replay).

    The unique constraint decides, so two workers receiving the same request at once accept
    it exactly once.
    """
    session.add(SeenRequest(issuer=issuer[:1024], request_id=request_id[:256], seen_at=now))
    try:
        session.commit()
    except IntegrityError:
        session.rollback()
        return False
    return True


def forget_old_requests(session: Session, now: datetime) -> int:
    result = session.execute(delete(SeenRequest).where(SeenRequest.seen_at < now - REPLAY_MEMORY))
    session.commit()
    return int(result.rowcount)  # type: ignore[attr-defined]


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
    result = session.execute(delete(PendingRequest).where(
        PendingRequest.id_hash == _hash(reference)))
    session.commit()
    return bool(result.rowcount == 1)  # type: ignore[attr-defined]


def forget_expired_pending(session: Session, now: datetime) -> int:
    result = session.execute(delete(PendingRequest).where(PendingRequest.expires_at <= now))
    session.commit()
    return int(result.rowcount)  # type: ignore[attr-defined]


def pending_references(session: Session) -> list[str]:
    """Hashed references (for tests and the operator)."""
    return list(session.scalars(select(PendingRequest.id_hash)))


def remember_portal_session(session: Session, browser_session: str, citizen_id: int,
                            portal_entity_id: str, name_id: str, name_id_format: str,
                            session_index: str, now: datetime) -> None:
    """Note that this browser session logged in to a portal (single logout tells it later).

    One row per browser session and portal, holding the NameID last sent there; a repeated
    login with the same NameID writes nothing.
    """
    browser_hash = _hash(browser_session)
    existing = session.scalar(select(PortalSession).where(
        PortalSession.browser_session_hash == browser_hash,
        PortalSession.portal_entity_id == portal_entity_id))
    if existing is None:
        session.add(PortalSession(browser_session_hash=browser_hash, citizen_id=citizen_id,
                                  portal_entity_id=portal_entity_id, name_id=name_id,
                                  name_id_format=name_id_format, session_index=session_index,
                                  created_at=now))
    elif (existing.name_id, existing.session_index) != (name_id, session_index):
        existing.name_id, existing.name_id_format = name_id, name_id_format
        existing.session_index = session_index
    else:
        return
    session.commit()


def portal_sessions(session: Session, browser_session: str) -> list[PortalSession]:
    return list(session.scalars(select(PortalSession).where(
        PortalSession.browser_session_hash == _hash(browser_session))))
