"""The portal's pages: start, "Anmelden" → Servicekonto.NRW, the ACS, the overview and the
services, "Abmelden", single logout and metadata. Thin: parse, call the SAML adapter or a
service, pick a page.
"""

from __future__ import annotations

import logging
from datetime import datetime

from flask import Blueprint, Response, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue

from idp.samlkit.bindings import BindingError, IncomingMessage, decode_post, decode_redirect
from idp.samlkit.bundid import BPK2
from idp.samlkit.sp_logout import LogoutRefused
from idp.samlkit.sp_response import LoginNotGranted, ResponseRejected
from sp_client import catalogue, received
from sp_client import kassenzeichen as kassenzeichen_service
from sp_client.database import utcnow
from sp_client.extensions import csrf, portal_db
from sp_client.models import PropertyRecord
from sp_client.profiles import trust_level_of
from sp_client.saml import messages, state
from sp_client.saml.logout import read_logout_request, read_logout_response
from sp_client.saml.provider import (
    ACS_PATH,
    METADATA_PATH,
    SLO_POST_PATH,
    SLO_REDIRECT_PATH,
    IdpUnavailable,
    Outgoing,
)
from sp_client.saml.responses import message_of, read_authn_response
from sp_client.sessions import LOGIN_LIFETIME, Login, current_session, end_sessions_of
from sp_client.status_pages import refusal_page
from sp_client.web import auto_post, error_page, provider, settings

log = logging.getLogger(__name__)
portal = Blueprint("portal", __name__)

RESUBMITTED = "portal_resubmitted"
LOGOUT_FAILED = ("Sie sind bei diesem Portal abgemeldet. Die Abmeldung beim Servicekonto.NRW "
                 "konnte nicht bestätigt werden; bitte schließen Sie Ihren Browser, um sicher "
                 "abgemeldet zu sein.")


def current_login() -> Login | None:
    return current_session().login


@portal.get("/")
def start() -> str:
    login = current_login()
    offers = catalogue.offers(settings().profile.name, login is not None,
                             bool(login and _kassenzeichen_of(login)), _level_of(login))
    return render_template("portal/start.html", login=login, offers=offers)


@portal.get("/anmelden")
def login_page() -> ResponseReturnValue:
    if current_login() is not None:
        return redirect(url_for("portal.overview"))
    return render_template("portal/login.html")


@portal.post("/anmelden")
def login() -> ResponseReturnValue:
    """ "Zum Servicekonto.NRW": a signed AuthnRequest over the profile's binding; with
    ``hoch`` in the form (a service needing it) at level 4, the Online-Ausweisfunktion."""
    now = utcnow()
    level = 4 if request.form.get("niveau") == "hoch" else settings().minimum_trust_level
    try:
        outgoing = messages.authn_request(provider(), now, level)
    except IdpUnavailable as error:
        log.warning("SSO impossible, IdP metadata unavailable: %s", error)
        return error_page(503)
    state.remember_request(portal_db.session, outgoing.message_id, state.LOGIN, now,
                           browser_hash=current_session().id_hash, trust_level=level)
    return _send(outgoing, "Sie werden zum Servicekonto.NRW weitergeleitet",
                 "Bitte melden Sie sich dort an.", after_form=True)


def _send(outgoing: Outgoing, heading: str, explanation: str,
          after_form: bool = False) -> ResponseReturnValue:
    """The message on its way to the IdP: a redirect (a page after our own forms, see
    saml_redirect.html), or a form POSTed by script or button."""
    if outgoing.is_redirect and after_form:
        return render_template("portal/saml_redirect.html", url=outgoing.url,
                               heading=heading, explanation=explanation)
    if outgoing.is_redirect:
        return redirect(outgoing.url, code=303)
    return auto_post(outgoing, heading, explanation)


@portal.post(ACS_PATH)
def acs() -> ResponseReturnValue:
    """The IdP's answer. Its POST comes from another site, so a SameSite=Lax cookie stays
    behind; one same-site resubmission brings it along (the answer must reach the browser that
    asked, see :func:`read_authn_response`)."""
    session = current_session()
    if session.session_id is None and RESUBMITTED not in request.form:
        fields = {name: request.form.get(name, "") for name in ("SAMLResponse", "RelayState")
                  if name in request.form}
        return render_template("portal/saml_resubmit.html", action=url_for("portal.acs"),
                               fields=fields, flag=RESUBMITTED)
    now = utcnow()
    browser = session.id_hash if session.session_id else None
    try:
        login = read_authn_response(provider(), portal_db.session,
                                    request.form.to_dict(flat=False), browser, now)
    except ResponseRejected as rejected:
        log.info("SAML response refused: %s", rejected)
        return error_page(400, message_of(rejected.problem), title="Anmeldung nicht möglich")
    except LoginNotGranted as refused:
        return refusal_page(refused.refusal)
    except IdpUnavailable:
        return error_page(503)
    session.log_in(login, _session_end(login, now))
    return redirect(url_for("portal.overview"), code=303)


csrf.exempt(acs)


