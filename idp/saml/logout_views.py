"""SAML single logout endpoints, and "Abmelden" at the IdP running the same chain.

Thin: each route hands the request to the flow (:class:`idp.saml.logout_flow.LogoutFlow`) in
one call and renders what it returns (:func:`show`). Both SLO endpoints take a LogoutRequest (a
portal starts the logout) and a LogoutResponse (a portal answers ours).

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
from typing import Any

from flask import Blueprint, current_app, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from saml2 import BINDING_HTTP_REDIRECT

from idp.broker.logout import (
    STATUS_PARTIAL,
    STATUS_RESPONDER,
    STATUS_SUCCESS,
    Outgoing,
    answer_upstream,
    request_logout,
    upstream_login,
)
from idp.broker.runtime import BROKER_KEY
from idp.broker.sp import UpstreamUnavailable
from idp.clock import utcnow
from idp.container import app_parts
from idp.db import db
from idp.extensions import csrf
from idp.saml.configuration import SLO_POST_PATH, SLO_REDIRECT_PATH
from idp.saml.flow import ErrorPage
from idp.saml.logout_flow import Browser, LoggedOut, LogoutFlow, LogoutOutcome
from idp.saml.messages import OutgoingMessage
from idp.saml.views import runtime
from idp.samlkit.sp_logout import LogoutRefused
from idp.security.sessions import IDENTITY_KEY
from idp.web.context import server_session
from idp.web.errors import error_page
from idp.web.saml_pages import auto_post, resubmit_same_site

log = logging.getLogger(__name__)

slo = Blueprint("slo", __name__)

IN_PROGRESS = "Abmeldung läuft"


def flow() -> LogoutFlow:
    session = server_session()
    return LogoutFlow(db.session, runtime(),
                      Browser(session.session_id, session.citizen_id, session.end,
                              upstream_login(session.get(IDENTITY_KEY))), utcnow())


@slo.get(SLO_REDIRECT_PATH)
def slo_redirect() -> ResponseReturnValue:
    return show(flow().receive_redirect(request.query_string))


@slo.post(SLO_POST_PATH)
def slo_post() -> ResponseReturnValue:
    # As in sso_post (idp/web/saml_pages.py): a portal's LogoutRequest is about the citizen's
    # session, whose SameSite=Lax cookie stays off the cross-site POST. A LogoutResponse needs no
    # session: RelayState finds its chain.
    if "SAMLRequest" in request.form and \
            (page := resubmit_same_site("SAMLRequest", IN_PROGRESS)) is not None:
        return page
    return show(flow().receive_post(request.form.to_dict(flat=False)))


# The portal's auto-POST carries no CSRF token of ours; the SAML message is checked instead.
csrf.exempt(slo_post)


@slo.post("/abmelden")
def logout() -> ResponseReturnValue:
    """"Abmelden" at the IdP: end the session here, then tell every portal it logged in to."""
    return show(flow().log_out_everywhere())


def show(outcome: LogoutOutcome) -> ResponseReturnValue:
    """What the browser is shown next. A session that logged in through an upstream tells it
    last (docs/broker.md, "Single logout"): before our last page or the initiator's answer."""
    if isinstance(outcome, ErrorPage):
        return error_page(outcome.status, outcome.message)
    if isinstance(outcome, LoggedOut):
        finished = {"kind": "page", "logged_out": list(outcome.logged_out),
                    "not_reached": list(outcome.not_reached), "any_portal": outcome.any_portal}
        if outcome.upstream is not None and (
                told := _tell_upstream(outcome.upstream, finished)) is not None:
            return told
        return finish(finished)
    if outcome.to_initiator and outcome.upstream is not None:
        message = outcome.message
        answer = {"kind": "hop", "portal": outcome.portal, "binding": message.binding,
                  "url": message.url, "fields": [list(field) for field in message.fields]}
        if (told := _tell_upstream(outcome.upstream, answer)) is not None:
            return told
    return _send(outcome.portal, outcome.message, outcome.to_initiator)


def finish(after: dict[str, Any]) -> ResponseReturnValue:
    """What waited for the upstream's answer (or needed none): our logged-out page, or the
    answer to the portal that asked."""
    if after.get("kind") == "hop":
        fields = tuple((name, value) for name, value in after["fields"])
        return _send(after["portal"], OutgoingMessage(after["binding"], after["url"], fields),
                     to_initiator=True)
    if not after.get("any_portal"):
        return redirect(url_for("accounts.logged_out"))
    return render_template("idp/logged_out.html",
                           logged_out=[_name(portal) for portal in after["logged_out"]],
                           not_reached=[_name(portal) for portal in after["not_reached"]])


def _tell_upstream(upstream: dict[str, str], after: dict[str, Any]) -> ResponseReturnValue | None:
    """Our LogoutRequest to the upstream the session logged in through, or (it asked) our
    LogoutResponse to it; None when it cannot be told (no broker, gone, no endpoint)."""
    found = current_app.extensions.get(BROKER_KEY)
    known = found.upstream(upstream["upstream"]) if found is not None else None
    if found is None or known is None:
        return None
    now = utcnow()
    outgoing: Outgoing | None
    try:
        if "request_id" in upstream:  # the upstream asked: it gets the answer
            # It asked, so what waited is our page: complete unless a portal was not reached.
            complete = not after.get("not_reached")
            outgoing = answer_upstream(found.clients, known, upstream,
                                       STATUS_SUCCESS if complete else STATUS_RESPONDER,
                                       None if complete else STATUS_PARTIAL, now)
        else:
            outgoing = request_logout(db.session, found.clients, known, upstream, after, now)
    except (UpstreamUnavailable, LogoutRefused) as error:
        log.warning("upstream %s not told of the logout: %s", upstream["upstream"], error)
        return None
    if outgoing is None:
        return None
    text = f"Sie werden bei Ihrem {known.display_name} abgemeldet."
    if outgoing.fields:
        return auto_post(outgoing.url, list(outgoing.fields), IN_PROGRESS, text)
    if request.method == "GET":
        return redirect(outgoing.url, 302)
    return render_template("idp/logout_redirect.html", url=outgoing.url, heading=IN_PROGRESS,
                           text=text)


def _send(portal: str, message: OutgoingMessage, to_initiator: bool) -> ResponseReturnValue:
    """The hop to the next portal (see the module's docstring for which way it travels)."""
    if to_initiator:
        heading, text = "Weiter zum Portal", \
            f"Sie werden zum Portal „{_name(portal)}“ zurückgeleitet."
    else:
        heading, text = IN_PROGRESS, (f"Sie werden beim Portal „{_name(portal)}“ "
                                      "abgemeldet. Bitte warten Sie einen Moment.")
    if message.binding == BINDING_HTTP_REDIRECT:
        if request.method == "GET":
            return redirect(message.url, 302)
        return render_template("idp/logout_redirect.html", url=message.url, heading=heading,
                               text=text)
    # To the portal's SingleLogoutService (from its metadata).
    return auto_post(message.url, message.fields, heading, text)


def _name(entity_id: str) -> str:
    """The portal's German display name (its entity id if it left the registry meanwhile)."""
    return app_parts().portal_names.get(entity_id, entity_id)
