"""How long a login lasts, by the trust level it reached (TR-03160-1; docs/architecture.md,
"Trust levels"). No Flask here: the SSO flow reads it for SessionNotOnOrAfter, the server-side
sessions (:mod:`idp.security.sessions`) for when a session ends.
"""

from __future__ import annotations

from datetime import timedelta
from typing import NamedTuple

from idp.config import Config

# The levels a login may reach (STORK QAA 1 to 4, TR-03160-1).
LEVELS = frozenset({1, 2, 3, 4})


class Lifetime(NamedTuple):
    """A session ends ``absolute`` after the login and ``idle`` after its last request."""

    absolute: timedelta
    idle: timedelta


def session_lifetimes(config: Config) -> dict[int, Lifetime]:
    """The lifetime of a session by the level of its login (1 to 4), as configured
    (``IDP_SESSION_*``; the start refuses a higher level that lasts longer than a lower)."""
    return {level: Lifetime(timedelta(minutes=absolute), timedelta(minutes=idle))
            for level, (absolute, idle) in config.session_minutes.items()}

