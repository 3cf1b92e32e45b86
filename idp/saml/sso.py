"""Single sign-on as a sequence of decisions, without Flask.

A request arrives (:func:`receive`), waits in the database while the citizen logs in and agrees,
and ends in exactly one answer to the portal: a Response with an assertion, or a SAML error
status. What cannot be answered safely (unknown portal, ACS not in metadata, bad signature,
replay) never reaches the portal: it raises :class:`RequestRejected` for an error page.

A signed request may carry BundID's akdb:AuthenticationRequest (:mod:`idp.saml.akdb`): it narrows
the attributes (:func:`attributes_for`), the login methods and asks for akdb:StatusDetail codes.
IdP-initiated SSO (:func:`unsolicited`) runs the same way, with no request behind it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, replace
from datetime import datetime, timedelta
from enum import Enum
from typing import Any, Protocol, TypeVar

from cryptography.x509 import Certificate
from saml2.saml import (
    NAMEID_FORMAT_PERSISTENT,
    NAMEID_FORMAT_TRANSIENT,
    NAMEID_FORMAT_UNSPECIFIED,
)
from sqlalchemy.orm import Session

from idp.saml import state
from idp.saml.akdb import AuthenticationRequest, AuthnMethod, StatusDetail
from idp.saml.envelope import read_envelope
from idp.saml.identifiers import (
    TrustLevel,
    citizen_of_persistent_name_id,
    existing_persistent_name_id,
    persistent_name_id,
    satisfiable,
)
from idp.saml.messages import RequestedSubject, WrongVersion, new_id
from idp.saml.server import (
    STATUS_REQUESTER,
    STATUS_RESPONDER,
    ParsedAuthnRequest,
    RequestRejected,
    SamlIdp,
)
from idp.samlkit.bindings import IncomingMessage, verify_redirect_signature
from idp.samlkit.bundid import BPK2

SAML_STATUS = "urn:oasis:names:tc:SAML:2.0:status:"
NO_PASSIVE = SAML_STATUS + "NoPassive"
NO_AUTHN_CONTEXT = SAML_STATUS + "NoAuthnContext"
INVALID_NAME_ID_POLICY = SAML_STATUS + "InvalidNameIDPolicy"
REQUEST_DENIED = SAML_STATUS + "RequestDenied"
REQUEST_UNSUPPORTED = SAML_STATUS + "RequestUnsupported"
AUTHN_FAILED = SAML_STATUS + "AuthnFailed"
UNKNOWN_PRINCIPAL = SAML_STATUS + "UnknownPrincipal"
VERSION_MISMATCH = SAML_STATUS + "VersionMismatch"
# The NameID formats a <Subject> may name a citizen by: those we issue, or none said.
_OUR_FORMATS = (None, NAMEID_FORMAT_UNSPECIFIED, NAMEID_FORMAT_PERSISTENT, NAMEID_FORMAT_TRANSIENT)
# An xs:ID (NCName) as InResponseTo may carry it; anything else is not echoed.
_XS_ID = re.compile(r"[A-Za-z_][A-Za-z0-9_.\-]{0,255}")
# The only login method we have (docs/architecture.md, "Login").
OUR_METHOD = AuthnMethod.BENUTZERNAME


class SsoPortal(Protocol):
    """What SSO needs to know of a relying portal: the part of its policy file
    (:class:`idp.portals.policy.PortalPolicy`) the decisions read, so they can be tested alone."""

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
    @property
    def attribute_names(self) -> Mapping[str, str]: ...  # FriendlyName → Name, policy order
    @property
    def required_attributes(self) -> tuple[str, ...]: ...  # FriendlyNames
    @property
    def idp_initiated_allowed(self) -> bool: ...


P = TypeVar("P", bound=SsoPortal)


class Next(Enum):
    """What the browser must do before the portal can be answered."""

    LOG_IN = "log_in"
    CONSENT = "consent"
    ANSWER = "answer"
    # A request naming a citizen, and someone else logged in for it: AuthnFailed.
    WRONG_PRINCIPAL = "wrong_principal"


@dataclass(frozen=True)
class Pending:
    """A request waiting in the database, as the flow needs it back."""

    request: ParsedAuthnRequest
    relay_state: str | None
    received_at: datetime
    # The citizen the request's <Subject> names (None: no Subject, or nobody we know).
    principal_id: int | None = None

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self.request)
        data["issue_instant"] = self.request.issue_instant.isoformat()
        data["requested_contexts"] = list(self.request.requested_contexts)
        data["akdb"] = self.request.akdb.to_dict() if self.request.akdb else None
        return {"request": data, "relay_state": self.relay_state,
                "received_at": self.received_at.isoformat(), "principal_id": self.principal_id}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Pending:
        request = dict(data["request"])
        request["issue_instant"] = datetime.fromisoformat(request["issue_instant"])
        request["requested_contexts"] = tuple(request["requested_contexts"])
        if request.get("akdb") is not None:
            request["akdb"] = AuthenticationRequest.from_dict(request["akdb"])
        if request.get("subject") is not None:
            request["subject"] = RequestedSubject(**request["subject"])
        return cls(ParsedAuthnRequest(**request), data["relay_state"],
                   datetime.fromisoformat(data["received_at"]), data.get("principal_id"))


@dataclass(frozen=True)
class ErrorStatus:
    """An error status for the portal (the request was fine, but cannot be granted)."""

    status: str
    sub_status: str
    message: str
    # akdb:StatusDetail code, sent only to requests that enabled it (status_detail_for).
    detail: StatusDetail | None = None


def receive(session: Session, idp: SamlIdp, message: IncomingMessage,
            portal_for: Callable[[str], P | None], certificates_for: Any,
            now: datetime) -> tuple[Pending, P]:
    """Check an incoming AuthnRequest and remember it: the request and its portal's policy;
    raise RequestRejected if unanswerable.

    ``portal_for(entity_id)`` gives the portal's policy (None if unknown or disabled);
    ``certificates_for(entity_id)`` its signing certificates from metadata.
    """
    # Cheapest first (docs/security.md, "Order of checks"): structure and Issuer, then the
    # portal, then the signature on the query, and only then the full check of the request
    # (which verifies an embedded signature).
    envelope = read_envelope(message.xml, ("AuthnRequest",))
    portal = portal_for(envelope.issuer)
    if portal is None:
        raise RequestRejected(f"no portal policy for {envelope.issuer!r}")
    if envelope.version != "2.0":
        raise WrongVersion(envelope.issuer, envelope.message_id, envelope.version)
    if portal.want_authn_requests_signed and not (message.has_redirect_signature
                                                  or envelope.has_signature):
        raise RequestRejected("unsigned request where the portal must sign")
    if message.has_redirect_signature:
        # A present signature must be valid, whether or not the portal must sign.
        certificates: list[Certificate] = certificates_for(envelope.issuer)
        if not verify_redirect_signature(message, certificates):
            raise RequestRejected("invalid Redirect-binding signature")
    # The tree read_envelope parsed, checked in full: no second parse, no pysaml2 objects.
    parsed = idp.parse_authn_request(message.xml, now, root=envelope.root)
    signed = message.has_redirect_signature or parsed.signed
    if portal.want_authn_requests_signed and not signed:
        raise RequestRejected("unsigned request where the portal must sign")
    if signed and parsed.destination is None:
        raise RequestRejected("signed request without Destination")
    # docs/architecture.md, "The akdb:AuthenticationRequest extension": the BundID extension
    # only counts when the portal signed it; anyone can put one into an unsigned request, so
    # that is answered as a plain request.
    parsed = replace(parsed, signed=True) if signed else replace(
        parsed, akdb=None, akdb_problem=None)
    # docs/architecture.md, pysaml2 trap 3 (replay cache): pysaml2 keeps none.
    if not state.first_sighting(session, parsed.issuer, parsed.request_id, now):
        raise RequestRejected("replayed request ID")
    return Pending(request=parsed, relay_state=message.relay_state, received_at=now,
                   principal_id=principal_named(session, parsed)), portal


def version_mismatch(idp: SamlIdp, portal: SsoPortal, problem: WrongVersion,
                     relay_state: str | None, now: datetime) -> tuple[Pending, ErrorStatus]:
    """The answer to a request of another SAML version: VersionMismatch, to the portal's
    default ACS from metadata (raises RequestRejected when it has none)."""
    request = replace(idp.unsolicited_request(portal.entity_id, now), unsolicited=False,
                      request_id=problem.request_id if problem.request_id
                      and _XS_ID.fullmatch(problem.request_id) else "")
    return (Pending(request=request, relay_state=relay_state, received_at=now),
            ErrorStatus(VERSION_MISMATCH, "", "Only SAML 2.0 is supported"))


def principal_named(session: Session, request: ParsedAuthnRequest) -> int | None:
    """The citizen a request's <Subject> names by a NameID this portal got from us: its
    pairwise (persistent) identifier, or a transient one of a session still open."""
    subject = request.subject
    if subject is None or not subject.name_id or subject.name_id_format not in _OUR_FORMATS:
        return None
    if subject.name_id_format != NAMEID_FORMAT_TRANSIENT:
        found = citizen_of_persistent_name_id(session, request.issuer, subject.name_id)
        if found is not None:
            return found
    # A NameID of a login still open there (transient ones are found only this way).
    return state.citizen_of_portal_name_id(session, request.issuer, subject.name_id)


def refusal_before_login(pending: Pending, portal: SsoPortal) -> ErrorStatus | None:
    """Errors the portal can be told at once, before anyone logs in."""
    request = pending.request
    if request.akdb_problem is not None:
        return ErrorStatus(STATUS_REQUESTER, REQUEST_UNSUPPORTED,
                           "akdb:AuthenticationRequest not understood: " + request.akdb_problem,
                           StatusDetail.INVALID_EXTENSION)
    if request.name_id_format and request.name_id_format != policy_name_id_format(portal):
        # The portal's registration decides: a portal registered for transient NameIDs cannot
        # ask its way to the stable pairwise identifier (docs/security.md, "NameIDs").
        return ErrorStatus(STATUS_REQUESTER, INVALID_NAME_ID_POLICY,
                           "NameID format not allowed for this portal",
                           StatusDetail.NAME_ID_FORMAT_NOT_SUPPORTED)
    if request.subject is not None and pending.principal_id is None:
        return ErrorStatus(STATUS_RESPONDER, UNKNOWN_PRINCIPAL,
                           "The Subject of the request names nobody known to this portal")
    # Username and password reach level 1 only; never a silent downgrade.
    reachable = TrustLevel.LEVEL_1
    if portal.minimum_trust_level > reachable or not satisfiable(
            request.requested_contexts, request.comparison, reachable):
        return ErrorStatus(STATUS_RESPONDER, NO_AUTHN_CONTEXT,
                           "The requested level of assurance cannot be reached",
                           StatusDetail.TRUST_LEVEL_NOT_REACHABLE)
    if request.akdb is not None:
        if not request.akdb.allows(OUR_METHOD):
            # None of the methods the portal enabled exists here: nobody could log in.
            return ErrorStatus(STATUS_RESPONDER, NO_AUTHN_CONTEXT,
                               "None of the enabled AuthnMethods is available",
                               StatusDetail.AUTHN_METHOD_NOT_AVAILABLE)
        if not_allowed := attributes_for(portal, request).not_allowed:
            return ErrorStatus(STATUS_REQUESTER, REQUEST_DENIED,
                               "Required attributes not released to this portal: "
                               + " ".join(not_allowed),
                               StatusDetail.REQUIRED_ATTRIBUTES_NOT_ALLOWED)
    return None


@dataclass(frozen=True)
class AttributeSelection:
    """The attribute Names a request gets, those it cannot do without, and those it demands
    but the portal's policy does not allow (refused before login)."""

    names: tuple[str, ...]
    required: tuple[str, ...]
    not_allowed: tuple[str, ...] = ()


