"""A login through an upstream, from our request to the account it logs in (no Flask here).

:func:`send` keeps our AuthnRequest server-side, bound to the browser's session and to the
portal's login waiting for it. :func:`receive` takes the upstream's answer only if it answers
that request, in that browser, and passes every check a careful service provider makes
(:mod:`idp.samlkit.sp_response`); then it maps the upstream's attributes to ours, caps their
levels at what we believe of the upstream, and finds the account bound to the upstream's
persistent NameID, making an "external" account at the first login (docs/broker.md).
"""

from __future__ import annotations

import enum
import hashlib
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from saml2.saml import NAMEID_FORMAT_PERSISTENT
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from idp.accounts.models import AccountStatus, Citizen
from idp.broker.models import BrokerRequest, BrokerSeenAssertion, ExternalLink
from idp.broker.sp import UpstreamClients
from idp.broker.upstreams import OUR_ATTRIBUTES, Upstream
from idp.saml.identifiers import TrustLevel
from idp.samlkit import sp_response

# The upstream has this long to answer; then the request is gone and the citizen is offered
# the way back to the portal.
PENDING_LIFETIME = timedelta(minutes=15)
# The levels of attributes, lowest first (akdb:TrustLevel).
ATTRIBUTE_LEVELS = ("UNTERGEORDNET", "NORMAL", "SUBSTANTIELL", "HOCH")
# The highest attribute level a login of each level can vouch for.
_ATTRIBUTE_CAP = {1: "NORMAL", 2: "NORMAL", 3: "SUBSTANTIELL", 4: "HOCH"}
GIVEN_NAME, SURNAME = OUR_ATTRIBUTES["givenName"], OUR_ATTRIBUTES["surname"]
BIRTH_NAME, MAIL = OUR_ATTRIBUTES["birthName"], OUR_ATTRIBUTES["mail"]


def send(session: Session, clients: UpstreamClients, upstream: Upstream,
         browser_session_hash: str, reference: str | None, level: int,
         now: datetime) -> str:
    """Keep a signed AuthnRequest to ``upstream`` for this browser; the URL to send it to."""
    redirect = clients.authn_request(upstream, now, level)
    session.add(BrokerRequest(
        request_id=redirect.request_id, upstream=upstream.name,
        browser_session_hash=browser_session_hash, reference=reference,
        requested_level=level, created_at=now, expires_at=now + PENDING_LIFETIME))
    session.commit()
    return redirect.url


class Failure(enum.Enum):
    """Why an upstream's answer logs nobody in, in the citizen's words."""

    UNKNOWN_REQUEST = ("Zu dieser Antwort gibt es keine offene Anmeldung in diesem Browser. "
                       "Vielleicht ist sie abgelaufen oder wurde schon abgeschlossen.")
    UNKNOWN_UPSTREAM = "Dieses externe Servicekonto ist bei uns nicht (mehr) eingetragen."
    REJECTED = ("Die Antwort des externen Servicekontos kann nicht verwendet werden: {problem} "
                "Bitte versuchen Sie es erneut.")
    NOT_PERSISTENT = ("Das externe Servicekonto hat keine dauerhafte Kennung übermittelt. Ohne "
                      "sie kann Ihr Konto nicht zugeordnet werden.")
    REFUSED = "Das externe Servicekonto hat die Anmeldung nicht bestätigt."


@dataclass(frozen=True)
class Refused:
    """Nobody is logged in; ``reference`` names the portal's login to answer with an error."""

    failure: Failure
    message: str
    reference: str | None = None
    upstream: str | None = None
    # The upstream's own status (a refusal it signed), for the portal's answer.
    refusal: sp_response.Refusal | None = None


@dataclass(frozen=True)
class Arrival:
    """The upstream vouched for a citizen: log ``citizen_id`` in (None: the upstream account
    is linked to none of ours yet; the citizen chooses, :func:`make_account` or
    :func:`link`)."""

    citizen_id: int | None
    upstream: str
    name_id: str
    level: int
    # What the session keeps for the portals (idp.consent.attributes): our attribute Names
    # with their values and levels, the upstream's name.
    identity: dict[str, str]
    reference: str | None
    # The upstream's SessionIndex, for our LogoutRequest to it.
    session_index: str | None = None


