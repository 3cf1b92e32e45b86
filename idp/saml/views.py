"""SAML endpoints: SSO over both bindings, IdP-initiated SSO, the continuation after login,
consent, metadata.

Thin: each route hands the request to the flow (:class:`idp.saml.flow.SsoFlow`) in one call and
renders what it returns (:func:`show`). A request that cannot be answered safely ends on a German
error page at the IdP, never at an unverified address.
"""

from __future__ import annotations

from flask import (
    Blueprint,
    Response,
    flash,
    redirect,
    render_template,
    request,
    url_for,
)
from flask.typing import ResponseReturnValue

from idp.broker.runtime import upstream_display_name
from idp.clock import utcnow
from idp.container import app_parts
from idp.db import db
from idp.extensions import csrf
from idp.saml.configuration import METADATA_PATH, SSO_POST_PATH, SSO_REDIRECT_PATH
from idp.saml.flow import (
    BAD_LINK,
    AskConsent,
    BackHere,
    ErrorPage,
    LogIn,
    Outcome,
    PostToPortal,
    SsoFlow,
    Visitor,
)
from idp.saml.runtime import SamlRuntime
from idp.security.sessions import IDENTITY_KEY
from idp.web import continuation
from idp.web.context import current_citizen, server_session, services
from idp.web.errors import error_page
from idp.web.forms import single_values
from idp.web.saml_pages import auto_post, resubmit_same_site

saml = Blueprint("saml", __name__)

AUTHENTICATED = ("Sie haben sich erfolgreich mit Ihrem Servicekonto authentifiziert und werden "
                 "gleich zurückgeleitet.")
PORTAL_CANCELLED = "Die Anmeldung beim Portal „{portal}“ wird abgebrochen."

UNSOLICITED_PATH = "/saml/sso/unsolicited"


def runtime() -> SamlRuntime:
    return app_parts().saml


def flow() -> SsoFlow:
    """The flow for this request: who the browser is, where it parks its logins, the time."""
    citizen = current_citizen()
    session = server_session()
    return SsoFlow(db.session, runtime(), Visitor(citizen, session.session_id,
                                                  session.authenticated_at,
                                                  session.trust_level,
                                                  session.get(IDENTITY_KEY)),
                   continuation, utcnow())


@saml.before_app_request
def _refresh_metadata() -> None:
    runtime().refresh(utcnow())


@saml.get(METADATA_PATH)
def metadata() -> Response:
    return Response(runtime().metadata_xml(), mimetype="application/samlmetadata+xml")


@saml.get(SSO_REDIRECT_PATH)
def sso_redirect() -> ResponseReturnValue:
    return show(flow().receive_redirect(request.query_string))


@saml.post(SSO_POST_PATH)
def sso_post() -> ResponseReturnValue:
    if (page := resubmit_same_site("SAMLRequest", "Anmeldung wird fortgesetzt")) is not None:
        return page
    return show(flow().receive_post(request.form.to_dict(flat=False)))


# The portal's auto-POST carries no CSRF token of ours; the SAML message is checked instead.
csrf.exempt(sso_post)


@saml.get("/saml/weiter/<reference>")
def resume(reference: str) -> ResponseReturnValue:
    """Where the login page sends the citizen back to."""
    return show(flow().resume(reference))


@saml.post("/saml/abbrechen/<reference>")
def cancel(reference: str) -> ResponseReturnValue:
    """ABBRECHEN on the login page: the portal learns that no one logged in (AuthnFailed);
    from the AusweisApp step (``ausweis``), NoAuthnContext when only the eID reached."""
    return show(flow().cancel(reference, eid=request.form.get("ausweis") == "1"))


@saml.post("/saml/zustimmung")
def consent() -> ResponseReturnValue:
    """ZUSTIMMEN sends the data; ABLEHNEN tells the portal RequestDenied, with no data."""
    form = single_values(request.form, ("transaction", "decision"))
    return show(flow().decide(form["transaction"], form["decision"],
                              services().settings.privacy_version))


@saml.get(UNSOLICITED_PATH)
def unsolicited() -> ResponseReturnValue:
    """IdP-initiated SSO (as Shibboleth's /Unsolicited/SSO): ``providerId`` names the portal,
    ``RelayState`` (or ``target``) goes along unchanged. Login and consent as usual, then an
    unsolicited Response to the portal's default ACS from its metadata."""
    provider = request.args.getlist("providerId")
    relay = request.args.getlist("RelayState") + request.args.getlist("target")
    if len(provider) != 1 or len(relay) > 1 or len(provider[0]) > 1024:
        return show(ErrorPage(400, BAD_LINK))
    return show(flow().unsolicited(provider[0], relay[0] if relay else None))


def show(outcome: Outcome) -> ResponseReturnValue:
    """What the browser is shown next."""
    if isinstance(outcome, ErrorPage):
        return error_page(outcome.status, outcome.message)
    if isinstance(outcome, LogIn):
        step_up = outcome.step_up
        continuation.offer(outcome.reference, outcome.methods, outcome.portal_name,
                           outcome.data, int(outcome.needed), outcome.needed.label,
                           None if step_up is None else {
                               "reached": step_up.reached.label, "by_card": step_up.by_card})
        return redirect(continuation.login_url(outcome.reference))
    if isinstance(outcome, AskConsent):
        return render_template(
            "idp/consent_request.html", portal_name=outcome.portal_name,
            organization_display_name=outcome.organization_display_name,
            purpose=outcome.purpose, attributes=outcome.attributes,
            persistent_identifier=outcome.persistent_identifier,
            source=upstream_display_name(outcome.upstream) if outcome.upstream else None,
            transaction=outcome.reference, action_url=url_for("saml.consent"))
    if isinstance(outcome, PostToPortal):
        # The form goes to the portal's ACS (from its metadata): exactly that origin may receive.
        fields = [("SAMLResponse", outcome.saml_response)]
        if outcome.relay_state is not None:
            fields.append(("RelayState", outcome.relay_state))
        return auto_post(outcome.acs_url, fields, "Sie werden zum Portal weitergeleitet",
                         PORTAL_CANCELLED.format(portal=outcome.portal_name) if outcome.error
                         else AUTHENTICATED, button="Weiter zum Portal")
    assert isinstance(outcome, BackHere)
    if outcome.where == "start":
        return redirect(url_for("accounts.start"))
    flash(outcome.notice or "")
    return redirect(url_for("selfservice.account"))