def attributes_for(portal: SsoPortal, request: ParsedAuthnRequest) -> AttributeSelection:
    """What the policy allows; with akdb:RequestedAttributes only those of them it lists.

    Never more than the policy: a listed attribute the policy does not allow is left out (or,
    if required, named in ``not_allowed``). A policy-required attribute counts only when the
    request asks for it at all.
    """
    allowed = list(portal.attribute_names.values())
    policy_required = {portal.attribute_names[name] for name in portal.required_attributes}
    asked = request.akdb.requested_attributes if request.akdb is not None else None
    if asked is None:
        return AttributeSelection(tuple(allowed), tuple(sorted(policy_required)))
    asked_names = {item.name for item in asked}
    required = {item.name for item in asked if item.required} | (policy_required & asked_names)
    return AttributeSelection(
        names=tuple(name for name in allowed if name in asked_names),
        required=tuple(sorted(required & set(allowed))),
        not_allowed=tuple(sorted(required - set(allowed))))


def status_detail_for(pending: Pending, refusal: ErrorStatus) -> str | None:
    """The akdb:StatusDetail code to send with ``refusal``, if the request asked for one."""
    akdb = pending.request.akdb
    if akdb is None or not akdb.enable_status_detail or refusal.detail is None:
        return None
    return refusal.detail.value


