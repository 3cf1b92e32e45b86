""""Passwort vergessen" and "Benutzernamen vergessen": asked for anonymously, answered by mail.

Both must not tell anyone whether an account exists: not by their page, and not by how long the
page takes. So the request only records what was asked (:func:`request_password_reset`,
:func:`send_username_reminder`: the same single insert whatever the input), and the mail sender
answers it later, out of any request (:func:`answer_waiting_requests`): it looks the account up,
puts the reset link or the username reminder into the outbox, and deletes the request. What was
typed is never logged and stays in the database only until then.

Services in the manner of :mod:`idp.accounts.registration`: they take an
:class:`~idp.accounts.context.AccountContext` and never Flask.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from idp.accounts import tokens
from idp.accounts.context import AccountContext, FormErrors
from idp.accounts.identity import (
    InvalidInput,
    email_key,
    normalise_email,
    normalise_username,
    username_key,
)
from idp.accounts.models import Citizen, ForgottenPurpose, ForgottenRequest, TokenPurpose
from idp.mail.outbox import MAIL_WINDOW
from idp.observability import events

log = logging.getLogger(__name__)

# The audit outcome of a "vergessen" request whose mail went out.
MAILED = "mailed"
# How many waiting requests one sender takes at a time.
BATCH_SIZE = 50
# A request no sender answered within this long is dropped by `purge`: the citizen has asked
# again or given up by then, and the row holds what they typed.
REQUEST_KEPT = MAIL_WINDOW


# --- in the request: record what was asked -------------------------------------------------


def request_password_reset(ctx: AccountContext, username: str) -> None:
    """Record a request for a reset link for ``username``; the mail sender answers it.

    Raises :class:`FormErrors` only for a name no account can have (syntax alone: that reveals
    nothing about who exists). Whether an account has the name is not looked at here.
    """
    try:
        key = username_key(normalise_username(username))
    except InvalidInput as error:
        raise FormErrors.single("username", str(error)) from None
    _record(ctx, ForgottenPurpose.PASSWORD_RESET, key)


def send_username_reminder(ctx: AccountContext, email: str) -> None:
    """Record a request for the username of the account with address ``email``; the mail
    sender answers it. Raises :class:`FormErrors` only for a malformed address."""
    try:
        address = normalise_email(email)
    except InvalidInput as error:
        raise FormErrors.single("email", str(error)) from None
    _record(ctx, ForgottenPurpose.USERNAME_REMINDER, email_key(address))


def _record(ctx: AccountContext, purpose: ForgottenPurpose, key: str) -> None:
    # The same work for every input: one row written, no account read.
    ctx.session.add(ForgottenRequest(purpose=purpose, account_key=key, created_at=ctx.now))
    ctx.session.commit()


# --- in the mail sender: answer what was asked ---------------------------------------------


def answer_waiting_requests(new_session: Callable[[], Session],
                            context: Callable[[Session], AccountContext]) -> int:
    """Answer every waiting request, oldest first, each in a transaction of its own; return how
    many this call answered. ``context`` makes the unit of work on a session.

    Several senders may run at once: each request is answered by exactly one of them (whoever
    deletes its row first), and its mail is written in the transaction of that delete.
    """
    answered = 0
    while True:
        with new_session() as session:
            ctx = context(session)
            waiting = list(session.scalars(select(ForgottenRequest.id)
                                           .order_by(ForgottenRequest.id).limit(BATCH_SIZE)))
            session.commit()  # hold no read transaction while answering
            answered += sum(_answer_one(ctx, request_id) for request_id in waiting)
        if len(waiting) < BATCH_SIZE:
            return answered


def _answer_one(ctx: AccountContext, request_id: int) -> bool:
    """Take request ``request_id`` and put its mail, if any, into the outbox; False if another
    sender took it first."""
    session = ctx.session
    try:
        taken = session.execute(
            delete(ForgottenRequest).where(ForgottenRequest.id == request_id)
            .returning(ForgottenRequest.purpose, ForgottenRequest.account_key)).one_or_none()
        if taken is None:
            session.rollback()
            return False
        purpose, key = ForgottenPurpose(taken.purpose), taken.account_key
        if purpose is ForgottenPurpose.PASSWORD_RESET:
            citizen, outcome = _mail_reset_link(ctx, key)
        else:
            citizen, outcome = _mail_username(ctx, key)
        session.commit()
    except Exception as error:
        session.rollback()
        # Only the kind of error: a database error's text may quote what the citizen typed.
        log.error("forgotten request %s could not be answered (%s); dropped", request_id,
                  type(error).__name__)
        _drop(session, request_id)
        return False
    citizen_id = citizen.id if citizen is not None else None
    if purpose is ForgottenPurpose.PASSWORD_RESET:
        events.password_reset_requested(key, citizen_id, outcome)
    else:
        events.username_reminder_requested(citizen_id, outcome)
    return True


def _mail_reset_link(ctx: AccountContext, key: str) -> tuple[Citizen | None, str]:
    """A single-use reset link to an active account with username ``key``, if it may be mailed."""
    citizen = ctx.citizen_by_username_key(key)
    outcome = _outcome_of_request(ctx, citizen)
    if citizen is not None and outcome == MAILED:
        token = tokens.issue(ctx.session, citizen, TokenPurpose.PASSWORD_RESET, ctx.now,
                             ctx.settings.password_reset_valid)
        ctx.outbox.enqueue(citizen.email, "password_reset", citizen=citizen, links=ctx.links,
                           link=ctx.links.password_reset(token),
                           period=ctx.settings.password_reset_period)
    return citizen, outcome


def _mail_username(ctx: AccountContext, key: str) -> tuple[Citizen | None, str]:
    """The username, to an active account with e-mail key ``key``, if it may be mailed."""
    citizen = ctx.session.scalar(select(Citizen).where(Citizen.email_key == key))
    outcome = _outcome_of_request(ctx, citizen)
    if citizen is not None and outcome == MAILED:
        # To the stored address, not to what was typed: the mail goes only where it always went.
        ctx.outbox.enqueue(citizen.email, "username_reminder", citizen=citizen, links=ctx.links)
    return citizen, outcome


def _outcome_of_request(ctx: AccountContext, citizen: Citizen | None) -> str:
    """:data:`MAILED` if a request for ``citizen`` gets its mail, else why not, for the audit
    trail (whoever asked saw the same page either way)."""
    if citizen is None:
        return "unknown_account"
    if not citizen.is_active:
        return "not_activated"
    # At most MAILS_PER_ADDRESS mails an hour to one address: no mail bombing through the forms.
    if not ctx.outbox.may_mail(citizen.email):
        return "mail_limit"
    return MAILED


def _drop(session: Session, request_id: int) -> None:
    """Delete a request that cannot be answered, so that it does not fail every round."""
    try:
        session.execute(delete(ForgottenRequest).where(ForgottenRequest.id == request_id))
        session.commit()
    except Exception:
        session.rollback()  # the database is away: the next round meets the row again


# --- maintenance ---------------------------------------------------------------------------


def purge_unanswered_requests(session: Session, now: datetime,
                              keep: timedelta = REQUEST_KEPT) -> int:
    """Delete requests older than ``keep`` that no sender answered; return how many."""
    result = session.execute(delete(ForgottenRequest).where(
        ForgottenRequest.created_at < now - keep))
    return int(result.rowcount)  # type: ignore[attr-defined]
