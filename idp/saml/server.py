"""The one adapter around pysaml2's ``Server``: parse requests, check what it does not, answer.

pysaml2 is untyped and lenient; everything it hands back is turned into the typed messages of
:mod:`idp.saml.messages` here, after the checks it leaves to us (docs/architecture.md, "Things
pysaml2 does not do for you"): the ACS comes from metadata only, IssueInstant lies in a small
window, Destination is ours (and present on signed requests). The replay cache lives in the
database (:mod:`idp.saml.replay`). Successful Responses are built by :mod:`idp.saml.response`;
pysaml2 still makes error and logout messages.
"""

from __future__ import annotations

import base64
import logging
from datetime import datetime
from pathlib import Path
from typing import Any

from saml2 import BINDING_HTTP_POST, BINDING_HTTP_REDIRECT, ExtensionElement, samlp
from saml2.config import IdPConfig
from saml2.pack import http_redirect_message
from saml2.saml import NameID
from saml2.server import Server
from saml2.sigver import DecryptError, SignatureError, SigverError
from saml2.validate import valid_instance

from idp.saml.configuration import (
    ISSUE_INSTANT_WINDOW,
    IdpEndpoints,
)
from idp.saml.messages import (
    LOGOUT_REASON_USER,
    LogoutSubject,
    OutgoingMessage,
    ParsedAuthnRequest,
    ParsedLogoutRequest,
    ParsedLogoutResponse,
    RequestRejected,
)
from idp.saml.response import (
    EncryptionKey,
)
from idp.samlkit.bundid import AKDB_NAMESPACE
from idp.samlkit.crypto import InProcessCryptoBackend, install_backend
from idp.samlkit.encryption import SAML, AlgorithmRefused
from idp.samlkit.ids import new_id
from idp.samlkit.instants import parse_instant
from idp.samlkit.keys import NEXT_KEY_NAME, PREVIOUS_KEY_NAME
from idp.samlkit.signature_profile import DIGEST_ALGORITHM, SIGN_ALGORITHM
from idp.samlkit.untrusted_xml import parse_xml

log = logging.getLogger(__name__)

