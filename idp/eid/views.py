"""The simulated AusweisApp step: which provider asks for which data, a test card, the PIN.

Thin: parse, call :func:`idp.eid.simulation.read_card`, render or log in. Registered only when
IDP_EID_SIMULATION is on (docs/configuration.md); every page says it is a simulation.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue

from idp.accounts.context import FormErrors
from idp.accounts.identity import USERNAME_MAX, USERNAME_RULES
from idp.clock import utcnow
from idp.db import db
from idp.eid.registration import CARD_HAS_ACCOUNT, register_with_card
from idp.eid.registration import check as registration_check
from idp.eid.simulation import (
    CardRead,
    Reading,
    identity_of,
    open_card,
    read_card,
    test_cards,
    unblock_pin,
)
from idp.eid.upgrade import UPGRADED_LEVEL, proposal, upgrade
from idp.security.rate_limit_views import rate_limited
from idp.testing.models import EidTestCard
from idp.web import continuation
from idp.web.context import accounts as account_context
from idp.web.context import current_citizen, login_required, server_session, services
from idp.web.forms import single_values

eid = Blueprint("eid", __name__)

# Who asks when the citizen logs in at the Servicekonto itself (no portal behind it).
OWN_PROVIDER = "Servicekonto"
OWN_DATA = ("Doktorgrad", "Vorname", "Nachname", "Geburtsname", "Geburtsdatum", "Geburtsort",
            "Anschrift", "Staatsangehörigkeit", "Ausweisart", "Pseudonym des Ausweises")
EXPIRED_READING = ("Bitte lesen Sie Ihren Ausweis erneut: der Vorgang wurde nicht rechtzeitig "
                   "abgeschlossen.")
STATUS = {Reading.NO_CARD: 422, Reading.PIN_FORMAT: 422, Reading.WRONG_PIN: 401,
          Reading.PIN_BLOCKED: 403, Reading.EXPIRED: 403, Reading.REVOKED: 403,
          Reading.NO_ACCOUNT: 403, Reading.UNBLOCKED: 200, Reading.PUK_FORMAT: 422,
          Reading.WRONG_PUK: 401, Reading.PUK_USED_UP: 403, Reading.NO_PUK: 403,
          Reading.NOT_BLOCKED: 409}
# Readings that are news, not errors; and those after which the page offers the PUK.
DONE = {Reading.UNBLOCKED, Reading.NOT_BLOCKED}
PUK_ASKED = {Reading.PIN_BLOCKED, Reading.PUK_FORMAT, Reading.WRONG_PUK}


@eid.route("/ausweis", methods=["GET", "POST"])
def start() -> ResponseReturnValue:
    """The AusweisApp step; a SAML login is named by its reference (``?anfrage=``), as on the
    login page (idp/web/continuation.py)."""
    transaction = continuation.transaction_in_request()
    if request.method == "GET":
        return _page(LOGIN, transaction)
    form = single_values(request.form, ("card", "pin"))
    card_id = _card_id(form["card"])
    result = read_card(db.session, card_id, form["pin"])
    if result.reading is Reading.SUCCESS and result.citizen_id is not None:
        server_session().log_in(result.citizen_id, utcnow(), result.trust_level,
                                result.identity)
        return redirect(continuation.after_login(transaction))
    return _page(LOGIN, transaction, result, card_id), STATUS[result.reading]


@eid.route("/ausweis/puk", methods=["POST"])
def unblock() -> ResponseReturnValue:
    """"PIN mit der PUK entsperren": shown with a blocked PIN; back to the same step after."""
    transaction = continuation.transaction_in_request()
    form = single_values(request.form, ("card", "puk", "schritt"))
    step = form["schritt"] if form["schritt"] in STEPS else LOGIN
    card_id = _card_id(form["card"])
    result = unblock_pin(db.session, card_id, form["puk"])
    return _page(step, transaction, result, card_id), STATUS[result.reading]


def _card_id(field: str) -> int | None:
    """The chosen card's id; anything but a short number is no choice."""
    return int(field) if field.isascii() and field.isdigit() and len(field) < 10 else None


