"""Self-service pages: forgotten password or username, and "Mein Servicekonto".

Thin, like :mod:`idp.accounts.views`: parse the form, call one service of
:mod:`idp.accounts.forgotten`, :mod:`idp.accounts.selfservice` or :mod:`idp.accounts.export`,
render the page. Successful changes redirect (a reload does not send the form again); the links
from mails show a button on GET and act only on its POST.
"""

from __future__ import annotations

from datetime import timedelta
from io import BytesIO

from flask import (
    Blueprint,
    flash,
    redirect,
    render_template,
    request,
    send_file,
    url_for,
)
from werkzeug.wrappers import Response as BaseResponse

from idp.accounts import export, forgotten
from idp.accounts import selfservice as service
from idp.accounts.context import FormErrors
from idp.accounts.models import Citizen, Salutation
from idp.accounts.tokens import LinkState
from idp.broker.login import external_upstream, links_of, unlink
from idp.broker.models import ExternalLink
from idp.broker.runtime import upstream_display_name
from idp.clock import utcnow
from idp.consent.attributes import UPSTREAM_KEY
from idp.container import app_parts
from idp.db import db
from idp.german import local_time
from idp.links import (
    EMAIL_CHANGE_PATH,
    PASSWORD_FORGOTTEN_PATH,
    PASSWORD_RESET_PATH,
    USERNAME_FORGOTTEN_PATH,
)
from idp.saml.akdb import AuthnMethod
from idp.saml.identifiers import TrustLevel
from idp.security.rate_limit_views import rate_limited
from idp.security.sessions import IDENTITY_KEY
from idp.web.context import accounts as account_context
from idp.web.context import (
    client_address,
    current_citizen,
    login_required,
    server_session,
    services,
)
from idp.web.forms import single_values

selfservice = Blueprint("selfservice", __name__)

Page = str | tuple[str, int] | BaseResponse


# --- "Passwort vergessen" ------------------------------------------------------------------


@selfservice.route(PASSWORD_FORGOTTEN_PATH, methods=["GET", "POST"])
@rate_limited("mail_request")
def password_forgotten() -> Page:
    if request.method == "GET":
        return render_template("idp/password_forgotten.html", values={}, errors={})
    form = single_values(request.form, ("username",))
    try:
        forgotten.request_password_reset(account_context(), form["username"])
    except FormErrors as error:
        return render_template("idp/password_forgotten.html", errors=error.errors,
                               values={"username": form["username"][:64]}), 422
    # The same page whether or not the account exists.
    return render_template("idp/password_mail_sent.html",
                           period=services().settings.password_reset_period)


@selfservice.route(PASSWORD_RESET_PATH, methods=["GET", "POST"])
@rate_limited("password_reset")
def password_reset(token: str) -> Page:
    """GET shows the form (mail scanners open links); only its POST uses the link up."""
    ctx = account_context()
    if request.method == "GET":
        state = service.password_reset_state(ctx, token)
        return _reset_form(token) if state is LinkState.USABLE else _link_problem(
            "idp/password_link_problem.html", state)
    form = single_values(request.form, ("password", "password_confirm"))
    try:
        outcome = service.reset_password(ctx, services().throttle(db.session), token,
                                         form["password"], form["password_confirm"])
    except FormErrors as error:
        return _reset_form(token, error.errors), 422
    if not outcome.done:
        return _link_problem("idp/password_link_problem.html", outcome.state)
    session = server_session()
    if session.citizen_id is not None and session.citizen_id == outcome.citizen_id:
        session.end()  # its record is gone already; the cookie goes too
    return render_template("idp/password_reset_done.html")


def _reset_form(token: str, errors: dict[str, list[str]] | None = None) -> str:
    return render_template("idp/password_reset_form.html", token=token, errors=errors or {},
                           rules=services().policy.rules())


def _link_problem(template: str, state: LinkState, **context: object) -> tuple[str, int]:
    status = 404 if state is LinkState.UNKNOWN else 410
    return render_template(template, state=state.value, **context), status


# --- "Benutzernamen vergessen" -------------------------------------------------------------


