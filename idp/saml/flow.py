"""Single sign-on from the view's point of view: one SAMLRequest from arrival to answer.

receive → authenticate → consent → respond, as eduid's IdP has it: every route of
:mod:`idp.saml.views` makes an :class:`SsoFlow` and calls one method, which returns what the
browser is shown next (an :data:`Outcome`); the view only renders it. No Flask here: the view
hands in the visitor (who is logged in, since when), where this browser parks its logins, and
the time.

The flow's decisions are plain functions at the end of this module (what a request may ask,
what the browser must do next, what a portal gets), tested alone; the state in the database is
:mod:`idp.saml.state`'s. A request arrives (:func:`check_request`), waits in the database while
the citizen logs in and agrees, and ends in exactly one answer to the portal: a Response with an
assertion, or a SAML error status. What cannot be answered safely (unknown portal, ACS not in
metadata, bad signature, replay) never reaches the portal: an error page at the IdP instead.

A signed request may carry BundID's akdb:AuthenticationRequest (:mod:`idp.saml.akdb`): it narrows
the attributes (:func:`attributes_for`), the login methods and asks for akdb:StatusDetail codes.
IdP-initiated SSO (:func:`unsolicited_pending`) runs the same way, with no request behind it.

Within one request the portal is looked up once, and the attribute selection and the pairwise
identifier are computed once (:class:`Transaction`).
"""

from __future__ import annotations

import base64
import logging
import re
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from datetime import datetime
from enum import Enum
from functools import cached_property
from typing import Any, Protocol

from saml2.saml import (
    NAMEID_FORMAT_PERSISTENT,
    NAMEID_FORMAT_TRANSIENT,
    NAMEID_FORMAT_UNSPECIFIED,
)
from sqlalchemy.orm import Session

from idp.accounts.models import Citizen
from idp.consent import records as consents
from idp.consent.attributes import (
    BY_EID,
    BY_EID_SUBSTANTIAL,
    BY_USERNAME,
    FINK,
    UPSTREAM_KEY,
    Proof,
    ReleasedAttribute,
    labels_in_catalogue_order,
    missing_required,
    release,
)
from idp.observability import events
from idp.portals.policy import PortalPolicy
from idp.portals.registry import Portal
from idp.saml import state
from idp.saml.akdb import AuthenticationRequest, AuthnMethod, StatusDetail
from idp.saml.identifiers import (
    METHOD_LEVELS,
    TrustLevel,
    citizen_of_persistent_name_id,
    existing_persistent_name_id,
    persistent_name_id,
    satisfiable,
)
from idp.saml.incoming import read_authn_request, read_envelope
from idp.saml.messages import (
    STATUS_REQUESTER,
    STATUS_RESPONDER,
    ParsedAuthnRequest,
    RequestedSubject,
    RequestRejected,
    WrongVersion,
)
from idp.saml.response import Authentication, Recipient, Signing
from idp.saml.runtime import SamlRuntime
from idp.saml.server import SamlIdp
from idp.saml.workbench_hooks import (
    IN,
    OUT,
    POST,
    REDIRECT,
    Inspection,
    PlannedAnswer,
    TracedMessage,
)
from idp.samlkit.bindings import (
    BindingError,
    IncomingMessage,
    check_relay_state,
    decode_post,
    decode_redirect,
    verify_redirect_signature,
)
from idp.samlkit.bundid import BPK2
from idp.samlkit.crypto import InProcessCryptoBackend
from idp.samlkit.ids import new_id

log = logging.getLogger(__name__)

REJECTED = ("Die Anmeldeanfrage des Portals konnte nicht angenommen werden. Bitte kehren Sie "
            "zum Portal zurück und starten Sie die Anmeldung dort erneut.")
EXPIRED = ("Diese Anmeldung ist abgelaufen oder wurde bereits abgeschlossen. Bitte starten Sie "
           "die Anmeldung beim Portal erneut.")
UNKNOWN_PORTAL = ("Dieses Portal kennt das Servicekonto nicht. Bitte prüfen Sie den Link oder "
                  "rufen Sie das Portal direkt auf.")
