"""The SAML tracer's page ``/entwicklung/saml/``: the newest SAML messages in and out, with the
checks made on each and what was decided (docs/qa-workbench.md, "The SAML tracer").

Development only (registered by :func:`idp.testing.workbench.init_app`), and like the
development mailbox only for clients on this machine's loopback addresses unless the operator
opted in (``IDP_DEVELOPMENT_REMOTE``): the messages name citizens. Every value from a message is
untrusted text here and shown escaped; nothing of the session id is shown (only the keyed
fingerprint the tracer keeps).
"""

from __future__ import annotations

from flask import Blueprint, Response, abort, current_app, render_template, request

from idp.container import app_parts
from idp.db import db
from idp.german import local_time
from idp.mail.views import is_loopback
from idp.testing.api import answer, api
from idp.testing.errors import WorkbenchError
from idp.testing.tracer import (
    MESSAGES_MAX,
    browser_fingerprint,
    checks_of,
    newest_messages,
    pretty_xml,
    traced_messages,
)
from idp.web.context import server_session

saml_trace = Blueprint("saml_trace", __name__, url_prefix="/entwicklung/saml")

SHOWN_MESSAGES = 100
API_MESSAGES = 50
DIRECTIONS = {"in": "eingehend", "out": "ausgehend"}


@saml_trace.before_request
def loopback_only() -> None:
    # remote_addr is the client as the trusted proxies (IDP_PROXY_COUNT) name it.
    if not (current_app.config["SERVICEKONTO"].development_remote
            or is_loopback(request.remote_addr)):
        abort(404)


@saml_trace.get("/")
def messages() -> str:
    """The newest messages, of one portal (``?portal=NAME``) or this browser (``?browser=1``)."""
    registry = app_parts().saml.registry
    portal_name = request.args.get("portal", "")
    portal = registry.by_name(portal_name) if portal_name else None
    if portal_name and portal is None:
        abort(404)
    only_this_browser = request.args.get("browser") == "1"
    limit = request.args.get("limit", "")
    limit_value = int(limit) if limit.isdecimal() else SHOWN_MESSAGES
    limit_value = max(1, min(limit_value, MESSAGES_MAX))
    browser = browser_fingerprint(current_app.config["SERVICEKONTO"].secret_key,
                                  server_session().session_id) if only_this_browser else None
    found = [] if only_this_browser and browser is None else newest_messages(
        db.session, limit_value, portal.entity_id if portal else None, browser)
    return render_template(
        "idp/entwicklung_saml.html", messages=found, portals=registry.portals(),
        portal_name=portal.name if portal else "", only_this_browser=only_this_browser,
        limit=limit_value, directions=DIRECTIONS, local_time=local_time, checks_of=checks_of,
        pretty_xml=pretty_xml)


# --- the test-control API (GET /testing/api/saml/messages, described in openapi.yaml) -----

@api.get("/saml/messages")
def saml_messages() -> Response:
    limit = request.args.get("limit", str(API_MESSAGES))
    if not limit.isdecimal():  # isdigit() lets "²" through, which int() refuses
        raise WorkbenchError("limit muss eine ganze Zahl sein.")
    return answer({"messages": traced_messages(
        db.session, app_parts().saml.registry, request.args.get("portal") or None, int(limit))})
