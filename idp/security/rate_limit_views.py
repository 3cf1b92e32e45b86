"""The form limits on the web: a decorator for the anonymous forms and the page that refuses.

A refused form gets "Zu viele Anfragen" (429) with ``Retry-After`` in seconds and the wait in
German words; the view itself does not run, so nothing is written or sent.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import timedelta
from functools import wraps
from typing import Any, TypeVar, cast

from flask import request

from idp.clock import utcnow
from idp.db import db
from idp.german import duration
from idp.security.rate_limits import LimitName, LimitReached
from idp.web.context import client_address, services
from idp.web.errors import error_page

F = TypeVar("F", bound=Callable[..., Any])

# What the client sent too many of, as the refusal says it.
_TOO_MANY: dict[LimitName, str] = {
    "register": "Registrierungen",
    "register_form": "Registrierungsformulare",
    "mail_request": "E-Mail-Anforderungen",
    "password_reset": "neue Passwörter",
}


def rate_limited(name: LimitName) -> Callable[[F], F]:
    """Count each POST to the decorated view against the limit ``name``; over it, answer with
    the refusal page instead of running the view. GETs (showing a form) are not counted."""

    def decorate(view: F) -> F:
        @wraps(view)
        def limited(*args: Any, **kwargs: Any) -> Any:
            if request.method == "POST":
                refusal = services().form_limiter(db.session).admit(
                    name, client_address(), utcnow())
                if refusal is not None:
                    return refusal_page(name, refusal)
            return view(*args, **kwargs)

        return cast(F, limited)

    return decorate


def refusal_page(name: LimitName, refusal: LimitReached) -> tuple[str, int, dict[str, str]]:
    """The German 429 page: who sent too many, and how long to wait (rounded up)."""
    seconds = max(1, math.ceil(refusal.retry_after.total_seconds()))
    wait = duration(timedelta(minutes=math.ceil(seconds / 60)))
    if refusal.overall:
        message = (f"Das Servicekonto erhält gerade sehr viele {_TOO_MANY[name]}. Bitte "
                   f"versuchen Sie es in {wait} erneut.")
    else:
        message = (f"Von Ihrem Internetanschluss kamen in kurzer Zeit zu viele "
                   f"{_TOO_MANY[name]}. Bitte versuchen Sie es in {wait} erneut.")
    page, status = error_page(429, message)
    return page, status, {"Retry-After": str(seconds)}
