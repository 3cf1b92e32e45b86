""""Meine Zustimmungen": the citizen's consents per portal, each revocable.

Thin: read the form, call one function of :mod:`idp.consent.records`, pick a page.
"""

from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, url_for
from flask.typing import ResponseReturnValue

from idp.clock import utcnow
from idp.consent import records
from idp.container import app_parts
from idp.db import db
from idp.german import local_time
from idp.web.context import current_citizen, login_required
from idp.web.errors import error_page

consent = Blueprint("consent", __name__)

NOT_FOUND = "Diese Zustimmung gibt es in Ihrem Servicekonto nicht (mehr)."


def display_name_for(entity_id: str) -> str:
    """The portal's display name from the portal registry, else its entity id."""
    return app_parts().portal_names.get(entity_id) or entity_id


def _citizen_id() -> int:
    citizen = current_citizen()
    assert citizen is not None, "login_required lets only signed-in citizens through"
    return citizen.id


@consent.get("/konto/zustimmungen")
@login_required
def consents() -> ResponseReturnValue:
    return render_template("idp/consent_list.html",
                           consents=records.consents_of(db.session, _citizen_id()),
                           display_name_for=display_name_for, local_time=local_time)


@consent.post("/konto/zustimmungen/<int:consent_id>/widerrufen")
@login_required
def revoke(consent_id: int) -> ResponseReturnValue:
    revoked = records.revoke_consent(db.session, _citizen_id(), consent_id, utcnow())
    if revoked is None:
        # Someone else's consent looks exactly like one that does not exist.
        return error_page(404, NOT_FOUND)
    portal = display_name_for(revoked.portal_entity_id)
    flash(f"Ihre Zustimmung zur Weitergabe Ihrer Daten an „{portal}“ wurde widerrufen. "
          "Das Portal erhält Ihre Daten erst wieder, wenn Sie bei der nächsten Anmeldung "
          "erneut zustimmen.")
    return redirect(url_for("consent.consents"))
