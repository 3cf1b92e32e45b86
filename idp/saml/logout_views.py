"""SAML single logout endpoints, and "Abmelden" at the IdP running the same chain.

Thin: decode (bindings), call the flow (:mod:`idp.saml.logout`), pick the answer. Both endpoints
take a LogoutRequest (a portal starts the logout) and a LogoutResponse (a portal answers ours).

How each hop to another site travels (docs/portal-integration.md, "Single logout"):
- HTTP-Redirect, reached by a GET (a portal's Redirect-binding message): an HTTP 302, as SAML
  bindings §3.4 defines the binding, so that any user agent follows it.
- HTTP-Redirect, reached by a POST (the "Abmelden" button, a portal's POST-binding message): a
  page of ours with a meta refresh. A browser checks every redirect that follows a form's POST
  against the CSP form-action of the page the form was on, also after a 303 to a GET of ours
  (tests/e2e/test_browser_logout.py shows Chromium blocking it); ours names only our own site,
  and a portal's is unknown to us. The page is a new navigation, so the hops after it are 302s.
- HTTP-POST: an auto-POST form, the only way to make a browser POST.
"""

from __future__ import annotations

import logging
from urllib.parse import urlsplit

from flask import Blueprint, Response, current_app, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from saml2 import BINDING_HTTP_REDIRECT

from idp.db import db, utcnow
from idp.extensions import csrf
from idp.observability import events
from idp.saml import logout
from idp.saml.server import SLO_POST_PATH, SLO_REDIRECT_PATH, OutgoingMessage, RequestRejected
from idp.saml.views import RESUBMITTED, runtime
from idp.samlkit.bindings import BindingError, IncomingMessage, decode_post, decode_redirect
from idp.web.context import server_session
from idp.web.errors import error_page
from idp.web.forms import single_values
from idp.web.security import CONTENT_SECURITY_POLICY

log = logging.getLogger(__name__)
slo = Blueprint("slo", __name__)

REJECTED = ("Die Abmeldeanfrage des Portals konnte nicht angenommen werden. Um sicher "
            "abgemeldet zu sein, wählen Sie im Servicekonto „Abmelden“ oder schließen Sie Ihren "
            "Browser.")
ANSWER_REJECTED = ("Die Antwort des Portals auf die Abmeldung konnte nicht angenommen werden. "
                   "Um sicher abgemeldet zu sein, schließen Sie bitte Ihren Browser.")
EXPIRED = ("Diese Abmeldung ist abgelaufen oder wurde bereits abgeschlossen. Um sicher "
           "abgemeldet zu sein, schließen Sie bitte Ihren Browser.")
IN_PROGRESS = "Abmeldung läuft"


@slo.get(SLO_REDIRECT_PATH)
def slo_redirect() -> ResponseReturnValue:
    try:
        message = decode_redirect(request.query_string, parameter=None)
    except BindingError as error:
        log.info("SLO redirect refused: %s", error)
        return error_page(400, REJECTED)
    return _receive(message)


@slo.post(SLO_POST_PATH)
def slo_post() -> ResponseReturnValue:
    # docs/architecture.md, pysaml2 trap 10 (SameSite), as in sso_post: a portal's LogoutRequest
    # is about the citizen's session, whose SameSite=Lax cookie stays off the cross-site POST;
    # hand the request back once in a form of our own. A LogoutResponse needs no session:
    # RelayState finds its chain.
    if "SAMLRequest" in request.form and RESUBMITTED not in request.form and \
            current_app.config["SESSION_COOKIE_NAME"] not in request.cookies:
        form = single_values(request.form, ("SAMLRequest", "RelayState"))
        fields = [("SAMLRequest", form["SAMLRequest"])]
        if "RelayState" in request.form:
            fields.append(("RelayState", form["RelayState"]))
        return render_template("idp/logout_post.html", heading=IN_PROGRESS, text=None,
                               action=url_for("slo.slo_post"), fields=[*fields, (RESUBMITTED, "1")])
    try:
        message = decode_post(request.form.to_dict(flat=False), parameter=None)
    except BindingError as error:
        log.info("SLO post refused: %s", error)
        return error_page(400, REJECTED)
    return _receive(message)


# The portal's auto-POST carries no CSRF token of ours; the SAML message is checked instead.
csrf.exempt(slo_post)


