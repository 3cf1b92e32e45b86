"""Citizen self-service: a new password through a reset link, and changes at "Mein Servicekonto".

Services in the manner of :mod:`idp.accounts.registration`: they take an
:class:`~idp.accounts.context.AccountContext` (session, clock, hasher, policy, mail) and never
Flask. Input a citizen must correct raises :class:`FormErrors`. Asking for a reset link or for
the username ("vergessen") is in :mod:`idp.accounts.forgotten`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.exc import IntegrityError

from idp.accounts import admin, tokens
from idp.accounts.context import AccountContext, FormErrors
from idp.accounts.identity import (
    NAME_FIELDS,
    InvalidInput,
    check_personal_data,
    email_key,
    normalise_email,
)
from idp.accounts.models import AccountToken, Citizen, Salutation, TokenPurpose
from idp.accounts.registration import stale_registrations
from idp.accounts.tokens import LinkState
from idp.mail.models import OutboxMail
from idp.mail.outbox import MAIL_WINDOW
from idp.observability import events
from idp.security.sessions import end_sessions_of
from idp.security.throttle import Throttle

# A signed-in citizen may ask for at most this many e-mail change links per window.
EMAIL_CHANGES_PER_CITIZEN = 5

CONFIRMATION_MISMATCH = "Die beiden Passwörter stimmen nicht überein."
NO_CURRENT_ENTERED = "Bitte geben Sie Ihr aktuelles Passwort ein."
CURRENT_NOT_MATCHING = "Das eingegebene Passwort ist nicht korrekt."
TOO_MANY_ATTEMPTS = ("Es gab zu viele Fehlversuche mit Ihrem Passwort. Bitte warten Sie "
                     "einen Moment und versuchen Sie es dann erneut.")
EMAIL_UNCHANGED = "Das ist bereits die E-Mail-Adresse Ihres Servicekontos."
EMAIL_TAKEN = ("Diese E-Mail-Adresse wird bereits für ein anderes Servicekonto verwendet. Ihre "
               "E-Mail-Adresse wurde nicht geändert.")
TOO_MANY_EMAIL_CHANGES = ("Sie haben in der letzten Stunde bereits mehrere Bestätigungslinks "
                          "angefordert. Bitte versuchen Sie es später erneut.")

PERSONAL_FIELDS = ("salutation", "given_name", "surname", "birth_name")


@dataclass(frozen=True)
class AccountHolder:
    """The signed-in citizen at "Mein Servicekonto", with what checking their password needs."""

    citizen: Citizen
    throttle: Throttle
    address: str  # the client's address, for the throttle
    session_id: str | None  # the browser session that stays logged in after a change


@dataclass(frozen=True)
class LinkOutcome:
    """What using a link did: ``state`` USABLE means this call used it."""

    state: LinkState
    citizen_id: int | None = None
    new_email: str | None = None

    @property
    def done(self) -> bool:
        return self.state is LinkState.USABLE


# --- the reset link (asking for it: idp.accounts.forgotten) ------------------------------


def password_reset_state(ctx: AccountContext, token: str) -> LinkState:
    """The state of a reset link, for the form a GET shows (never uses the link up)."""
    return tokens.look_up(ctx.session, token, TokenPurpose.PASSWORD_RESET, ctx.now).state


def reset_password(ctx: AccountContext, throttle: Throttle, token: str, password: str,
                   confirmation: str) -> LinkOutcome:
    """Set a new password through a reset link; end every session of the citizen.

    A rejected password leaves the link usable. Of two concurrent calls with the same link
    exactly one succeeds; the other sees USED.
    """
    lookup = tokens.look_up(ctx.session, token, TokenPurpose.PASSWORD_RESET, ctx.now)
    if lookup.state is not LinkState.USABLE or lookup.token is None:
        return LinkOutcome(lookup.state)
    citizen = lookup.token.citizen
    _check_new_password(ctx, citizen, password, confirmation)
    # Hash before using the link up: the row lock of use_up is then held only briefly.
    password_hash = ctx.hasher.hash(password)
    if not tokens.use_up(ctx.session, lookup.token, ctx.now):
        ctx.session.rollback()
        return LinkOutcome(LinkState.USED)
    _set_password(ctx, citizen, password_hash, keep_session=None, reset=True)
    ctx.session.commit()
    events.password_changed(citizen.id, through_reset_link=True)
    # The owner proved control of the mailbox: failed logins of a guesser no longer count.
    throttle.clear_account(citizen.username_key)
    return LinkOutcome(LinkState.USABLE, citizen.id)


# --- "Mein Servicekonto" -------------------------------------------------------------------


def personal_data(citizen: Citizen) -> dict[str, str]:
    """The personal data as the edit form shows it."""
    return {"salutation": str(citizen.salutation), "given_name": citizen.given_name,
            "surname": citizen.surname, "birth_name": citizen.birth_name or ""}


# An account whose identity a card gave (eID registration or "Konto hochstufen", idp/eid/) keeps
# the card's names: they are released as the card's, so only the Anrede may change here.
CARD_LEVEL = 3
NAME_FROM_CARD = ("{subject} stammt aus Ihrem Ausweis und kann hier nicht geändert werden.")


def names_from_card(citizen: Citizen) -> bool:
    """Whether the account's names are its card's (level "substantiell" or "hoch")."""
    return citizen.trust_level >= CARD_LEVEL


def update_personal_data(ctx: AccountContext, citizen: Citizen, form: dict[str, Any]) -> None:
    """Change Anrede, Vorname, Nachname and Geburtsname; of names from a card only the Anrede
    (a changed name is refused, an omitted one kept)."""
    if names_from_card(citizen):
        current = personal_data(citizen)
        if changed := {field: [NAME_FROM_CARD.format(subject=NAME_FIELDS[field].subject)]
                       for field in NAME_FIELDS if form.get(field) not in ("", None,
                                                                         current[field])}:
            raise FormErrors(changed)
        form = form | {field: current[field] for field in NAME_FIELDS}
    values = check_personal_data(form)
    citizen.salutation = Salutation(values["salutation"])
    citizen.given_name = values["given_name"]
    citizen.surname = values["surname"]
    citizen.birth_name = values["birth_name"] or None
    ctx.session.commit()


def pending_email_change(ctx: AccountContext, citizen: Citizen) -> str | None:
    """The new address still waiting for its confirmation link, if any."""
    return ctx.session.scalar(
        select(AccountToken.new_email)
        .where(AccountToken.citizen_id == citizen.id,
               AccountToken.purpose == TokenPurpose.EMAIL_CHANGE,
               AccountToken.used_at.is_(None), AccountToken.voided_at.is_(None),
               AccountToken.expires_at > ctx.now)
        .order_by(AccountToken.id.desc()).limit(1))


def request_email_change(ctx: AccountContext, holder: AccountHolder, new_email: str,
                         password: str) -> str:
    """Mail a confirmation link to the new address; return that address.

    The address changes only when the link is confirmed. Whether another account uses the
    address is not said here (that would reveal who is registered); the confirmation tells the
    owner of the new mailbox.
    """
    citizen = holder.citizen
    errors: dict[str, list[str]] = {}
    try:
        address = normalise_email(new_email)
    except InvalidInput as error:
        errors["email"] = [str(error)]
    else:
        if email_key(address) == citizen.email_key:
            errors["email"] = [EMAIL_UNCHANGED]
    if problem := _check_current_password(ctx, holder, password):
        errors["password"] = [problem]
    if errors:
        raise FormErrors(errors)
    recent = ctx.session.scalar(select(func.count()).select_from(AccountToken).where(
        AccountToken.citizen_id == citizen.id, AccountToken.purpose == TokenPurpose.EMAIL_CHANGE,
        AccountToken.created_at > ctx.now - MAIL_WINDOW))
    if (recent or 0) >= EMAIL_CHANGES_PER_CITIZEN:
        raise FormErrors.single("", TOO_MANY_EMAIL_CHANGES)
    token = tokens.issue(ctx.session, citizen, TokenPurpose.EMAIL_CHANGE, ctx.now,
                         ctx.settings.email_change_valid, new_email=address)
    ctx.outbox.enqueue(address, "email_change", citizen=citizen, new_email=address,
                       link=ctx.links.email_change(token),
                       period=ctx.settings.email_change_period)
    ctx.session.commit()
    events.email_change_requested(citizen.id)
    return address


def email_change_state(ctx: AccountContext, token: str) -> LinkOutcome:
    """The state of a confirmation link and its new address (read only, for the GET page)."""
    lookup = tokens.look_up(ctx.session, token, TokenPurpose.EMAIL_CHANGE, ctx.now)
    if lookup.state is not LinkState.USABLE or lookup.token is None:
        return LinkOutcome(lookup.state)
    return LinkOutcome(lookup.state, lookup.token.citizen_id, lookup.token.new_email)


def confirm_email_change(ctx: AccountContext, token: str) -> LinkOutcome:
    """Use a confirmation link: the account gets the new address; the old one is told.

    Raises :class:`FormErrors` (field ``email``) when another account has the address by now;
    nothing changes then and the link stays as it was.
    """
    lookup = tokens.look_up(ctx.session, token, TokenPurpose.EMAIL_CHANGE, ctx.now)
    if lookup.state is not LinkState.USABLE or lookup.token is None:
        return LinkOutcome(lookup.state)
    record, citizen = lookup.token, lookup.token.citizen
    new_email = record.new_email
    assert new_email is not None, "an e-mail change link always names its new address"
    key = email_key(new_email)
    # A registration never activated in time gives its address up, as at registration.
    ctx.session.execute(delete(Citizen).where(Citizen.email_key == key, Citizen.id != citizen.id,
                                              stale_registrations(ctx)))
    if ctx.session.scalar(select(Citizen.id).where(Citizen.email_key == key,
                                                   Citizen.id != citizen.id)) is not None:
        ctx.session.rollback()
        raise FormErrors.single("email", EMAIL_TAKEN)
    if not tokens.use_up(ctx.session, record, ctx.now):
        ctx.session.rollback()
        return LinkOutcome(LinkState.USED)
    old_email = citizen.email
    try:
        citizen.email, citizen.email_key = new_email, key
        ctx.session.flush()
        # Reset links went to the old address, which may be the reason for the change.
        _void_open_links(ctx, citizen)
        ctx.outbox.enqueue(old_email, "email_change_notice", citizen=citizen,
                           old_email=old_email, new_email=new_email, links=ctx.links)
        ctx.session.commit()
    except IntegrityError:
        # Another account took the address between our check and the commit.
        ctx.session.rollback()
        raise FormErrors.single("email", EMAIL_TAKEN) from None
    events.email_changed(citizen.id)
    return LinkOutcome(LinkState.USABLE, citizen.id, new_email)


def change_password(ctx: AccountContext, holder: AccountHolder, form: dict[str, Any]) -> None:
    """Replace the password after checking the current one; end every other session."""
    citizen = holder.citizen
    errors: dict[str, list[str]] = {}
    if problem := _check_current_password(ctx, holder, str(form.get("current_password") or "")):
        errors["current_password"] = [problem]
    password = str(form.get("password") or "")
    try:
        _check_new_password(ctx, citizen, password, str(form.get("password_confirm") or ""))
    except FormErrors as error:
        errors |= error.errors
    if errors:
        raise FormErrors(errors)
    _set_password(ctx, citizen, ctx.hasher.hash(password), keep_session=holder.session_id,
                  reset=False)
    ctx.session.commit()
    events.password_changed(citizen.id, through_reset_link=False)


def delete_account(ctx: AccountContext, holder: AccountHolder, password: str) -> None:
    """Delete the account and all personal data we hold about it, after checking the password."""
    if problem := _check_current_password(ctx, holder, password):
        raise FormErrors.single("password", problem)
    remove_account(ctx, holder.citizen, holder.throttle)


def remove_account(ctx: AccountContext, citizen: Citizen, throttle: Throttle) -> None:
    """Delete the account and all personal data we hold about it (no password asked: the
    caller checked who asks; the QA workbench deletes test citizens with it)."""
    # delete_citizen removes mails to the current address; links to a new address not yet
    # confirmed carry the citizen's name too. Mails of another account at that address stay.
    other_addresses = select(AccountToken.new_email).where(
        AccountToken.citizen_id == citizen.id, AccountToken.purpose == TokenPurpose.EMAIL_CHANGE,
        AccountToken.new_email.is_not(None))
    in_use = select(Citizen.email).where(Citizen.id != citizen.id)
    ctx.session.execute(delete(OutboxMail).where(OutboxMail.recipient.in_(other_addresses),
                                                 OutboxMail.recipient.not_in(in_use)))
    key, citizen_id = citizen.username_key, citizen.id
    admin.delete_citizen(ctx, citizen)
    events.account_deleted(citizen_id)
    # The throttle counter is keyed by the username: data about the account, so it goes too.
    throttle.clear_account(key)


# --- shared steps --------------------------------------------------------------------------


def _check_new_password(ctx: AccountContext, citizen: Citizen, password: str,
                        confirmation: str) -> None:
    errors: dict[str, list[str]] = {}
    if problems := ctx.policy.problems(password, citizen.username):
        errors["password"] = problems
    if password != confirmation:
        errors["password_confirm"] = [CONFIRMATION_MISMATCH]
    if errors:
        raise FormErrors(errors)


def _check_current_password(ctx: AccountContext, holder: AccountHolder,
                            password: str) -> str | None:
    """None if ``password`` is the citizen's; else the message for the form.

    Failures count towards the login throttle of the account: a stolen session must not turn
    these forms into an unthrottled way of guessing the password.
    """
    key = holder.citizen.username_key
    if not password:
        return NO_CURRENT_ENTERED
    if holder.throttle.blocked(key, holder.address, ctx.now):
        return TOO_MANY_ATTEMPTS
    if ctx.hasher.verify(holder.citizen.password_hash, password):
        return None
    holder.throttle.record_failure(key, holder.address, ctx.now)
    return CURRENT_NOT_MATCHING


def _set_password(ctx: AccountContext, citizen: Citizen, password_hash: str,
                  keep_session: str | None, reset: bool) -> None:
    """The new hash, the end of other sessions and open links, and a notice to the owner."""
    citizen.password_hash = password_hash
    citizen.password_changed_at = ctx.now
    # Whoever knew the old password may hold a session or have asked for a link: end both.
    end_sessions_of(ctx.session, citizen.id, keep=keep_session)
    _void_open_links(ctx, citizen)
    ctx.outbox.enqueue(citizen.email, "password_changed", citizen=citizen, links=ctx.links,
                       reset=reset)


def _void_open_links(ctx: AccountContext, citizen: Citizen) -> None:
    """Void the citizen's unused reset and e-mail change links."""
    ctx.session.execute(
        update(AccountToken)
        .where(AccountToken.citizen_id == citizen.id,
               AccountToken.purpose.in_((TokenPurpose.PASSWORD_RESET, TokenPurpose.EMAIL_CHANGE)),
               AccountToken.used_at.is_(None), AccountToken.voided_at.is_(None))
        .values(voided_at=ctx.now)
        .execution_options(synchronize_session=False))

