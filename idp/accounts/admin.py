"""Operator actions on accounts (the ``servicekonto user`` commands) and account removal."""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete

from idp.accounts import registration
from idp.accounts.context import AccountContext, FormErrors
from idp.accounts.models import AccountStatus, Citizen
from idp.mail.models import OutboxMail
from idp.security.models import BrowserSession


def create_active_citizen(ctx: AccountContext, form: dict[str, Any]) -> Citizen:
    """An account made by the operator: same checks as a registration, active at once."""
    draft = registration.check_registration(ctx, form)
    citizen = registration.register(ctx, draft, send_activation=False)
    if citizen is None:
        raise FormErrors.single("email", "Für diese E-Mail-Adresse gibt es bereits ein Konto.")
    activate_without_link(ctx, citizen)
    return citizen


def activate_without_link(ctx: AccountContext, citizen: Citizen) -> None:
    citizen.status = AccountStatus.ACTIVE
    citizen.activated_at = citizen.activated_at or ctx.now
    ctx.session.commit()


def delete_citizen(ctx: AccountContext, citizen: Citizen) -> None:
    """Remove the account and every piece of personal data we hold about it.

    Sessions and links go with the account (foreign keys cascade); mails to its address, sent
    or not, are deleted too, since they hold names and the address.
    """
    ctx.session.execute(delete(BrowserSession).where(BrowserSession.citizen_id == citizen.id))
    ctx.session.execute(delete(OutboxMail).where(
        OutboxMail.recipient.in_({citizen.email, citizen.email.lower()})))
    ctx.session.execute(delete(Citizen).where(Citizen.id == citizen.id))
    ctx.session.commit()
