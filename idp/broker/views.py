"""'Login mit externem Servicekonto': the list of upstreams, our request, their answer.

Thin: parse, call :mod:`idp.broker.login`, log in and continue the portal's login, or show why
not with a way back to the portal (docs/broker.md).
"""

from __future__ import annotations

import hashlib
import logging
import secrets
from dataclasses import asdict
from datetime import datetime, timedelta
from typing import Any

from flask import Blueprint, Response, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue

from idp.accounts.authentication import (
    LOGIN_FAILED,
    NOT_ACTIVATED,
    LoginOutcome,
    authenticate,
)
from idp.broker import login, logout
from idp.broker.logout import NAME_ID_KEY, SESSION_INDEX_KEY
from idp.broker.runtime import broker
from idp.broker.sp import UpstreamUnavailable
from idp.clock import utcnow
from idp.db import db
from idp.extensions import csrf
from idp.saml.logout_views import finish
from idp.saml.logout_views import flow as logout_flow
from idp.saml.logout_views import show as show_logout
from idp.saml.views import flow, show
from idp.samlkit.bindings import BindingError, decode_post, decode_redirect
from idp.samlkit.sp_logout import LogoutRefused
from idp.security.sessions import IDENTITY_KEY
from idp.web import continuation
from idp.web.context import accounts as account_context
from idp.web.context import client_address, server_session, services
from idp.web.errors import error_page
from idp.web.forms import single_values
from idp.web.saml_pages import auto_post, resubmit_same_site

log = logging.getLogger(__name__)

external = Blueprint("broker", __name__)

# The browser's binding to its requests (a random value in the server-side session; the
# request keeps its hash), and what a refused login answers the portal with, by reference.
BINDING_KEY = "broker_binding"
REFUSALS_KEY = "broker_refusals"
# A first login through an upstream, until the citizen chose (at most this long).
ARRIVAL_KEY = "broker_arrival"
ARRIVAL_KEPT = timedelta(minutes=10)
LINKED = ("Ihr {upstream} ist jetzt mit diesem Servicekonto verknüpft. Sie können sich künftig "
          "auch damit anmelden.")
UNAVAILABLE = ("Das externe Servicekonto „{name}“ ist zurzeit nicht erreichbar. Bitte versuchen "
               "Sie es später erneut oder wählen Sie eine andere Anmeldeart.")


@external.get("/extern")
def choose() -> ResponseReturnValue:
    """The upstreams, searchable by name (``?suche=``); for a portal's login (``?anfrage=``)."""
    transaction = continuation.transaction_in_request()
    offer = continuation.offered(transaction)
    if offer is not None and "FINK" not in offer["methods"]:
        return error_page(403, "Dieses Portal lässt die Anmeldung mit einem externen "
                               "Servicekonto nicht zu.")
    search = request.args.get("suche", "")[:100].strip()
    upstreams = broker().choices(search, int(offer.get("needed_level", 1)) if offer else 1)
    return render_template("idp/broker_choose.html", transaction=transaction,
                           upstreams=upstreams, search=search,
                           portal=offer["portal"] if offer else None)


@external.post("/extern/<name>")
def start(name: str) -> ResponseReturnValue:
    """Send the citizen to the upstream with our signed AuthnRequest."""
    transaction = continuation.transaction_in_request()
    offer = continuation.offered(transaction)
    upstream = broker().upstream(name)
    level = int(offer.get("needed_level", 1)) if offer else 1
    if upstream is None or upstream.maximum_trust_level < level or (
            offer is not None and "FINK" not in offer["methods"]):
        return error_page(404, "Dieses externe Servicekonto ist bei uns nicht eingetragen.")
    binding = server_session().get(BINDING_KEY)
    if not isinstance(binding, str):
        binding = secrets.token_urlsafe(24)
        server_session()[BINDING_KEY] = binding
    try:
        url = login.send(db.session, broker().clients, upstream, _hash(binding), transaction,
                         level, utcnow())
    except UpstreamUnavailable as error:
        log.warning("upstream %s unavailable: %s", name, error)
        return error_page(503, UNAVAILABLE.format(name=upstream.display_name))
    # A page, not a 303: a browser checks a redirect to another site after this form's POST
    # against the list page's CSP form-action, which names only our own site
    # (idp/saml/logout_views.py explains the same for logout).
    return render_template("idp/logout_redirect.html", url=url,
                           heading=f"Weiter zum {upstream.display_name}",
                           text="Sie werden zur Anmeldung weitergeleitet.")


