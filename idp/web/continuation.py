"""Where the citizen goes after the login page, decided on the server.

The login page never takes a form target, a redirect or a link from its own URL: a parameter
naming a path would let any page that links to us choose where the citizen's credentials and
CSRF token are posted (docs/security.md, "Login page"). Instead the server remembers, in the
citizen's server-side session,

- the SAML logins waiting for this browser (an opaque reference per parked AuthnRequest, which
  the login page may name as ``?anfrage=…`` and which resolves only to our own SSO routes), and
- the page of "Mein Servicekonto" that asked for a login (an endpoint name, never a path).
"""

from __future__ import annotations

from typing import Any, cast

from flask import request, session, url_for

from idp.security.sessions import ServerSession

PENDING_KEY = "sso_pending"
# Per parked SAML login: what the login page offers for it (methods, portal, data, step-up).
OFFER_KEY = "login_offer"
AFTER_LOGIN_KEY = "after_login"
# A browser may have a few SSO logins open at once (tabs, portals); older ones are forgotten.
PENDING_KEPT = 5
# The login page's parameter that names a parked SAML login.
TRANSACTION_PARAMETER = "anfrage"


def _session() -> ServerSession:
    return cast(ServerSession, session._get_current_object())  # type: ignore[attr-defined]


def park(reference: str) -> None:
    """Let this browser, and only this one, resume the SAML login parked under ``reference``."""
    current = _session()
    current[PENDING_KEY] = [*current.get(PENDING_KEY, [])[-(PENDING_KEPT - 1):], reference]


def is_parked(reference: str | None) -> bool:
    """Whether ``reference`` names a SAML login this browser parked (anything else is ignored)."""
    return bool(reference) and reference in _session().get(PENDING_KEY, [])


def forget(reference: str) -> None:
    """The login under ``reference`` was answered: it can no longer be resumed or cancelled."""
    current = _session()
    parked = current.get(PENDING_KEY, [])
    if reference in parked:
        current[PENDING_KEY] = [item for item in parked if item != reference]


def offer(reference: str, methods: tuple[str, ...], portal_name: str,
          data: tuple[str, ...], needed: int, needed_label: str,
          step_up: dict[str, Any] | None) -> None:
    """What the login page offers for the parked SAML login ``reference``: only ``methods``
    (those reaching the portal's level), the portal and data the AusweisApp step names, the
    level needed (4, "hoch"), and for a step-up the level reached (``{"reached":
    "basisregistriert", "by_card": False}``)."""
    current = _session()
    parked = current.get(PENDING_KEY, [])
    kept = {key: value for key, value in current.get(OFFER_KEY, {}).items() if key in parked}
    kept[reference] = {"methods": list(methods), "portal": portal_name, "data": list(data),
                       "needed": needed_label, "needed_level": needed, "step_up": step_up}
    current[OFFER_KEY] = kept


def offered(reference: str | None) -> dict[str, Any] | None:
    """What :func:`offer` kept for ``reference`` (None: no SAML login, everything offered)."""
    if reference is None:
        return None
    found = _session().get(OFFER_KEY, {}).get(reference)
    return found if isinstance(found, dict) else None


def remember_page() -> None:
    """Called before sending a visitor of a login-only page to the login page: come back here.

    Only the endpoint of a GET page is kept (pages with URL parameters are not resumed); a POST
    is never repeated after a login.
    """
    if request.method == "GET" and request.endpoint and not request.view_args:
        _session()[AFTER_LOGIN_KEY] = request.endpoint


def transaction_in_request() -> str | None:
    """The parked SAML login the login page was opened for, if this browser parked it."""
    reference = request.args.get(TRANSACTION_PARAMETER)
    return reference if is_parked(reference) else None


def after_login(transaction: str | None) -> str:
    """Where a successful login continues: the SAML login it was for, else the page that asked
    for it, else "Mein Servicekonto"."""
    endpoint = _session().pop(AFTER_LOGIN_KEY, None)
    if transaction is not None:
        return url_for("saml.resume", reference=transaction)
    return url_for(endpoint if isinstance(endpoint, str) else "selfservice.account")


def login_url(transaction: str | None = None) -> str:
    """The login page, for the SAML login ``transaction`` if one is given."""
    if transaction is None:
        return url_for("accounts.login")
    return url_for("accounts.login", anfrage=transaction)  # TRANSACTION_PARAMETER
