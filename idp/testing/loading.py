"""Loading personas as accounts: ``servicekonto persona load`` and ``demo --seed``.

Loading is idempotent: a persona whose account exists is left as it is (a persona locked by
the throttle is locked again, since a lock lapses after an hour), so loading twice gives the
same accounts. ``replace`` deletes such an account and makes it anew from its file.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from sqlalchemy import select

from idp.accounts import registration
from idp.accounts.context import AccountContext
from idp.accounts.identity import username_key
from idp.accounts.models import Citizen
from idp.security.throttle import Throttle
from idp.testing import citizens
from idp.testing.errors import WorkbenchError
from idp.testing.personas import Persona


class Outcome(enum.StrEnum):
    CREATED = "angelegt"
    PRESENT = "schon vorhanden, unverändert"
    REPLACED = "gelöscht und neu angelegt"
    FAILED = "nicht angelegt"


@dataclass(frozen=True)
class Loaded:
    """What loading did with one persona (``problem``: why it failed)."""

    persona: Persona
    outcome: Outcome
    problem: str = ""

    def line(self) -> str:
        """One line for the command line: name, username, password, level, what happened."""
        spec = self.persona.spec
        notes = [citizens.trust_class_ref(spec.trust_level)]
        if not spec.activated:
            notes.append("nicht aktiviert")
        if spec.locked:
            notes.append("gesperrt (Anmeldeverzögerung)")
        text = (f"{self.persona.name}: {spec.username} / {spec.password} "
                f"({', '.join(notes)}): {self.outcome}")
        return f"{text}: {self.problem}" if self.problem else text


def load_personas(ctx: AccountContext, throttle: Throttle, personas: list[Persona],
                  replace: bool = False) -> list[Loaded]:
    """Make an account of each persona that has none (or, with ``replace``, anew); a persona
    that cannot be made (its address belongs to another account) fails alone."""
    return [_load(ctx, throttle, persona, replace) for persona in personas]


def _load(ctx: AccountContext, throttle: Throttle, persona: Persona, replace: bool) -> Loaded:
    spec = persona.spec
    # A registration never activated in time counts as gone (registering anew removes it).
    existing = ctx.session.scalar(select(Citizen).where(
        Citizen.username_key == username_key(spec.username),
        ~registration.stale_registrations(ctx)))
    if existing is not None and not replace:
        if spec.locked:
            citizens.lock(throttle, existing, ctx.now)
        return Loaded(persona, Outcome.PRESENT)
    if existing is not None:
        citizens.delete_citizen(ctx, throttle, spec.username)
    try:
        citizens.create_citizen(ctx, throttle, spec)
    except WorkbenchError as error:
        ctx.session.rollback()
        details = [message for messages in error.fields.values() for message in messages]
        return Loaded(persona, Outcome.FAILED, " ".join([error.message, *details]))
    return Loaded(persona, Outcome.REPLACED if existing is not None else Outcome.CREATED)