NOT_FROM_HERE = ("Bei diesem Portal können Sie sich nicht von hier aus anmelden. Bitte rufen Sie "
                 "das Portal direkt auf und starten Sie die Anmeldung dort.")
BAD_LINK = "Dieser Link zu einem Portal ist ungültig."
UNSOLICITED_REFUSED = ("Die Anmeldung beim Portal „{portal}“ ist nicht möglich: Ihr Servicekonto "
                       "enthält nicht alle Daten, die das Portal benötigt, oder das Portal "
                       "erlaubt diese Anmeldung nicht.")
UNSOLICITED_DECLINED = ("Sie haben der Weitergabe Ihrer Daten an „{portal}“ nicht zugestimmt. Das "
                        "Portal hat keine Daten erhalten.")


# --- what the view needs to hand in ------------------------------------------------------------

@dataclass(frozen=True)
class Visitor:
    """The browser behind the request, as the flow needs it."""

    citizen: Citizen | None
    # The server-side session (None before anything was stored in it).
    session_id: str | None
    authenticated_at: datetime | None
    # The level the login reached (1: username and password, 3/4: eID).
    trust_level: int = 1
    # What the eID card gave at login (idp.testing.models.EidTestCard's fields), else None.
    identity: Mapping[str, str] | None = None


class Parking(Protocol):
    """Where this browser remembers the logins it may resume (:mod:`idp.web.continuation`)."""

    def park(self, reference: str) -> None: ...
    def is_parked(self, reference: str | None) -> bool: ...
    def forget(self, reference: str) -> None: ...


# --- what the browser is shown next ------------------------------------------------------------

@dataclass(frozen=True)
class ErrorPage:
    """A German error page at the IdP: nothing goes to the portal."""

    status: int
    # None: the page's standard text for the status.
    message: str | None = None


@dataclass(frozen=True)
class LogIn:
    """The login page, for the login parked under ``reference``: with the methods that reach
    the level the portal needs, and what the AusweisApp step shows of the portal."""

    reference: str
    methods: tuple[str, ...] = ()
    portal_name: str = ""
    # The labels of the data the portal asks for ("Vorname", "Geburtsdatum", …).
    data: tuple[str, ...] = ()
    # The lowest level that meets the portal's minimum and its RequestedAuthnContext.
    needed: TrustLevel = TrustLevel.LEVEL_1
    # A citizen logged in at a lower level than ``needed``: the page asks to step up.
    step_up: StepUp | None = None


@dataclass(frozen=True)
class StepUp:
    """Why a logged-in citizen is asked to log in again with a higher method."""

    reached: TrustLevel
    # The login already read a card (an eAT of level "substantiell" at a portal needing "hoch"):
    # only another card helps.
    by_card: bool


@dataclass(frozen=True)
class AskConsent:
    """The page "Zustimmung zur Weitergabe an ein Fachverfahren"."""

    reference: str
    portal_name: str
    organization_display_name: str | None
    purpose: str | None
    attributes: Sequence[ReleasedAttribute]
    # A stable identifier goes to the portal although bPK2 is not among the attributes.
    persistent_identifier: bool
    # The upstream the data came from (its short name), for a login through the broker.
    upstream: str | None = None


@dataclass(frozen=True)
class PostToPortal:
    """The one answer: a SAML Response posted to the portal's ACS (from its metadata)."""

    acs_url: str
    portal_name: str
    saml_response: str  # base64
    relay_state: str | None
    error: bool


@dataclass(frozen=True)
class BackHere:
    """An IdP-initiated login that ends without data: back to our own pages."""

    # "start" (cancelled), "account" with a notice (declined), or an error page (refused).
    where: str
    notice: str | None = None


Outcome = ErrorPage | LogIn | AskConsent | PostToPortal | BackHere


# --- the decisions' vocabulary ----------------------------------------------------------------

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
# How the citizen was identified, by the level the session reached.
PROOFS: dict[int, Proof] = {1: BY_USERNAME, 2: BY_USERNAME, 3: BY_EID_SUBSTANTIAL, 4: BY_EID}


