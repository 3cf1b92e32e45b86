"""How long a login lasts, by the trust level it reached (TR-03160-1; docs/architecture.md,
"Trust levels"). No Flask here: the SSO flow reads it for SessionNotOnOrAfter, the server-side
sessions (:mod:`idp.security.sessions`) for when a session ends.
"""

from __future__ import annotations

from datetime import timedelta
from typing import NamedTuple


class Lifetime(NamedTuple):
    """A session ends ``absolute`` after the login and ``idle`` after its last request."""

    absolute: timedelta
    idle: timedelta


# The higher the level, the shorter: an eID login ("hoch") lasts 30 minutes, 5 without a
# request. The configured IDP_SESSION_* times can only shorten them.
LIFETIMES: dict[int, Lifetime] = {
    1: Lifetime(timedelta(hours=12), timedelta(minutes=60)),
    2: Lifetime(timedelta(hours=12), timedelta(minutes=60)),
    3: Lifetime(timedelta(hours=2), timedelta(minutes=30)),
    4: Lifetime(timedelta(minutes=30), timedelta(minutes=5)),
}
