"""Single logout as a sequence of decisions, without Flask.

A portal's LogoutRequest arrives (:func:`receive_request`); if it names this browser's session,
the IdP session ends and the chain starts (:func:`start`): every other portal the session logged
in to gets a signed LogoutRequest in turn, through the browser (front channel), and its
LogoutResponse (:func:`receive_response`) moves the chain on. At the end the initiator gets its
LogoutResponse (:func:`answer`): Success when every portal confirmed, else PartialLogout.

The chain lives in the database under a random reference that travels as RelayState; the IdP
session is gone by then, so nothing else could carry it. What cannot be answered safely
(unknown portal, no signature, no SingleLogoutService, replay) raises
:class:`~idp.saml.server.RequestRejected` for an error page.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from datetime import datetime
from typing import Any, TypeVar

from saml2 import BINDING_HTTP_POST, BINDING_HTTP_REDIRECT
from saml2.saml import NAMEID_FORMAT_UNSPECIFIED
from sqlalchemy.orm import Session

from idp.portals.registry import Portal
from idp.saml import state
from idp.saml.incoming import read_envelope
from idp.saml.messages import (
    STATUS_REQUESTER,
    STATUS_SUCCESS,
    LogoutSubject,
    OutgoingMessage,
    ParsedLogoutRequest,
    ParsedLogoutResponse,
    RequestRejected,
)
from idp.saml.server import SamlIdp
from idp.saml.sp_metadata import Endpoint
from idp.saml.workbench_hooks import Inspection
from idp.samlkit.bindings import IncomingMessage, verify_redirect_signature

log = logging.getLogger(__name__)

PARTIAL_LOGOUT = "urn:oasis:names:tc:SAML:2.0:status:PartialLogout"
UNKNOWN_PRINCIPAL = "urn:oasis:names:tc:SAML:2.0:status:UnknownPrincipal"
# IncomingMessage.binding → the binding's URI.
BINDINGS = {"redirect": BINDING_HTTP_REDIRECT, "post": BINDING_HTTP_POST}


# The available portal with this entity id (``PortalRegistry.portal``), None if unknown.
PortalLookup = Callable[[str], Portal | None]


class ChainUnknown(LookupError):
    """No logout waits under this reference: expired, finished already, or made up."""


@dataclass(frozen=True)
class LogoutStatus:
    """The status of a LogoutResponse to the initiator."""

    status: str
    sub_status: str | None = None
    message: str | None = None


SUCCESS = LogoutStatus(STATUS_SUCCESS)
# SAML core §3.7.3.2: the top-level code says whether the session authority ended the session
# itself (it did); PartialLogout below it, that not every other participant confirmed.
PARTIAL = LogoutStatus(STATUS_SUCCESS, PARTIAL_LOGOUT,
                       "Not every portal of the session confirmed the logout")
NOT_THIS_SESSION = LogoutStatus(STATUS_REQUESTER, UNKNOWN_PRINCIPAL,
                                "The NameID does not belong to this browser's session")


@dataclass(frozen=True)
class Participant:
    """A portal this browser session logged in to, with the NameID it got there."""

    entity_id: str
    name_id: str
    name_id_format: str
    session_index: str

    def subject(self, idp_entity_id: str) -> LogoutSubject:
        """The NameID exactly as the portal's assertion carried it (qualifiers included)."""
        return LogoutSubject(self.name_id, self.name_id_format, idp_entity_id, self.entity_id)


@dataclass(frozen=True)
class Initiator:
    """The portal that asked for the logout, and where its answer goes (from its metadata)."""

    entity_id: str
    request_id: str
    relay_state: str | None
    binding: str
    location: str


@dataclass(frozen=True)
class Received:
    """A checked LogoutRequest and how to answer its sender."""

    request: ParsedLogoutRequest
    initiator: Initiator


@dataclass(frozen=True)
class Chain:
    """A single logout under way: who asked, who is still to be told, who answered how."""

    initiator: Initiator | None
    to_notify: tuple[Participant, ...]
    logged_out: tuple[str, ...] = ()
    not_logged_out: tuple[str, ...] = ()
    # The upstream the ended session had logged in through (idp/broker/logout.py: its name,
    # NameID and SessionIndex), told last; None for our own logins.
    upstream: dict[str, str] | None = None

    @property
    def complete(self) -> bool:
        """Every portal of the session confirmed its logout."""
        return not self.not_logged_out and not self.to_notify

    def answered(self, portal: str, confirmed: bool) -> Chain:
        if confirmed:
            return replace(self, logged_out=(*self.logged_out, portal))
        return replace(self, not_logged_out=(*self.not_logged_out, portal))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Chain:
        initiator = data["initiator"]
        return cls(initiator=Initiator(**initiator) if initiator else None,
                   to_notify=tuple(Participant(**item) for item in data["to_notify"]),
                   logged_out=tuple(data["logged_out"]),
                   not_logged_out=tuple(data["not_logged_out"]),
                   upstream=data.get("upstream"))