def proof_of(level: int, identity: Mapping[str, str] | None) -> Proof:
    """How the session's login identified the citizen: through an upstream ("FINK", at the
    level it reached there, capped), else by its level."""
    if identity is not None and UPSTREAM_KEY in identity:
        reached = TrustLevel(level)
        return Proof(qaa_level=reached.class_ref, proved_by=FINK, qaa_label=reached.label)
    return PROOFS[level]


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


# --- the flow ----------------------------------------------------------------------------------

@dataclass
class Transaction:
    """A request with its portal, and what is worked out for it once per HTTP request."""

    pending: Pending
    portal: PortalPolicy
    # Under which the request waits in the database (None: answered before it had to wait).
    reference: str | None = None
    # The visitor's pairwise id at the portal, once read or made (SsoFlow._pairwise); the flow
    # serves one visitor, so one value is enough.
    pairwise: str | None = None
    pairwise_known: bool = False

    @cached_property
    def selection(self) -> AttributeSelection:
        return attributes_for(self.portal, self.pending.request)


class SsoFlow:
    """One HTTP request's part of single sign-on."""

    def __init__(self, session: Session, saml: SamlRuntime, visitor: Visitor,
                 parking: Parking, now: datetime) -> None:
        self.session = session
        self.saml = saml
        self.visitor = visitor
        self.parking = parking
        self.now = now

    # --- entry points (one per route) ---

    def receive_redirect(self, query_string: bytes) -> Outcome:
        """An AuthnRequest over HTTP-Redirect."""
        try:
            return self.receive(decode_redirect(query_string))
        except BindingError as error:
            log.info("SSO redirect refused: %s", error)
            self._trace_undecodable(REDIRECT, error)
            return ErrorPage(400, REJECTED)

    def receive_post(self, form: Mapping[str, list[str]]) -> Outcome:
        """An AuthnRequest over HTTP-POST (after the same-site resubmit, see the views)."""
        try:
            return self.receive(decode_post(dict(form)))
        except BindingError as error:
            log.info("SSO post refused: %s", error)
            self._trace_undecodable(POST, error)
            return ErrorPage(400, REJECTED)

    def receive(self, message: IncomingMessage) -> Outcome:
        seen = Inspection()
        try:
            pending, portal = check_request(
                self.session, message, self.saml.registry.portal,
                self.saml.idp.endpoints.all_urls, self.saml.crypto, self.now, seen)
        except WrongVersion as problem:
            self._trace_in(message, seen, f"abgelehnt: {problem} (VersionMismatch)")
            return self._version_mismatch(problem, message.relay_state)
        except RequestRejected as error:
            log.info("SSO request refused: %s", error)
            self._trace_in(message, seen, f"abgelehnt, Fehlerseite beim IdP: {error}")
            return ErrorPage(400, REJECTED)
        self._trace_in(message, seen, "angenommen")
        transaction = Transaction(pending, portal)
        if refusal := refusal_before_login(pending, portal, self.saml.methods,
                                           self.saml.method_levels):
            return self._answer(transaction, error=refusal)
        return self._proceed(transaction)

    def resume(self, reference: str) -> Outcome:
        """Back from the login page."""
        if (transaction := self._parked(reference)) is None:
            return ErrorPage(410, EXPIRED)
        return self._proceed(transaction)

    def cancel(self, reference: str, eid: bool = False) -> Outcome:
        """ABBRECHEN on the login page: the portal learns that no one logged in. Cancelled in
        the AusweisApp step (``eid``) where no other method reaches the portal's level: the
        level cannot be reached (NoAuthnContext)."""
        if (transaction := self._parked(reference)) is None:
            return ErrorPage(410, EXPIRED)
        if eid and AuthnMethod.EID.value in self._offered(transaction) and \
                len(self._offered(transaction)) == 1:
            return self._answer(transaction, error=level_not_reached())
        return self._answer(transaction, error=cancelled())

    def refuse_through_upstream(self, reference: str, status: str | None,
                                sub_status: str | None) -> Outcome:
        """"Zurück zum Portal" after a login through an upstream that logged nobody in: the
        portal gets the upstream's status when it was one of SAML's (docs/broker.md), else
        AuthnFailed."""
        if (transaction := self._parked(reference)) is None:
            return ErrorPage(410, EXPIRED)
        return self._answer(transaction, error=upstream_refusal(status, sub_status))

    def decide(self, reference: str, decision: str, privacy_version: str) -> Outcome:
        """ZUSTIMMEN sends the data; ABLEHNEN tells the portal RequestDenied, with no data."""
        transaction = self._parked(reference)
        citizen = self.visitor.citizen
        if transaction is None or citizen is None:
            return ErrorPage(410, EXPIRED)
        if decision == "decline":
            return self._answer(transaction, error=declined())
        if decision != "agree":
            return ErrorPage(400)
        released = self._released(transaction, citizen)
        akdb = transaction.pending.request.akdb
        consents.give_consent(self.session, citizen.id, transaction.portal.entity_id,
                              {item.name for item in released}, self.now, privacy_version,
                              online_service_id=akdb.display.online_service_id if akdb else None)
        return self._answer(transaction, citizen=citizen, released=released)

    def unsolicited(self, provider_id: str, relay_state: str | None) -> Outcome:
        """IdP-initiated SSO to the portal ``provider_id``."""
        try:
            relay_state = check_relay_state(relay_state)
        except BindingError as error:
            log.info("unsolicited SSO refused: %s", error)
            return ErrorPage(400, BAD_LINK)
        portal = self.saml.registry.portal_for(provider_id)
        if portal is None:
            return ErrorPage(404, UNKNOWN_PORTAL)
        try:
            pending = unsolicited_pending(self.saml.idp, portal, relay_state, self.now)
        except RequestRejected as error:
            log.info("unsolicited SSO refused: %s", error)
            return ErrorPage(403, NOT_FROM_HERE)
        return self._proceed(Transaction(pending, portal))

    # --- the steps ---

    def _proceed(self, transaction: Transaction) -> Outcome:
        """Log in, agree, or answer at once. The request is parked in the database only when the
        browser has to go somewhere in between (a logged-in citizen with consent never waits)."""
        pending, portal = transaction.pending, transaction.portal
        citizen = self.visitor.citizen
        logged_in_at = self.visitor.authenticated_at if citizen is not None else None
        level_met = level_meets(TrustLevel(self.visitor.trust_level), portal, pending.request)
        if not level_met and not self._offered(transaction):
            # No method reaches it (IdP-initiated SSO to a portal above our reach).
            return self._answer(transaction, error=level_not_reached())
        released: list[ReleasedAttribute] = []
        consent_needed = False
        if citizen is not None:
            released = self._released(transaction, citizen)
            consent_needed = portal.consent_required and not consents.consent_covers(
                self.session, citizen.id, portal.entity_id, {item.name for item in released},
                self.now)
        step = next_step(pending, citizen.id if citizen else None, logged_in_at,
                         consent_needed, level_met)
        if step is Next.WRONG_PRINCIPAL:
            return self._answer(transaction, error=wrong_principal())
        if step is not Next.ANSWER and pending.request.is_passive:
            return self._answer(transaction, error=passive_refusal())
        if step is Next.LOG_IN:
            step_up = None if citizen is None or level_met else StepUp(
                TrustLevel(self.visitor.trust_level), by_card=self.visitor.identity is not None)
            return LogIn(self._park(transaction), self._offered(transaction),
                         portal.display_name,
                         tuple(labels_in_catalogue_order(transaction.selection.names)),
                         level_needed(portal, pending.request), step_up)
        assert citizen is not None
        pairwise = self._pairwise(transaction, citizen)
        persistent = policy_name_id_format(portal) == NAMEID_FORMAT_PERSISTENT
        if persistent and pairwise is None:
            return self._answer(transaction, error=no_identifier_to_create())
        if missing := missing_required(citizen, transaction.selection.required, pairwise,
                                      proof_of(self.visitor.trust_level, self.visitor.identity),
                                      self.visitor.identity):
            return self._answer(transaction, error=required_missing(missing))
        if step is Next.CONSENT:
            display = pending.request.akdb.display if pending.request.akdb else None
            return AskConsent(
                reference=self._park(transaction), portal_name=portal.display_name,
                organization_display_name=display.organization_display_name if display else None,
                purpose=display.purpose if display else None, attributes=released,
                # The NameID is data too: a stable identifier is named even without bPK2.
                persistent_identifier=persistent and BPK2 not in {item.name for item in released},
                upstream=(self.visitor.identity or {}).get(UPSTREAM_KEY))
        return self._answer(transaction, citizen=citizen, released=released)

    def _answer(self, transaction: Transaction, *, citizen: Citizen | None = None,
                released: list[ReleasedAttribute] | None = None,
                error: ErrorStatus | None = None) -> Outcome:
        """The one answer to the portal: a Response posted to the ACS from its metadata."""
        pending, portal, reference = transaction.pending, transaction.portal, transaction.reference
        if reference is not None:
            if not state.finish_pending(self.session, reference):
                return ErrorPage(410, EXPIRED)  # answered already (double submit, other tab)
            self.parking.forget(reference)
        request = pending.request
        if request.unsolicited and (error is not None or citizen is None):
            # Nobody at the portal is waiting for an answer: tell the citizen here instead.
            return _unsolicited_refusal(portal, error)
        fault = None
        if error is not None or citizen is None:
            refusal = error or denied("No citizen")
            xml = self.saml.idp.create_error_response(
                request, refusal.status, refusal.sub_status, refusal.message,
                sign=portal.sign_response,
                status_detail=status_detail_for(pending, refusal))
            events.sso_refused(portal.entity_id, refusal.sub_status or refusal.status,
                               refusal.message)
            decision = (f"Fehlerstatus {refusal.sub_status or refusal.status}: "
                        f"{refusal.message}")
        else:
            try:
                xml, fault = self._assertion_response(transaction, citizen, released or [])
            except RequestRejected as problem:  # the portal's policy cannot be met (no key)
                log.error("SSO answer impossible for %s: %s", portal.entity_id, problem)
                return ErrorPage(400, REJECTED)
            decision = "Erfolg, Attribute: " + (", ".join(
                item.friendly_name for item in released or []) or "keine")
        if self.saml.trace is not None:
            self.saml.trace.record(TracedMessage(
                OUT, "Response", POST, portal.entity_id, xml, self.visitor.session_id,
                _signed_parts(portal), (), decision, fault), self.now)
        return PostToPortal(
            acs_url=request.acs_url, portal_name=portal.display_name,
            saml_response=base64.b64encode(xml.encode("utf-8")).decode("ascii"),
            relay_state=pending.relay_state, error=error is not None)

    def _assertion_response(self, transaction: Transaction, citizen: Citizen,
                            released: list[ReleasedAttribute]) -> tuple[str, str | None]:
        """The Response with the assertion, and the name of the fault the QA workbench put into
        it instead (development only; None: the right answer)."""
        pending, portal = transaction.pending, transaction.portal
        visitor = self.visitor
        request = pending.request
        # Never the assertion in clear for a portal that wants it encrypted (RequestRejected
        # when its metadata has no encryption key).
        encryption = self.saml.idp.encryption_key(request.issuer) \
            if portal.encrypt_assertion else None
        # IdP-initiated: no InResponseTo anywhere (SAML profiles §4.1.5).
        recipient = Recipient(request.issuer, request.acs_url,
                              None if request.unsolicited else request.request_id)
        name_id, name_id_format = name_id_for(portal, self._pairwise(transaction, citizen))
        # Each portal gets a SessionIndex of its own (kept per browser session for single logout).
        session_index = state.remember_portal_session(
            self.session, visitor.session_id, citizen.id, portal.entity_id, name_id,
            name_id_format, self.now) if visitor.session_id else new_id()
        authenticated_at = visitor.authenticated_at or self.now
        # The level this session's login reached (_proceed made sure it meets the request).
        level = TrustLevel(visitor.trust_level)
        authentication = Authentication(
            class_ref=level.class_ref_for(portal.eidas_loa, pending.request.requested_contexts),
            instant=authenticated_at, session_index=session_index,
            session_not_on_or_after=authenticated_at
            + self.saml.session_lifetimes[level].absolute)
        signing = Signing(portal.sign_response, portal.sign_assertion)
        if self.saml.faults is not None and (injected := self.saml.faults.inject(
                portal.entity_id, PlannedAnswer(
                    request, recipient, name_id, name_id_format, released,
                    transaction.selection.required, authentication, signing, encryption,
                    self.now), self.saml.responses)) is not None:
            log.warning("QA workbench: fault %r injected into the answer to %s",
                        injected.fault, portal.entity_id)
            return injected.xml, injected.fault
        xml = self.saml.responses.build(recipient, name_id, name_id_format, released,
                                        authentication, signing, self.now, encryption)
        events.assertion_issued(citizen.id, portal.entity_id, name_id_format, released)
        if self.saml.faults is not None:
            self.saml.faults.answered(portal.entity_id, xml)
        return xml, None

    # --- what the QA workbench's tracer is told (development only) ---

    def _trace_in(self, message: IncomingMessage, seen: Inspection, decision: str) -> None:
        if self.saml.trace is not None:
            self.saml.trace.record(TracedMessage(
                IN, "AuthnRequest", REDIRECT if message.binding == "redirect" else POST,
                seen.issuer,
                message.xml.decode("utf-8", "replace"), self.visitor.session_id,
                seen.signature, tuple(seen.checks), decision), self.now)

    def _trace_undecodable(self, binding: str, error: BindingError) -> None:
        if self.saml.trace is not None:
            self.saml.trace.record(TracedMessage(
                IN, "AuthnRequest", binding, None, "", self.visitor.session_id, "nicht geprüft",
                ("Binding: Größe, Kodierung, Kompression",),
                f"abgelehnt, nicht lesbar: {error}"), self.now)

    def _version_mismatch(self, problem: WrongVersion, relay_state: str | None) -> Outcome:
        """A known portal asked in another SAML version: tell it so, at its ACS from metadata."""
        portal = self.saml.registry.portal_for(problem.issuer)
        assert portal is not None  # receive() names only known portals
        try:
            pending, refusal = version_mismatch(self.saml.idp, portal, problem, relay_state,
                                                self.now)
        except RequestRejected as error:
            log.info("SSO request refused: %s (%s)", problem, error)
            return ErrorPage(400, REJECTED)
        log.info("SSO request answered VersionMismatch: %s", problem)
        return self._answer(Transaction(pending, portal), error=refusal)

    # --- the transaction's state ---

    def _parked(self, reference: str) -> Transaction | None:
        """The request parked under ``reference`` and its portal, if this browser may use it."""
        if not self.parking.is_parked(reference):
            return None
        found = state.pending(self.session, reference, self.now)
        if found is None:
            return None
        pending = Pending.from_dict(found[1])
        portal = self.saml.registry.portal_for(pending.request.issuer)
        return Transaction(pending, portal, reference) if portal is not None else None

    def _park(self, transaction: Transaction) -> str:
        """Park the request while the citizen logs in or decides; only this browser may resume."""
        if transaction.reference is None:
            transaction.reference = state.keep_pending(
                self.session, transaction.portal.entity_id, transaction.pending.to_dict(),
                self.now)
            self.parking.park(transaction.reference)
        return transaction.reference

    def _pairwise(self, transaction: Transaction, citizen: Citizen) -> str | None:
        """The citizen's pairwise id at the portal, only if the answer carries it (read or made
        once per request)."""
        if not transaction.pairwise_known:
            if needs_pairwise(transaction.portal, transaction.selection):
                transaction.pairwise = pairwise_for(
                    self.session, transaction.portal, transaction.pending.request, citizen.id,
                    self.now)
            transaction.pairwise_known = True
        return transaction.pairwise

    def _released(self, transaction: Transaction, citizen: Citizen) -> list[ReleasedAttribute]:
        """Exactly the attributes the request gets: those its policy allows, narrowed by
        akdb:RequestedAttributes (never more; docs/security.md, "Privacy towards portals")."""
        return release(citizen, transaction.selection.names,
                       self._pairwise(transaction, citizen),
                       proof_of(self.visitor.trust_level, self.visitor.identity),
                       self.visitor.identity)

    def _offered(self, transaction: Transaction) -> tuple[str, ...]:
        """The login methods the login page offers for this request: those we have, the portal
        enables (akdb:AuthnMethods) and that reach the level it needs."""
        return tuple(method.value for method in methods_reaching(
            transaction.portal, transaction.pending.request, self.saml.methods,
            self.saml.method_levels))


