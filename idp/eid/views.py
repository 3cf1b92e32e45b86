"""The simulated AusweisApp step: which provider asks for which data, a test card, the PIN.

Thin: parse, call :func:`idp.eid.simulation.read_card`, render or log in. Registered only when
IDP_EID_SIMULATION is on (docs/configuration.md); every page says it is a simulation.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue

from idp.clock import utcnow
from idp.db import db
from idp.eid.simulation import CardRead, Reading, open_card, read_card, test_cards
from idp.eid.upgrade import EXPIRED_CHOICE, proposal, upgrade
from idp.testing.models import EidTestCard
from idp.web import continuation
from idp.web.context import current_citizen, login_required, server_session
from idp.web.forms import single_values

eid = Blueprint("eid", __name__)

# Who asks when the citizen logs in at the Servicekonto itself (no portal behind it).
OWN_PROVIDER = "Servicekonto"
OWN_DATA = ("Vorname", "Nachname", "Geburtsname", "Geburtsdatum", "Geburtsort", "Anschrift",
            "Staatsangehörigkeit", "Ausweisart", "Pseudonym des Ausweises")
STATUS = {Reading.NO_CARD: 422, Reading.PIN_FORMAT: 422, Reading.WRONG_PIN: 401,
          Reading.PIN_BLOCKED: 403, Reading.EXPIRED: 403, Reading.REVOKED: 403,
          Reading.NO_ACCOUNT: 403}


@eid.route("/ausweis", methods=["GET", "POST"])
def start() -> ResponseReturnValue:
    """The AusweisApp step; a SAML login is named by its reference (``?anfrage=``), as on the
    login page (idp/web/continuation.py)."""
    transaction = continuation.transaction_in_request()
    if request.method == "GET":
        return _page(transaction)
    form = single_values(request.form, ("card", "pin"))
    card_id = _card_id(form["card"])
    result = read_card(db.session, card_id, form["pin"])
    if result.reading is Reading.SUCCESS and result.citizen_id is not None:
        server_session().log_in(result.citizen_id, utcnow(), result.trust_level,
                                result.identity)
        return redirect(continuation.after_login(transaction))
    return _page(transaction, result.message, card_id), STATUS[result.reading]


def _card_id(field: str) -> int | None:
    """The chosen card's id; anything but a short number is no choice."""
    return int(field) if field.isascii() and field.isdigit() and len(field) < 10 else None


def _page(transaction: str | None, error: str | None = None, chosen: int | None = None,
          upgrade: bool = False) -> str:
    offer = continuation.offered(transaction)
    if upgrade:
        return render_template(
            "idp/eid.html", transaction=None, error=error, chosen=chosen,
            cards=test_cards(db.session), provider=UPGRADE_PROVIDER, data=UPGRADE_DATA,
            purpose="Konto hochstufen", action_url=url_for("eid.upgrade_read"),
            cancel_url=url_for("selfservice.account"), only_eid=False)
    return render_template(
        "idp/eid.html", transaction=transaction, error=error, chosen=chosen,
        cards=test_cards(db.session),
        provider=offer["portal"] if offer else OWN_PROVIDER,
        data=offer["data"] if offer and offer["data"] else OWN_DATA,
        # Cancelling where only the eID reaches the portal's level ends the SAML login.
        only_eid=offer is not None and offer["methods"] == ["eID"])


# --- "Konto hochstufen" on "Mein Servicekonto" -------------------------------------------------

# The card read for hochstufen, until the citizen confirms (docs/architecture.md, "Konto
# hochstufen"); a card read longer ago must be read again.
UPGRADE_KEY = "upgrade_card"
UPGRADE_WINDOW = timedelta(minutes=10)
UPGRADE_PROVIDER = "Servicekonto – Konto hochstufen"
UPGRADE_DATA = ("Vorname", "Nachname", "Geburtsname", "Geburtsdatum", "Pseudonym des Ausweises")
UPGRADED = ("Ihr Servicekonto ist jetzt hochgestuft: Ihre Daten stammen aus Ihrem Ausweis, und "
            "Sie können sich mit der Online-Ausweisfunktion anmelden.")


@eid.route("/konto/hochstufen", methods=["GET", "POST"])
@login_required
def upgrade_read() -> ResponseReturnValue:
    """Read the card once (the AusweisApp step), then confirm on the next page."""
    if request.method == "GET":
        return _page(None, upgrade=True)
    form = single_values(request.form, ("card", "pin"))
    card_id = _card_id(form["card"])
    opened = open_card(db.session, card_id, form["pin"])
    if isinstance(opened, CardRead):
        return _page(None, opened.message, card_id, upgrade=True), STATUS[opened.reading]
    server_session()[UPGRADE_KEY] = {"card": opened.id, "at": utcnow().isoformat()}
    return redirect(url_for("eid.upgrade_confirm"))


@eid.route("/konto/hochstufen/bestaetigen", methods=["GET", "POST"])
@login_required
def upgrade_confirm() -> ResponseReturnValue:
    """The old and new values and "Konto hochstufen"; or why it cannot be done."""
    card = _card_read_for_upgrade()
    citizen = current_citizen()
    assert citizen is not None  # login_required
    if card is None:
        server_session().pop(UPGRADE_KEY, None)
        return _page(None, EXPIRED_CHOICE, upgrade=True), 409
    if request.method == "GET":
        checked = proposal(citizen, card)
    else:
        checked = upgrade(db.session, citizen, card)
        server_session().pop(UPGRADE_KEY, None)
        if not checked.refusals:
            flash(UPGRADED)
            return redirect(url_for("selfservice.account"))
    return render_template("idp/eid_upgrade.html", proposal=checked), \
        409 if checked.refusals else 200


def _card_read_for_upgrade() -> EidTestCard | None:
    kept = server_session().get(UPGRADE_KEY)
    if not isinstance(kept, dict):
        return None
    try:
        read_at = datetime.fromisoformat(kept["at"])
    except (KeyError, TypeError, ValueError):
        return None
    if read_at + UPGRADE_WINDOW <= utcnow():
        return None
    return db.session.get(EidTestCard, kept.get("card"))