@dataclass(frozen=True)
class Notify:
    """The browser goes on to ``portal`` with its LogoutRequest."""

    portal: str
    message: OutgoingMessage


@dataclass(frozen=True)
class Finished:
    """Every portal was told (or could not be); answer the initiator or show the result."""

    chain: Chain


Step = Notify | Finished


def slo_endpoint(endpoints: Sequence[Endpoint], preferred: str | None = None) -> Endpoint | None:
    """Where a portal takes logout messages: the ``preferred`` binding if it offers it, else
    HTTP-Redirect, else HTTP-POST (the front-channel bindings we speak; not SOAP or Artifact)."""
    for binding in (preferred, BINDING_HTTP_REDIRECT, BINDING_HTTP_POST):
        for endpoint in endpoints:
            if binding is not None and endpoint.binding == binding:
                return endpoint
    return None


def receive_request(session: Session, idp: SamlIdp, message: IncomingMessage,
                    portal_of: PortalLookup, now: datetime,
                    seen: Inspection | None = None) -> Received:
    """Check an incoming LogoutRequest; raise RequestRejected if it cannot be answered.
    ``seen`` is filled in on the way (for the QA workbench's SAML tracer)."""
    seen = seen if seen is not None else Inspection()
    passed = seen.checks.append
    passed("Binding: Größe, Kodierung, Kompression, RelayState")
    # Cheapest first (docs/security.md, "Order of checks"): structure and Issuer, the portal,
    # the query's signature, then pysaml2's parse with the embedded signature.
    envelope = read_envelope(message.xml, ("LogoutRequest",))
    seen.issuer = envelope.issuer
    passed("Struktur: samlp:LogoutRequest, ein Issuer")
    portal = portal_of(envelope.issuer)
    if portal is None:
        raise RequestRejected(f"no portal policy for {envelope.issuer!r}")
    passed(f"Portal bekannt: {portal.name}")
    # SAML profiles §4.4.4.1: a LogoutRequest must be authenticated. Anyone may send one that
    # names a citizen; only the portal's signature makes it the portal's.
    if message.has_redirect_signature:
        if not verify_redirect_signature(message, portal.signing_certificates()):
            seen.signature = "ungültig (Redirect-Binding)"
            raise RequestRejected("invalid Redirect-binding signature")
        seen.signature = f"gültig (Redirect-Binding, {message.sig_alg})"
        passed("Signatur über die Query mit dem Schlüssel aus den Metadaten")
    elif not envelope.has_signature:
        raise RequestRejected("unsigned LogoutRequest")
    # The query's signature held (else refused above): an EncryptedID may be decrypted.
    request = _parsed(idp.parse_logout_request, seen, message.xml, now,
                      query_signed=message.has_redirect_signature)
    if not (message.has_redirect_signature or request.signed):
        raise RequestRejected("unsigned LogoutRequest")
    passed("Schema, Destination, IssueInstant, NotOnOrAfter, NameID oder EncryptedID")
    # The answer goes only to an address from metadata; without one there is no one to answer.
    endpoint = slo_endpoint(portal.slo_endpoints(), BINDINGS[message.binding])
    if endpoint is None:
        raise RequestRejected(f"{request.issuer!r} has no SingleLogoutService in its metadata")
    passed("SingleLogoutService in den Metadaten")
    # docs/architecture.md, pysaml2 trap 3: the same replay cache as for AuthnRequests.
    if not state.first_sighting(session, request.issuer, request.request_id, now):
        raise RequestRejected("replayed request ID")
    passed("Replay-Cache: (Issuer, ID) zum ersten Mal gesehen")
    return Received(request, Initiator(
        entity_id=request.issuer, request_id=request.request_id, relay_state=message.relay_state,
        binding=endpoint.binding, location=endpoint.response_location or endpoint.location))


