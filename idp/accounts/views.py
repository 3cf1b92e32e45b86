"""Pages of login, logout, registration and activation. Thin: parse, call a service, render."""

from __future__ import annotations

from datetime import timedelta

from flask import Blueprint, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue

from idp.accounts import registration
from idp.accounts.authentication import LOGIN_FAILED, NOT_ACTIVATED, LoginOutcome, authenticate
from idp.accounts.context import FormErrors
from idp.accounts.identity import USERNAME_MAX, USERNAME_RULES
from idp.accounts.models import Salutation
from idp.accounts.tokens import LinkState
from idp.clock import utcnow
from idp.db import db
from idp.german import duration
from idp.links import ACTIVATION_PATH, LOGIN_PATH
from idp.mail.outbox import MAIL_WINDOW
from idp.security.rate_limit_views import rate_limited
from idp.web import continuation
from idp.web.context import accounts as account_context
from idp.web.context import client_address, current_citizen, server_session, services
from idp.web.errors import error_page
from idp.web.forms import single_values

accounts = Blueprint("accounts", __name__)

REGISTRATION_FIELDS = ("salutation", "given_name", "surname", "birth_name", "email", "username",
                       "password", "password_confirm", "privacy_accepted")
DRAFT_KEY = "registration_draft"
TOO_MANY_LINKS = ("Wir haben Ihnen in der letzten Stunde bereits mehrere Aktivierungslinks "
                  "gesendet. Bitte verwenden Sie den neuesten Link aus Ihrem Postfach oder "
                  "versuchen Sie es in einer Stunde erneut.")


@accounts.get("/")
def start() -> str:
    return render_template("idp/start.html", citizen=current_citizen())


@accounts.route(LOGIN_PATH, methods=["GET", "POST"])
def login() -> ResponseReturnValue:
    """The login form. Where it continues is resolved on the server (idp.web.continuation):
    a SAML login this browser parked, or the page that asked for the login."""
    transaction = continuation.transaction_in_request()
    offer = continuation.offered(transaction)
    if request.method == "GET":
        return render_template("idp/login.html", transaction=transaction, offer=offer)
    form = single_values(request.form, ("username", "password"))
    ctx = account_context()
    result = authenticate(ctx, services().throttle(db.session), form["username"],
                          form["password"], client_address())
    if result.outcome is LoginOutcome.SUCCESS and result.citizen is not None:
        server_session().log_in(result.citizen.id, utcnow())
        return redirect(continuation.after_login(transaction))
    message = NOT_ACTIVATED if result.outcome is LoginOutcome.NOT_ACTIVATED else LOGIN_FAILED
    return render_template("idp/login.html", transaction=transaction, error=message,
                           username=form["username"][:64], offer=offer), 401


@accounts.get("/abgemeldet")
def logged_out() -> str:
    return render_template("idp/logged_out.html")


@accounts.get("/registrieren")
def register_choice() -> str:
    return render_template("idp/register_choice.html")


@accounts.route("/registrieren/benutzername", methods=["GET", "POST"])
@rate_limited("register_form")
def register() -> ResponseReturnValue:
    """Step 1: the form. Valid input is kept (password as hash only) for the review step."""
    session = server_session()
    if request.method == "GET":
        draft = registration.RegistrationDraft.from_dict(session.get(DRAFT_KEY))
        return _registration_form(values=draft.to_dict() if draft else {})
    form = single_values(request.form, REGISTRATION_FIELDS)
    try:
        draft = registration.check_registration(account_context(), form)
    except FormErrors as error:
        shown = {k: v for k, v in form.items() if k not in ("password", "password_confirm")}
        return _registration_form(values=shown, errors=error.errors), 422
    session[DRAFT_KEY] = draft.to_dict()
    return redirect(url_for("accounts.register_review"))


def _registration_form(values: dict[str, str],
                       errors: dict[str, list[str]] | None = None) -> str:
    return render_template("idp/register_form.html", values=values, errors=errors or {},
                           salutations=list(Salutation), rules=services().policy.rules(),
                           username_rules=USERNAME_RULES, username_max=USERNAME_MAX)


@accounts.route("/registrieren/pruefen", methods=["GET", "POST"])
@rate_limited("register")
def register_review() -> ResponseReturnValue:
    """Step 2: review; "Daten speichern" stores the account and queues the activation mail."""
    session = server_session()
    draft = registration.RegistrationDraft.from_dict(session.get(DRAFT_KEY))
    if draft is None:
        # Nothing to save: the data was saved already (a replayed POST) or the session ended.
        return render_template("idp/register_nothing_to_save.html"), 409
    if request.method == "GET":
        return render_template("idp/register_review.html", draft=draft)
    try:
        registration.register(account_context(), draft)
    except FormErrors as error:
        shown = {k: v for k, v in draft.to_dict().items() if k != "password_hash"}
        return _registration_form(values=shown, errors=error.errors), 409
    session.pop(DRAFT_KEY)
    return redirect(url_for("accounts.register_mail_sent"))


@accounts.get("/registrieren/mail-versendet")
def register_mail_sent() -> str:
    return render_template("idp/register_mail_sent.html", activation_period=_activation_period())


@accounts.route(ACTIVATION_PATH, methods=["GET", "POST"])
def activation(token: str) -> ResponseReturnValue:
    """GET shows one button (mail scanners open links); only its POST activates."""
    ctx = account_context()
    if request.method == "GET":
        state = registration.activation_state(ctx, token)
        if state is LinkState.USABLE:
            return render_template("idp/activation_confirm.html", token=token)
    else:
        state = registration.activate(ctx, token)
        if state is LinkState.USABLE:
            return render_template("idp/activation_done.html")
    return _link_problem(state, token)


def _link_problem(state: LinkState, token: str) -> tuple[str, int]:
    status = 404 if state is LinkState.UNKNOWN else 410
    return render_template("idp/activation_problem.html", state=state.value, token=token,
                           activation_period=_activation_period()), status


@accounts.post("/aktivieren/<token>/erneut-senden")
@rate_limited("mail_request")
def resend_activation(token: str) -> ResponseReturnValue:
    outcome = registration.resend_activation(account_context(), token)
    if outcome is registration.Resend.SENT:
        return render_template("idp/register_mail_sent.html", resent=True,
                               activation_period=_activation_period())
    if outcome is registration.Resend.TOO_MANY:
        page, status = error_page(429, TOO_MANY_LINKS)
        # The mail limit counts within MAIL_WINDOW (Outbox.may_mail): the longest wait.
        return page, status, {"Retry-After": str(int(MAIL_WINDOW.total_seconds()))}
    return _link_problem(LinkState.UNKNOWN, token)


@accounts.get("/datenschutz")
def privacy() -> str:
    config = services().config
    return render_template(
        "idp/privacy.html", activation_period=_activation_period(),
        session_longest=duration(timedelta(minutes=config.session_absolute_minutes)),
        session_idle=duration(timedelta(minutes=config.session_idle_minutes)))


def _activation_period() -> str:
    """The configured validity of an activation link ("24 Stunden"), for the pages naming it."""
    return services().settings.activation_period
