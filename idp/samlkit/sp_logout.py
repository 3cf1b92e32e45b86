"""Single logout messages from an IdP, as a careful service provider takes them: its
LogoutRequest (it ends our session) and its LogoutResponse (the answer to ours).

Shared by the demo portals (sp_client) and the broker towards its upstreams (idp/broker). Both
messages must be signed by the IdP (a Redirect signature over the raw query string with a key of
its metadata, or an enveloped XML signature pysaml2 verifies with the metadata's keys), be
addressed to our SLO endpoint, come from the IdP and be fresh. An unsigned LogoutRequest is
refused: otherwise anyone could log citizens out. Whether a LogoutResponse answers a request we
sent is the caller's to check (it keeps its requests).
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from cryptography import x509
from saml2 import BINDING_HTTP_POST, BINDING_HTTP_REDIRECT

from idp.samlkit.bindings import IncomingMessage, verify_redirect_signature
from idp.samlkit.instants import parse_instant
from idp.samlkit.sp_response import CLOCK_SKEW, RESPONSE_MAX_AGE_SECONDS, SAMLP
from idp.samlkit.untrusted_xml import DSIG, RefusedDocument, parse_xml

STATUS_SUCCESS = "urn:oasis:names:tc:SAML:2.0:status:Success"


class LogoutRefused(Exception):
    """The logout message cannot be trusted; ``str(error)`` says why (for the log)."""


class LogoutParser(Protocol):
    """What the checks need of pysaml2: a ``Saml2Client`` with the IdP's metadata."""

    def parse_logout_request(self, text: str, binding: Any = ...) -> Any: ...
    def parse_logout_request_response(self, xmlstr: str, binding: Any = ...) -> Any: ...


@dataclass(frozen=True, kw_only=True)
class Expected:
    """Who must have sent it and where to: the IdP's entity ID, its signing certificates (for
    Redirect signatures), our SLO URL for a binding."""

    issuer: str
    certificates: Sequence[x509.Certificate]
    slo_url: Callable[[str], str]
    clock_skew: timedelta = CLOCK_SKEW


@dataclass(frozen=True)
class LogoutOrder:
    """The IdP's LogoutRequest, checked: whose sessions to end, and how to answer."""

    message: Any  # pysaml2's LogoutRequest, for building the answer
    name_id: str
    session_indexes: list[str]
    binding: str
    relay_state: str | None


@dataclass(frozen=True)
class LogoutAnswer:
    """The IdP's LogoutResponse, checked: the request it answers, and whether it says Success."""

    in_response_to: str | None
    success: bool


def idp_signing_certificates(client: Any, entity_id: str) -> list[x509.Certificate]:
    """The IdP's signing certificates from the metadata a pysaml2 client holds (for Redirect
    signatures, which pysaml2 does not check)."""
    return [x509.load_der_x509_certificate(base64.b64decode("".join(encoded.split())))
            for _name, encoded in client.metadata.certs(entity_id, "idpsso", "signing")]


def binding_of(message: IncomingMessage) -> str:
    return str(BINDING_HTTP_REDIRECT if message.binding == "redirect" else BINDING_HTTP_POST)


def read_logout_request(client: LogoutParser, message: IncomingMessage, expected: Expected,
                        now: datetime) -> LogoutOrder:
    """Check the IdP's LogoutRequest; raise :class:`LogoutRefused`."""
    _check_signed(message, expected)
    try:
        request = client.parse_logout_request(message.xml.decode("utf-8"), binding=None)
    except Exception as error:  # pysaml2 raises many kinds for broken or badly signed input
        raise LogoutRefused(f"unparsable LogoutRequest: {type(error).__name__}") from None
    if request is None or request.message is None:
        raise LogoutRefused("not a LogoutRequest")
    parsed = request.message
    binding = binding_of(message)
    _check_envelope(parsed, binding, expected, now)
    until = parse_instant(parsed.not_on_or_after)
    if until is not None and until <= now - expected.clock_skew:
        raise LogoutRefused("NotOnOrAfter passed")
    if parsed.name_id is None or not (parsed.name_id.text or "").strip():
        raise LogoutRefused("no NameID")
    return LogoutOrder(message=parsed, name_id=parsed.name_id.text.strip(),
                       session_indexes=[index.text.strip() for index in parsed.session_index
                                        if index.text and index.text.strip()],
                       binding=binding, relay_state=message.relay_state)


def read_logout_response(client: LogoutParser, message: IncomingMessage, expected: Expected,
                         now: datetime) -> LogoutAnswer:
    """Check the IdP's LogoutResponse; raise :class:`LogoutRefused`."""
    _check_signed(message, expected)
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
    _check_envelope(parsed, binding_of(message), expected, now)
    code = parsed.status.status_code if parsed.status is not None else None
    return LogoutAnswer(parsed.in_response_to,
                        code is not None and code.value == STATUS_SUCCESS)


def _check_signed(message: IncomingMessage, expected: Expected) -> None:
    """The IdP's signature must be there; pysaml2 verifies an enveloped one while parsing."""
    if message.binding == "redirect":
        if not verify_redirect_signature(message, list(expected.certificates)):
            raise LogoutRefused("missing or invalid Redirect signature")
        return
    try:
        root = parse_xml(message.xml)
    except RefusedDocument as error:
        raise LogoutRefused(str(error)) from None
    if root.find(f"{{{DSIG}}}Signature") is None:
        raise LogoutRefused("unsigned POST message")


def _check_envelope(parsed: Any, binding: str, expected: Expected, now: datetime) -> None:
    """Issuer, Destination and IssueInstant, shared by requests and responses."""
    issuer = (parsed.issuer.text or "").strip() if parsed.issuer is not None else ""
    if issuer != expected.issuer:
        raise LogoutRefused(f"issuer {issuer!r} is not the IdP")
    if parsed.destination != expected.slo_url(binding):
        raise LogoutRefused(f"Destination {parsed.destination!r} is not our SLO endpoint")
    issued = parse_instant(parsed.issue_instant)
    if issued is None or abs((now - issued).total_seconds()) > RESPONSE_MAX_AGE_SECONDS:
        raise LogoutRefused(f"IssueInstant {parsed.issue_instant} outside the window")