def portal_logins(session: Session, browser_session: str) -> list[Participant]:
    """The portals this browser session logged in to (oldest first)."""
    rows = sorted(state.portal_sessions(session, browser_session), key=lambda row: row.id)
    return [Participant(row.portal_entity_id, row.name_id, row.name_id_format,
                        row.session_index) for row in rows]


def names_this_session(request: ParsedLogoutRequest, logins: Sequence[Participant],
                       idp_entity_id: str) -> bool:
    """Whether the request names the citizen as this browser session logged in to its sender.

    NameID value, format and qualifiers (where given) and a SessionIndex (if any) must match
    what we sent that portal: a request about anyone else must not end this session.
    """
    subject = request.subject
    for login in logins:
        if login.entity_id == request.issuer and login.name_id == subject.name_id and \
                subject.name_id_format in (None, NAMEID_FORMAT_UNSPECIFIED,
                                           login.name_id_format) and \
                subject.name_qualifier in (None, idp_entity_id) and \
                subject.sp_name_qualifier in (None, request.issuer) and \
                (not request.session_indexes or login.session_index in request.session_indexes):
            return True
    return False


def start(session: Session, idp: SamlIdp, browser_session: str, logins: Sequence[Participant],
          initiator: Initiator | None, portal_of: PortalLookup, now: datetime,
          upstream: dict[str, str] | None = None) -> Step:
    """Begin telling every portal of the (already ended) browser session but the initiator.

    The session's portals are forgotten at once: whatever happens to the chain, no later
    logout can be started for them from this session.
    """
    state.forget_portal_sessions(session, browser_session)
    chain = Chain(initiator, tuple(login for login in logins
                                   if initiator is None or login.entity_id != initiator.entity_id),
                  upstream=upstream)
    return _go_on(session, idp, chain, portal_of, now, stored=None)


@dataclass
class AnswerInspection(Inspection):
    """What :func:`receive_response` found out about a LogoutResponse (for the QA workbench's
    SAML tracer): besides the checks, whether it confirmed the logout, or why not."""

    verdict: str = ""


def receive_response(session: Session, idp: SamlIdp, message: IncomingMessage,
                     portal_of: PortalLookup, now: datetime,
                     seen: AnswerInspection | None = None) -> Step:
    """Take the awaited portal's LogoutResponse and move the chain on.

    Raises :class:`ChainUnknown` for an unknown reference or an answer that came already, and
    RequestRejected for an answer from a portal other than the awaited one. ``seen`` is
    filled in on the way.
    """
    seen = seen if seen is not None else AnswerInspection()
    seen.checks.append("Binding: Größe, Kodierung, Kompression, RelayState")
    reference = message.relay_state or ""
    found = state.logout_chain(session, reference, now)
    if found is None:
        raise ChainUnknown("no logout waits under this RelayState")
    seen.checks.append("RelayState: eine laufende Abmeldung wartet auf diese Antwort")
    portal, request_id, data = found
    seen.issuer = portal
    confirmed = _confirmed(idp, message, portal, request_id, portal_of, now, seen)
    chain = Chain.from_dict(data).answered(portal, confirmed)
    return _go_on(session, idp, chain, portal_of, now, stored=(reference, request_id))


