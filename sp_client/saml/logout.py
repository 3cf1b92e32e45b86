"""Single logout messages from the IdP: its LogoutRequest (it ends our session) and its
LogoutResponse (the answer to ours), checked by the SAML kit (:mod:`idp.samlkit.sp_logout`);
here only what the portal keeps: the requests it sent and waits for.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from idp.samlkit import sp_logout
from idp.samlkit.bindings import IncomingMessage
from idp.samlkit.sp_logout import LogoutOrder, LogoutRefused
from sp_client.saml import state
from sp_client.saml.provider import ServiceProvider


def _expected(provider: ServiceProvider, now: datetime) -> sp_logout.Expected:
    return sp_logout.Expected(issuer=provider.idp_entity_id(now),
                              certificates=provider.idp_certificates(now),
                              slo_url=provider.slo_url)


def read_logout_request(provider: ServiceProvider, message: IncomingMessage,
                        now: datetime) -> LogoutOrder:
    """Check the IdP's LogoutRequest; raise :class:`LogoutRefused`."""
    return sp_logout.read_logout_request(provider.client(now), message,
                                         _expected(provider, now), now)


def read_logout_response(provider: ServiceProvider, session: Session, message: IncomingMessage,
                         now: datetime) -> bool:
    """Check the IdP's answer to our LogoutRequest (used up); True if the IdP says Success.

    Raises :class:`LogoutRefused` for an answer we cannot trust or did not wait for.
    """
    answer = sp_logout.read_logout_response(provider.client(now), message,
                                            _expected(provider, now), now)
    waited = answer.in_response_to
    if waited is None or state.outstanding(session, waited, state.LOGOUT, now) is None or \
            not state.use_request(session, waited):
        raise LogoutRefused(f"InResponseTo {answer.in_response_to!r} is not ours")
    return answer.success