def _session_end(login: Login, now: datetime) -> datetime:
    """Our session ends with the IdP's (SessionNotOnOrAfter), and after 8 hours at most."""
    limit = now + LOGIN_LIFETIME
    if login.session_until:
        return min(limit, datetime.fromisoformat(login.session_until))
    return limit


@portal.get("/uebersicht")
def overview() -> ResponseReturnValue:
    """The page after login: mags' "Übersicht der Services", Düren's "Mein Bereich"; what the
    IdP sent, as received, in its collapsed "Technische Angaben"."""
    login = current_login()
    if login is None:
        return redirect(url_for("portal.login_page"))
    records = _kassenzeichen_of(login)
    return render_template(
        "portal/overview.html", login=login, greeting=received.greeting_name(login),
        personal=received.personal_data(login), kassenzeichen=records,
        offers=catalogue.offers(settings().profile.name, True, bool(records),
                                _level_of(login)),
        attributes=received.received_attributes(login),
        trust_level=received.trust_words(login.class_ref), german_time=received.german_time)


@portal.get("/services/<slug>")
def service(slug: str) -> ResponseReturnValue:
    """A service of the list. The demo builds none of them: a usable one is a placeholder page,
    one whose requirements are unmet says what is missing."""
    found = catalogue.find(settings().profile.name, slug)
    if found is None:
        return error_page(404)
    login = current_login()
    if found.needs_level > 1 and found.needs_level > _level_of(login):
        # Not logged in, or below the level: log in (again) with the Online-Ausweisfunktion.
        return render_template("portal/service.html", service=found, needs_eid=True)
    if found.needs_login and login is None:
        return redirect(url_for("portal.login_page"))
    if found.endpoint:
        return redirect(url_for(found.endpoint))
    missing_kassenzeichen = found.needs_kassenzeichen and not (login and _kassenzeichen_of(login))
    return render_template("portal/service.html", service=found,
                           missing_kassenzeichen=missing_kassenzeichen)


def _level_of(login: Login | None) -> int:
    """The trust level the login reached (0: not logged in)."""
    return (trust_level_of(login.class_ref) or 1) if login is not None else 0


def _kassenzeichen_of(login: Login) -> list[PropertyRecord]:
    """The citizen's confirmed Kassenzeichen (none at a portal that keeps none)."""
    key = login.value(BPK2)
    if not settings().profile.kassenzeichen or not key:
        return []
    return kassenzeichen_service.assigned(portal_db.session, key)


@portal.post("/abmelden")
def logout() -> ResponseReturnValue:
    """ "Abmelden": end our session now, then ask the IdP to end the single sign-on."""
    session = current_session()
    login = session.login
    if login is None:
        return redirect(url_for("portal.start"))
    session.end()
    now = utcnow()
    try:
        outgoing = messages.logout_request(provider(), now, login)
    except IdpUnavailable:
        return render_template("portal/logged_out.html", complete=False,
                               message=LOGOUT_FAILED)
    state.remember_request(portal_db.session, outgoing.message_id, state.LOGOUT, now)
    return _send(outgoing, "Sie werden abgemeldet",
                 "Sie werden auch beim Servicekonto.NRW abgemeldet.", after_form=True)


@portal.get(SLO_REDIRECT_PATH)
def slo_redirect() -> ResponseReturnValue:
    parameter = "SAMLResponse" if b"SAMLResponse=" in request.query_string else "SAMLRequest"
    try:
        message = decode_redirect(request.query_string, parameter)
    except BindingError as error:
        log.info("SLO redirect refused: %s", error)
        return error_page(400)
    return _single_logout(message, parameter)


@portal.post(SLO_POST_PATH)
def slo_post() -> ResponseReturnValue:
    parameter = "SAMLResponse" if "SAMLResponse" in request.form else "SAMLRequest"
    try:
        message = decode_post(request.form.to_dict(flat=False), parameter)
    except BindingError as error:
        log.info("SLO post refused: %s", error)
        return error_page(400)
    return _single_logout(message, parameter)


# The IdP's messages carry no CSRF token of ours; their signature is checked instead.
csrf.exempt(slo_post)


def _single_logout(message: IncomingMessage, parameter: str) -> ResponseReturnValue:
    now = utcnow()
    try:
        if parameter == "SAMLResponse":
            complete = read_logout_response(provider(), portal_db.session, message, now)
            return render_template("portal/logged_out.html", complete=complete,
                                   message=None if complete else LOGOUT_FAILED)
        order = read_logout_request(provider(), message, now)
    except LogoutRefused as error:
        log.info("SLO message refused: %s", error)
        return error_page(400, "Die Abmeldenachricht konnte nicht geprüft werden.")
    except IdpUnavailable:
        return error_page(503)
    # The IdP's logout ends every session of this NameID here (the cookie may not come along).
    end_sessions_of(portal_db.session, order.name_id, order.session_indexes)
    session = current_session()
    if session.login is not None and session.login.name_id == order.name_id:
        session.end()
    answer = messages.logout_response(provider(), now, order.message, order.binding,
                                      order.relay_state)
    return _send(answer, "Sie werden abgemeldet", "Weiter zum Servicekonto.NRW.")


@portal.get(METADATA_PATH)
def metadata() -> Response:
    return Response(provider().metadata_xml(), mimetype="application/samlmetadata+xml")
