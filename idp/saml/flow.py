"""Single sign-on from the view's point of view: one SAMLRequest from arrival to answer.

receive → authenticate → consent → respond, as eduid's IdP has it: every route of
:mod:`idp.saml.views` makes an :class:`SsoFlow` and calls one method, which returns what the
browser is shown next (an :data:`Outcome`); the view only renders it. No Flask here: the view
hands in the visitor (who is logged in, since when), where this browser parks its logins, and
the time. The decisions themselves (what a request may ask, what a portal gets) are
:mod:`idp.saml.sso`'s; the state in the database is :mod:`idp.saml.state`'s.

Within one request the portal is looked up once, and the attribute selection and the pairwise
identifier are computed once (:class:`Transaction`).
"""

from __future__ import annotations

import base64
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import cached_property
from typing import Protocol

from saml2.saml import NAMEID_FORMAT_PERSISTENT
from sqlalchemy.orm import Session

from idp.accounts.models import Citizen
from idp.consent import records as consents
from idp.consent.attributes import ReleasedAttribute, missing_required, release
from idp.observability import events
from idp.portals.policy import PortalPolicy
from idp.saml import sso, state
from idp.saml.akdb import StatusDetail
from idp.saml.identifiers import TrustLevel
from idp.saml.messages import WrongVersion, new_id
from idp.saml.runtime import SamlRuntime
from idp.saml.server import Authentication, RequestRejected, Signing
from idp.samlkit.bindings import (
    BindingError,
    IncomingMessage,
    check_relay_state,
    decode_post,
    decode_redirect,
)
from idp.samlkit.bundid import BPK2

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
    """The login page, for the login parked under ``reference``."""

    reference: str


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


# --- the flow ----------------------------------------------------------------------------------

