"""Test citizens: made from a persona or from a few fields, and what QA does to them.

Services without Flask, shared by the test-control API and ``servicekonto testing``/``persona``.
A test citizen is an ordinary account, registered through the registration's own checks and
steps (idp/accounts/registration.py); an account that is not activated waits for its
activation mail like any other.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from idp.accounts import registration
from idp.accounts.admin import activate_without_link
from idp.accounts.context import AccountContext, FormErrors
from idp.accounts.identity import email_key, username_key
from idp.accounts.models import Citizen
from idp.accounts.selfservice import remove_account
from idp.consent.records import consents_of, revoke_consent
from idp.portals.policy import TRUST_LEVELS
from idp.security.sessions import end_sessions_of
from idp.security.throttle import ACCOUNT_RULE, Throttle
from idp.testing.cards import EidCard, card_owner, store_card
from idp.testing.errors import Conflict, Invalid, NotFound, WorkbenchError

# The client address the failures of a persona locked by the throttle are counted for: from
# TEST-NET-1 (RFC 5737), which no real client has.
LOCK_ADDRESS = "192.0.2.13"


def trust_class_ref(level: int) -> str:
    return f"STORK-QAA-Level-{level}"


@dataclass(frozen=True)
class CitizenSpec:
    """Everything a test citizen is made from (a persona, or the API's fields)."""

    username: str
    password: str
    email: str
    given_name: str
    surname: str
    birth_name: str = ""
    salutation: str = "keine_angabe"
    trust_level: int = 1
    activated: bool = True
    # Locked by the login throttle (as after a hundred wrong passwords within the hour).
    locked: bool = False
    card: EidCard | None = None
    # The persona it comes from (its file name), for the card.
    persona: str = ""

    def registration_form(self) -> dict[str, str]:
        """The spec as the registration form would have been filled in."""
        return {"username": self.username, "email": self.email, "given_name": self.given_name,
                "surname": self.surname, "birth_name": self.birth_name,
                "salutation": self.salutation, "password": self.password,
                "password_confirm": self.password, "privacy_accepted": "yes"}


@dataclass(frozen=True)
class CreatedCitizen:
    """What ``POST /testing/api/citizens`` answers."""

    id: int
    username: str
    password: str
    trust_level: str


def generated_spec(fields: Mapping[str, Any]) -> CitizenSpec:
    """A spec for a citizen no one else uses: what ``fields`` (CitizenSpec's names) leave out
    is made up: a fresh username, a password the policy accepts, an address at example.org,
    the name Erika Mustermann."""
    username = str(fields.get("username") or f"Test{secrets.token_hex(4)}")
    made_up = {
        "username": username,
        # Letters of both cases, a digit and a special character; never a common password.
        "password": f"Pruef-{secrets.token_hex(6)}-Xy9!",
        "email": f"{username_key(username)}@example.org",
        "given_name": "Erika", "surname": "Mustermann"}
    return CitizenSpec(**(made_up | dict(fields)))


# What POST /testing/api/citizens and `servicekonto testing citizen create` take besides a
# persona, with the JSON type each must have.
TEXT_FIELDS = ("username", "password", "email", "given_name", "surname", "birth_name",
               "salutation")
FIELDS = (*TEXT_FIELDS, "trust_level", "activated")


def spec_from_fields(fields: Mapping[str, Any]) -> CitizenSpec:
    """A spec from the fields of a request (see :data:`FIELDS`); what they leave out is made
    up (:func:`generated_spec`). :class:`WorkbenchError` naming every field of a wrong type."""
    problems: dict[str, list[str]] = {}
    for name in sorted(set(fields) - set(FIELDS)):
        problems[name] = [f"Unbekanntes Feld; bekannt sind {', '.join(FIELDS)}."]
    values: dict[str, Any] = {}
    for name in TEXT_FIELDS:
        if (value := fields.get(name)) is not None:
            if isinstance(value, str):
                values[name] = value
            else:
                problems[name] = ["Muss ein Text sein."]
    if (activated := fields.get("activated")) is not None:
        if isinstance(activated, bool):
            values["activated"] = activated
        else:
            problems["activated"] = ["Muss true oder false sein."]
    if (level := fields.get("trust_level")) is not None:
        if level in TRUST_LEVELS:
            values["trust_level"] = TRUST_LEVELS[level]
        else:
            problems["trust_level"] = [f"Muss eines von {', '.join(TRUST_LEVELS)} sein."]
    if problems:
        raise WorkbenchError("Die Anfrage enthält ungültige Felder.", problems)
    return generated_spec(values)


def find_citizen(session: Session, username: str) -> Citizen:
    """The account of ``username`` (compared as login does, case-blind); :class:`NotFound`."""
    citizen = session.scalar(select(Citizen).where(Citizen.username_key == username_key(username)))
    if citizen is None:
        raise NotFound(f"Es gibt kein Konto mit dem Benutzernamen {username}.")
    return citizen


def create_citizen(ctx: AccountContext, throttle: Throttle, spec: CitizenSpec) -> CreatedCitizen:
    """Register the citizen of ``spec`` with the registration's checks, activated or waiting
    for its activation mail. :class:`Conflict` when the username, the address or the card is
    taken, :class:`Invalid` (naming every problem) when the registration form would refuse it.
    Nothing is left behind when it fails."""
    _check_free(ctx, spec)
    try:
        draft = registration.check_registration(ctx, spec.registration_form())
    except FormErrors as error:
        if registration.USERNAME_TAKEN in error.errors.get("username", []):
            raise Conflict(f"Den Benutzernamen {spec.username} gibt es schon.") from None
        raise Invalid("Die Angaben würden bei der Registrierung abgelehnt.",
                      error.errors) from None
    citizen = registration.register(ctx, draft, send_activation=not spec.activated)
    if citizen is None:  # the address was taken a moment ago
        raise Conflict(f"Für die E-Mail-Adresse {spec.email} gibt es schon ein Konto.")
    try:
        if spec.activated:
            activate_without_link(ctx, citizen)
        citizen.trust_level = spec.trust_level
        if spec.card is not None:
            store_card(ctx.session, spec.persona, spec.card, citizen)
        ctx.session.commit()
    except Exception:
        ctx.session.rollback()
        remove_account(ctx, citizen, throttle)
        raise
    if spec.locked:
        lock(throttle, citizen, ctx.now)
    return CreatedCitizen(citizen.id, citizen.username, spec.password,
                          trust_class_ref(spec.trust_level))


def _check_free(ctx: AccountContext, spec: CitizenSpec) -> None:
    """Refuse a taken username, address or card before anything is written (registration
    would otherwise mail the owner of a taken address)."""
    live = ~registration.stale_registrations(ctx)
    if ctx.session.scalar(select(Citizen.id).where(
            Citizen.username_key == username_key(spec.username), live)) is not None:
        raise Conflict(f"Den Benutzernamen {spec.username} gibt es schon.")
    owner = ctx.session.scalar(select(Citizen.username).where(
        Citizen.email_key == email_key(spec.email), live))
    if owner is not None:
        raise Conflict(f"Für die E-Mail-Adresse {spec.email} gibt es schon ein Konto "
                       f"({owner}).")
    if spec.card is not None and (holder := card_owner(ctx.session, spec.card.pseudonym)):
        raise Conflict(f"Die Ausweiskarte der Persona {spec.persona} gehört schon zum Konto "
                       f"{holder.username}.")


def lock(throttle: Throttle, citizen: Citizen, now: datetime) -> None:
    """Lock the account by the login throttle as a hundred wrong passwords would, until the
    window of an hour ends (or ``unlock``); a lock from before starts anew."""
    throttle.clear_account(citizen.username_key)
    for _ in range(ACCOUNT_RULE.max_failures):
        throttle.record_failure(citizen.username_key, LOCK_ADDRESS, now)


def delete_citizen(ctx: AccountContext, throttle: Throttle, username: str) -> None:
    """Delete the account as "Konto löschen" does: with its consents, sessions, links, mails,
    pairwise identifiers and throttle counter; its test card stays, held by no one."""
    remove_account(ctx, find_citizen(ctx.session, username), throttle)


def revoke_consents(session: Session, username: str, now: datetime) -> int:
    """Revoke every consent of the account (kept as revoked, as "Meine Zustimmungen" does), so
    that each portal asks again; the number of portals."""
    citizen = find_citizen(session, username)
    current = consents_of(session, citizen.id)
    for consent in current:
        revoke_consent(session, citizen.id, consent.consent_id, now)
    return len(current)


def unlock(session: Session, throttle: Throttle, username: str) -> None:
    """Clear the login throttle's counter of the account (as ``servicekonto user unlock``)."""
    throttle.clear_account(find_citizen(session, username).username_key)


def end_sessions(session: Session, username: str) -> int:
    """End every browser session of the account (it must log in again); how many."""
    ended = end_sessions_of(session, find_citizen(session, username).id)
    session.commit()
    return ended