def _unsolicited_refusal(portal: PortalPolicy,
                         error: ErrorStatus | None) -> BackHere | ErrorPage:
    detail = error.detail if error is not None else None
    if detail is StatusDetail.AUTHN_CANCELLED:
        return BackHere("start")
    if detail is StatusDetail.CONSENT_DECLINED:
        return BackHere("account", UNSOLICITED_DECLINED.format(portal=portal.display_name))
    return ErrorPage(403, UNSOLICITED_REFUSED.format(portal=portal.display_name))


# --- the decisions ----------------------------------------------------------------------------

def check_request(session: Session, message: IncomingMessage,
                  registered: Callable[[str], Portal | None], our_urls: Collection[str],
                  crypto: InProcessCryptoBackend, now: datetime,
                  seen: Inspection | None = None) -> tuple[Pending, PortalPolicy]:
    """Check an incoming AuthnRequest and remember it: the request and its portal's policy;
    raise RequestRejected if unanswerable.

    ``registered(entity_id)`` gives the portal with its policy and metadata (None if unknown,
    disabled or without metadata); ``our_urls`` are the endpoints a Destination may name.
    ``seen`` is filled in on the way.
    """
    seen = seen if seen is not None else Inspection()
    passed = seen.checks.append
    passed("Binding: Größe, Kodierung, Kompression, RelayState")
    # Cheapest first (docs/security.md, "Order of checks"): structure and Issuer, then the
    # portal, then the signature on the query, and only then the full check of the request
    # (which verifies an embedded signature).
    envelope = read_envelope(message.xml, ("AuthnRequest",))
    seen.issuer = envelope.issuer
    passed("Struktur: samlp:AuthnRequest, höchstens 300 Elemente, Tiefe 12, ein Issuer")
    found = registered(envelope.issuer)
    if found is None:
        raise RequestRejected(f"no portal policy for {envelope.issuer!r}")
    portal = found.policy
    passed(f"Portal bekannt: {portal.name}")
    if envelope.version != "2.0":
        raise WrongVersion(envelope.issuer, envelope.message_id, envelope.version)
    if portal.want_authn_requests_signed and not (message.has_redirect_signature
                                                  or envelope.has_signature):
        raise RequestRejected("unsigned request where the portal must sign")
    # A present signature must be valid, whether or not the portal must sign.
    if message.has_redirect_signature:
        if not verify_redirect_signature(message, found.signing_certificates()):
            seen.signature = "ungültig (Redirect-Binding)"
            raise RequestRejected("invalid Redirect-binding signature")
        seen.signature = f"gültig (Redirect-Binding, {message.sig_alg})"
        passed("Signatur über die Query mit dem Schlüssel aus den Metadaten")
    # The tree read_envelope parsed, checked in full: no second parse, no pysaml2 objects.
    assert envelope.root is not None
    try:
        parsed = read_authn_request(envelope.root, now, metadata=found.metadata,
                                    our_urls=our_urls, crypto=crypto)
    except RequestRejected as error:
        if envelope.has_signature and "signature" in str(error):
            seen.signature = "ungültig (eingebettet)"
        raise
    if parsed.signed:
        seen.signature = "gültig (eingebettet, Schlüssel aus den Metadaten)"
    passed("Destination, IssueInstant (±3 min), ACS aus den Metadaten, Kindelemente")
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
    passed("Replay-Cache: (Issuer, ID) zum ersten Mal gesehen")
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