# The three steps that read a card; each page's form names its step, so that the PUK form
# returns to it.
LOGIN, UPGRADE, REGISTRATION = "anmelden", "hochstufen", "registrieren"
STEPS = (LOGIN, UPGRADE, REGISTRATION)


def _page(step: str, transaction: str | None = None, result: CardRead | None = None,
          chosen: int | None = None) -> str:
    """The AusweisApp step's page; after a reading that did not succeed, its message (and for
    a blocked PIN the PUK form)."""
    shown = {"step": step, "cards": test_cards(db.session), "chosen": chosen,
             "error": result.message if result and result.reading not in DONE else None,
             "notice": result.message if result and result.reading in DONE else None,
             "puk_card": chosen if result and result.reading in PUK_ASKED else None}
    if step == REGISTRATION:
        return render_template(
            "idp/eid.html", transaction=None, provider=REGISTRATION_PROVIDER, data=OWN_DATA,
            heading="Registrieren mit der Online-Ausweisfunktion",
            purpose="Registrierung eines Servicekontos mit Ihrem Ausweis",
            action_url=url_for("eid.register_read"), cancel_url=url_for("accounts.start"),
            only_eid=False, **shown)
    if step == UPGRADE:
        return render_template(
            "idp/eid.html", transaction=None, provider=UPGRADE_PROVIDER, data=UPGRADE_DATA,
            purpose="Konto hochstufen", heading="Konto hochstufen",
            action_url=url_for("eid.upgrade_read"),
            cancel_url=url_for("selfservice.account"), only_eid=False, **shown)
    offer = continuation.offered(transaction)
    return render_template(
        "idp/eid.html", transaction=transaction,
        provider=offer["portal"] if offer else OWN_PROVIDER,
        data=offer["data"] if offer and offer["data"] else OWN_DATA,
        # Cancelling where only the eID reaches the portal's level ends the SAML login.
        only_eid=offer is not None and offer["methods"] == ["eID"], **shown)


# --- "Konto hochstufen" on "Mein Servicekonto" -------------------------------------------------

# The card read for hochstufen, until the citizen confirms (docs/architecture.md, "Konto
# hochstufen"); a card read longer ago must be read again.
UPGRADE_KEY = "upgrade_card"
# A card read is used within this time or read again.
CARD_KEPT = timedelta(minutes=10)
def _read_card(step: str) -> EidTestCard | ResponseReturnValue:
    """The card the AusweisApp step's form names, opened with its PIN; else the step's page
    again with the reason."""
    form = single_values(request.form, ("card", "pin"))
    card_id = _card_id(form["card"])
    opened = open_card(db.session, card_id, form["pin"])
    if isinstance(opened, CardRead):
        return _page(step, None, opened, card_id), STATUS[opened.reading]
    return opened


UPGRADE_PROVIDER = "Servicekonto – Konto hochstufen"
UPGRADE_DATA = ("Doktorgrad", "Vorname", "Nachname", "Geburtsname", "Geburtsdatum",
                "Pseudonym des Ausweises")
UPGRADED = ("Ihr Servicekonto ist jetzt hochgestuft: Ihre Daten stammen aus Ihrem Ausweis, und "
            "Sie können sich mit der Online-Ausweisfunktion anmelden.")


@eid.route("/konto/hochstufen", methods=["GET", "POST"])
@login_required
def upgrade_read() -> ResponseReturnValue:
    """Read the card once (the AusweisApp step), then confirm on the next page."""
    if request.method == "GET":
        return _page(UPGRADE)
    opened = _read_card(UPGRADE)
    if not isinstance(opened, EidTestCard):
        return opened
    server_session()[UPGRADE_KEY] = {"card": opened.id, "at": utcnow().isoformat()}
    return redirect(url_for("eid.upgrade_confirm"))


