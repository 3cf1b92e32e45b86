"""Single logout messages from the IdP: its LogoutRequest (it ends our session) and its
LogoutResponse (the answer to ours).

Both must be signed by the IdP (a Redirect signature over the raw query string, or an enveloped
XML signature on POST), be addressed to our SLO endpoint, come from the IdP and be fresh. An
unsigned LogoutRequest is refused: otherwise anyone could log citizens out of the portal.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from saml2 import BINDING_HTTP_POST, BINDING_HTTP_REDIRECT
from sqlalchemy.orm import Session

from idp.samlkit.bindings import IncomingMessage, verify_redirect_signature
from idp.samlkit.instants import parse_instant
from idp.samlkit.sp_response import RESPONSE_MAX_AGE_SECONDS, SAMLP
from idp.samlkit.untrusted_xml import DSIG, RefusedDocument, parse_xml
from sp_client.saml import state
from sp_client.saml.messages import STATUS_SUCCESS
from sp_client.saml.provider import CLOCK_SKEW, ServiceProvider


class LogoutRefused(Exception):
    """The logout message cannot be trusted; ``str(error)`` says why (for the log)."""


@dataclass(frozen=True)
class LogoutOrder:
    """The IdP's LogoutRequest, checked: whose sessions to end, and how to answer."""

    message: Any  # pysaml2's LogoutRequest, for building the answer
    name_id: str
    session_indexes: list[str]
    binding: str
    relay_state: str | None


def _binding(message: IncomingMessage) -> str:
    return str(BINDING_HTTP_REDIRECT if message.binding == "redirect" else BINDING_HTTP_POST)


def _check_signed(provider: ServiceProvider, message: IncomingMessage, now: datetime) -> None:
    """The IdP's signature must be there; pysaml2 verifies an enveloped one while parsing."""
    if message.binding == "redirect":
        if not verify_redirect_signature(message, provider.idp_certificates(now)):
            raise LogoutRefused("missing or invalid Redirect signature")
        return
    try:
        root = parse_xml(message.xml)
    except RefusedDocument as error:
        raise LogoutRefused(str(error)) from None
    if root.find(f"{{{DSIG}}}Signature") is None:
        raise LogoutRefused("unsigned POST message")


def _check_envelope(provider: ServiceProvider, parsed: Any, binding: str,
                    now: datetime) -> None:
    """Issuer, Destination and IssueInstant, shared by requests and responses."""
    issuer = (parsed.issuer.text or "").strip() if parsed.issuer is not None else ""
    if issuer != provider.idp_entity_id(now):
        raise LogoutRefused(f"issuer {issuer!r} is not our IdP")
    if parsed.destination != provider.slo_url(binding):
        raise LogoutRefused(f"Destination {parsed.destination!r} is not our SLO endpoint")
    issued = parse_instant(parsed.issue_instant)
    if issued is None or abs((now - issued).total_seconds()) > RESPONSE_MAX_AGE_SECONDS:
        raise LogoutRefused(f"IssueInstant {parsed.issue_instant} outside the window")


def read_logout_request(provider: ServiceProvider, message: IncomingMessage,
                        now: datetime) -> LogoutOrder:
    """Check the IdP's LogoutRequest; raise :class:`LogoutRefused`."""
    _check_signed(provider, message, now)
    client = provider.client(now)
    try:
        request = client.parse_logout_request(message.xml.decode("utf-8"), binding=None)
    except Exception as error:  # pysaml2 raises many kinds for broken or badly signed input
        raise LogoutRefused(f"unparsable LogoutRequest: {type(error).__name__}") from None
    if request is None or request.message is None:
        raise LogoutRefused("not a LogoutRequest")
    parsed = request.message
    binding = _binding(message)
    _check_envelope(provider, parsed, binding, now)
    until = parse_instant(parsed.not_on_or_after)
    if until is not None and until <= now - CLOCK_SKEW:
        raise LogoutRefused("NotOnOrAfter passed")
    if parsed.name_id is None or not (parsed.name_id.text or "").strip():
        raise LogoutRefused("no NameID")
    return LogoutOrder(message=parsed, name_id=parsed.name_id.text.strip(),
                       session_indexes=[index.text.strip() for index in parsed.session_index
                                        if index.text and index.text.strip()],
                       binding=binding, relay_state=message.relay_state)


def read_logout_response(provider: ServiceProvider, session: Session, message: IncomingMessage,
                         now: datetime) -> bool:
    """Check the IdP's answer to our LogoutRequest (used up); True if the IdP says Success.

    Raises :class:`LogoutRefused` for an answer we cannot trust or did not wait for.
    """
    _check_signed(provider, message, now)
    client = provider.client(now)
    try:
        response = client.parse_logout_request_response(message.xml.decode("utf-8"),
                                                        binding=None)
    except Exception as error:  # pysaml2 raises many kinds for broken or badly signed input
        raise LogoutRefused(f"unparsable LogoutResponse: {type(error).__name__}") from None
    if response is None or response.response is None:
        raise LogoutRefused("not a LogoutResponse")
    parsed = response.response
    if parsed.c_tag != "LogoutResponse" or parsed.c_namespace != SAMLP:
        raise LogoutRefused("not a LogoutResponse")
    _check_envelope(provider, parsed, _binding(message), now)
    if state.outstanding(session, parsed.in_response_to, state.LOGOUT, now) is None or \
            not state.use_request(session, parsed.in_response_to):
        raise LogoutRefused(f"InResponseTo {parsed.in_response_to!r} is not ours")
    code = parsed.status.status_code if parsed.status is not None else None
    return code is not None and code.value == STATUS_SUCCESS