def refusal_before_login(pending: Pending, portal: SsoPortal,
                         methods: Sequence[AuthnMethod] = (AuthnMethod.BENUTZERNAME,),
                         levels: Mapping[AuthnMethod, TrustLevel] = METHOD_LEVELS
                         ) -> ErrorStatus | None:
    """Errors the portal can be told at once, before anyone logs in; ``methods``: the login
    methods this IdP offers."""
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
    # The level must be reachable with a method we have; never a silent downgrade.
    reaching = [method for method in methods
                if level_meets(levels[method], portal, request)]
    if not reaching:
        return level_not_reached()
    if request.akdb is not None:
        if not any(request.akdb.allows(method) for method in reaching):
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


def unsolicited_pending(idp: SamlIdp, portal: SsoPortal, relay_state: str | None,
                        now: datetime) -> Pending:
    """IdP-initiated SSO to ``portal``, as a pending request that nobody sent.

    Raises :class:`RequestRejected` when its policy does not allow this (idp_initiated_allowed)
    or its metadata has no HTTP-POST AssertionConsumerService.
    """
    if not portal.idp_initiated_allowed:
        raise RequestRejected(f"IdP-initiated SSO not allowed for {portal.entity_id!r}")
    return Pending(request=idp.unsolicited_request(portal.entity_id, now),
                   relay_state=relay_state, received_at=now)


