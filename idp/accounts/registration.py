"""Registration with username and password, activation by e-mail, and the purge of stale ones."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from enum import Enum
from typing import Any

from sqlalchemy import delete, exists, select
from sqlalchemy.exc import IntegrityError

from idp.accounts import tokens
from idp.accounts.context import AccountContext, FormErrors
from idp.accounts.identity import (
    InvalidInput,
    check_personal_data,
    email_key,
    normalise_email,
    normalise_username,
    username_key,
)
from idp.accounts.models import AccountStatus, AccountToken, Citizen, Salutation, TokenPurpose
from idp.accounts.tokens import LinkState
from idp.observability import events


@dataclass(frozen=True)
class RegistrationDraft:
    """Checked registration data between "nächster Schritt" and "Daten speichern".

    It holds the password's hash only, so the draft may sit in the server-side session.
    """

    salutation: str
    given_name: str
    surname: str
    birth_name: str
    email: str
    username: str
    password_hash: str

    def to_dict(self) -> dict[str, str]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Any) -> RegistrationDraft | None:
        """The draft kept in the session, or None if there is none (or it is malformed)."""
        if not isinstance(data, dict) or set(data) != set(cls.__dataclass_fields__):
            return None
        if not all(isinstance(value, str) for value in data.values()):
            return None
        return cls(**data)

    @property
    def salutation_label(self) -> str:
        return Salutation(self.salutation).label


def check_registration(ctx: AccountContext, form: dict[str, Any]) -> RegistrationDraft:
    """Validate the first registration step; raise :class:`FormErrors` naming every problem."""
    errors: dict[str, list[str]] = {}
    try:
        values = check_personal_data(form)
    except FormErrors as error:
        values, errors = {}, dict(error.errors)
    for name, check in (("email", normalise_email), ("username", normalise_username)):
        try:
            values[name] = check(str(form.get(name) or ""))
        except InvalidInput as error:
            errors[name] = [str(error)]
    password = str(form.get("password") or "")
    if problems := ctx.policy.problems(password, values.get("username", "")):
        errors["password"] = problems
    if password != str(form.get("password_confirm") or ""):
        errors["password_confirm"] = ["Die beiden Passwörter stimmen nicht überein."]
    if not form.get("privacy_accepted"):
        errors["privacy_accepted"] = ["Bitte bestätigen Sie, dass Sie die "
                                      "Datenschutzerklärung gelesen haben und akzeptieren."]
    if "username" in values and not _username_free(ctx, values["username"]):
        errors["username"] = [USERNAME_TAKEN]
    if errors:
        raise FormErrors(errors)
    return RegistrationDraft(password_hash=ctx.hasher.hash(password), **values)


USERNAME_TAKEN = "Dieser Benutzername ist bereits vergeben. Bitte wählen Sie einen anderen."


def stale_registrations(ctx: AccountContext) -> Any:
    """Pending registrations whose every activation link has expired or was never issued."""
    usable_link = exists().where(
        AccountToken.citizen_id == Citizen.id,
        AccountToken.purpose == TokenPurpose.ACTIVATION,
        AccountToken.used_at.is_(None), AccountToken.voided_at.is_(None),
        AccountToken.expires_at > ctx.now)
    return (Citizen.status == AccountStatus.PENDING) & ~usable_link


def _username_free(ctx: AccountContext, username: str) -> bool:
    taken = ctx.session.scalar(select(Citizen.id).where(
        Citizen.username_key == username_key(username), ~stale_registrations(ctx)))
    return taken is None


def register(ctx: AccountContext, draft: RegistrationDraft,
             send_activation: bool = True) -> Citizen | None:
    """Store the registration and its activation mail in one transaction.

    If the address already has an account, no second account is made (None is returned) and the
    owner is told by mail instead; the page says the same either way, so nobody learns who is
    registered.
    """
    session = ctx.session
    # Expired registrations free their username and address at once, not only at the purge.
    session.execute(delete(Citizen).where(
        (Citizen.username_key == username_key(draft.username))
        | (Citizen.email_key == email_key(draft.email)),
        stale_registrations(ctx)))
    existing = session.scalar(select(Citizen).where(Citizen.email_key == email_key(draft.email)))
    if existing is not None:
        if ctx.outbox.may_mail(existing.email):
            ctx.outbox.enqueue(existing.email, "address_already_registered",
                               citizen=existing, links=ctx.links)
            session.commit()
        return None
    citizen = Citizen(
        username=draft.username, username_key=username_key(draft.username),
        email=draft.email, email_key=email_key(draft.email),
        salutation=Salutation(draft.salutation), given_name=draft.given_name,
        surname=draft.surname, birth_name=draft.birth_name or None,
        password_hash=draft.password_hash, status=AccountStatus.PENDING,
        created_at=ctx.now, password_changed_at=ctx.now,
        privacy_accepted_at=ctx.now, privacy_version=ctx.settings.privacy_version)
    session.add(citizen)
    try:
        session.flush()
    except IntegrityError:
        # Someone registered the same username or address a moment before us.
        session.rollback()
        if not _username_free(ctx, draft.username):
            raise FormErrors.single("username", USERNAME_TAKEN) from None
        return None
    if send_activation:
        _send_activation(ctx, citizen)
    session.commit()
    events.registered(citizen.id)
    return citizen


def _send_activation(ctx: AccountContext, citizen: Citizen) -> None:
    token = tokens.issue(ctx.session, citizen, TokenPurpose.ACTIVATION, ctx.now,
                         ctx.settings.activation_valid)
    ctx.outbox.enqueue(citizen.email, "activation", citizen=citizen,
                       link=ctx.links.activation(token),
                       activation_period=ctx.settings.activation_period)


def activation_state(ctx: AccountContext, token: str) -> LinkState:
    """The state of an activation link, for the page a GET shows (never uses the link up)."""
    return tokens.look_up(ctx.session, token, TokenPurpose.ACTIVATION, ctx.now).state


def activate(ctx: AccountContext, token: str) -> LinkState:
    """Use the activation link: USABLE means this call activated the account.

    Two concurrent calls with the same link activate once: the second sees USED.
    """
    lookup = tokens.look_up(ctx.session, token, TokenPurpose.ACTIVATION, ctx.now)
    if lookup.state is not LinkState.USABLE or lookup.token is None:
        return lookup.state
    if not tokens.use_up(ctx.session, lookup.token, ctx.now):
        ctx.session.rollback()
        return LinkState.USED
    citizen = lookup.token.citizen
    citizen.status = AccountStatus.ACTIVE
    citizen.activated_at = ctx.now
    ctx.session.commit()
    events.activated(citizen.id)
    return LinkState.USABLE


class Resend(Enum):
    SENT = "sent"
    REFUSED = "refused"  # unknown link, or the account is active already
    TOO_MANY = "too_many"  # the address got enough mails this hour (no mail bombing)


def resend_activation(ctx: AccountContext, token: str) -> Resend:
    """"Aktivierungslink erneut senden" from an expired or replaced link: a new link goes to
    the registered address and every older one stops working."""
    lookup = tokens.look_up(ctx.session, token, TokenPurpose.ACTIVATION, ctx.now)
    if lookup.token is None or lookup.state is LinkState.UNKNOWN:
        return Resend.REFUSED
    citizen = lookup.token.citizen
    if citizen.is_active:
        return Resend.REFUSED
    if not ctx.outbox.may_mail(citizen.email):
        return Resend.TOO_MANY
    _send_activation(ctx, citizen)
    ctx.session.commit()
    return Resend.SENT


def purge_expired_registrations(ctx: AccountContext) -> int:
    """Remove registrations never activated while a link was valid; return how many."""
    result = ctx.session.execute(
        delete(Citizen).where(stale_registrations(ctx))
        .execution_options(synchronize_session=False))
    ctx.session.commit()
    return int(result.rowcount)  # type: ignore[attr-defined]