def unsolicited(idp: SamlIdp, portal: SsoPortal, relay_state: str | None,
                now: datetime) -> Pending:
    """IdP-initiated SSO to ``portal``, as a pending request that nobody sent.

    Raises :class:`RequestRejected` when its policy does not allow this (idp_initiated_allowed)
    or its metadata has no HTTP-POST AssertionConsumerService.
    """
    if not portal.idp_initiated_allowed:
        raise RequestRejected(f"IdP-initiated SSO not allowed for {portal.entity_id!r}")
    return Pending(request=idp.unsolicited_request(portal.entity_id, now),
                   relay_state=relay_state, received_at=now)


def next_step(pending: Pending, citizen_id: int | None, logged_in_at: datetime | None,
              consent_needed: bool) -> Next:
    """Log in first (also again for ForceAuthn, or as the citizen a <Subject> names), then
    consent if needed, then answer. Someone else logging in for a named citizen ends the login
    (WRONG_PRINCIPAL): the answer is never about whoever happens to be logged in."""
    if logged_in_at is None or (pending.request.force_authn
                                and logged_in_at < pending.received_at):
        return Next.LOG_IN
    if pending.principal_id is not None and citizen_id != pending.principal_id:
        return Next.WRONG_PRINCIPAL if logged_in_at >= pending.received_at else Next.LOG_IN
    if consent_needed:
        return Next.CONSENT
    return Next.ANSWER


