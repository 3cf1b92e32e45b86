"""SAML endpoints: SSO over both bindings, IdP-initiated SSO, the continuation after login,
consent, metadata.

Thin: decode (bindings), call the flow (:mod:`idp.saml.sso`), pick a page. A request that cannot
be answered safely ends on a German error page at the IdP, never at an unverified address.
"""

from __future__ import annotations

import base64
import logging
from urllib.parse import urlsplit

from flask import (
    Blueprint,
    Response,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    url_for,
)
from flask.typing import ResponseReturnValue
from saml2.saml import NAMEID_FORMAT_PERSISTENT

from idp.accounts.models import Citizen
from idp.consent import services as consents
from idp.consent.attributes import ReleasedAttribute, missing_required, release
from idp.db import db, utcnow
from idp.extensions import csrf
from idp.observability import events
from idp.portals.policy import PortalPolicy
from idp.saml import sso, state
from idp.saml.akdb import StatusDetail
from idp.saml.identifiers import TrustLevel
from idp.saml.messages import WrongVersion, new_id
from idp.saml.runtime import SamlRuntime
from idp.saml.server import (
    METADATA_PATH,
    SSO_POST_PATH,
    SSO_REDIRECT_PATH,
    Authentication,
    RequestRejected,
    Signing,
)
from idp.samlkit.bindings import (
    BindingError,
    IncomingMessage,
    check_relay_state,
    decode_post,
    decode_redirect,
)
from idp.samlkit.bundid import BPK2
from idp.web import continuation
from idp.web.context import current_citizen, server_session, services
from idp.web.errors import error_page
from idp.web.forms import single_values

log = logging.getLogger(__name__)
saml = Blueprint("saml", __name__)

RESUBMITTED = "servicekonto_resubmitted"
REJECTED = ("Die Anmeldeanfrage des Portals konnte nicht angenommen werden. Bitte kehren Sie "
            "zum Portal zurück und starten Sie die Anmeldung dort erneut.")
EXPIRED = ("Diese Anmeldung ist abgelaufen oder wurde bereits abgeschlossen. Bitte starten Sie "
           "die Anmeldung beim Portal erneut.")
UNSOLICITED_PATH = "/saml/sso/unsolicited"
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


def runtime() -> SamlRuntime:
    saml_runtime: SamlRuntime = current_app.extensions["saml"]
    return saml_runtime


@saml.before_app_request
def _refresh_metadata() -> None:
    runtime().refresh(utcnow())


@saml.get(METADATA_PATH)
def metadata() -> Response:
    return Response(runtime().metadata_xml(), mimetype="application/samlmetadata+xml")


@saml.get(SSO_REDIRECT_PATH)
def sso_redirect() -> ResponseReturnValue:
    try:
        message = decode_redirect(request.query_string)
    except BindingError as error:
        log.info("SSO redirect refused: %s", error)
        return error_page(400, REJECTED)
    return _receive(message)


@saml.post(SSO_POST_PATH)
def sso_post() -> ResponseReturnValue:
    # docs/architecture.md, pysaml2 trap 10 (SameSite): the portal's auto-POST is cross-site, so
    # a SameSite=Lax session cookie does not come with it. Rather than weaken the cookie, hand
    # the message back once in a form of our own: that POST is same-site and brings the
    # citizen's session along.
    if current_app.config["SESSION_COOKIE_NAME"] not in request.cookies and \
            RESUBMITTED not in request.form:
        form = single_values(request.form, ("SAMLRequest", "RelayState"))
        return render_template("idp/saml_resubmit.html", action=url_for("saml.sso_post"),
                               saml_request=form["SAMLRequest"],
                               relay_state=form["RelayState"] if "RelayState" in request.form
                               else None, flag=RESUBMITTED)
    try:
        message = decode_post(request.form.to_dict(flat=False))
    except BindingError as error:
        log.info("SSO post refused: %s", error)
        return error_page(400, REJECTED)
    return _receive(message)


# The portal's auto-POST carries no CSRF token of ours; the SAML message is checked instead.
csrf.exempt(sso_post)


