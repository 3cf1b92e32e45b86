"""The portal's pages: start, "Anmelden" → Servicekonto.NRW, the ACS, the overview, "Abmelden",
single logout and metadata. Thin: parse, call the SAML adapter or a service, pick a page.
"""

from __future__ import annotations

import logging
from datetime import datetime

from flask import Blueprint, Response, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue

from idp.consent.attributes import BIRTH_NAME, BPK2, GENDER, GIVEN_NAME, MAIL, SURNAME, label_of
from idp.db import utcnow
from idp.saml.bindings import BindingError, IncomingMessage, decode_post, decode_redirect
from sp_client.extensions import csrf, portal_db
from sp_client.profiles import trust_level_of
from sp_client.saml import messages, state
from sp_client.saml.logout import LogoutRefused, read_logout_request, read_logout_response
from sp_client.saml.provider import (
    ACS_PATH,
    METADATA_PATH,
    SLO_POST_PATH,
    SLO_REDIRECT_PATH,
    IdpUnavailable,
    Outgoing,
)
from sp_client.saml.responses import LoginNotGranted, ResponseRejected, read_authn_response
from sp_client.sessions import LOGIN_LIFETIME, Login, current_session, end_sessions_of
from sp_client.status_pages import refusal_page
from sp_client.web import auto_post, error_page, provider, settings

log = logging.getLogger(__name__)
portal = Blueprint("portal", __name__)

RESUBMITTED = "portal_resubmitted"
GENDER_WORDS = {"0": "unbekannt", "1": "männlich", "2": "weiblich", "9": "keine Angabe"}
TRUST_WORDS = {1: "basisregistriert (niedrig)", 2: "normal", 3: "substantiell", 4: "hoch"}
SHOWN_ATTRIBUTES = (GENDER, GIVEN_NAME, SURNAME, BIRTH_NAME, MAIL, BPK2)
LOGOUT_FAILED = ("Sie sind bei diesem Portal abgemeldet. Die Abmeldung beim Servicekonto.NRW "
                 "konnte nicht bestätigt werden; bitte schließen Sie Ihren Browser, um sicher "
                 "abgemeldet zu sein.")


def current_login() -> Login | None:
    return current_session().login


@portal.get("/")
def start() -> str:
    return render_template("portal/start.html", login=current_login())


@portal.get("/anmelden")
def login_page() -> ResponseReturnValue:
    if current_login() is not None:
        return redirect(url_for("portal.overview"))
    return render_template("portal/login.html")


@portal.post("/anmelden")
def login() -> ResponseReturnValue:
    """ "Zum Servicekonto.NRW": a signed AuthnRequest over the profile's binding."""
    now = utcnow()
    level = settings().minimum_trust_level
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
        return error_page(400, rejected.problem.value, title="Anmeldung nicht möglich")
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
    login = current_login()
    if login is None:
        return redirect(url_for("portal.login_page"))
    rows = [(label_of(name), _shown(name, login.value(name)), login.attribute_trust.get(name))
            for name in SHOWN_ATTRIBUTES if name in login.attributes]
    level = trust_level_of(login.class_ref)
    return render_template("portal/overview.html", login=login, rows=rows,
                           trust_level=TRUST_WORDS.get(level or 0, login.class_ref))


def _shown(name: str, value: str | None) -> str:
    if name == GENDER and value is not None:
        return f"{GENDER_WORDS.get(value, value)} (Code {value})"
    return value or ""


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