@selfservice.route(USERNAME_FORGOTTEN_PATH, methods=["GET", "POST"])
@rate_limited("mail_request")
def username_forgotten() -> Page:
    if request.method == "GET":
        return render_template("idp/username_forgotten.html", values={}, errors={})
    form = single_values(request.form, ("email",))
    try:
        forgotten.send_username_reminder(account_context(), form["email"])
    except FormErrors as error:
        return render_template("idp/username_forgotten.html", errors=error.errors,
                               values={"email": form["email"][:254]}), 422
    return render_template("idp/username_mail_sent.html")


# --- "Mein Servicekonto" -------------------------------------------------------------------


@selfservice.get("/konto")
@login_required
def account() -> Page:
    citizen = _citizen()
    # "Konto hochstufen" with the Online-Ausweisfunktion, for a basisregistriert account.
    upgrade_url = url_for("eid.upgrade_read") if citizen.trust_level < 3 and \
        app_parts().saml.methods != (AuthnMethod.BENUTZERNAME,) else None
    links = _external_links(citizen)
    return render_template("idp/account.html", citizen=citizen,
                           pending_email=service.pending_email_change(account_context(), citizen),
                           portals=_portals_to_visit(), upgrade_url=upgrade_url,
                           level_label=TrustLevel(citizen.trust_level).label,
                           external_links=links, local_time=local_time,
                           # An external account's own link says so (one query for both).
                           external=next((name for link, name in links if link.made_for_it),
                                         None))


def _external_links(citizen: Citizen) -> list[tuple[ExternalLink, str]]:
    """The upstream accounts bound to this one, each with its upstream's display name."""
    return [(link, upstream_display_name(link.upstream))
            for link in links_of(db.session, citizen.id)]


@selfservice.post("/konto/extern/<int:link_id>/loesen")
@login_required
def unlink_external(link_id: int) -> Page:
    """"Verknüpfung lösen": the upstream account no longer logs in to this account."""
    if unlink(db.session, _citizen().id, link_id):
        flash("Die Verknüpfung ist gelöst. Sie können sich darüber nicht mehr in dieses "
              "Servicekonto anmelden.")
    return redirect(url_for("selfservice.account"))


def _portals_to_visit() -> list[tuple[str, str]]:
    """(display name, entity id) of the portals the citizen may open from here: available ones
    whose policy allows IdP-initiated SSO (idp_initiated_allowed)."""
    registry = app_parts().saml.registry
    return [(portal.policy.display_name, portal.entity_id) for portal in registry.portals()
            if portal.available and portal.policy.idp_initiated_allowed]


@selfservice.route("/konto/daten", methods=["GET", "POST"])
@login_required
def personal_data() -> Page:
    citizen = _citizen()
    from_card = service.names_from_card(citizen)
    if request.method == "GET":
        return _personal_data_form(service.personal_data(citizen), from_card)
    form = single_values(request.form, service.PERSONAL_FIELDS)
    try:
        service.update_personal_data(account_context(), citizen, form)
    except FormErrors as error:
        # A card's names are shown as they are, whatever was sent.
        shown = service.personal_data(citizen) | {"salutation": form["salutation"]} \
            if from_card else form
        return _personal_data_form(shown, from_card, error.errors), 422
    flash("Ihre persönlichen Daten wurden gespeichert.")
    return redirect(url_for("selfservice.account"))


def _personal_data_form(values: dict[str, str], from_card: bool,
                        errors: dict[str, list[str]] | None = None) -> str:
    return render_template("idp/account_personal_data.html", values=values, from_card=from_card,
                           errors=errors or {}, salutations=list(Salutation))


@selfservice.route("/konto/email", methods=["GET", "POST"])
@login_required
def email_change() -> Page:
    citizen = _citizen()
    if request.method == "GET":
        return render_template("idp/account_email.html", citizen=citizen, values={}, errors={})
    form = single_values(request.form, ("email", "password"))
    try:
        address = service.request_email_change(account_context(), _holder(citizen),
                                                form["email"], form["password"])
    except FormErrors as error:
        return render_template("idp/account_email.html", citizen=citizen, errors=error.errors,
                               values={"email": form["email"][:254]}), 422
    flash(f"Wir haben einen Bestätigungslink an {address} gesendet. Ihre E-Mail-Adresse ändert "
          "sich erst, wenn Sie diesen Link aufrufen und die Änderung bestätigen.")
    return redirect(url_for("selfservice.account"))


