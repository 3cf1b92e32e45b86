"""What happened, for the operator: each function counts a metric and, for security events,
writes one line to the audit trail (logger ``servicekonto.audit``, JSON).

The services call these in one line each. Never passed in here, so never logged: a password,
a token, a SAML message, an attribute's value. A citizen is named by id; someone who is not
(yet) known by id (a failed login) by a keyed hash of the username, enough to see repeated
attempts on one account without writing the username down.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from collections.abc import Iterable
from typing import Protocol

from idp.observability import metrics
from idp.observability.logs import AUDIT_FIELDS

AUDIT = logging.getLogger("servicekonto.audit")
_pseudonym_key = b"servicekonto audit"


def use_pseudonym_secret(secret: str) -> None:
    """Key the username hashes with the app's secret (the same on every worker and host)."""
    global _pseudonym_key
    _pseudonym_key = hashlib.sha256(b"servicekonto audit username\0" + secret.encode()).digest()


def username_hash(account_key: str) -> str:
    """A stable pseudonym for a (normalised) username: 16 hex digits of an HMAC."""
    return hmac.new(_pseudonym_key, account_key.encode(), hashlib.sha256).hexdigest()[:16]


def _audit(event: str, **fields: object) -> None:
    AUDIT.info(event, extra={AUDIT_FIELDS: {"event": event, **fields}})


# --- logins and the throttle -------------------------------------------------------------------

def login_succeeded(citizen_id: int) -> None:
    metrics.LOGINS.labels("success").inc()
    _audit("login_succeeded", citizen_id=citizen_id)


def login_failed(account_key: str, citizen_id: int | None, reason: str,
                 account_throttled: bool = False) -> None:
    """A wrong password, an unknown username (``citizen_id`` None) or an inactive account."""
    metrics.LOGINS.labels("failed").inc()
    _audit("login_failed", reason=reason, username_hash=username_hash(account_key),
           citizen_id=citizen_id)
    if account_throttled:
        metrics.THROTTLE_EVENTS.labels("account_throttled").inc()
        _audit("account_throttled", username_hash=username_hash(account_key),
               citizen_id=citizen_id)


def login_throttled(account_key: str) -> None:
    """An attempt refused unchecked because the account or the address is throttled."""
    metrics.LOGINS.labels("throttled").inc()
    metrics.THROTTLE_EVENTS.labels("refused").inc()
    _audit("login_throttled", username_hash=username_hash(account_key))


# --- the account -------------------------------------------------------------------------------

def registered(citizen_id: int) -> None:
    metrics.REGISTRATIONS.inc()
    _audit("registered", citizen_id=citizen_id)


def activated(citizen_id: int) -> None:
    metrics.ACTIVATIONS.inc()
    _audit("activated", citizen_id=citizen_id)


def password_changed(citizen_id: int, through_reset_link: bool) -> None:
    _audit("password_reset" if through_reset_link else "password_changed",
           citizen_id=citizen_id)


def password_reset_requested(account_key: str, citizen_id: int | None, outcome: str) -> None:
    """"Passwort vergessen" was submitted for a (normalised) username: ``outcome`` "mailed",
    or why no link went out ("unknown_account", "not_activated", "mail_limit")."""
    _audit("password_reset_requested", outcome=outcome, username_hash=username_hash(account_key),
           citizen_id=citizen_id)


def username_reminder_requested(citizen_id: int | None, outcome: str) -> None:
    """"Benutzernamen vergessen" was submitted; ``outcome`` as for a reset request. The
    address typed is not named, not even hashed: for an unknown one only that it was unknown."""
    _audit("username_reminder_requested", outcome=outcome, citizen_id=citizen_id)


def email_change_requested(citizen_id: int) -> None:
    """A confirmation link went to a new address (named nowhere here); it counts once used."""
    _audit("email_change_requested", citizen_id=citizen_id)


def email_changed(citizen_id: int) -> None:
    """The new address was confirmed through its link and is now the account's."""
    _audit("email_changed", citizen_id=citizen_id)


def account_deleted(citizen_id: int) -> None:
    _audit("account_deleted", citizen_id=citizen_id)


# --- consent and SAML --------------------------------------------------------------------------

def consent_given(citizen_id: int, portal: str, attribute_names: Iterable[str]) -> None:
    _audit("consent_given", citizen_id=citizen_id, portal=portal,
           attributes=sorted(set(attribute_names)))


def consent_revoked(citizen_id: int, portal: str) -> None:
    _audit("consent_revoked", citizen_id=citizen_id, portal=portal)


def status_name(status_uri: str) -> str:
    """``urn:oasis:names:tc:SAML:2.0:status:RequestDenied`` -> ``RequestDenied``."""
    return status_uri.rsplit(":", 1)[-1][:64]


def sso_refused(portal: str, status_uri: str, reason: str | None = None) -> None:
    """An error Response went to ``portal``; ``status_uri`` the most specific status,
    ``reason`` its StatusMessage (our own words, never the portal's or the citizen's)."""
    metrics.SSO_RESPONSES.labels(portal, status_name(status_uri)).inc()
    _audit("sso_refused", portal=portal, status=status_name(status_uri), reason=reason)


class Named(Protocol):
    @property
    def name(self) -> str: ...


def assertion_issued(citizen_id: int, portal: str, name_id_format: str,
                     attributes: Iterable[Named]) -> None:
    """An assertion about the citizen went to ``portal``: the names of its attributes, never
    their values."""
    metrics.SSO_RESPONSES.labels(portal, "Success").inc()
    _audit("assertion_issued", citizen_id=citizen_id, portal=portal,
           name_id_format=name_id_format, attributes=sorted({item.name for item in attributes}))


def logout_finished(logged_out: Iterable[str], not_reached: Iterable[str]) -> None:
    """A logout ended: the IdP session and every portal told (complete) or some not (partial)."""
    missed = sorted(not_reached)
    outcome = "partial" if missed else "complete"
    metrics.LOGOUT_CHAINS.labels(outcome).inc()
    _audit("logout", outcome=outcome, portals_logged_out=sorted(logged_out),
           portals_not_reached=missed)
