"""NameIDs and trust levels: which identifier a portal gets, and whether a level is reachable.

No Flask here: the caller passes the database session and the time.
"""

from __future__ import annotations

import secrets
from datetime import datetime
from enum import IntEnum

from sqlalchemy import bindparam, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from idp.broker.models import ExternalLink
from idp.db import first_row
from idp.saml.akdb import AuthnMethod
from idp.saml.models import PersistentNameId

# Read at every SSO: built once (see idp.db.first_row).
_PAIRWISE = select(PersistentNameId.value).where(
    PersistentNameId.citizen_id == bindparam("citizen_id"),
    PersistentNameId.portal_entity_id == bindparam("portal_entity_id"))


def existing_persistent_name_id(session: Session, citizen_id: int,
                                portal_entity_id: str) -> str | None:
    """The citizen's pairwise identifier at this portal if one was made, without making one."""
    row = first_row(session, _PAIRWISE, citizen_id=citizen_id, portal_entity_id=portal_entity_id)
    return str(row.value) if row is not None else None


def citizen_of_persistent_name_id(session: Session, portal_entity_id: str,
                                  value: str) -> int | None:
    """Whose pairwise identifier at this portal ``value`` is (None if nobody's there)."""
    found = session.scalar(select(PersistentNameId.citizen_id).where(
        PersistentNameId.portal_entity_id == portal_entity_id, PersistentNameId.value == value))
    return int(found) if found is not None else None


def persistent_name_id(session: Session, citizen_id: int, portal_entity_id: str,
                       now: datetime) -> str:
    """The citizen's pairwise identifier at this portal, made once and kept (also bPK2).

    Random, so that two portals cannot link a citizen by comparing identifiers. An account made
    for an upstream's citizen (docs/broker.md) gets its upstream's prefix before it, so that it
    can never equal one of our own citizens' identifiers.
    """
    ids = {"citizen_id": citizen_id, "portal_entity_id": portal_entity_id}
    if existing := existing_persistent_name_id(session, citizen_id, portal_entity_id):
        return existing
    prefix = session.scalar(select(ExternalLink.bpk2_prefix).where(
        ExternalLink.citizen_id == citizen_id, ExternalLink.made_for_it.is_(True))) or ""
    session.add(PersistentNameId(citizen_id=citizen_id, portal_entity_id=portal_entity_id,
                                 value=prefix + secrets.token_urlsafe(32), created_at=now))
    try:
        session.commit()
    except IntegrityError:
        # Another worker made it a moment ago: use theirs.
        session.rollback()
    made = first_row(session, _PAIRWISE, **ids)
    assert made is not None
    return str(made.value)


class TrustLevel(IntEnum):
    """STORK QAA levels (TR-03160-1): 1 basisregistriert … 4 hoch (eID)."""

    LEVEL_1 = 1
    LEVEL_2 = 2
    LEVEL_3 = 3
    LEVEL_4 = 4

    @property
    def class_ref(self) -> str:
        return f"STORK-QAA-Level-{self.value}"

    @property
    def label(self) -> str:
        """The level in the citizen's words ("Vertrauensniveau „hoch“")."""
        return _LABELS[self]

    def class_ref_for(self, eidas_loa: bool, requested: tuple[str, ...] = ()) -> str:
        """The AuthnContextClassRef for a portal; with ``eidas_loa`` the eIDAS LoA URI.

        eIDAS has nothing below "low" (level 2): level 1 (username and password,
        "basisregistriert") stays STORK-QAA-Level-1 even then, never a level it is not. A
        portal that asked for PasswordProtectedTransport (generic SAML SPs such as python3-saml
        do by default) gets that name for a password login: with comparison "exact" the answer
        must name one of the requested contexts (SAML core §3.3.2.2.1).
        """
        if self is TrustLevel.LEVEL_1 and PASSWORD_PROTECTED_TRANSPORT in requested:
            return PASSWORD_PROTECTED_TRANSPORT
        if eidas_loa and self is not TrustLevel.LEVEL_1:
            return EIDAS_LOA[self]
        return self.class_ref

    @classmethod
    def from_class_ref(cls, value: str) -> TrustLevel | None:
        """The level a class reference names (STORK, eIDAS LoA, or PasswordProtectedTransport
        for level 1, which is what it is: a password over TLS), None if unknown."""
        stork = {f"STORK-QAA-Level-{n}": cls(n) for n in range(1, 5)}
        eidas = {uri: level for level, uri in EIDAS_LOA.items()}
        value = value.strip()
        if value == PASSWORD_PROTECTED_TRANSPORT:
            return cls.LEVEL_1
        return stork.get(value) or eidas.get(value)


# The level each login method reaches (docs/architecture.md, "Trust levels"); which of them this
# IdP offers is SamlRuntime.methods, and a login through an upstream reaches what the broker's
# registry allows (SamlRuntime.method_levels).
METHOD_LEVELS: dict[AuthnMethod, TrustLevel] = {AuthnMethod.BENUTZERNAME: TrustLevel.LEVEL_1,
                                                AuthnMethod.EID: TrustLevel.LEVEL_4}
_LABELS = {TrustLevel.LEVEL_1: "basisregistriert", TrustLevel.LEVEL_2: "basisregistriert",
           TrustLevel.LEVEL_3: "substantiell", TrustLevel.LEVEL_4: "hoch"}
PASSWORD_PROTECTED_TRANSPORT = "urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport"
EIDAS_LOA = {TrustLevel.LEVEL_2: "http://eidas.europa.eu/LoA/low",
             TrustLevel.LEVEL_3: "http://eidas.europa.eu/LoA/substantial",
             TrustLevel.LEVEL_4: "http://eidas.europa.eu/LoA/high"}


def satisfiable(requested: tuple[str, ...], comparison: str, reached: TrustLevel) -> bool:
    """Whether the level the citizen reached meets a RequestedAuthnContext.

    ``minimum`` (what BundID portals send) asks for at least the lowest listed level; ``exact``
    for one of them; ``better`` for more than the highest listed; ``maximum`` for at most the
    highest. Unknown class references cannot be met: we never downgrade silently.
    """
    if not requested:
        return True
    levels = [TrustLevel.from_class_ref(ref) for ref in requested]
    known = [level for level in levels if level is not None]
    if not known:
        return False
    if comparison == "minimum":
        return reached >= min(known)
    if comparison == "better":
        return reached > max(known)
    if comparison == "maximum":
        return reached <= max(known)
    return reached in known