def _receive(message: IncomingMessage) -> ResponseReturnValue:
    saml_runtime = runtime()
    try:
        pending = sso.receive(db.session, saml_runtime.idp, message, saml_runtime.portal_for,
                              saml_runtime.certificates_for, utcnow())
    except WrongVersion as problem:
        return _version_mismatch(problem, message.relay_state)
    except RequestRejected as error:
        log.info("SSO request refused: %s", error)
        return error_page(400, REJECTED)
    portal = saml_runtime.portal_for(pending.request.issuer)
    assert portal is not None  # receive() refused unknown portals
    if refusal := sso.refusal_before_login(pending, portal):
        return _answer(pending, portal, error=refusal)
    return _proceed(pending, portal, reference=None)


def _version_mismatch(problem: WrongVersion, relay_state: str | None) -> ResponseReturnValue:
    """A known portal asked in another SAML version: tell it so, at its ACS from metadata."""
    portal = runtime().portal_for(problem.issuer)
    assert portal is not None  # receive() names only known portals
    try:
        pending, refusal = sso.version_mismatch(runtime().idp, portal, problem, relay_state,
                                                utcnow())
    except RequestRejected as error:
        log.info("SSO request refused: %s (%s)", problem, error)
        return error_page(400, REJECTED)
    log.info("SSO request answered VersionMismatch: %s", problem)
    return _answer(pending, portal, error=refusal)


def _pending(reference: str) -> tuple[sso.Pending, PortalPolicy] | None:
    """The request parked under ``reference`` and its portal, if this browser may use it."""
    if not continuation.is_parked(reference):
        return None
    found = state.pending(db.session, reference, utcnow())
    if found is None:
        return None
    pending = sso.Pending.from_dict(found[1])
    portal = runtime().portal_for(pending.request.issuer)
    return (pending, portal) if portal is not None else None


def _keep(pending: sso.Pending, portal: PortalPolicy) -> str:
    """Park the request while the citizen logs in or decides; only this browser may resume."""
    reference = state.keep_pending(db.session, portal.entity_id, pending.to_dict(), utcnow())
    continuation.park(reference)
    return reference


@saml.get("/saml/weiter/<reference>")
def resume(reference: str) -> ResponseReturnValue:
    """Where the login page sends the citizen back to."""
    if (found := _pending(reference)) is None:
        return error_page(410, EXPIRED)
    return _proceed(*found, reference)


def _proceed(pending: sso.Pending, portal: PortalPolicy,
             reference: str | None) -> ResponseReturnValue:
    """Log in, agree, or answer at once. The request is parked in the database only when the
    browser has to go somewhere in between (a logged-in citizen with consent never waits)."""
    citizen = current_citizen()
    logged_in_at = server_session().authenticated_at if citizen is not None else None
    released: list[ReleasedAttribute] = []
    pairwise: str | None = None
    consent_needed = False
    selection = sso.attributes_for(portal, pending.request)
    if citizen is not None:
        pairwise, released = _release(citizen, portal, pending, selection)
        consent_needed = portal.consent_required and not consents.consent_covers(
            db.session, citizen.id, portal.entity_id, {item.name for item in released},
            utcnow())
    step = sso.next_step(pending, citizen.id if citizen else None, logged_in_at, consent_needed)
    if step is sso.Next.WRONG_PRINCIPAL:
        return _answer(pending, portal, error=sso.wrong_principal(), reference=reference)
    if step is not sso.Next.ANSWER and pending.request.is_passive:
        return _answer(pending, portal, error=sso.passive_refusal(), reference=reference)
    if step is sso.Next.LOG_IN:
        reference = reference or _keep(pending, portal)
        return redirect(continuation.login_url(reference))
    assert citizen is not None
    if sso.policy_name_id_format(portal) == NAMEID_FORMAT_PERSISTENT and pairwise is None:
        return _answer(pending, portal, error=sso.no_identifier_to_create(), reference=reference)
    if missing := missing_required(citizen, selection.required, pairwise):
        return _answer(pending, portal, reference=reference, error=sso.required_missing(missing))
    if step is sso.Next.CONSENT:
        display = pending.request.akdb.display if pending.request.akdb else None
        return render_template(
            "idp/consent_request.html", portal_name=portal.display_name,
            organization_display_name=display.organization_display_name if display else None,
            purpose=display.purpose if display else None, attributes=released,
            # The NameID is data too: a stable identifier is named even when bPK2 is not sent.
            persistent_identifier=sso.policy_name_id_format(portal) == NAMEID_FORMAT_PERSISTENT
            and BPK2 not in {item.name for item in released},
            transaction=reference or _keep(pending, portal), action_url=url_for("saml.consent"))
    return _answer(pending, portal, citizen=citizen, released=released, reference=reference,
                   pairwise=pairwise)