def receive(session: Session, clients: UpstreamClients, upstream_named: Callable[[str],
            Upstream | None], form: dict[str, list[str]], browser_session_hash: str | None,
            now: datetime) -> Arrival | Refused:
    """The upstream's Response (an HTTP-POST form): an :class:`Arrival` or :class:`Refused`."""
    try:
        document = sp_response.read_envelope(form)
    except sp_response.ResponseRejected as error:
        return _refused(Failure.REJECTED, error, _latest(session, browser_session_hash))
    waiting = _waiting(session, document.in_response_to, now)
    if waiting is None or waiting.browser_session_hash != browser_session_hash:
        return Refused(Failure.UNKNOWN_REQUEST, Failure.UNKNOWN_REQUEST.value,
                       _latest(session, browser_session_hash))
    upstream = upstream_named(waiting.upstream)
    if upstream is None or not upstream.enabled:
        return Refused(Failure.UNKNOWN_UPSTREAM, Failure.UNKNOWN_UPSTREAM.value,
                       waiting.reference)
    expected = sp_response.Expected(
        issuer=upstream.entity_id, audience=clients.endpoints.entity_id,
        acs_url=clients.endpoints.acs_url, request_id=waiting.request_id,
        trust_level=min(waiting.requested_level, upstream.maximum_trust_level),
        level_of=_level_of,
        encrypted=upstream.encrypted_assertions)
    try:
        verified = sp_response.check(clients.client(upstream, now), document, expected, now)
    except sp_response.LoginNotGranted as refusal:
        _use(session, waiting.request_id, now)
        return Refused(Failure.REFUSED, Failure.REFUSED.value, waiting.reference,
                       upstream.name, refusal.refusal)
    except sp_response.ResponseRejected as error:
        return _refused(Failure.REJECTED, error, waiting.reference, upstream.name)
    if not _first_sighting(session, upstream.name, verified.assertion_id, verified.keep_until):
        return _refused(Failure.REJECTED, sp_response.ResponseRejected(
            sp_response.Problem.REPLAYED, verified.assertion_id), waiting.reference,
            upstream.name)
    if not _use(session, waiting.request_id, now):
        return Refused(Failure.UNKNOWN_REQUEST, Failure.UNKNOWN_REQUEST.value)
    login = verified.login
    if login.name_id_format != NAMEID_FORMAT_PERSISTENT:
        return Refused(Failure.NOT_PERSISTENT, Failure.NOT_PERSISTENT.value, waiting.reference,
                       upstream.name)
    level = min(login.level, upstream.maximum_trust_level)
    identity = identity_of(upstream, login.attributes, login.attribute_trust, level)
    link = session.scalar(select(ExternalLink).where(ExternalLink.upstream == upstream.name,
                                                     ExternalLink.name_id == login.name_id))
    if link is not None:
        link.last_login_at = now
        session.commit()
    return Arrival(link.citizen_id if link else None, upstream.name, login.name_id, level,
                   identity, waiting.reference, login.session_index)


def identity_of(upstream: Upstream, attributes: dict[str, list[str]],
                trust: dict[str, str], level: int) -> dict[str, str]:
    """Our attribute Names → the upstream's (first) value, and ``level:<Name>`` → its level,
    capped at the login's level (an attribute is never worth more than the login that
    brought it); the upstream's name under ``upstream``."""
    cap = ATTRIBUTE_LEVELS.index(_ATTRIBUTE_CAP[level])
    identity = {"upstream": upstream.name}
    for theirs, ours in upstream.attributes.items():
        values = [value.strip() for value in attributes.get(theirs, []) if value.strip()]
        if not values:
            continue
        stated = trust.get(theirs, "UNTERGEORDNET")
        rank = ATTRIBUTE_LEVELS.index(stated) if stated in ATTRIBUTE_LEVELS else 0
        identity[ours] = values[0][:256]
        identity[f"level:{ours}"] = ATTRIBUTE_LEVELS[min(rank, cap)]
    return identity


def _level_of(class_ref: str) -> int | None:
    """STORK-QAA levels, eIDAS LoA URIs and PasswordProtectedTransport (level 1)."""
    level = TrustLevel.from_class_ref(class_ref)
    return int(level) if level is not None else None


def _refused(failure: Failure, error: sp_response.ResponseRejected,
             reference: str | None = None, upstream: str | None = None) -> Refused:
    return Refused(failure, failure.value.format(problem=sp_response.message(error.problem)),
                   reference, upstream)


def _waiting(session: Session, request_id: str | None, now: datetime) -> BrokerRequest | None:
    if not request_id or len(request_id) > 64:
        return None
    found = session.get(BrokerRequest, request_id)
    if found is None or found.used_at is not None or found.expires_at <= now:
        return None
    return found


