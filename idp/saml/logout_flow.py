"""Single logout from the view's point of view: one message (or "Abmelden") in, one hop out.

Every route of :mod:`idp.saml.logout_views` makes a :class:`LogoutFlow` and calls one method,
which returns what the browser is shown next (a :data:`LogoutOutcome`). No Flask here: the view
hands in the browser's session (and how to end it) and the time. The chain's decisions are
:mod:`idp.saml.logout`'s.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from urllib.parse import urlsplit

from saml2 import BINDING_HTTP_REDIRECT
from sqlalchemy.orm import Session

from idp.observability import events
from idp.saml import logout
from idp.saml.flow import ErrorPage
from idp.saml.messages import OutgoingMessage, RequestRejected
from idp.saml.runtime import SamlRuntime
from idp.saml.workbench_hooks import IN, OUT, POST, REDIRECT, Inspection, TracedMessage
from idp.samlkit.bindings import BindingError, IncomingMessage, decode_post, decode_redirect

log = logging.getLogger(__name__)

REJECTED = ("Die Abmeldeanfrage des Portals konnte nicht angenommen werden. Um sicher "
            "abgemeldet zu sein, wählen Sie im Servicekonto „Abmelden“ oder schließen Sie Ihren "
            "Browser.")
ANSWER_REJECTED = ("Die Antwort des Portals auf die Abmeldung konnte nicht angenommen werden. "
                   "Um sicher abgemeldet zu sein, schließen Sie bitte Ihren Browser.")
EXPIRED = ("Diese Abmeldung ist abgelaufen oder wurde bereits abgeschlossen. Um sicher "
           "abgemeldet zu sein, schließen Sie bitte Ihren Browser.")


@dataclass(frozen=True)
class Browser:
    """The browser's session at the IdP, as single logout needs it."""

    session_id: str | None
    citizen_id: int | None
    # Ends the IdP session of this browser.
    end: Callable[[], None]
    # The upstream this session logged in through (idp/broker/logout.py), told last.
    upstream: dict[str, str] | None = None


@dataclass(frozen=True)
class Hop:
    """On to a portal: its LogoutRequest, or the LogoutResponse to the portal that asked."""

    portal: str
    message: OutgoingMessage
    to_initiator: bool
    # With the answer to the initiator: the upstream the session logged in through, to be told
    # before the answer goes.
    upstream: dict[str, str] | None = None


@dataclass(frozen=True)
class LoggedOut:
    """The end of a logout the IdP's "Abmelden" began: which portals confirmed, which not."""

    logged_out: tuple[str, ...]
    not_reached: tuple[str, ...]
    # False: the session had logged in to no portal (nothing to list).
    any_portal: bool = True
    # The upstream the session logged in through: to be told before this page is shown.
    upstream: dict[str, str] | None = None


LogoutOutcome = ErrorPage | Hop | LoggedOut