@dataclass
class Transaction:
    """A request with its portal, and what is worked out for it once per HTTP request."""

    pending: sso.Pending
    portal: PortalPolicy
    # Under which the request waits in the database (None: answered before it had to wait).
    reference: str | None = None
    # The visitor's pairwise id at the portal, once read or made (SsoFlow._pairwise); the flow
    # serves one visitor, so one value is enough.
    pairwise: str | None = None
    pairwise_known: bool = False

    @cached_property
    def selection(self) -> sso.AttributeSelection:
        return sso.attributes_for(self.portal, self.pending.request)


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
            return ErrorPage(400, REJECTED)

    def receive_post(self, form: Mapping[str, list[str]]) -> Outcome:
        """An AuthnRequest over HTTP-POST (after the same-site resubmit, see the views)."""
        try:
            return self.receive(decode_post(dict(form)))
        except BindingError as error:
            log.info("SSO post refused: %s", error)
            return ErrorPage(400, REJECTED)

    def receive(self, message: IncomingMessage) -> Outcome:
        try:
            pending, portal = sso.receive(self.session, self.saml.idp, message,
                                          self.saml.portal_for, self.saml.certificates_for,
                                          self.now)
        except WrongVersion as problem:
            return self._version_mismatch(problem, message.relay_state)
        except RequestRejected as error:
            log.info("SSO request refused: %s", error)
            return ErrorPage(400, REJECTED)
        transaction = Transaction(pending, portal)
        if refusal := sso.refusal_before_login(pending, portal):
            return self._answer(transaction, error=refusal)
        return self._proceed(transaction)

    def resume(self, reference: str) -> Outcome:
        """Back from the login page."""
        if (transaction := self._parked(reference)) is None:
            return ErrorPage(410, EXPIRED)
        return self._proceed(transaction)

    def cancel(self, reference: str) -> Outcome:
        """ABBRECHEN on the login page: the portal learns that no one logged in."""
        if (transaction := self._parked(reference)) is None:
            return ErrorPage(410, EXPIRED)
        return self._answer(transaction, error=sso.cancelled())

    def decide(self, reference: str, decision: str, privacy_version: str) -> Outcome:
        """ZUSTIMMEN sends the data; ABLEHNEN tells the portal RequestDenied, with no data."""
        transaction = self._parked(reference)
        citizen = self.visitor.citizen
        if transaction is None or citizen is None:
            return ErrorPage(410, EXPIRED)
        if decision == "decline":
            return self._answer(transaction, error=sso.declined())
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
        portal = self.saml.portal_for(provider_id)
        if portal is None:
            return ErrorPage(404, UNKNOWN_PORTAL)
        try:
            pending = sso.unsolicited(self.saml.idp, portal, relay_state, self.now)
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
        released: list[ReleasedAttribute] = []
        consent_needed = False
        if citizen is not None:
            released = self._released(transaction, citizen)
            consent_needed = portal.consent_required and not consents.consent_covers(
                self.session, citizen.id, portal.entity_id, {item.name for item in released},
                self.now)
        step = sso.next_step(pending, citizen.id if citizen else None, logged_in_at,
                             consent_needed)
        if step is sso.Next.WRONG_PRINCIPAL:
            return self._answer(transaction, error=sso.wrong_principal())
        if step is not sso.Next.ANSWER and pending.request.is_passive:
            return self._answer(transaction, error=sso.passive_refusal())
        if step is sso.Next.LOG_IN:
            return LogIn(self._park(transaction))
        assert citizen is not None
        pairwise = self._pairwise(transaction, citizen)
        persistent = sso.policy_name_id_format(portal) == NAMEID_FORMAT_PERSISTENT
        if persistent and pairwise is None:
            return self._answer(transaction, error=sso.no_identifier_to_create())
        if missing := missing_required(citizen, transaction.selection.required, pairwise):
            return self._answer(transaction, error=sso.required_missing(missing))
        if step is sso.Next.CONSENT:
            display = pending.request.akdb.display if pending.request.akdb else None
            return AskConsent(
                reference=self._park(transaction), portal_name=portal.display_name,
                organization_display_name=display.organization_display_name if display else None,
                purpose=display.purpose if display else None, attributes=released,
                # The NameID is data too: a stable identifier is named even without bPK2.
                persistent_identifier=persistent and BPK2 not in {item.name for item in released})
        return self._answer(transaction, citizen=citizen, released=released)

    def _answer(self, transaction: Transaction, *, citizen: Citizen | None = None,
                released: list[ReleasedAttribute] | None = None,
                error: sso.ErrorStatus | None = None) -> Outcome:
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
        if error is not None or citizen is None:
            refusal = error or sso.denied("No citizen")
            xml = self.saml.idp.create_error_response(
                request, refusal.status, refusal.sub_status, refusal.message,
                sign=portal.sign_response,
                status_detail=sso.status_detail_for(pending, refusal))
            events.sso_refused(portal.entity_id, refusal.sub_status or refusal.status,
                               refusal.message)
        else:
            try:
                xml = self._assertion_response(transaction, citizen, released or [])
            except RequestRejected as problem:  # the portal's policy cannot be met (no key)
                log.error("SSO answer impossible for %s: %s", portal.entity_id, problem)
                return ErrorPage(400, REJECTED)
        return PostToPortal(
            acs_url=request.acs_url, portal_name=portal.display_name,
            saml_response=base64.b64encode(xml.encode("utf-8")).decode("ascii"),
            relay_state=pending.relay_state, error=error is not None)

    def _assertion_response(self, transaction: Transaction, citizen: Citizen,
                            released: list[ReleasedAttribute]) -> str:
        pending, portal = transaction.pending, transaction.portal
        visitor = self.visitor
        name_id, name_id_format = sso.name_id_for(portal, self._pairwise(transaction, citizen))
        # Each portal gets a SessionIndex of its own (kept per browser session for single logout).
        session_index = state.remember_portal_session(
            self.session, visitor.session_id, citizen.id, portal.entity_id, name_id,
            name_id_format, self.now) if visitor.session_id else new_id()
        authenticated_at = visitor.authenticated_at or self.now
        authentication = Authentication(
            class_ref=TrustLevel.LEVEL_1.class_ref_for(portal.eidas_loa,
                                                       pending.request.requested_contexts),
            instant=authenticated_at, session_index=session_index,
            session_not_on_or_after=authenticated_at + sso.session_lifetime(TrustLevel.LEVEL_1))
        xml = self.saml.idp.create_response(
            pending.request, name_id, name_id_format, released, authentication,
            Signing(portal.sign_response, portal.sign_assertion, portal.encrypt_assertion))
        events.assertion_issued(citizen.id, portal.entity_id, name_id_format, released)
        return xml

    def _version_mismatch(self, problem: WrongVersion, relay_state: str | None) -> Outcome:
        """A known portal asked in another SAML version: tell it so, at its ACS from metadata."""
        portal = self.saml.portal_for(problem.issuer)
        assert portal is not None  # receive() names only known portals
        try:
            pending, refusal = sso.version_mismatch(self.saml.idp, portal, problem, relay_state,
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
        pending = sso.Pending.from_dict(found[1])
        portal = self.saml.portal_for(pending.request.issuer)
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
            if sso.needs_pairwise(transaction.portal, transaction.selection):
                transaction.pairwise = sso.pairwise_for(
                    self.session, transaction.portal, transaction.pending.request, citizen.id,
                    self.now)
            transaction.pairwise_known = True
        return transaction.pairwise

    def _released(self, transaction: Transaction, citizen: Citizen) -> list[ReleasedAttribute]:
        """Exactly the attributes the request gets: those its policy allows, narrowed by
        akdb:RequestedAttributes (never more; docs/security.md, "Privacy towards portals")."""
        return release(citizen, transaction.selection.names,
                       self._pairwise(transaction, citizen))


def _unsolicited_refusal(portal: PortalPolicy,
                         error: sso.ErrorStatus | None) -> BackHere | ErrorPage:
    detail = error.detail if error is not None else None
    if detail is StatusDetail.AUTHN_CANCELLED:
        return BackHere("start")
    if detail is StatusDetail.CONSENT_DECLINED:
        return BackHere("account", UNSOLICITED_DECLINED.format(portal=portal.display_name))
    return ErrorPage(403, UNSOLICITED_REFUSED.format(portal=portal.display_name))