def _latest(session: Session, browser_session_hash: str | None) -> str | None:
    """The portal's login this browser's newest unanswered request was for, expired or not:
    an answer we cannot read, or one that came too late, still leaves the citizen a way back
    to that portal (the way back itself checks the login is still parked)."""
    if browser_session_hash is None:
        return None
    return session.scalar(select(BrokerRequest.reference).where(
        BrokerRequest.browser_session_hash == browser_session_hash,
        BrokerRequest.used_at.is_(None)).order_by(BrokerRequest.created_at.desc()).limit(1))


def _use(session: Session, request_id: str, now: datetime) -> bool:
    """Mark the request answered (one statement: a second answer finds it used)."""
    used = session.execute(update(BrokerRequest).where(
        BrokerRequest.request_id == request_id, BrokerRequest.used_at.is_(None)).values(
        used_at=now))
    session.commit()
    return bool(used.rowcount == 1)  # type: ignore[attr-defined]


def _first_sighting(session: Session, upstream: str, assertion_id: str,
                    keep_until: datetime) -> bool:
    session.add(BrokerSeenAssertion(upstream=upstream, assertion_id=assertion_id[:256],
                                    keep_until=keep_until))
    try:
        session.commit()
    except IntegrityError:
        session.rollback()
        return False
    return True


def make_account(session: Session, upstream: Upstream, arrival: Arrival,
                 hasher: Callable[[str], str], privacy_version: str, now: datetime) -> int:
    """An "external" account for the upstream account (no password anyone knows, its data
    and level from the upstream), bound to it; its id. Made already (two tabs): that one."""
    identity = arrival.identity
    key = hashlib.sha256(f"{upstream.name}\0{arrival.name_id}".encode()).hexdigest()[:40]
    username = "extern-" + secrets.token_hex(6)
    citizen = Citizen(
        username=username, username_key=username, email=identity.get(MAIL, ""),
        # Never a mailbox: "vergessen" forms and registrations look addresses up by this key.
        email_key=f"extern:{key}", given_name=identity.get(GIVEN_NAME, ""),
        surname=identity.get(SURNAME, ""), birth_name=identity.get(BIRTH_NAME),
        password_hash=hasher(secrets.token_urlsafe(32)), status=AccountStatus.ACTIVE,
        created_at=now, activated_at=now, password_changed_at=now, privacy_accepted_at=now,
        privacy_version=privacy_version, trust_level=arrival.level)
    session.add(citizen)
    session.flush()
    return _bind(session, upstream, arrival, citizen.id, made_for_it=True, now=now)


def link(session: Session, upstream: Upstream, arrival: Arrival, citizen_id: int,
         now: datetime) -> int:
    """Bind the upstream account to the local account the citizen just logged in to (never
    chosen by name or e-mail); the account it is bound to (another, if linked meanwhile)."""
    return _bind(session, upstream, arrival, citizen_id, made_for_it=False, now=now)


def _bind(session: Session, upstream: Upstream, arrival: Arrival, citizen_id: int, *,
          made_for_it: bool, now: datetime) -> int:
    """Store the link (committing what the caller added with it); when the same upstream
    account was bound a moment ago (another tab), nothing of ours is kept and that account's id
    comes back."""
    session.add(ExternalLink(upstream=upstream.name, name_id=arrival.name_id,
                             citizen_id=citizen_id, made_for_it=made_for_it,
                             bpk2_prefix=upstream.bpk2_prefix, linked_at=now, last_login_at=now))
    try:
        session.commit()
    except IntegrityError:
        session.rollback()
        found = session.scalar(select(ExternalLink.citizen_id).where(
            ExternalLink.upstream == upstream.name, ExternalLink.name_id == arrival.name_id))
        assert found is not None
        return int(found)
    return citizen_id


def links_of(session: Session, citizen_id: int) -> list[ExternalLink]:
    """The upstream accounts bound to an account, oldest first ("Mein Servicekonto")."""
    return list(session.scalars(select(ExternalLink).where(
        ExternalLink.citizen_id == citizen_id).order_by(ExternalLink.linked_at,
                                                        ExternalLink.id)))


def external_upstream(session: Session, citizen_id: int) -> str | None:
    """The upstream an external account was made for (None: one of our own accounts)."""
    return session.scalar(select(ExternalLink.upstream).where(
        ExternalLink.citizen_id == citizen_id, ExternalLink.made_for_it.is_(True)))


def unlink(session: Session, citizen_id: int, link_id: int) -> bool:
    """Remove a link the citizen made to a local account (an external account's own link is
    the account: it goes with "Konto löschen"); whether one was removed."""
    found = session.get(ExternalLink, link_id)
    if found is None or found.citizen_id != citizen_id or found.made_for_it:
        return False
    session.delete(found)
    session.commit()
    return True