def _release(citizen: Citizen, portal: PortalPolicy, pending: sso.Pending,
             selection: sso.AttributeSelection) -> tuple[str | None, list[ReleasedAttribute]]:
    """The citizen's pairwise id at the portal (only if the answer carries it), and exactly the
    attributes the request gets: those its policy allows, narrowed by akdb:RequestedAttributes
    (never more; docs/security.md, "Privacy towards portals")."""
    pairwise = None
    if sso.needs_pairwise(portal, selection):
        pairwise = sso.pairwise_for(db.session, portal, pending.request, citizen.id, utcnow())
    return pairwise, release(citizen, selection.names, pairwise)


@saml.post("/saml/abbrechen/<reference>")
def cancel(reference: str) -> ResponseReturnValue:
    """ABBRECHEN on the login page: the portal learns that no one logged in (AuthnFailed)."""
    if (found := _pending(reference)) is None:
        return error_page(410, EXPIRED)
    return _answer(*found, error=sso.cancelled(), reference=reference)


@saml.post("/saml/zustimmung")
def consent() -> ResponseReturnValue:
    """ZUSTIMMEN sends the data; ABLEHNEN tells the portal RequestDenied, with no data."""
    form = single_values(request.form, ("transaction", "decision"))
    found = _pending(form["transaction"])
    citizen = current_citizen()
    if found is None or citizen is None:
        return error_page(410, EXPIRED)
    pending, portal = found
    if form["decision"] == "decline":
        return _answer(pending, portal, error=sso.declined(), reference=form["transaction"])
    if form["decision"] != "agree":
        return error_page(400)
    pairwise, released = _release(citizen, portal, pending,
                                  sso.attributes_for(portal, pending.request))
    akdb = pending.request.akdb
    consents.give_consent(db.session, citizen.id, portal.entity_id,
                          {item.name for item in released}, utcnow(),
                          services().settings.privacy_version,
                          online_service_id=akdb.display.online_service_id if akdb else None)
    return _answer(pending, portal, citizen=citizen, released=released,
                   reference=form["transaction"], pairwise=pairwise)


def _answer(pending: sso.Pending, portal: PortalPolicy, *, citizen: Citizen | None = None,
            released: list[ReleasedAttribute] | None = None, error: sso.Refusal | None = None,
            reference: str | None = None, pairwise: str | None = None) -> ResponseReturnValue:
    """The one answer to the portal: an auto-POST form to the ACS from its metadata."""
    if reference is not None:
        if not state.finish_pending(db.session, reference):
            return error_page(410, EXPIRED)  # answered already (double submit, other tab)
        continuation.forget(reference)
    idp = runtime().idp
    request_ = pending.request
    if request_.unsolicited and (error is not None or citizen is None):
        # Nobody at the portal is waiting for an answer: tell the citizen here instead.
        return _unsolicited_refusal(portal, error)
    if error is not None or citizen is None:
        refusal = error or sso.denied("No citizen")
        xml = idp.create_error_response(request_, refusal.status, refusal.sub_status,
                                        refusal.message, sign=portal.sign_response,
                                        status_detail=sso.status_detail_for(pending, refusal))
        events.sso_refused(portal.entity_id, refusal.sub_status or refusal.status,
                           refusal.message)
    else:
        try:
            xml = _assertion_response(pending, portal, citizen, released or [], pairwise)
        except RequestRejected as problem:  # the portal's policy cannot be met (no key)
            log.error("SSO answer impossible for %s: %s", portal.entity_id, problem)
            return error_page(400, REJECTED)
    response = Response(render_template(
        "idp/saml_post.html", action=request_.acs_url, portal_name=portal.display_name,
        saml_response=base64.b64encode(xml.encode("utf-8")).decode("ascii"),
        relay_state=pending.relay_state, error=error is not None))
    # The form goes to the portal's ACS (from its metadata): allow exactly that origin.
    acs = urlsplit(request_.acs_url)
    response.headers["Content-Security-Policy"] = (
        "default-src 'self'; style-src 'self'; script-src 'self'; object-src 'none'; "
        f"base-uri 'none'; frame-ancestors 'none'; form-action {acs.scheme}://{acs.netloc}")
    return response