@external.post("/extern/acs")
def acs() -> ResponseReturnValue:
    """The upstream's answer."""
    if (page := resubmit_same_site("SAMLResponse", "Anmeldung wird fortgesetzt")) is not None:
        return page
    binding = server_session().get(BINDING_KEY)
    result = login.receive(
        db.session, broker().clients, broker().upstream, request.form.to_dict(flat=False),
        _hash(binding) if isinstance(binding, str) else None, utcnow())
    if isinstance(result, login.Refused):
        log.info("login through upstream %s refused: %s", result.upstream, result.failure.name)
        return _refused(result)
    if result.citizen_id is None:
        # First login with this upstream account: the citizen chooses (a new account, or
        # one of ours after logging in to it).
        server_session()[ARRIVAL_KEY] = {**asdict(result), "at": utcnow().isoformat()}
        return redirect(url_for("broker.first_login"), code=303)
    return _logged_in(result, result.citizen_id)


@external.route("/extern/erste-anmeldung", methods=["GET", "POST"])
def first_login() -> ResponseReturnValue:
    """"Erste Anmeldung mit Ihrem externen Servicekonto": continue with a new account made
    for it, or link it to the account of ours the citizen logs in to here."""
    arrival = _arrival()
    if arrival is None:
        return error_page(410, "Bitte melden Sie sich erneut bei Ihrem externen Servicekonto "
                               "an: der Vorgang wurde nicht rechtzeitig abgeschlossen.")
    upstream = broker().upstream(arrival.upstream)
    if upstream is None:
        return error_page(404, "Dieses externe Servicekonto ist bei uns nicht (mehr) "
                               "eingetragen.")
    if request.method == "GET":
        return _first_login_page(upstream.display_name)
    form = single_values(request.form, ("aktion", "username", "password"))
    now = utcnow()
    if form["aktion"] == "neu":
        citizen_id = login.make_account(db.session, upstream, arrival, services().hasher.hash,
                                        services().settings.privacy_version, now)
        return _logged_in(arrival, citizen_id)
    if form["aktion"] != "verknuepfen":
        return error_page(400)
    ctx = account_context()
    result = authenticate(ctx, services().throttle(db.session), form["username"],
                          form["password"], client_address())
    if result.outcome is not LoginOutcome.SUCCESS or result.citizen is None:
        message = NOT_ACTIVATED if result.outcome is LoginOutcome.NOT_ACTIVATED \
            else LOGIN_FAILED
        return _first_login_page(upstream.display_name, message, form["username"]), 401
    citizen_id = login.link(db.session, upstream, arrival, result.citizen.id, now)
    flash(LINKED.format(upstream=upstream.display_name))
    return _logged_in(arrival, citizen_id)


def _first_login_page(upstream: str, error: str | None = None, username: str = "") -> str:
    return render_template("idp/broker_first_login.html", upstream=upstream, error=error,
                           username=username[:64])


def _arrival() -> login.Arrival | None:
    """The upstream's login waiting for the citizen's choice, unless it is too old."""
    kept = server_session().get(ARRIVAL_KEY)
    if not isinstance(kept, dict):
        return None
    # A copy: the session's own dict keeps its time for the next try (a wrong password).
    fields = dict(kept)
    try:
        at = datetime.fromisoformat(fields.pop("at"))
        arrival = login.Arrival(**fields)
    except (KeyError, TypeError, ValueError):
        return None
    return arrival if at + ARRIVAL_KEPT > utcnow() else None


def _logged_in(arrival: login.Arrival, citizen_id: int) -> ResponseReturnValue:
    """Log the citizen in as the upstream vouched (its level, its data) and go on."""
    server_session().pop(ARRIVAL_KEY, None)
    # The upstream login goes with the session: single logout tells the upstream at the end.
    identity = arrival.identity | {NAME_ID_KEY: arrival.name_id,
                                   SESSION_INDEX_KEY: arrival.session_index or ""}
    server_session().log_in(citizen_id, utcnow(), arrival.level, identity)
    reference = arrival.reference if continuation.is_parked(arrival.reference) else None
    return redirect(continuation.after_login(reference), code=303)


