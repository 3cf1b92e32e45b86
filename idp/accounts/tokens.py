"""Single-use links: unguessable tokens, stored only as their hash, used up atomically."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import Enum

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from idp.accounts.models import AccountToken, Citizen, TokenPurpose

# 256 bits from the OS; the hash need not be slow, since the token cannot be guessed.
TOKEN_BYTES = 32
MAX_TOKEN_LENGTH = 64


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


class LinkState(Enum):
    USABLE = "usable"
    UNKNOWN = "unknown"  # never issued, tampered with, or its account was removed
    EXPIRED = "expired"
    USED = "used"
    REPLACED = "replaced"  # a newer link was sent ("Erneut senden")


@dataclass(frozen=True)
class LinkLookup:
    state: LinkState
    token: AccountToken | None = None


def issue(session: Session, citizen: Citizen, purpose: TokenPurpose, now: datetime,
          valid_for: timedelta, new_email: str | None = None) -> str:
    """Create a new link for ``citizen``, voiding every earlier unused one of the same purpose."""
    session.execute(
        update(AccountToken)
        .where(AccountToken.citizen_id == citizen.id, AccountToken.purpose == purpose,
               AccountToken.used_at.is_(None), AccountToken.voided_at.is_(None))
        .values(voided_at=now))
    token = secrets.token_urlsafe(TOKEN_BYTES)
    session.add(AccountToken(citizen=citizen, purpose=purpose, token_hash=hash_token(token),
                             new_email=new_email, created_at=now, expires_at=now + valid_for))
    return token


def look_up(session: Session, token: str, purpose: TokenPurpose, now: datetime) -> LinkLookup:
    """What state the link ``token`` is in (read only: a GET must never use a link up)."""
    if not token or len(token) > MAX_TOKEN_LENGTH:
        return LinkLookup(LinkState.UNKNOWN)
    record = session.scalar(select(AccountToken).where(
        AccountToken.token_hash == hash_token(token), AccountToken.purpose == purpose))
    if record is None:
        return LinkLookup(LinkState.UNKNOWN)
    return LinkLookup(link_state(record, now), record)


def link_state(record: AccountToken, now: datetime) -> LinkState:
    """The state of an issued link at ``now``: used, replaced, expired or usable."""
    if record.used_at is not None:
        return LinkState.USED
    if record.voided_at is not None:
        return LinkState.REPLACED
    if record.expires_at <= now:
        return LinkState.EXPIRED
    return LinkState.USABLE


def use_up(session: Session, record: AccountToken, now: datetime) -> bool:
    """Mark the link used, atomically: of two concurrent requests exactly one gets True."""
    result = session.execute(
        update(AccountToken)
        .where(AccountToken.id == record.id, AccountToken.used_at.is_(None),
               AccountToken.voided_at.is_(None), AccountToken.expires_at > now)
        .values(used_at=now)
        .execution_options(synchronize_session=False))
    return bool(result.rowcount == 1)  # type: ignore[attr-defined]