def _assertion_response(pending: sso.Pending, portal: PortalPolicy, citizen: Citizen,
                        released: list[ReleasedAttribute], pairwise: str | None) -> str:
    session = server_session()
    now = utcnow()
    name_id, name_id_format = sso.name_id_for(portal, pairwise)
    # Each portal gets a SessionIndex of its own (kept per browser session for single logout).
    session_index = state.remember_portal_session(
        db.session, session.session_id, citizen.id, portal.entity_id, name_id, name_id_format,
        now) if session.session_id else new_id()
    authenticated_at = session.authenticated_at or now
    authentication = Authentication(
        class_ref=TrustLevel.LEVEL_1.class_ref_for(portal.eidas_loa,
                                                   pending.request.requested_contexts),
        instant=authenticated_at,
        session_index=session_index,
        session_not_on_or_after=authenticated_at + sso.session_lifetime(TrustLevel.LEVEL_1))
    xml = runtime().idp.create_response(
        pending.request, name_id, name_id_format, released, authentication,
        Signing(portal.sign_response, portal.sign_assertion, portal.encrypt_assertion))
    events.assertion_issued(citizen.id, portal.entity_id, name_id_format, released)
    return xml


@saml.get(UNSOLICITED_PATH)
def unsolicited() -> ResponseReturnValue:
    """IdP-initiated SSO (as Shibboleth's /Unsolicited/SSO): ``providerId`` names the portal,
    ``RelayState`` (or ``target``) goes along unchanged. Login and consent as usual, then an
    unsolicited Response to the portal's default ACS from its metadata."""
    provider = request.args.getlist("providerId")
    relay = request.args.getlist("RelayState") + request.args.getlist("target")
    if len(provider) != 1 or len(relay) > 1 or len(provider[0]) > 1024:
        return error_page(400, BAD_LINK)
    try:
        relay_state = check_relay_state(relay[0] if relay else None)
    except BindingError as error:
        log.info("unsolicited SSO refused: %s", error)
        return error_page(400, BAD_LINK)
    saml_runtime = runtime()
    portal = saml_runtime.portal_for(provider[0])
    if portal is None:
        return error_page(404, UNKNOWN_PORTAL)
    try:
        pending = sso.unsolicited(saml_runtime.idp, portal, relay_state, utcnow())
    except RequestRejected as error:
        log.info("unsolicited SSO refused: %s", error)
        return error_page(403, NOT_FROM_HERE)
    return _proceed(pending, portal, reference=None)


def _unsolicited_refusal(portal: PortalPolicy, error: sso.Refusal | None) -> ResponseReturnValue:
    """An IdP-initiated login that ends without data: back to our own pages."""
    detail = error.detail if error is not None else None
    if detail is StatusDetail.AUTHN_CANCELLED:
        return redirect(url_for("accounts.start"))
    if detail is StatusDetail.CONSENT_DECLINED:
        flash(UNSOLICITED_DECLINED.format(portal=portal.display_name))
        return redirect(url_for("selfservice.account"))
    return error_page(403, UNSOLICITED_REFUSED.format(portal=portal.display_name))