def level_meets(level: TrustLevel, portal: SsoPortal, request: ParsedAuthnRequest) -> bool:
    """Whether a login at ``level`` meets the portal's minimum and the RequestedAuthnContext."""
    return level >= portal.minimum_trust_level and satisfiable(
        request.requested_contexts, request.comparison, level)


def level_needed(portal: SsoPortal, request: ParsedAuthnRequest) -> TrustLevel:
    """The lowest level that meets the portal's minimum and its RequestedAuthnContext (level 4
    when none does: the page names the highest level there is)."""
    return next((level for level in TrustLevel if level_meets(level, portal, request)),
                TrustLevel.LEVEL_4)


def methods_reaching(portal: SsoPortal, request: ParsedAuthnRequest,
                     methods: Sequence[AuthnMethod],
                     levels: Mapping[AuthnMethod, TrustLevel] = METHOD_LEVELS
                     ) -> list[AuthnMethod]:
    """Those of ``methods`` the portal enables (akdb:AuthnMethods) whose level (``levels``)
    meets what it needs, in the login page's order."""
    return [method for method in methods
            if (request.akdb is None or request.akdb.allows(method))
            and level_meets(levels[method], portal, request)]


def next_step(pending: Pending, citizen_id: int | None, logged_in_at: datetime | None,
              consent_needed: bool, level_met: bool = True) -> Next:
    """Log in first (also again for ForceAuthn, as the citizen a <Subject> names, or with a
    method of a higher level: the step-up), then consent if needed, then answer. Someone else
    logging in for a named citizen ends the login (WRONG_PRINCIPAL): the answer is never about
    whoever happens to be logged in."""
    if logged_in_at is None or not level_met or (pending.request.force_authn
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


def level_not_reached() -> ErrorStatus:
    """The portal needs a level the citizen cannot reach here (no method, eID cancelled)."""
    return ErrorStatus(STATUS_RESPONDER, NO_AUTHN_CONTEXT,
                       "The requested level of assurance cannot be reached",
                       StatusDetail.TRUST_LEVEL_NOT_REACHABLE)


# The status codes an upstream may pass on to the portal (SAML core §3.2.2.2); anything else
# becomes AuthnFailed.
_PASSED_ON = {STATUS_REQUESTER, STATUS_RESPONDER}
_PASSED_ON_SECOND = {SAML_STATUS + code for code in (
    "AuthnFailed", "NoAuthnContext", "RequestDenied", "NoPassive", "UnknownPrincipal",
    "InvalidNameIDPolicy", "NoAvailableIDP", "RequestUnsupported")}


def upstream_refusal(status: str | None, sub_status: str | None) -> ErrorStatus:
    """What the portal is told when the login through an upstream failed: the upstream's own
    codes if it refused with SAML's, else AuthnFailed (its answer was unusable, or the
    citizen went back)."""
    if status in _PASSED_ON and sub_status in _PASSED_ON_SECOND:
        assert status is not None and sub_status is not None
        return ErrorStatus(status, sub_status, "The external Servicekonto refused the login")
    return ErrorStatus(STATUS_RESPONDER, AUTHN_FAILED,
                       "No login through the external Servicekonto")


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


def _signed_parts(portal: PortalPolicy) -> str:
    """What our answer to ``portal`` signs, in words (for the tracer)."""
    parts = [name for name, signed in (("Response", portal.sign_response),
                                       ("Assertion", portal.sign_assertion)) if signed]
    return "signiert: " + " und ".join(parts) if parts else "unsigniert (Richtlinie des Portals)"
