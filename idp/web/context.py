"""Per-request access to the services and to the citizen who is logged in."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar, cast

from flask import redirect, request, session
from sqlalchemy import bindparam, select

from idp.accounts.context import AccountContext
from idp.accounts.models import AccountStatus, Citizen
from idp.container import Services, app_parts
from idp.db import db
from idp.security.sessions import ServerSession
from idp.web import continuation

F = TypeVar("F", bound=Callable[..., Any])
# Built once: cheaper than session.get, which builds its SELECT anew on every identity-map miss.
_ACTIVE_CITIZEN = select(Citizen).where(Citizen.id == bindparam("citizen_id"),
                                        Citizen.status == AccountStatus.ACTIVE)


def services() -> Services:
    return app_parts().services


def accounts() -> AccountContext:
    """A unit of work on the request's database session, at the request's time."""
    return services().accounts(db.session)


def server_session() -> ServerSession:
    return cast(ServerSession, session._get_current_object())  # type: ignore[attr-defined]


def current_citizen() -> Citizen | None:
    citizen_id = server_session().citizen_id
    if citizen_id is None:
        return None
    citizen: Citizen | None = db.session.scalar(_ACTIVE_CITIZEN, {"citizen_id": citizen_id})
    return citizen


def login_required(view: F) -> F:
    """Pages of "Mein Servicekonto": without a login, go to the login page first."""

    @wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if current_citizen() is None:
            continuation.remember_page()
            return redirect(continuation.login_url())
        return view(*args, **kwargs)

    return cast(F, wrapper)


def client_address() -> str:
    return request.remote_addr or "unknown"
