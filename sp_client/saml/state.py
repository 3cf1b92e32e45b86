"""What the portal remembers between its request and the IdP's answer, in its database.

No Flask here; callers pass the session and the time. Any worker (or the portal after a restart)
can take the answer to a request another one sent.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from sp_client.models import OutstandingRequest, SeenAssertion

# A citizen has this long to log in (and register, and activate) at the IdP.
LOGIN_WAIT = timedelta(minutes=60)
LOGOUT_WAIT = timedelta(minutes=10)
LOGIN, LOGOUT = "login", "logout"


@dataclass(frozen=True)
class Outstanding:
    """A request waiting for its answer."""

    request_id: str
    kind: str
    browser_hash: str | None
    trust_level: int


def remember_request(session: Session, request_id: str, kind: str, now: datetime,
                     browser_hash: str | None = None, trust_level: int = 1) -> None:
    wait = LOGIN_WAIT if kind == LOGIN else LOGOUT_WAIT
    session.add(OutstandingRequest(request_id=request_id, kind=kind, browser_hash=browser_hash,
                                   trust_level=trust_level, created_at=now,
                                   expires_at=now + wait))
    session.commit()


def outstanding(session: Session, request_id: str | None, kind: str,
                now: datetime) -> Outstanding | None:
    """The request ``request_id`` of this kind, if we sent it and still wait for its answer."""
    if not request_id or len(request_id) > 256:
        return None
    record = session.get(OutstandingRequest, request_id)
    if record is None or record.kind != kind or record.expires_at <= now:
        return None
    return Outstanding(record.request_id, record.kind, record.browser_hash, record.trust_level)


def use_request(session: Session, request_id: str) -> bool:
    """Take the request off the list; of two concurrent answers exactly one gets True."""
    result = session.execute(delete(OutstandingRequest).where(
        OutstandingRequest.request_id == request_id))
    session.commit()
    return bool(result.rowcount == 1)  # type: ignore[attr-defined]


def first_sighting(session: Session, issuer: str, assertion_id: str,
                   keep_until: datetime) -> bool:
    """Record an assertion; False if it was seen before (a replay). The unique constraint
    decides, so two workers given the same assertion at once accept it exactly once."""
    session.add(SeenAssertion(issuer=issuer[:1024], assertion_id=assertion_id[:256],
                              keep_until=keep_until))
    try:
        session.commit()
    except IntegrityError:
        session.rollback()
        return False
    return True


def forget_old(session: Session, now: datetime) -> None:
    """Drop expired requests and assertions that could no longer be accepted anyway."""
    session.execute(delete(OutstandingRequest).where(OutstandingRequest.expires_at <= now))
    session.execute(delete(SeenAssertion).where(SeenAssertion.keep_until <= now))
    session.commit()
