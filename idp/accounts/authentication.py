"""Login with username and password, throttled, without telling who exists."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from idp.accounts.context import AccountContext
from idp.accounts.identity import InvalidInput, normalise_username, username_key
from idp.accounts.models import Citizen
from idp.observability import events
from idp.security.throttle import Throttle

# One message for unknown user, wrong password and throttled: nobody learns which it was.
LOGIN_FAILED = ("Die Anmeldung ist fehlgeschlagen. Bitte prüfen Sie Benutzername und Passwort "
                "(Groß- und Kleinschreibung beachten!). Nach mehreren Fehlversuchen müssen Sie "
                "einen Moment warten, bevor Sie es erneut versuchen können.")
NOT_ACTIVATED = ("Ihr Servicekonto ist noch nicht aktiviert. Bitte öffnen Sie den Link aus der "
                 "E-Mail, die wir Ihnen nach der Registrierung gesendet haben.")


INVALID_USERNAME_KEY = "invalid username"


class LoginOutcome(Enum):
    SUCCESS = "success"
    FAILED = "failed"
    NOT_ACTIVATED = "not_activated"  # only said after the right password


@dataclass(frozen=True)
class LoginResult:
    outcome: LoginOutcome
    citizen: Citizen | None = None


def authenticate(ctx: AccountContext, throttle: Throttle, username: str, password: str,
                 address: str) -> LoginResult:
    """Check username and password; count failures; return who logged in, if anyone.

    Every failing path costs one argon2 verification, so that unknown users, wrong passwords
    and throttled attempts take the same time.
    """
    try:
        normalised = normalise_username(username)
    except InvalidInput:
        normalised = ""
    # Every malformed username shares one throttle counter under a key no real username can
    # have (a space is not allowed in one). Not NUL: PostgreSQL refuses NUL in text.
    key = username_key(normalised) if normalised else INVALID_USERNAME_KEY
    if throttle.blocked(key, address, ctx.now):
        ctx.hasher.verify(None, password)
        throttle.record_refusal(key, address, ctx.now)
        events.login_throttled(key)
        return LoginResult(LoginOutcome.FAILED)
    citizen = ctx.citizen_by_username_key(key) if normalised else None
    if citizen is not None and citizen.username != normalised:
        citizen = None  # "Max" is not "max": usernames are case-sensitive at login
    if not ctx.hasher.verify(citizen.password_hash if citizen else None, password):
        outcome = throttle.record_failure(key, address, ctx.now)
        if outcome.account_newly_throttled and citizen is not None and citizen.is_active:
            ctx.outbox.enqueue(citizen.email, "login_throttled", citizen=citizen,
                               links=ctx.links)
            ctx.session.commit()
        events.login_failed(key, citizen.id if citizen else None, "wrong_credentials",
                            account_throttled=outcome.account_newly_throttled)
        return LoginResult(LoginOutcome.FAILED)
    assert citizen is not None
    if not citizen.is_active:
        events.login_failed(key, citizen.id, "not_activated")
        return LoginResult(LoginOutcome.NOT_ACTIVATED)
    if ctx.hasher.needs_rehash(citizen.password_hash):
        # The configured cost changed since this hash was made: upgrade it while we can.
        citizen.password_hash = ctx.hasher.hash(password)
        ctx.session.commit()
    throttle.clear_account(key)
    events.login_succeeded(citizen.id)
    return LoginResult(LoginOutcome.SUCCESS, citizen)