def passive_refusal() -> ErrorStatus:
    return ErrorStatus(STATUS_RESPONDER, NO_PASSIVE, "Passive login not possible",
                       StatusDetail.PASSIVE_NOT_POSSIBLE)


def cancelled() -> ErrorStatus:
    return ErrorStatus(STATUS_RESPONDER, AUTHN_FAILED, "The citizen cancelled the login",
                       StatusDetail.AUTHN_CANCELLED)


def declined() -> ErrorStatus:
    return ErrorStatus(STATUS_REQUESTER, REQUEST_DENIED,
                       "Der Bürger hat der Weitergabe seiner Daten nicht zugestimmt.",
                       StatusDetail.CONSENT_DECLINED)


def required_missing(missing: list[str]) -> ErrorStatus:
    """The account cannot give attributes the request requires (docs/architecture.md, pysaml2
    trap 6: no partial data)."""
    return ErrorStatus(STATUS_REQUESTER, REQUEST_DENIED,
                       "Required attributes missing: " + " ".join(missing),
                       StatusDetail.REQUIRED_ATTRIBUTES_MISSING)


def denied(message: str) -> ErrorStatus:
    return ErrorStatus(STATUS_REQUESTER, REQUEST_DENIED, message)


def policy_name_id_format(portal: SsoPortal) -> str:
    """The NameID format the portal is registered for (the only one it gets)."""
    return str(NAMEID_FORMAT_PERSISTENT if portal.name_id_format == "persistent"
               else NAMEID_FORMAT_TRANSIENT)


def needs_pairwise(portal: SsoPortal, selection: AttributeSelection) -> bool:
    """Whether the answer carries the citizen's pairwise identifier (NameID or bPK2)."""
    return policy_name_id_format(portal) == NAMEID_FORMAT_PERSISTENT or BPK2 in selection.names


def pairwise_for(session: Session, portal: SsoPortal, request: ParsedAuthnRequest,
                 citizen_id: int, now: datetime) -> str | None:
    """The citizen's pairwise identifier at the portal, made on first use; None when the
    request forbids making one (AllowCreate="false") and none exists yet."""
    if request.allow_create:
        return persistent_name_id(session, citizen_id, portal.entity_id, now)
    return existing_persistent_name_id(session, citizen_id, portal.entity_id)


def no_identifier_to_create() -> ErrorStatus:
    """AllowCreate="false" asked for a persistent NameID the citizen does not have there yet."""
    return ErrorStatus(STATUS_REQUESTER, INVALID_NAME_ID_POLICY,
                       "No persistent identifier exists and AllowCreate is false",
                       StatusDetail.NAME_ID_FORMAT_NOT_SUPPORTED)


def wrong_principal() -> ErrorStatus:
    """The citizen who logged in is not the one the request's <Subject> names."""
    return ErrorStatus(STATUS_RESPONDER, AUTHN_FAILED,
                       "The citizen who logged in is not the Subject of the request")


def name_id_for(portal: SsoPortal, pairwise: str | None) -> tuple[str, str]:
    """(value, format) in the portal's registered format; ``pairwise`` is the persistent
    identifier (required for a persistent portal, see :func:`pairwise_for`)."""
    if policy_name_id_format(portal) == NAMEID_FORMAT_PERSISTENT:
        assert pairwise is not None, "a persistent portal's answer needs the pairwise id"
        return pairwise, NAMEID_FORMAT_PERSISTENT
    # New for every login (pysaml2's own would repeat per citizen and portal).
    return new_id(), NAMEID_FORMAT_TRANSIENT


def session_lifetime(level: TrustLevel) -> timedelta:
    """TR-03160-1: absolute session lifetime by level reached."""
    return {TrustLevel.LEVEL_1: timedelta(hours=12), TrustLevel.LEVEL_2: timedelta(hours=12),
            TrustLevel.LEVEL_3: timedelta(hours=2),
            TrustLevel.LEVEL_4: timedelta(minutes=30)}[level]