class LogoutFlow:
    """One HTTP request's part of single logout."""

    def __init__(self, session: Session, saml: SamlRuntime, browser: Browser,
                 now: datetime) -> None:
        self.session = session
        self.saml = saml
        self.browser = browser
        self.now = now

    def receive_redirect(self, query_string: bytes) -> LogoutOutcome:
        try:
            return self.receive(decode_redirect(query_string, parameter=None))
        except BindingError as error:
            log.info("SLO redirect refused: %s", error)
            self._trace_undecodable(REDIRECT, error)
            return ErrorPage(400, REJECTED)

    def receive_post(self, form: Mapping[str, list[str]]) -> LogoutOutcome:
        try:
            return self.receive(decode_post(dict(form), parameter=None))
        except BindingError as error:
            log.info("SLO post refused: %s", error)
            self._trace_undecodable(POST, error)
            return ErrorPage(400, REJECTED)

    def receive(self, message: IncomingMessage) -> LogoutOutcome:
        return self._answered(message) if message.is_response else self._requested(message)

    def log_out_everywhere(self) -> LogoutOutcome:
        """"Abmelden" at the IdP: end the session here, then tell every portal it logged in to."""
        browser_session = self.browser.session_id
        self.browser.end()
        if browser_session is None or not (
                logins := logout.portal_logins(self.session, browser_session)):
            events.logout_finished(logged_out=(), not_reached=())
            return LoggedOut((), (), any_portal=False, upstream=self.browser.upstream)
        return self._show(logout.start(self.session, self.saml.idp, browser_session, logins,
                                       None, self.saml.registry.portal, self.now,
                                       self.browser.upstream))

    def log_out_for_upstream(self, answer: dict[str, str]) -> LogoutOutcome:
        """The upstream this session logged in through asked (idp/broker/logout.py): end the
        session here, tell every portal it logged in to, then answer the upstream (``answer``:
        what its LogoutResponse needs, kept with the chain)."""
        browser_session = self.browser.session_id
        self.browser.end()
        if browser_session is None or not (
                logins := logout.portal_logins(self.session, browser_session)):
            return LoggedOut((), (), any_portal=False, upstream=answer)
        return self._show(logout.start(self.session, self.saml.idp, browser_session, logins,
                                       None, self.saml.registry.portal, self.now, answer))

    def _requested(self, message: IncomingMessage) -> LogoutOutcome:
        """A portal's LogoutRequest: end this browser's session and tell the other portals."""
        idp = self.saml.idp
        seen = Inspection()
        try:
            received = logout.receive_request(self.session, idp, message,
                                              self.saml.registry.portal, self.now, seen)
        except RequestRejected as error:
            log.info("SLO request refused: %s", error)
            self._trace_in(message, seen, f"abgelehnt, Fehlerseite beim IdP: {error}")
            return ErrorPage(400, REJECTED)
        browser = self.browser
        if browser.citizen_id is None or browser.session_id is None:
            # Nothing left to end here (logged out already, expired): the portal may go on.
            self._trace_in(message, seen, "angenommen: keine Sitzung mehr zu beenden")
            return self._to_initiator(received.initiator, logout.SUCCESS)
        logins = logout.portal_logins(self.session, browser.session_id)
        if not logout.names_this_session(received.request, logins, idp.entity_id):
            # Someone else's NameID (or an old one): this session stays, and so does theirs.
            log.warning("SLO request from %s names no login of this session",
                        received.initiator.entity_id)
            self._trace_in(message, seen, "abgelehnt: die NameID gehört zu keiner Anmeldung "
                                          "dieser Sitzung (UnknownPrincipal)")
            return self._to_initiator(received.initiator, logout.NOT_THIS_SESSION)
        self._trace_in(message, seen, "angenommen: Sitzung beendet, die anderen Portale der "
                                      "Sitzung werden abgemeldet")
        # The IdP session ends first: a citizen who stops in the middle of the chain is logged
        # out.
        browser.end()
        return self._show(logout.start(self.session, idp, browser.session_id, logins,
                                       received.initiator, self.saml.registry.portal, self.now,
                                       browser.upstream))

    def _answered(self, message: IncomingMessage) -> LogoutOutcome:
        """A portal's LogoutResponse to our LogoutRequest: note it, go on to the next portal."""
        seen = logout.AnswerInspection()
        try:
            step = logout.receive_response(self.session, self.saml.idp, message,
                                           self.saml.registry.portal, self.now, seen)
        except logout.ChainUnknown as error:
            log.info("SLO response refused: %s", error)
            self._trace_in(message, seen, f"abgelehnt, Fehlerseite beim IdP: {error}")
            return ErrorPage(410, EXPIRED)
        except RequestRejected as error:
            log.info("SLO response refused: %s", error)
            self._trace_in(message, seen, f"abgelehnt, Fehlerseite beim IdP: {error}")
            return ErrorPage(400, ANSWER_REJECTED)
        self._trace_in(message, seen, seen.verdict)
        return self._show(step)

    def _show(self, step: logout.Step) -> LogoutOutcome:
        """The next hop of the chain, or its end: the initiator's answer or our own page."""
        if isinstance(step, logout.Notify):
            self._trace_out("LogoutRequest", step.portal, step.message,
                            "Abmeldung an ein weiteres Portal der Sitzung")
            return Hop(step.portal, step.message, to_initiator=False)
        chain = step.chain
        events.logout_finished(logged_out=chain.logged_out, not_reached=chain.not_logged_out)
        if chain.initiator is not None:
            return replace(self._to_initiator(chain.initiator, logout.outcome(chain)),
                           upstream=chain.upstream)
        return LoggedOut(chain.logged_out, chain.not_logged_out, upstream=chain.upstream)

    def _to_initiator(self, initiator: logout.Initiator,
                      status: logout.LogoutStatus) -> Hop:
        message = logout.answer(self.saml.idp, initiator, status)
        self._trace_out("LogoutResponse", initiator.entity_id, message,
                        f"Status {status.sub_status or status.status}"
                        + (f": {status.message}" if status.message else ""))
        return Hop(initiator.entity_id, message, to_initiator=True)

    # --- what the QA workbench's tracer is told (development only) ---

    def _trace_in(self, message: IncomingMessage, seen: Inspection, decision: str) -> None:
        if self.saml.trace is not None:
            self.saml.trace.record(TracedMessage(
                IN, "LogoutResponse" if message.is_response else "LogoutRequest",
                REDIRECT if message.binding == "redirect" else POST, seen.issuer,
                message.xml.decode("utf-8", "replace"), self.browser.session_id,
                seen.signature, tuple(seen.checks), decision), self.now)

    def _trace_undecodable(self, binding: str, error: BindingError) -> None:
        if self.saml.trace is not None:
            self.saml.trace.record(TracedMessage(
                IN, "LogoutRequest/LogoutResponse", binding, None, "", self.browser.session_id,
                "nicht geprüft", ("Binding: Größe, Kodierung, Kompression",),
                f"abgelehnt, nicht lesbar: {error}"), self.now)

    def _trace_out(self, kind: str, portal: str, message: OutgoingMessage,
                   decision: str) -> None:
        if self.saml.trace is not None:
            sent = _as_received(message)
            signature = "signiert (eingebettet)" if message.binding != BINDING_HTTP_REDIRECT \
                else f"signiert (Redirect-Binding, {sent.sig_alg if sent else '?'})"
            self.saml.trace.record(TracedMessage(
                OUT, kind, REDIRECT if message.binding == BINDING_HTTP_REDIRECT else POST,
                portal, sent.xml.decode("utf-8", "replace") if sent else "",
                self.browser.session_id, signature, (), decision), self.now)


def _as_received(message: OutgoingMessage) -> IncomingMessage | None:
    """Our own message as the portal will decode it (for the tracer: the XML, the SigAlg)."""
    try:
        if message.binding == BINDING_HTTP_REDIRECT:
            return decode_redirect(urlsplit(message.url).query.encode("ascii"), parameter=None)
        return decode_post({name: [value] for name, value in message.fields}, parameter=None)
    except (BindingError, UnicodeEncodeError):
        return None