class SamlIdp:
    """pysaml2's Server, built once per process, with our in-process crypto backend installed."""

    def __init__(self, config: IdPConfig, endpoints: IdpEndpoints,
                 crypto: InProcessCryptoBackend | None = None) -> None:
        self.endpoints = endpoints
        self.server = Server(config=config)
        # Always ours (docs/architecture.md, "Decisions, and why"): pysaml2's "XMLSecurity"
        # backend cannot sign, and successful Responses are signed and encrypted by it directly
        # (ResponseBuilder).
        self.crypto = install_backend(self.server, crypto)

    @property
    def entity_id(self) -> str:
        return self.endpoints.entity_id

    def encryption_key(self, portal: str) -> EncryptionKey:
        """The portal's first encryption certificate in metadata, as pysaml2 picks it (a
        KeyDescriptor with use="encryption" or without use)."""
        try:
            certificates = self.server.metadata.certs(portal, "any", "encryption")
        except KeyError:  # not (or no longer) in metadata
            certificates = []
        if not certificates:
            # Never the assertion in clear (pysaml2 would quietly send it so).
            raise RequestRejected("encryption required but no encryption key in metadata")
        name, certificate = certificates[0]
        return EncryptionKey(str(certificate), str(name) if name else None)

    def create_error_response(self, request: ParsedAuthnRequest, status: str,
                              sub_status: str | None = None, message: str | None = None,
                              sign: bool = True, status_detail: str | None = None) -> str:
        """A Response without assertion carrying a SAML error status (e.g. RequestDenied).

        ``status_detail`` adds ``samlp:StatusDetail/akdb:StatusDetail`` with that code (for
        BundID requests with EnableStatusDetail="true").
        """
        inner = samlp.StatusCode(value=sub_status) if sub_status else None
        detail = samlp.StatusDetail(extension_elements=[ExtensionElement(
            "StatusDetail", namespace=AKDB_NAMESPACE, text=status_detail)]) \
            if status_detail else None
        status_element = samlp.Status(
            status_code=samlp.StatusCode(value=status, status_code=inner),
            status_message=samlp.StatusMessage(text=message) if message else None,
            status_detail=detail)
        response = self.server._response(
            request.request_id, request.acs_url, status_element, None, False, [],
            sp_entity_id=request.issuer)
        return self._with_our_id(response, sign)

    def unsolicited_request(self, entity_id: str, now: datetime) -> ParsedAuthnRequest:
        """IdP-initiated SSO to ``entity_id``: what its answer needs, as if it had asked.

        The Response goes to the portal's default HTTP-POST AssertionConsumerService from its
        metadata (SAML metadata §2.2.3), never to an address from the browser.
        """
        try:
            services = self.server.metadata.assertion_consumer_service(
                entity_id, BINDING_HTTP_POST) or []
        except Exception as error:  # pysaml2 raises KeyError and others for unknown entities
            raise RequestRejected(f"no metadata for {entity_id!r}: {type(error).__name__}") \
                from None
        if not services:
            raise RequestRejected(f"{entity_id!r} has no HTTP-POST AssertionConsumerService")
        default = next((srv for srv in services if str(srv.get("is_default")) == "true"),
                       next((srv for srv in services if str(srv.get("is_default")) != "false"),
                            services[0]))
        return ParsedAuthnRequest(
            request_id="", issuer=entity_id, issue_instant=now, destination=None,
            acs_url=str(default["location"]), acs_binding=BINDING_HTTP_POST, force_authn=False,
            is_passive=False, name_id_format=None, allow_create=True, unsolicited=True)

    # --- single logout -------------------------------------------------------------------

    def parse_logout_request(self, xml: bytes, now: datetime, *,
                             query_signed: bool = False) -> ParsedLogoutRequest:
        """Parse and check a LogoutRequest (already decoded by :mod:`idp.samlkit.bindings`).

        An embedded signature is verified with the issuer's key from metadata; whether the
        request is signed at all (embedded or over the Redirect query) the caller decides.
        ``query_signed`` says that the Redirect query's signature was verified already: an
        EncryptedID is decrypted only in a request whose signature held (docs/security.md,
        "Order of checks").
        """
        message = self._load(xml, "logout_request")
        issuer = self._known_issuer(message)
        # docs/architecture.md, pysaml2 trap 4: a signed message names its Destination, and it
        # must be our SLO endpoint.
        if message.destination is None:
            raise RequestRejected("LogoutRequest without Destination")
        self._check_destination(message.destination)
        _check_issue_instant(message.issue_instant, now)
        if message.not_on_or_after is not None:
            expires = parse_instant(message.not_on_or_after)
            if expires is None or expires <= now:
                raise RequestRejected("LogoutRequest past its NotOnOrAfter")
        signed = message.signature is not None
        return ParsedLogoutRequest(
            request_id=message.id, issuer=issuer, destination=message.destination,
            subject=self._logout_subject(message, xml, issuer, signed or query_signed),
            session_indexes=tuple(index.text.strip() for index in message.session_index
                                  if index.text and index.text.strip()),
            signed=signed)

    def _logout_subject(self, message: Any, xml: bytes, issuer: str,
                        signed: bool) -> LogoutSubject:
        """Whom a LogoutRequest names: its NameID, or the NameID inside its EncryptedID
        (SAML core §3.7.1), decrypted with our own keys after the signature was verified."""
        if sum(identifier is not None for identifier in
               (message.base_id, message.name_id, message.encrypted_id)) > 1:
            raise RequestRejected("LogoutRequest with more than one identifier")
        if message.encrypted_id is not None:
            if not signed:
                raise RequestRejected("EncryptedID in an unsigned LogoutRequest")
            element = self._decrypted_name_id(xml, issuer)
            value, name_format, qualifier, sp_qualifier = (
                element.text, element.get("Format"), element.get("NameQualifier"),
                element.get("SPNameQualifier"))
        elif message.name_id is not None:
            name_id = message.name_id
            value, name_format, qualifier, sp_qualifier = (
                name_id.text, name_id.format, name_id.name_qualifier, name_id.sp_name_qualifier)
        else:  # a BaseID names no one we could compare with a session
            raise RequestRejected("LogoutRequest without a plain NameID")
        if not (value or "").strip():
            raise RequestRejected("LogoutRequest without a plain NameID")
        return LogoutSubject(value.strip(), name_format, qualifier, sp_qualifier)

    def _decrypted_name_id(self, xml: bytes, issuer: str) -> Any:
        """The saml:NameID inside the request's EncryptedID (the one the signature covers:
        a child of the message's root), as an lxml element."""
        root = parse_xml(xml, RequestRejected)
        encrypted = root.findall(f"{{{SAML}}}EncryptedID")
        if len(encrypted) != 1:
            raise RequestRejected("LogoutRequest without exactly one EncryptedID")
        try:
            return self.crypto.decrypt_identifier(encrypted[0], self._decryption_key_files())
        except AlgorithmRefused as error:
            log.warning("EncryptedID from %s refused: %s", issuer, error)
            raise RequestRejected(f"EncryptedID refused: {error}") from None
        except DecryptError as error:
            raise RequestRejected(f"EncryptedID does not decrypt: {error}") from None

    def _decryption_key_files(self) -> list[Path]:
        """Our private keys, current first: during a key rollover also the next one (published
        beside it) and the one the last switch replaced (portals with older metadata)."""
        current = Path(self.server.config.key_file)
        folder = Path(self.server.config.cert_file).parent
        return [current, *(path for path in (folder / NEXT_KEY_NAME, folder / PREVIOUS_KEY_NAME)
                           if path.is_file() and path != current)]

    def parse_logout_response(self, xml: bytes, now: datetime) -> ParsedLogoutResponse:
        """Parse and check a portal's LogoutResponse (an embedded signature is verified)."""
        message = self._load(xml, "logout_response")
        issuer = self._known_issuer(message)
        if message.destination is not None:
            self._check_destination(message.destination)
        _check_issue_instant(message.issue_instant, now)
        code = message.status.status_code
        return ParsedLogoutResponse(
            issuer=issuer, in_response_to=message.in_response_to, status=code.value,
            sub_status=code.status_code.value if code.status_code is not None else None,
            signed=message.signature is not None, destination=message.destination)

    def create_logout_request(self, portal: str, destination: str, subject: LogoutSubject,
                              session_index: str, sign: bool) -> tuple[str, str]:
        """A LogoutRequest telling ``portal`` that the citizen's session ended: (ID, XML).

        ``sign`` embeds an XML signature (HTTP-POST); on HTTP-Redirect :meth:`encode` signs.
        """
        name_id = NameID(text=subject.name_id, format=subject.name_id_format,
                         name_qualifier=subject.name_qualifier,
                         sp_name_qualifier=subject.sp_name_qualifier)
        request_id, request = self.server.create_logout_request(
            destination, portal, name_id=name_id, reason=LOGOUT_REASON_USER,
            session_indexes=[session_index], message_id=new_id(), sign=sign,
            sign_alg=SIGN_ALGORITHM, digest_alg=DIGEST_ALGORITHM)
        return str(request_id), str(request)

    def create_logout_response(self, in_response_to: str, destination: str, status: str,
                               sub_status: str | None = None, message: str | None = None,
                               sign: bool = False) -> str:
        """A LogoutResponse; ``sign`` embeds an XML signature (HTTP-POST)."""
        inner = samlp.StatusCode(value=sub_status) if sub_status else None
        status_element = samlp.Status(
            status_code=samlp.StatusCode(value=status, status_code=inner),
            status_message=samlp.StatusMessage(text=message) if message else None)
        response = self.server._status_response(
            samlp.LogoutResponse, self.server._issuer(), status_element, False,
            in_response_to=in_response_to, destination=destination)
        return self._with_our_id(response, sign)

    def _with_our_id(self, message: Any, sign: bool) -> str:
        """A message pysaml2 built unsigned, with an ID of ours (pysaml2's ``sid()`` has too
        little randomness), then signed if ``sign``."""
        message.id = new_id()
        if sign:
            return str(self.server.sign(message, sign_alg=SIGN_ALGORITHM,
                                        digest_alg=DIGEST_ALGORITHM))
        return str(message)

    def encode(self, xml: str, binding: str, destination: str, relay_state: str | None,
               parameter: str) -> OutgoingMessage:
        """``xml`` (a SAMLRequest or SAMLResponse) ready to go through the browser.

        HTTP-Redirect signs the query string (SAML bindings §3.4.4.1); the XML must then carry no
        signature of its own. HTTP-POST carries the XML as it is. Always RSA-SHA256: pysaml2's
        own ``signing_algorithm`` falls back to SHA-1 unless configured per service.
        """
        if binding == BINDING_HTTP_REDIRECT:
            info = http_redirect_message(
                xml, destination, relay_state or "", parameter,
                sigalg=SIGN_ALGORITHM, sign=True,
                backend=self.server.sec.sec_backend)
            return OutgoingMessage(binding, str(dict(info["headers"])["Location"]))
        fields = [(parameter, base64.b64encode(xml.encode("utf-8")).decode("ascii"))]
        if relay_state is not None:
            fields.append(("RelayState", relay_state))
        return OutgoingMessage(binding, destination, tuple(fields))

    def _load(self, xml: bytes, kind: str) -> Any:
        """The message of pysaml2's type ``kind``, schema-valid, an embedded signature (if
        any) verified with the issuer's key from metadata, never with KeyInfo."""
        verify = getattr(self.server.sec, f"correctly_signed_{kind}")
        try:
            message = verify(xml.decode("utf-8"), must=False)
            valid_instance(message)
        except (SignatureError, SigverError) as error:
            raise RequestRejected(f"bad signature: {error}") from None
        except Exception as error:  # pysaml2 raises many kinds for malformed input
            raise RequestRejected(f"unparsable {kind}: {type(error).__name__}") from None
        if message.version != "2.0":
            raise RequestRejected(f"SAML version {message.version!r}")
        return message

    def _known_issuer(self, message: Any) -> str:
        # Exactly the entity ID, as idp.saml.incoming checked it before: never trimmed.
        issuer = message.issuer.text if message.issuer is not None and message.issuer.text \
            else ""
        if not issuer or issuer != issuer.strip():
            raise RequestRejected("message without an exact Issuer")
        known: list[str] = list(self.server.metadata.keys())
        if issuer not in known:
            raise RequestRejected(f"unknown issuer {issuer!r}")
        return str(issuer)

    def _check_destination(self, destination: str) -> None:
        if destination not in {url for url, _ in self.endpoints.slo}:
            raise RequestRejected(f"Destination {destination!r} is not our logout endpoint")


def _check_issue_instant(value: str | None, now: datetime) -> None:
    """docs/architecture.md, pysaml2 trap 3: the same small window as for AuthnRequests."""
    issue_instant = parse_instant(value)
    if issue_instant is None or abs(now - issue_instant) > ISSUE_INSTANT_WINDOW:
        raise RequestRejected("IssueInstant outside the accepted window")