def _confirmed(idp: SamlIdp, message: IncomingMessage, portal: str, request_id: str,
               portal_of: PortalLookup, now: datetime, seen: AnswerInspection) -> bool:
    """Whether ``portal`` confirmed our LogoutRequest ``request_id``.

    An answer failing a check counts as not logged out. A well-formed answer from another
    portal (e.g. an earlier step's answer submitted twice) is refused instead: it must not
    decide about the awaited portal.
    """
    passed = seen.checks.append

    def not_confirmed(reason: str) -> bool:
        log.info("LogoutResponse awaited from %s does not count: %s", portal, reason)
        seen.verdict = f"gilt als nicht abgemeldet: {reason}"
        return False

    try:
        envelope = read_envelope(message.xml, ("LogoutResponse",))
    except RequestRejected as error:
        return not_confirmed(str(error))
    if envelope.issuer != portal:
        raise RequestRejected(f"LogoutResponse from {envelope.issuer!r}, awaited {portal!r}")
    passed("Struktur: samlp:LogoutResponse, Issuer ist das erwartete Portal")
    known = portal_of(portal)
    if message.has_redirect_signature:
        if known is None or not verify_redirect_signature(message,
                                                          known.signing_certificates()):
            seen.signature = "ungültig (Redirect-Binding)"
            return not_confirmed("invalid Redirect-binding signature")
        seen.signature = f"gültig (Redirect-Binding, {message.sig_alg})"
        passed("Signatur über die Query mit dem Schlüssel aus den Metadaten")
    try:
        response = _parsed(idp.parse_logout_response, seen, message.xml, now)
    except RequestRejected as error:
        return not_confirmed(str(error))
    passed("Schema, Destination (falls angegeben), IssueInstant")
    signed = message.has_redirect_signature or response.signed
    # SAML bindings §3.4.5.2/§3.5.5.2: a signed message names its Destination (ours; the
    # parser checked it when present), so a signed answer cannot be replayed elsewhere.
    if signed and response.destination is None:
        return not_confirmed("signed but names no Destination")
    # The InResponseTo of a random, single-use ID binds an unsigned answer to our request; a
    # portal whose policy says it signs its messages must sign this one too.
    if not signed and (known is None or known.policy.want_authn_requests_signed):
        return not_confirmed("not signed")
    if response.in_response_to != request_id:
        return not_confirmed(f"answers {response.in_response_to!r}, not {request_id!r}")
    passed("InResponseTo: unsere LogoutRequest")
    if response.status != STATUS_SUCCESS or response.sub_status == PARTIAL_LOGOUT:
        return not_confirmed(f"status {response.sub_status or response.status}")
    seen.verdict = "Abmeldung bestätigt"
    return True


_Parsed = TypeVar("_Parsed", ParsedLogoutRequest, ParsedLogoutResponse)


def _parsed(parse: Callable[..., _Parsed], seen: Inspection, xml: bytes, now: datetime,
            **options: bool) -> _Parsed:
    """``parse(xml, now)`` (pysaml2's parse with the embedded signature verified), noting in
    ``seen`` what became of an embedded signature."""
    try:
        parsed = parse(xml, now, **options)
    except RequestRejected as error:
        if "signature" in str(error):
            seen.signature = "ungültig (eingebettet)"
        raise
    if parsed.signed:
        seen.signature = "gültig (eingebettet, Schlüssel aus den Metadaten)"
    return parsed


def _go_on(session: Session, idp: SamlIdp, chain: Chain, portal_of: PortalLookup,
           now: datetime, stored: tuple[str, str] | None) -> Step:
    """Send the next portal with a SingleLogoutService its LogoutRequest, or finish.

    ``stored``: the chain's reference and the ID of the request just answered (None at the
    start, before anything is stored). It moves on only if that request is still awaited.
    """
    not_reached = list(chain.not_logged_out)
    for index, participant in enumerate(chain.to_notify):
        portal = portal_of(participant.entity_id)
        endpoint = slo_endpoint(portal.slo_endpoints()) if portal is not None else None
        if endpoint is None:
            not_reached.append(participant.entity_id)
            continue
        chain = replace(chain, to_notify=chain.to_notify[index + 1:],
                        not_logged_out=tuple(not_reached))
        request_id, xml = idp.create_logout_request(
            participant.entity_id, endpoint.location, participant.subject(idp.entity_id),
            participant.session_index, sign=endpoint.binding == BINDING_HTTP_POST)
        if stored is None:
            reference = state.keep_logout_chain(session, chain.to_dict(), participant.entity_id,
                                                request_id, now)
        else:
            reference, answered = stored
            if not state.advance_logout_chain(session, reference, answered, chain.to_dict(),
                                              participant.entity_id, request_id, now):
                raise ChainUnknown("this step was answered already")
        return Notify(participant.entity_id, idp.encode(
            xml, endpoint.binding, endpoint.location, reference, "SAMLRequest"))
    chain = replace(chain, to_notify=(), not_logged_out=tuple(not_reached))
    if stored is not None and not state.finish_logout_chain(session, *stored):
        raise ChainUnknown("this step was answered already")
    return Finished(chain)


def answer(idp: SamlIdp, initiator: Initiator, status: LogoutStatus) -> OutgoingMessage:
    """The initiator's LogoutResponse, signed, to its SingleLogoutService from metadata."""
    xml = idp.create_logout_response(
        initiator.request_id, initiator.location, status.status, status.sub_status,
        status.message, sign=initiator.binding == BINDING_HTTP_POST)
    return idp.encode(xml, initiator.binding, initiator.location, initiator.relay_state,
                      "SAMLResponse")


def outcome(chain: Chain) -> LogoutStatus:
    return SUCCESS if chain.complete else PARTIAL