def log_out_everywhere() -> ResponseReturnValue:
    """"Abmelden" at the IdP: end the session here, then tell every portal it logged in to."""
    browser = server_session()
    browser_session = browser.session_id
    browser.end()
    if browser_session is None or not (
            logins := logout.portal_logins(db.session, browser_session)):
        events.logout_finished(logged_out=(), not_reached=())
        return redirect(url_for("accounts.logged_out"))
    saml_runtime = runtime()
    return _show(logout.start(db.session, saml_runtime.idp, browser_session, logins, None,
                              saml_runtime.registry.portal, utcnow()))


def _receive(message: IncomingMessage) -> ResponseReturnValue:
    return _answered(message) if message.is_response else _requested(message)


def _requested(message: IncomingMessage) -> ResponseReturnValue:
    """A portal's LogoutRequest: end this browser's session and tell the other portals."""
    saml_runtime = runtime()
    idp, now = saml_runtime.idp, utcnow()
    try:
        received = logout.receive_request(db.session, idp, message,
                                          saml_runtime.registry.portal, now)
    except RequestRejected as error:
        log.info("SLO request refused: %s", error)
        return error_page(400, REJECTED)
    browser = server_session()
    if browser.citizen_id is None or browser.session_id is None:
        # Nothing left to end here (logged out already, expired): the portal may go on.
        return _to_initiator(received.initiator, logout.SUCCESS)
    logins = logout.portal_logins(db.session, browser.session_id)
    if not logout.names_this_session(received.request, logins, idp.entity_id):
        # Someone else's NameID (or an old one): this session stays, and so does theirs.
        log.warning("SLO request from %s names no login of this session",
                    received.initiator.entity_id)
        return _to_initiator(received.initiator, logout.NOT_THIS_SESSION)
    browser_session = browser.session_id
    # The IdP session ends first: a citizen who stops in the middle of the chain is logged out.
    browser.end()
    return _show(logout.start(db.session, idp, browser_session, logins, received.initiator,
                              saml_runtime.registry.portal, now))


def _answered(message: IncomingMessage) -> ResponseReturnValue:
    """A portal's LogoutResponse to our LogoutRequest: note it, go on to the next portal."""
    saml_runtime = runtime()
    try:
        step = logout.receive_response(db.session, saml_runtime.idp, message,
                                       saml_runtime.registry.portal, utcnow())
    except logout.ChainUnknown as error:
        log.info("SLO response refused: %s", error)
        return error_page(410, EXPIRED)
    except RequestRejected as error:
        log.info("SLO response refused: %s", error)
        return error_page(400, ANSWER_REJECTED)
    return _show(step)


def _show(step: logout.Step) -> ResponseReturnValue:
    """The next hop of the chain, or its end: the initiator's answer or our own page."""
    if isinstance(step, logout.Notify):
        return _send(step.message, IN_PROGRESS, f"Sie werden beim Portal „{_name(step.portal)}“ "
                     "abgemeldet. Bitte warten Sie einen Moment.")
    chain = step.chain
    events.logout_finished(logged_out=chain.logged_out, not_reached=chain.not_logged_out)
    if chain.initiator is not None:
        return _to_initiator(chain.initiator, logout.outcome(chain))
    return render_template("idp/logged_out.html",
                           logged_out=[_name(portal) for portal in chain.logged_out],
                           not_reached=[_name(portal) for portal in chain.not_logged_out])


def _to_initiator(initiator: logout.Initiator, status: logout.LogoutStatus) -> ResponseReturnValue:
    message = logout.answer(runtime().idp, initiator, status)
    return _send(message, "Weiter zum Portal",
                 f"Sie werden zum Portal „{_name(initiator.entity_id)}“ zurückgeleitet.")


def _send(message: OutgoingMessage, heading: str, text: str) -> ResponseReturnValue:
    """The hop to the next portal (see the module's docstring for which way it travels)."""
    if message.binding == BINDING_HTTP_REDIRECT:
        if request.method == "GET":
            return redirect(message.url, 302)
        return render_template("idp/logout_redirect.html", url=message.url, heading=heading,
                               text=text)
    response = Response(render_template("idp/logout_post.html", action=message.url,
                                        fields=message.fields, heading=heading, text=text))
    # The form goes to the portal's SingleLogoutService (from its metadata): allow exactly
    # that origin as a form target.
    target = urlsplit(message.url)
    response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY.replace(
        "form-action 'self'", f"form-action {target.scheme}://{target.netloc}")
    return response


def _name(entity_id: str) -> str:
    """The portal's German display name (its entity id if it left the registry meanwhile)."""
    names: dict[str, str] = current_app.extensions["portal_names"]
    return names.get(entity_id, entity_id)
