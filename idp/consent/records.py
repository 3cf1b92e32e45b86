"""Consents without Flask: does one cover a request, give one, revoke one, list them.

Every "ZUSTIMMEN" is a new row and rows are only ever marked revoked, never changed otherwise
or deleted (but with the account): the history is the proof of consent (GDPR Art. 7).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import bindparam, select, update
from sqlalchemy.orm import Session

from idp.consent.attributes import labels_in_catalogue_order
from idp.consent.models import Consent
from idp.db import first_row
from idp.observability import events

PRIVACY_VERSION_LENGTH = 32
ONLINE_SERVICE_ID_LENGTH = 200


@dataclass(frozen=True)
class ConsentView:
    """A portal's current consent as "Meine Zustimmungen" lists it."""

    consent_id: int
    portal_entity_id: str
    given_at: datetime
    attribute_names: frozenset[str]
    attribute_labels: tuple[str, ...]  # German, in catalogue order
    privacy_version: str
    online_service_id: str | None


# The attributes of the newest consent not revoked that the citizen gave the portal by ``now``.
# Asked at every SSO, so built once and read as one column (see idp.db.first_row); never
# cached, so that a consent revoked on another device counts at the next SSO.
_CURRENT_ATTRIBUTES = (
    select(Consent.attributes)
    .where(Consent.citizen_id == bindparam("citizen_id"),
           Consent.portal_entity_id == bindparam("portal_entity_id"),
           Consent.revoked_at.is_(None), Consent.given_at <= bindparam("now"))
    .order_by(Consent.given_at.desc(), Consent.id.desc())
    .limit(1))


def consent_covers(session: Session, citizen_id: int, portal_entity_id: str,
                   attribute_names: Iterable[str], now: datetime) -> bool:
    """Whether the current consent for the portal includes every name of ``attribute_names``.

    A portal asking for fewer attributes is covered; one asking for more must ask again.
    """
    current = first_row(session, _CURRENT_ATTRIBUTES, citizen_id=citizen_id,
                        portal_entity_id=portal_entity_id, now=now)
    return current is not None and set(attribute_names) <= set(current.attributes.split())


def give_consent(session: Session, citizen_id: int, portal_entity_id: str,
                 attribute_names: Iterable[str], now: datetime, privacy_version: str,
                 online_service_id: str | None = None) -> Consent:
    """Record a "ZUSTIMMEN" as a new row (older rows stay as history) and commit.

    Raises :class:`ValueError` when ``privacy_version`` or ``online_service_id`` is longer
    than its column: proof is never stored cut short.
    """
    if not privacy_version or len(privacy_version) > PRIVACY_VERSION_LENGTH:
        raise ValueError("privacy_version must have 1 to 32 characters")
    if online_service_id is not None and len(online_service_id) > ONLINE_SERVICE_ID_LENGTH:
        raise ValueError("online_service_id is longer than 200 characters")
    consent = Consent(citizen_id=citizen_id, portal_entity_id=portal_entity_id,
                      attributes=" ".join(sorted(set(attribute_names))), given_at=now,
                      privacy_version=privacy_version, online_service_id=online_service_id)
    session.add(consent)
    session.commit()
    events.consent_given(citizen_id, portal_entity_id, attribute_names=consent.attribute_names)
    return consent


def revoke_consent(session: Session, citizen_id: int, consent_id: int,
                   now: datetime) -> Consent | None:
    """Revoke the citizen's consent ``consent_id`` and every other one for that portal; commit.

    None (and nothing changes) when no consent of this citizen has that id. The whole portal
    is revoked, not one row: no older row may cover the portal again, and the citizen, who
    revokes per portal, also means a row given after the list was shown.
    """
    consent = session.scalar(select(Consent).where(Consent.id == consent_id,
                                                   Consent.citizen_id == citizen_id))
    if consent is None:
        return None
    session.execute(
        update(Consent)
        .where(Consent.citizen_id == citizen_id,
               Consent.portal_entity_id == consent.portal_entity_id,
               Consent.revoked_at.is_(None))
        .values(revoked_at=now)
        .execution_options(synchronize_session="fetch"))
    session.commit()
    events.consent_revoked(citizen_id, consent.portal_entity_id)
    return consent


def consents_of(session: Session, citizen_id: int) -> list[ConsentView]:
    """Per portal the current consent, newest first; portals whose consents are all revoked
    are left out."""
    rows = session.scalars(
        select(Consent)
        .where(Consent.citizen_id == citizen_id, Consent.revoked_at.is_(None))
        .order_by(Consent.given_at.desc(), Consent.id.desc()))
    views: dict[str, ConsentView] = {}
    for row in rows:
        if row.portal_entity_id in views:
            continue  # an older consent for a portal already listed
        views[row.portal_entity_id] = ConsentView(
            consent_id=row.id, portal_entity_id=row.portal_entity_id, given_at=row.given_at,
            attribute_names=row.attribute_names,
            attribute_labels=tuple(labels_in_catalogue_order(row.attribute_names)),
            privacy_version=row.privacy_version, online_service_id=row.online_service_id)
    return list(views.values())