@eid.route("/konto/hochstufen/bestaetigen", methods=["GET", "POST"])
@login_required
def upgrade_confirm() -> ResponseReturnValue:
    """The old and new values and "Konto hochstufen"; or why it cannot be done."""
    card, read_at = _card_kept(UPGRADE_KEY)
    citizen = current_citizen()
    assert citizen is not None  # login_required
    if card is None or read_at is None:
        server_session().pop(UPGRADE_KEY, None)
        return _page(UPGRADE, result=CardRead(Reading.NO_CARD, EXPIRED_READING)), 409
    if request.method == "GET":
        checked = proposal(citizen, card)
    else:
        checked = upgrade(db.session, citizen, card)
        server_session().pop(UPGRADE_KEY, None)
        if not checked.refusals:
            # The card was read with its PIN: this session is now an eID login too, at the
            # account's new level, from the time the card was read.
            server_session().log_in(citizen.id, read_at, UPGRADED_LEVEL, identity_of(card))
            flash(UPGRADED)
            return redirect(url_for("selfservice.account"))
    return render_template("idp/eid_upgrade.html", proposal=checked), \
        409 if checked.refusals else 200


def _card_kept(key: str) -> tuple[EidTestCard | None, datetime | None]:
    """The card read into the session under ``key`` and when, unless that was too long ago."""
    kept = server_session().get(key)
    if not isinstance(kept, dict):
        return None, None
    try:
        read_at = datetime.fromisoformat(kept["at"])
    except (KeyError, TypeError, ValueError):
        return None, None
    if read_at + CARD_KEPT <= utcnow():
        return None, None
    return db.session.get(EidTestCard, kept.get("card")), read_at


# --- "Registrieren mit der Online-Ausweisfunktion" ---------------------------------------------

REGISTRATION_KEY = "registration_card"
REGISTRATION_PROVIDER = "Servicekonto – Registrierung"
REGISTRATION_FIELDS = ("email", "username", "password", "password_confirm", "privacy_accepted")


@eid.route("/registrieren/ausweis", methods=["GET", "POST"])
@rate_limited("register_form")
def register_read() -> ResponseReturnValue:
    """Read the card first; the next page asks only for what a card cannot give."""
    if request.method == "GET":
        return _page(REGISTRATION)
    opened = _read_card(REGISTRATION)
    if not isinstance(opened, EidTestCard):
        return opened
    if opened.citizen_id is not None:
        return _page(REGISTRATION, None, CardRead(Reading.NO_ACCOUNT, CARD_HAS_ACCOUNT),
                     opened.id), 409
    server_session()[REGISTRATION_KEY] = {"card": opened.id, "at": utcnow().isoformat()}
    return redirect(url_for("eid.register_data"))


@eid.route("/registrieren/ausweis/daten", methods=["GET", "POST"])
@rate_limited("register")
def register_data() -> ResponseReturnValue:
    """The card's data, the e-mail address, optionally username and password; "Daten
    speichern" stores the account and sends the activation mail."""
    card, _ = _card_kept(REGISTRATION_KEY)
    if card is None:
        server_session().pop(REGISTRATION_KEY, None)
        return _page(REGISTRATION, result=CardRead(Reading.NO_CARD, EXPIRED_READING)), 409
    if request.method == "GET":
        return _registration_form(card, {})
    form = single_values(request.form, REGISTRATION_FIELDS)
    ctx = account_context()
    try:
        register_with_card(ctx, card, registration_check(ctx, card, form))
    except FormErrors as error:
        shown = {key: value for key, value in form.items() if "password" not in key}
        return _registration_form(card, shown, error.errors), 422
    server_session().pop(REGISTRATION_KEY, None)
    return redirect(url_for("accounts.register_mail_sent"))


def _registration_form(card: EidTestCard, values: dict[str, str],
                       errors: dict[str, list[str]] | None = None) -> str:
    return render_template("idp/eid_register.html", card=identity_of(card), values=values,
                           errors=errors or {}, rules=services().policy.rules(),
                           username_rules=USERNAME_RULES, username_max=USERNAME_MAX)