@external.post("/extern/zurueck/<reference>")
def back(reference: str) -> ResponseReturnValue:
    """"Zurück zum Portal" after a refused login: the portal gets the matching status."""
    refusal = server_session().get(REFUSALS_KEY, {}).get(reference)
    status = refusal if isinstance(refusal, dict) else {}
    return show(flow().refuse_through_upstream(reference, status.get("status"),
                                               status.get("sub_status")))


@external.route("/extern/slo", methods=["GET", "POST"])
def slo() -> ResponseReturnValue:
    """The upstream's logout messages: its answer to our LogoutRequest (what waited for it
    goes on), or its own LogoutRequest (our session of the account it names ends, the portals
    are told, then it gets its answer)."""
    if request.method == "POST":
        for field in ("SAMLResponse", "SAMLRequest"):
            if field in request.form and (page := resubmit_same_site(
                    field, "Abmeldung wird fortgesetzt")) is not None:
                return page
    try:
        message = decode_redirect(request.query_string, parameter=None) \
            if request.method == "GET" else decode_post(request.form.to_dict(flat=False),
                                                        parameter=None)
    except BindingError as error:
        log.info("upstream logout message refused: %s", error)
        return error_page(400)
    now = utcnow()
    try:
        if message.is_response:
            after = logout.receive_logout_response(db.session, broker().clients,
                                                   broker().upstream, message, now)
            return finish(after)
        order = logout.receive_logout_request(broker().clients, broker().by_entity_id,
                                              message, now)
    except (LogoutRefused, UpstreamUnavailable) as error:
        log.info("upstream logout message refused: %s", error)
        return error_page(400)
    ours = logout.upstream_login(server_session().get(IDENTITY_KEY))
    if ours is None or ours["upstream"] != order.upstream.name or \
            ours["name_id"] != order.order.name_id:
        # Not this browser's upstream login (over already, or someone else's): nothing ends.
        outgoing = logout.answer_upstream(broker().clients, order.upstream,
                                          order.as_initiator(), logout.STATUS_RESPONDER,
                                          logout.STATUS_UNKNOWN_PRINCIPAL, now)
        return _to_upstream(outgoing)
    return show_logout(logout_flow().log_out_for_upstream(order.as_initiator()))


def _to_upstream(outgoing: logout.Outgoing) -> ResponseReturnValue:
    """The answer to the upstream's LogoutRequest (a 302 after a GET; after a POST a page, for
    the reason :func:`start` gives)."""
    text = "Sie werden zu Ihrem externen Servicekonto zurückgeleitet."
    if outgoing.fields:
        return auto_post(outgoing.url, list(outgoing.fields), "Abmeldung", text)
    if request.method == "GET":
        return redirect(outgoing.url, code=302)
    return render_template("idp/logout_redirect.html", url=outgoing.url, heading="Abmeldung",
                           text=text)


@external.get("/extern/metadata")
def metadata() -> ResponseReturnValue:
    """Our SP metadata, for the upstreams' operators."""
    return Response(broker().clients.metadata_xml(), mimetype="application/samlmetadata+xml")


def _refused(result: login.Refused) -> ResponseReturnValue:
    reference = result.reference if continuation.is_parked(result.reference) else None
    if reference is not None:
        kept: dict[str, Any] = {
            key: value for key, value in server_session().get(REFUSALS_KEY, {}).items()
            if continuation.is_parked(key)}
        kept[reference] = {"status": result.refusal.status if result.refusal else None,
                           "sub_status": result.refusal.sub_status if result.refusal else None}
        server_session()[REFUSALS_KEY] = kept
    upstream = broker().upstream(result.upstream) if result.upstream else None
    return render_template("idp/broker_refused.html", message=result.message,
                           reference=reference,
                           upstream=upstream.display_name if upstream else None), \
        403 if result.failure is login.Failure.REFUSED else 400


def _hash(binding: str) -> str:
    return hashlib.sha256(binding.encode()).hexdigest()


# A cross-site POST from the upstream: its own checks (signature, InResponseTo of a request
# this browser sent) replace the CSRF token.
csrf.exempt(acs)
csrf.exempt(slo)
