"""Single sign-on as a sequence of decisions, without Flask.

A request arrives (:func:`receive`), waits in the database while the citizen logs in and agrees,
and ends in exactly one answer to the portal (:func:`answer`): a Response with an assertion, or a
SAML error status. What cannot be answered safely (unknown portal, ACS not in metadata, bad
signature, replay) never reaches the portal: it raises :class:`RequestRejected` for an error page.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from enum import Enum
from typing import Any, Protocol

from cryptography.x509 import Certificate
from saml2.saml import NAMEID_FORMAT_PERSISTENT, NAMEID_FORMAT_TRANSIENT
from sqlalchemy.orm import Session

from idp.saml import state
from idp.saml.bindings import IncomingMessage, verify_redirect_signature
from idp.saml.identifiers import (
    SUPPORTED_NAME_ID_FORMATS,
    TrustLevel,
    persistent_name_id,
    satisfiable,
    transient_name_id,
)
from idp.saml.server import (
    STATUS_REQUESTER,
    STATUS_RESPONDER,
    ParsedAuthnRequest,
    RequestRejected,
    SamlIdp,
)

SAML_STATUS = "urn:oasis:names:tc:SAML:2.0:status:"
NO_PASSIVE = SAML_STATUS + "NoPassive"
NO_AUTHN_CONTEXT = SAML_STATUS + "NoAuthnContext"
INVALID_NAME_ID_POLICY = SAML_STATUS + "InvalidNameIDPolicy"
REQUEST_DENIED = SAML_STATUS + "RequestDenied"
AUTHN_FAILED = SAML_STATUS + "AuthnFailed"


class PortalPolicy(Protocol):
    """What SSO needs to know of a relying portal (from ``policies/portals/*.yaml``)."""

    @property
    def entity_id(self) -> str: ...
    @property
    def display_name(self) -> str: ...
    @property
    def name_id_format(self) -> str: ...  # "transient" | "persistent"
    @property
    def minimum_trust_level(self) -> int: ...
    @property
    def consent_required(self) -> bool: ...
    @property
    def want_authn_requests_signed(self) -> bool: ...


class Next(Enum):
    """What the browser must do before the portal can be answered."""

    LOG_IN = "log_in"
    CONSENT = "consent"
    ANSWER = "answer"


@dataclass(frozen=True)
class Pending:
    """A request waiting in the database, as the flow needs it back."""

    request: ParsedAuthnRequest
    relay_state: str | None
    received_at: datetime

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self.request)
        data["issue_instant"] = self.request.issue_instant.isoformat()
        data["requested_contexts"] = list(self.request.requested_contexts)
        return {"request": data, "relay_state": self.relay_state,
                "received_at": self.received_at.isoformat()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Pending:
        request = dict(data["request"])
        request["issue_instant"] = datetime.fromisoformat(request["issue_instant"])
        request["requested_contexts"] = tuple(request["requested_contexts"])
        return cls(ParsedAuthnRequest(**request), data["relay_state"],
                   datetime.fromisoformat(data["received_at"]))


@dataclass(frozen=True)
class Refusal:
    """An error status for the portal (the request was fine, but cannot be granted)."""

    status: str
    sub_status: str
    message: str


def receive(session: Session, idp: SamlIdp, message: IncomingMessage,
            portal_for: Any, certificates_for: Any, now: datetime) -> Pending:
    """Check an incoming AuthnRequest and remember it; raise RequestRejected if unanswerable.

    ``portal_for(entity_id)`` gives the portal's policy (None if unknown or disabled);
    ``certificates_for(entity_id)`` its signing certificates from metadata.
    """
    parsed = idp.parse_authn_request(message.xml, now)
    portal: PortalPolicy | None = portal_for(parsed.issuer)
    if portal is None:
        raise RequestRejected(f"no portal policy for {parsed.issuer!r}")
    if message.has_redirect_signature:
        # A present signature must be valid, whether or not the portal must sign.
        certificates: list[Certificate] = certificates_for(parsed.issuer)
        if not verify_redirect_signature(message, certificates):
            raise RequestRejected("invalid Redirect-binding signature")
        signed = True
    else:
        signed = parsed.signed
    if portal.want_authn_requests_signed and not signed:
        raise RequestRejected("unsigned request where the portal must sign")
    if signed and parsed.destination is None:
        raise RequestRejected("signed request without Destination")
    # DESIGN §5.3: pysaml2 keeps no replay cache.
    if not state.first_sighting(session, parsed.issuer, parsed.request_id, now):
        raise RequestRejected("replayed request ID")
    return Pending(request=parsed, relay_state=message.relay_state, received_at=now)


def refusal_before_login(pending: Pending, portal: PortalPolicy) -> Refusal | None:
    """Errors the portal can be told at once, before anyone logs in."""
    request = pending.request
    if request.name_id_format and request.name_id_format not in SUPPORTED_NAME_ID_FORMATS:
        return Refusal(STATUS_REQUESTER, INVALID_NAME_ID_POLICY,
                       "Unsupported NameID format")
    # Username and password reach level 1 only; never a silent downgrade.
    reachable = TrustLevel.LEVEL_1
    if portal.minimum_trust_level > reachable or not satisfiable(
            request.requested_contexts, request.comparison, reachable):
        return Refusal(STATUS_RESPONDER, NO_AUTHN_CONTEXT,
                       "The requested level of assurance cannot be reached")
    return None


def next_step(pending: Pending, logged_in_at: datetime | None, consent_needed: bool) -> Next:
    """Log in first (also again for ForceAuthn), then consent if needed, then answer."""
    if logged_in_at is None or (pending.request.force_authn
                                and logged_in_at < pending.received_at):
        return Next.LOG_IN
    if consent_needed:
        return Next.CONSENT
    return Next.ANSWER


def passive_refusal() -> Refusal:
    return Refusal(STATUS_RESPONDER, NO_PASSIVE, "Passive login not possible")


def cancelled() -> Refusal:
    return Refusal(STATUS_RESPONDER, AUTHN_FAILED, "The citizen cancelled the login")


def denied(message: str) -> Refusal:
    return Refusal(STATUS_REQUESTER, REQUEST_DENIED, message)


def name_id_for(session: Session, portal: PortalPolicy, request: ParsedAuthnRequest,
                citizen_id: int, now: datetime, pairwise: str | None = None) -> tuple[str, str]:
    """(value, format): the request's format if it names one, else the portal's.

    ``pairwise`` is the persistent id if the caller looked it up already.
    """
    wanted = request.name_id_format or (
        NAMEID_FORMAT_PERSISTENT if portal.name_id_format == "persistent"
        else NAMEID_FORMAT_TRANSIENT)
    if wanted == NAMEID_FORMAT_PERSISTENT:
        return pairwise or persistent_name_id(session, citizen_id, portal.entity_id, now), wanted
    return transient_name_id(), NAMEID_FORMAT_TRANSIENT


def session_lifetime(level: TrustLevel) -> timedelta:
    """TR-03160-1: absolute session lifetime by level reached."""
    return {TrustLevel.LEVEL_1: timedelta(hours=12), TrustLevel.LEVEL_2: timedelta(hours=12),
            TrustLevel.LEVEL_3: timedelta(hours=2),
            TrustLevel.LEVEL_4: timedelta(minutes=30)}[level]