@selfservice.route(EMAIL_CHANGE_PATH, methods=["GET", "POST"])
def email_confirm(token: str) -> Page:
    """GET shows the new address and one button; only its POST changes the address."""
    ctx = account_context()
    problem = "idp/email_change_problem.html"
    if request.method == "GET":
        outcome = service.email_change_state(ctx, token)
        if not outcome.done:
            return _link_problem(problem, outcome.state)
        return render_template("idp/email_change_confirm.html", token=token,
                               new_email=outcome.new_email)
    try:
        outcome = service.confirm_email_change(ctx, token)
    except FormErrors as error:
        return render_template(problem, state="taken", message=error.errors["email"][0]), 409
    if not outcome.done:
        return _link_problem(problem, outcome.state)
    return render_template("idp/email_change_done.html", new_email=outcome.new_email)


@selfservice.route("/konto/passwort", methods=["GET", "POST"])
@login_required
def password_change() -> Page:
    citizen = _citizen()
    if request.method == "GET":
        return _password_form()
    form = single_values(request.form, ("current_password", "password", "password_confirm"))
    try:
        service.change_password(account_context(), _holder(citizen), form)
    except FormErrors as error:
        return _password_form(error.errors), 422
    # A new session id for this browser too: a copied cookie of the old one is worthless.
    server_session().log_in(citizen.id, utcnow())
    flash("Ihr Passwort wurde geändert. Alle anderen Anmeldungen wurden beendet.")
    return redirect(url_for("selfservice.account"))


def _password_form(errors: dict[str, list[str]] | None = None) -> str:
    return render_template("idp/account_password.html", errors=errors or {},
                           rules=services().policy.rules())


# A GET link, not a form: reading one's own data changes nothing. Another site can make the
# browser fetch it but never read the answer (same-origin policy, no CORS), so the file only
# ever lands with the citizen; the session's idle limit bounds an unattended browser.
@selfservice.get("/konto/daten-herunterladen")
@login_required
def data_export() -> Page:
    """"Meine Daten herunterladen": the export as a JSON file (GDPR Art. 15 and 20)."""
    citizen, now = _citizen(), utcnow()
    document = export.export(db.session, citizen, now, app_parts().portal_names)
    response = send_file(BytesIO(export.as_json(document).encode("utf-8")),
                         mimetype="application/json", as_attachment=True,
                         download_name=export.file_name(citizen, now))
    # Personal data: in no cache, not even the browser's.
    response.headers["Cache-Control"] = "no-store"
    return response


@selfservice.route("/konto/loeschen", methods=["GET", "POST"])
@login_required
def delete_account() -> Page:
    citizen = _citizen()
    if (external := external_upstream(db.session, citizen.id)) is not None:
        return _delete_external_account(citizen, external)
    if request.method == "GET":
        return render_template("idp/account_delete.html", errors={})
    form = single_values(request.form, ("password",))
    try:
        service.delete_account(account_context(), _holder(citizen), form["password"])
    except FormErrors as error:
        return render_template("idp/account_delete.html", errors=error.errors), 422
    server_session().end()
    return render_template("idp/account_deleted.html")


# An external account has no password: its deletion is confirmed by a login through its
# upstream at most this long ago.
REAUTHENTICATION = timedelta(minutes=10)


def _delete_external_account(citizen: Citizen, upstream: str) -> Page:
    """"Servicekonto löschen" for an account made for an upstream account (docs/broker.md)."""
    session = server_session()
    identity = session.get(IDENTITY_KEY) or {}
    recent = identity.get(UPSTREAM_KEY) == upstream and session.authenticated_at is not None \
        and session.authenticated_at + REAUTHENTICATION > utcnow()
    name = upstream_display_name(upstream)
    if request.method == "GET" or not recent:
        return render_template("idp/account_delete.html", errors={}, external=name,
                               recent=recent), 200 if request.method == "GET" else 403
    service.remove_account(account_context(), citizen, services().throttle(db.session))
    session.end()
    return render_template("idp/account_deleted.html")


def _citizen() -> Citizen:
    citizen = current_citizen()
    assert citizen is not None, "login_required lets only signed-in citizens through"
    return citizen


def _holder(citizen: Citizen) -> service.AccountHolder:
    return service.AccountHolder(citizen=citizen, throttle=services().throttle(db.session),
                                 address=client_address(),
                                 session_id=server_session().session_id)
