""""Registrieren mit der Online-Ausweisfunktion": the identity comes from the card, the citizen
adds only what a card cannot give (docs/architecture.md, "Registrieren mit der
Online-Ausweisfunktion").

No Flask here. The e-mail address is verified by the activation link as at every registration
(:func:`idp.accounts.registration.register`); username and password are optional, a second way
in. Without them the account gets a generated username and a random password nobody knows, so
it logs in with the card only.
"""

from __future__ import annotations

import secrets
from typing import Any

from sqlalchemy import delete, update
from sqlalchemy.orm import Session

from idp.accounts.context import AccountContext, FormErrors
from idp.accounts.identity import InvalidInput, normalise_email
from idp.accounts.models import Citizen, Salutation
from idp.accounts.registration import RegistrationDraft, check_registration, register
from idp.eid.upgrade import UPGRADED_LEVEL
from idp.testing.models import EidTestCard

CARD_HAS_ACCOUNT = ("Zu diesem Ausweis gibt es bereits ein Servicekonto. Bitte melden Sie sich "
                    "mit der Online-Ausweisfunktion an.")
BOTH_OR_NEITHER = ("Bitte geben Sie Benutzername und Passwort an, oder lassen Sie beide Felder "
                   "leer, um sich nur mit dem Ausweis anzumelden.")
PRIVACY = ("Bitte bestätigen Sie, dass Sie die Datenschutzerklärung gelesen haben und "
           "akzeptieren.")


def check(ctx: AccountContext, card: EidTestCard, form: dict[str, Any]) -> RegistrationDraft:
    """The registration of ``card``'s holder with the e-mail address (and optional username and
    password) of ``form``; :class:`FormErrors` names every problem."""
    if card.citizen_id is not None:
        raise FormErrors.single("", CARD_HAS_ACCOUNT)
    # The names are the card's: never typed, never taken from the form.
    from_card = {"salutation": Salutation.KEINE_ANGABE.value, "given_name": card.given_name,
                 "surname": card.surname, "birth_name": card.birth_name or ""}
    username, password = str(form.get("username") or ""), str(form.get("password") or "")
    if username or password or form.get("password_confirm"):
        if not (username and password):
            raise FormErrors.single("username", BOTH_OR_NEITHER)
        return check_registration(ctx, {**form, **from_card})
    errors: dict[str, list[str]] = {}
    email = ""
    try:
        email = normalise_email(str(form.get("email") or ""))
    except InvalidInput as error:
        errors["email"] = [str(error)]
    if not form.get("privacy_accepted"):
        errors["privacy_accepted"] = [PRIVACY]
    if errors:
        raise FormErrors(errors)
    # A username nobody types and a password nobody knows: this account logs in with the card.
    return RegistrationDraft(**from_card, email=email,
                             username="eID-" + secrets.token_hex(6),
                             password_hash=ctx.hasher.hash(secrets.token_urlsafe(32)))


def register_with_card(ctx: AccountContext, card: EidTestCard,
                       draft: RegistrationDraft) -> Citizen | None:
    """Store the registration (with its activation mail), at level "hoch", and give it the
    card. None when the address has an account already (its owner is told by mail, as at every
    registration); :class:`FormErrors` when the card found an account meanwhile."""
    citizen = register(ctx, draft)
    if citizen is None:
        return None
    if not _claim(ctx.session, card.id, citizen.id):
        ctx.session.execute(delete(Citizen).where(Citizen.id == citizen.id))
        ctx.session.commit()
        raise FormErrors.single("", CARD_HAS_ACCOUNT)
    citizen.trust_level = UPGRADED_LEVEL
    ctx.session.commit()
    return citizen


def _claim(session: Session, card_id: int, citizen_id: int) -> bool:
    """Give the card to the account unless it has one (one statement: no two accounts win)."""
    claimed = session.execute(update(EidTestCard).where(
        EidTestCard.id == card_id, EidTestCard.citizen_id.is_(None)).values(
        citizen_id=citizen_id))
    return bool(claimed.rowcount == 1)  # type: ignore[attr-defined]
