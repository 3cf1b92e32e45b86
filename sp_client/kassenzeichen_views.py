"""The mags pages "AUFTRAG: Kassenzeichen hinzufügen" and the demo's postal outbox ("Post").

The wording follows the mags citizen guide screen by screen.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from functools import wraps
from typing import Any

from flask import Blueprint, abort, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue

from idp.samlkit.bundid import BPK2, GIVEN_NAME, SURNAME
from sp_client import kassenzeichen as service
from sp_client.database import utcnow
from sp_client.extensions import portal_db
from sp_client.models import PostalLetter
from sp_client.sessions import current_session
from sp_client.web import error_page, form_fields, settings

kassenzeichen = Blueprint("kassenzeichen", __name__)

NO_KEY = ("Das Servicekonto.NRW hat Ihre Servicekonto-Kennung (bPK2) nicht übermittelt. Ohne "
          "sie können wir Ihnen keine Kassenzeichen zuordnen. Bitte melden Sie sich erneut an.")
DONE_KEY = "kassenzeichen_done"


def _citizen() -> service.Citizen | None:
    login = current_session().login
    if login is None:
        return None
    return service.Citizen(key=login.value(BPK2) or "", given_name=login.value(GIVEN_NAME) or "",
                           surname=login.value(SURNAME) or "")


def citizen_required(view: Callable[[service.Citizen], ResponseReturnValue]
                     ) -> Callable[[], ResponseReturnValue]:
    """Only for a logged-in citizen whose bPK2 we know (it is the key of the assignment)."""

    @wraps(view)
    def wrapper() -> ResponseReturnValue:
        citizen = _citizen()
        if citizen is None:
            return redirect(url_for("portal.login_page"))
        if not citizen.key:
            return error_page(403, NO_KEY)
        return view(citizen)

    return wrapper


@kassenzeichen.get("/kassenzeichen")
@citizen_required
def overview(citizen: service.Citizen) -> ResponseReturnValue:
    """ "Zuordnung Kassenzeichen": the table and the three buttons."""
    return render_template("portal/kassenzeichen.html",
                           records=service.assigned(portal_db.session, citizen.key))


@kassenzeichen.route("/kassenzeichen/hinzufuegen", methods=["GET", "POST"])
@citizen_required
def add(citizen: service.Citizen) -> ResponseReturnValue:
    """ "Kassenzeichen hinzufügen": a letter with a Bestätigungscode goes out by post."""
    if request.method == "GET":
        return render_template("portal/kassenzeichen_add.html", values={}, errors={})
    form = form_fields("kassenzeichen")
    try:
        record = service.request_code(portal_db.session, citizen, form["kassenzeichen"],
                                      settings().secret_key, settings().profile.display_name,
                                      settings().profile.phone, utcnow())
    except service.KassenzeichenError as error:
        return render_template("portal/kassenzeichen_add.html", values=form,
                               errors={"kassenzeichen": [error.message]}), 422
    return redirect(url_for("kassenzeichen.letter_sent", kz=record.kassenzeichen), code=303)


@kassenzeichen.get("/kassenzeichen/brief-versandt")
@citizen_required
def letter_sent(citizen: service.Citizen) -> ResponseReturnValue:
    try:
        shown = service.normalised_kassenzeichen(request.args.get("kz", ""))
    except service.KassenzeichenError:
        shown = None
    return render_template("portal/kassenzeichen_letter_sent.html", kassenzeichen=shown)


@kassenzeichen.route("/kassenzeichen/bestaetigungscode", methods=["GET", "POST"])
@citizen_required
def enter_code(citizen: service.Citizen) -> ResponseReturnValue:
    """ "Bestätigungscode eingeben" → OK."""
    if request.method == "GET":
        return render_template("portal/kassenzeichen_code.html", errors={})
    form = form_fields("code")
    try:
        confirmed = service.confirm_code(portal_db.session, citizen, form["code"],
                                         settings().secret_key, utcnow())
    except service.KassenzeichenError as error:
        return render_template("portal/kassenzeichen_code.html",
                               errors={"code": [error.message]}), 422
    current_session()[DONE_KEY] = {"kassenzeichen": confirmed.kassenzeichen,
                                   "code": confirmed.code, "automatic": list(confirmed.automatic)}
    return redirect(url_for("kassenzeichen.code_accepted"), code=303)


@kassenzeichen.get("/kassenzeichen/hinzugefuegt")
@citizen_required
def code_accepted(citizen: service.Citizen) -> ResponseReturnValue:
    """ "Kassenzeichen hinzugefügt … ist erfolgreich geprüft worden." → Beenden."""
    done: dict[str, Any] | None = current_session().get(DONE_KEY)
    if not isinstance(done, dict):
        return redirect(url_for("kassenzeichen.overview"))
    return render_template("portal/kassenzeichen_done.html", done=done,
                           phone=settings().profile.phone)


@kassenzeichen.post("/kassenzeichen/beenden")
@citizen_required
def finish(citizen: service.Citizen) -> ResponseReturnValue:
    current_session().pop(DONE_KEY, None)
    return redirect(url_for("kassenzeichen.overview"), code=303)


@kassenzeichen.app_context_processor
def _outbox_link() -> dict[str, Any]:
    return {"postal_outbox_shown": postal_outbox_shown}


def postal_outbox_shown() -> bool:
    """Whether this client may read the outbox: it holds every Bestätigungscode in clear."""
    portal = settings()
    # remote_addr is the peer of the connection (no forwarded header is trusted): behind
    # a proxy it is the proxy, so only an explicit opt-in shows the outbox there.
    return portal.show_postal_outbox and (portal.postal_outbox_remote
                                          or _from_this_machine(request.remote_addr))


@kassenzeichen.get("/post")
def postal_outbox() -> ResponseReturnValue:
    """The demo's "Post": every letter the portal sent, printable."""
    if not postal_outbox_shown():
        abort(404)
    return render_template("portal/post.html", letters=service.letters(portal_db.session))


@kassenzeichen.get("/post/<int:letter_id>")
def letter(letter_id: int) -> ResponseReturnValue:
    if not postal_outbox_shown():
        abort(404)
    found = portal_db.session.get(PostalLetter, letter_id)
    if found is None:
        abort(404)
    return render_template("portal/letter.html", letter=found)


def _from_this_machine(address: str | None) -> bool:
    """Whether the client's address is loopback (also as ::ffff:127.0.0.1)."""
    try:
        ip = ipaddress.ip_address(address or "")
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_loopback
