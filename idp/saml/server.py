"""The one adapter around pysaml2's ``Server``: parse AuthnRequests, check what it does not.

pysaml2 is untyped and lenient; everything it hands back is turned into the typed
:class:`ParsedAuthnRequest` here, after the checks it leaves to us (DESIGN §5): the ACS comes from
metadata only, IssueInstant lies in a small window, Destination is ours (and present on signed
requests). The replay cache lives in the database (:mod:`idp.saml.replay`).
"""

from __future__ import annotations

import base64
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from lxml import etree  # type: ignore[import-untyped]  # no stubs installed
from saml2 import BINDING_HTTP_POST, BINDING_HTTP_REDIRECT, ExtensionElement, class_name, samlp
from saml2.config import IdPConfig
from saml2.pack import http_redirect_message
from saml2.s_utils import UnknownPrincipal, UnsupportedBinding
from saml2.saml import (
    NAME_FORMAT_URI,
    NAMEID_FORMAT_ENTITY,
    NAMEID_FORMAT_PERSISTENT,
    NAMEID_FORMAT_TRANSIENT,
    NAMEID_FORMAT_UNSPECIFIED,
    Attribute,
    AttributeStatement,
    AttributeValue,
    NameID,
)
from saml2.server import Server
from saml2.sigver import CryptoBackend, SignatureError, SigverError, pre_signature_part
from saml2.validate import valid_instance

from idp.saml.akdb import AKDB_NAMESPACE, AuthenticationRequest, ExtensionError, read_extension
from idp.saml.crypto import DIGEST_ALGORITHM, SIGN_ALGORITHM, InProcessCryptoBackend
from idp.saml.sp_metadata import parse_instant

# How far an AuthnRequest's IssueInstant may lie from our clock (either way).
ISSUE_INSTANT_WINDOW = timedelta(minutes=3)
# How long an assertion may be presented at the ACS (Conditions, SubjectConfirmationData).
ASSERTION_LIFETIME = timedelta(minutes=5)

SSO_REDIRECT_PATH = "/saml/sso/redirect"
SSO_POST_PATH = "/saml/sso/post"
SLO_REDIRECT_PATH = "/saml/slo/redirect"
SLO_POST_PATH = "/saml/slo/post"
METADATA_PATH = "/saml/metadata"


class RequestRejected(ValueError):
    """The request cannot be answered at all (no portal to answer to); show an error page.

    ``str(error)`` is for the log; the citizen sees a German page.
    """


@dataclass(frozen=True)
class IdpEndpoints:
    """Our own URLs, all derived from IDP_BASE_URL."""

    base_url: str

    @property
    def entity_id(self) -> str:
        return self.base_url + METADATA_PATH

    @property
    def sso(self) -> list[tuple[str, str]]:
        return [(self.base_url + SSO_REDIRECT_PATH, BINDING_HTTP_REDIRECT),
                (self.base_url + SSO_POST_PATH, BINDING_HTTP_POST)]

    @property
    def slo(self) -> list[tuple[str, str]]:
        return [(self.base_url + SLO_REDIRECT_PATH, BINDING_HTTP_REDIRECT),
                (self.base_url + SLO_POST_PATH, BINDING_HTTP_POST)]

    @property
    def all_urls(self) -> set[str]:
        return {url for url, _ in self.sso + self.slo}


@dataclass(frozen=True)
class ParsedAuthnRequest:
    """What we need of an AuthnRequest, checked and typed."""

    request_id: str
    issuer: str
    issue_instant: datetime
    destination: str | None
    # From the portal's metadata, never from the request alone (DESIGN §5.2).
    acs_url: str
    acs_binding: str
    force_authn: bool
    is_passive: bool
    name_id_format: str | None
    allow_create: bool
    requested_contexts: tuple[str, ...] = ()
    comparison: str = "exact"
    signed: bool = False
    # The BundID extension as found (DESIGN §4); idp.saml.sso.receive drops it (and a problem
    # reading it) from unsigned requests, which are answered as plain ones.
    akdb: AuthenticationRequest | None = None
    akdb_problem: str | None = None
    # IdP-initiated: no request behind it, the answer carries no InResponseTo.
    unsolicited: bool = False


def idp_config(endpoints: IdpEndpoints, key_file: str, cert_file: str,
               metadata_xml: list[str], *, organization: str = "Servicekonto") -> IdPConfig:
    """The pysaml2 configuration of our IdP (signing choices per portal are made per response)."""
    config = IdPConfig()
    config.load({
        "entityid": endpoints.entity_id,
        "key_file": key_file,
        "cert_file": cert_file,
        "encryption_keypairs": [{"key_file": key_file, "cert_file": cert_file}],
        # Not the xmlsec1 program: the in-process backend is installed on the Server below.
        "crypto_backend": "XMLSecurity",
        "metadata": {"inline": metadata_xml} if metadata_xml else {},
        "accepted_time_diff": int(ISSUE_INSTANT_WINDOW.total_seconds()),
        "service": {"idp": {
            "name": organization,
            "endpoints": {"single_sign_on_service": endpoints.sso,
                          "single_logout_service": endpoints.slo},
            "name_id_format": [NAMEID_FORMAT_TRANSIENT, NAMEID_FORMAT_PERSISTENT],
            # Signed requests are demanded per portal by our own checks, not globally.
            "want_authn_requests_signed": False,
            "policy": {"default": {
                # DESIGN §5.6: never release everything when a required attribute is missing;
                # attributes are filtered by us before the response is built.
                "fail_on_missing_requested": False,
                "lifetime": {"minutes": int(ASSERTION_LIFETIME.total_seconds() // 60)},
                "sign_response": True,
                "sign_assertion": True,
                "sign_alg": "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256",
                "digest_alg": "http://www.w3.org/2001/04/xmlenc#sha256",
            }},
            # DESIGN §5.8: SHA-256, never SHA-1. pysaml2 reads these per service (at the top
            # level they are ignored and Server.signing_algorithm stays RSA-SHA1).
            "signing_algorithm": "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256",
            "digest_algorithm": "http://www.w3.org/2001/04/xmlenc#sha256",
        }},
    })
    return config


AKDB_TRUST_LEVEL = f"{{{AKDB_NAMESPACE}}}TrustLevel"
STATUS_REQUESTER = "urn:oasis:names:tc:SAML:2.0:status:Requester"
STATUS_RESPONDER = "urn:oasis:names:tc:SAML:2.0:status:Responder"


class AttributeRelease(Protocol):
    """One released attribute (see :class:`idp.consent.attributes.ReleasedAttribute`)."""

    @property
    def name(self) -> str: ...
    @property
    def friendly_name(self) -> str: ...
    @property
    def values(self) -> tuple[str, ...]: ...
    @property
    def trust_level(self) -> str: ...


@dataclass(frozen=True)
class Authentication:
    """How and when the citizen authenticated, and the SSO session the assertion belongs to."""

    class_ref: str
    instant: datetime
    session_index: str
    session_not_on_or_after: datetime


@dataclass(frozen=True)
class Signing:
    """Per-portal choices of what to sign and whether to encrypt the assertion."""

    sign_response: bool = True
    sign_assertion: bool = True
    encrypt_assertion: bool = False


STATUS_SUCCESS = "urn:oasis:names:tc:SAML:2.0:status:Success"
LOGOUT_REASON_USER = "urn:oasis:names:tc:SAML:2.0:logout:user"


@dataclass(frozen=True)
class LogoutSubject:
    """Whom a LogoutRequest is about: the NameID as the portal knows it."""

    name_id: str
    name_id_format: str | None = None
    name_qualifier: str | None = None
    sp_name_qualifier: str | None = None


@dataclass(frozen=True)
class ParsedLogoutRequest:
    """What we need of a portal's LogoutRequest, checked and typed."""

    request_id: str
    issuer: str
    destination: str
    subject: LogoutSubject
    session_indexes: tuple[str, ...]
    # An embedded XML signature was present and verified with the portal's key from metadata.
    signed: bool


@dataclass(frozen=True)
class ParsedLogoutResponse:
    """A portal's answer to our LogoutRequest, checked and typed."""

    issuer: str
    in_response_to: str | None
    status: str
    sub_status: str | None
    signed: bool


@dataclass(frozen=True)
class OutgoingMessage:
    """A SAML message on its way through the browser to ``url``.

    HTTP-Redirect: ``url`` is the whole signed address. HTTP-POST: ``url`` is the form's action
    and ``fields`` its hidden fields (SAMLRequest or SAMLResponse, RelayState).
    """

    binding: str
    url: str
    fields: tuple[tuple[str, str], ...] = ()


class SamlIdp:
    """pysaml2's Server, built once per process, with our crypto backend installed."""

    def __init__(self, config: IdPConfig, endpoints: IdpEndpoints,
                 crypto: CryptoBackend | None = None) -> None:
        self.endpoints = endpoints
        self.server = Server(config=config)
        if crypto is not None:
            self.server.sec.crypto = crypto

    @property
    def entity_id(self) -> str:
        return self.endpoints.entity_id

    def parse_authn_request(self, xml: bytes, now: datetime,
                            require_signature: bool = False) -> ParsedAuthnRequest:
        """Parse and check an AuthnRequest (already decoded by :mod:`idp.saml.bindings`)."""
        try:
            request = self.server.parse_authn_request(xml.decode("utf-8"), binding=None)
        except (SignatureError, SigverError) as error:
            raise RequestRejected(f"bad signature: {error}") from None
        except Exception as error:  # pysaml2 raises many kinds for malformed input
            raise RequestRejected(f"unparsable AuthnRequest: {type(error).__name__}") from None
        if request is None or request.message is None:
            raise RequestRejected("not an AuthnRequest")
        message = request.message
        issuer = self._known_issuer(message)
        signed = message.signature is not None
        # pysaml2 verified an embedded signature while loading (if there was one); a portal
        # that must sign is refused without one.
        if require_signature and not signed:
            raise RequestRejected("unsigned request where a signature is required")
        destination = message.destination
        # DESIGN §5.4: Destination must be ours when given, and must be given when signed.
        if destination is not None and destination not in self.endpoints.all_urls:
            raise RequestRejected(f"Destination {destination!r} is not ours")
        if signed and destination is None:
            raise RequestRejected("signed request without Destination")
        issue_instant = parse_instant(message.issue_instant)
        if issue_instant is None or abs(now - issue_instant) > ISSUE_INSTANT_WINDOW:
            raise RequestRejected("IssueInstant outside the accepted window")
        try:
            # DESIGN §5.2: the ACS only from metadata (URL or index must match exactly).
            args = self.server.response_args(message, [BINDING_HTTP_POST])
        except (UnknownPrincipal, UnsupportedBinding, Exception) as error:
            raise RequestRejected(f"ACS not in metadata: {type(error).__name__}") from None
        policy = message.name_id_policy
        context = message.requested_authn_context
        akdb: AuthenticationRequest | None = None
        akdb_problem: str | None = None
        try:
            akdb = read_extension(xml)
        except ExtensionError as error:  # told to the portal if the request is signed
            akdb_problem = str(error)
        return ParsedAuthnRequest(
            request_id=message.id, issuer=issuer, issue_instant=issue_instant,
            destination=destination, acs_url=args["destination"], acs_binding=args["binding"],
            force_authn=message.force_authn in ("true", "1"),
            is_passive=message.is_passive in ("true", "1"),
            name_id_format=(policy.format if policy is not None and policy.format
                            and policy.format != NAMEID_FORMAT_UNSPECIFIED else None),
            allow_create=policy is None or policy.allow_create in (None, "true", "1"),
            requested_contexts=tuple(ref.text.strip() for ref in
                                     (context.authn_context_class_ref if context else [])
                                     if ref.text),
            comparison=(context.comparison or "exact") if context is not None else "exact",
            signed=signed, akdb=akdb, akdb_problem=akdb_problem)

    def create_response(self, request: ParsedAuthnRequest, name_id: str, name_id_format: str,
                        release: Sequence[AttributeRelease], authentication: Authentication,
                        signing: Signing) -> str:
        """A Response with one Assertion for ``request``, signed as the portal's policy says.

        The assertion carries exactly ``release`` (already filtered by policy and consent) and
        the NameID we chose (DESIGN §5.6, §5.7); pysaml2 fills in Conditions, Audience,
        SubjectConfirmation with Recipient and InResponseTo.
        """
        server = self.server
        if signing.encrypt_assertion and not server.has_encrypt_cert_in_metadata(
                request.issuer):
            # pysaml2 would quietly send the assertion in clear; the portal's policy says no.
            raise RequestRejected("encryption required but no encryption key in metadata")
        # IdP-initiated: no InResponseTo anywhere (SAML profiles §4.1.5).
        in_response_to = None if request.unsolicited else request.request_id
        if not signing.encrypt_assertion and isinstance(server.sec.crypto,
                                                        InProcessCryptoBackend):
            return self._built_response(request, in_response_to, name_id, name_id_format,
                                        release, authentication, signing)
        assertion = server.setup_assertion(
            authn={"class_ref": authentication.class_ref,
                   "authn_instant": int(authentication.instant.timestamp())},
            sp_entity_id=request.issuer, in_response_to=in_response_to,
            consumer_url=request.acs_url,
            name_id=NameID(format=name_id_format, text=name_id,
                           name_qualifier=self.entity_id, sp_name_qualifier=request.issuer),
            policy=None, _issuer=server._issuer(), authn_statement=None, identity={},
            best_effort=True,
            sign_response=signing.sign_response,
            session_not_on_or_after=_xs_datetime(authentication.session_not_on_or_after))
        assertion.attribute_statement = [attribute_statement(release)] if release else []
        for statement in assertion.authn_statement:
            statement.session_index = authentication.session_index
        to_sign = []
        if signing.sign_assertion and not signing.encrypt_assertion:
            assertion.signature = pre_signature_part(
                assertion.id, server.sec.my_cert, 2, sign_alg=server.signing_algorithm,
                digest_alg=server.digest_algorithm)
            to_sign.append((class_name(assertion), assertion.id))
        response = server._response(
            in_response_to, request.acs_url, None, None, signing.sign_response, to_sign,
            sp_entity_id=request.issuer, encrypt_assertion=signing.encrypt_assertion,
            # The encrypted assertion must declare its own namespaces: decrypted, it stands
            # alone (akdb:TrustLevel, xsi:type).
            encrypt_assertion_self_contained=True,
            sign_assertion=signing.sign_assertion, sign_alg=server.signing_algorithm,
            digest_alg=server.digest_algorithm, assertion=assertion)
        return str(response)

    def _built_response(self, request: ParsedAuthnRequest, in_response_to: str | None,
                        name_id: str, name_id_format: str, release: Sequence[AttributeRelease],
                        authentication: Authentication, signing: Signing) -> str:
        """The same Response as pysaml2 builds for ``create_response``, made with lxml and
        signed in one pass (no object model, no parse and serialisation per signature).

        pysaml2's own path stays for encrypted assertions.
        """
        now = datetime.now(UTC)
        issued, expires = _xs_datetime(now), _xs_datetime(now + ASSERTION_LIFETIME)
        response = _element(SAMLP_NS, "Response", ID=_new_id(), Version="2.0",
                            IssueInstant=issued, Destination=request.acs_url)
        if in_response_to:
            response.set("InResponseTo", in_response_to)
        response.append(self._issuer_element())
        status = _element(SAMLP_NS, "Status", parent=response)
        _element(SAMLP_NS, "StatusCode", parent=status, Value=STATUS_SUCCESS)
        assertion = _element(SAML_NS, "Assertion", parent=response, ID=_new_id(),
                             Version="2.0", IssueInstant=issued)
        assertion.append(self._issuer_element())
        subject = _element(SAML_NS, "Subject", parent=assertion)
        _element(SAML_NS, "NameID", parent=subject, text=name_id, Format=name_id_format,
                 NameQualifier=self.entity_id, SPNameQualifier=request.issuer)
        confirmation = _element(SAML_NS, "SubjectConfirmation", parent=subject,
                                Method=BEARER)
        data = _element(SAML_NS, "SubjectConfirmationData", parent=confirmation,
                        NotOnOrAfter=expires, Recipient=request.acs_url)
        if in_response_to:
            data.set("InResponseTo", in_response_to)
        conditions = _element(SAML_NS, "Conditions", parent=assertion, NotBefore=issued,
                              NotOnOrAfter=expires)
        _element(SAML_NS, "Audience", text=request.issuer,
                 parent=_element(SAML_NS, "AudienceRestriction", parent=conditions))
        statement = _element(
            SAML_NS, "AuthnStatement", parent=assertion,
            AuthnInstant=_xs_datetime(authentication.instant),
            SessionIndex=authentication.session_index,
            SessionNotOnOrAfter=_xs_datetime(authentication.session_not_on_or_after))
        _element(SAML_NS, "AuthnContextClassRef", text=authentication.class_ref,
                 parent=_element(SAML_NS, "AuthnContext", parent=statement))
        if release:
            attributes = _element(SAML_NS, "AttributeStatement", parent=assertion)
            for item in release:
                attribute = _element(SAML_NS, "Attribute", parent=attributes, Name=item.name,
                                     NameFormat=NAME_FORMAT_URI,
                                     FriendlyName=item.friendly_name)
                attribute.set(AKDB_TRUST_LEVEL, str(item.trust_level))
                for value in item.values:
                    # xs is declared on the value itself, as pysaml2 does: exclusive c14n
                    # leaves out prefixes used only in attribute values (xsi:type), so an
                    # assertion taken out of the response must carry its own declaration.
                    value_element = etree.SubElement(
                        attribute, f"{{{SAML_NS}}}AttributeValue", {XSI_TYPE: "xs:string"},
                        nsmap={"xs": XS_NS})
                    value_element.text = value
        to_sign = ([assertion] if signing.sign_assertion else []) + \
            ([response] if signing.sign_response else [])
        crypto = self.server.sec.crypto
        assert isinstance(crypto, InProcessCryptoBackend)
        crypto.sign_elements(to_sign, self.server.sec.key_file, self.server.sec.my_cert)
        return str(etree.tostring(response, encoding="unicode"))

    def _issuer_element(self) -> etree._Element:
        return _element(SAML_NS, "Issuer", text=self.entity_id, Format=NAMEID_FORMAT_ENTITY)

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
            request.request_id, request.acs_url, status_element, None, sign, [],
            sp_entity_id=request.issuer, sign_alg=self.server.signing_algorithm,
            digest_alg=self.server.digest_algorithm)
        return str(response)

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

    def parse_logout_request(self, xml: bytes, now: datetime) -> ParsedLogoutRequest:
        """Parse and check a LogoutRequest (already decoded by :mod:`idp.saml.bindings`).

        An embedded signature is verified with the issuer's key from metadata; whether the
        request is signed at all (embedded or over the Redirect query) the caller decides.
        """
        message = self._load(xml, "logout_request")
        issuer = self._known_issuer(message)
        # DESIGN §5.4: a signed message names its Destination, and it must be our SLO endpoint.
        if message.destination is None:
            raise RequestRejected("LogoutRequest without Destination")
        self._check_destination(message.destination)
        _check_issue_instant(message.issue_instant, now)
        if message.not_on_or_after is not None:
            expires = parse_instant(message.not_on_or_after)
            if expires is None or expires <= now:
                raise RequestRejected("LogoutRequest past its NotOnOrAfter")
        name_id = message.name_id
        if name_id is None or not (name_id.text or "").strip():
            # BaseID and EncryptedID name no one we could compare with a session.
            raise RequestRejected("LogoutRequest without a plain NameID")
        return ParsedLogoutRequest(
            request_id=message.id, issuer=issuer, destination=message.destination,
            subject=LogoutSubject(name_id.text.strip(), name_id.format, name_id.name_qualifier,
                                  name_id.sp_name_qualifier),
            session_indexes=tuple(index.text.strip() for index in message.session_index
                                  if index.text and index.text.strip()),
            signed=message.signature is not None)

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
            signed=message.signature is not None)

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
            session_indexes=[session_index], sign=sign, sign_alg=SIGN_ALGORITHM,
            digest_alg=DIGEST_ALGORITHM)
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
            samlp.LogoutResponse, self.server._issuer(), status_element, sign,
            sign_alg=SIGN_ALGORITHM, digest_alg=DIGEST_ALGORITHM,
            in_response_to=in_response_to, destination=destination)
        return str(response)

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
        issuer = message.issuer.text.strip() if message.issuer is not None and \
            message.issuer.text else ""
        if not issuer:
            raise RequestRejected("message without Issuer")
        known: list[str] = list(self.server.metadata.keys())
        if issuer not in known:
            raise RequestRejected(f"unknown issuer {issuer!r}")
        return str(issuer)

    def _check_destination(self, destination: str) -> None:
        if destination not in {url for url, _ in self.endpoints.slo}:
            raise RequestRejected(f"Destination {destination!r} is not our logout endpoint")



def _check_issue_instant(value: str | None, now: datetime) -> None:
    """DESIGN §5.3: the same small window as for AuthnRequests."""
    issue_instant = parse_instant(value)
    if issue_instant is None or abs(now - issue_instant) > ISSUE_INSTANT_WINDOW:
        raise RequestRejected("IssueInstant outside the accepted window")


SAMLP_NS = "urn:oasis:names:tc:SAML:2.0:protocol"
SAML_NS = "urn:oasis:names:tc:SAML:2.0:assertion"
STATUS_SUCCESS = "urn:oasis:names:tc:SAML:2.0:status:Success"
BEARER = "urn:oasis:names:tc:SAML:2.0:cm:bearer"
XSI_TYPE = "{http://www.w3.org/2001/XMLSchema-instance}type"
XS_NS = "http://www.w3.org/2001/XMLSchema"
_NSMAP = {"samlp": SAMLP_NS, "saml": SAML_NS, "ds": "http://www.w3.org/2000/09/xmldsig#",
          "akdb": AKDB_NAMESPACE, "xsi": "http://www.w3.org/2001/XMLSchema-instance"}


def _element(namespace: str, name: str, *, parent: etree._Element | None = None,
             text: str | None = None, **attributes: str) -> etree._Element:
    tag = f"{{{namespace}}}{name}"
    element = etree.Element(tag, attributes, nsmap=_NSMAP) if parent is None \
        else etree.SubElement(parent, tag, attributes)
    if text is not None:
        element.text = text
    return element


def _new_id() -> str:
    """An xs:ID (NCName) with 128 random bits, as unguessable as our other tokens."""
    return "id-" + secrets.token_hex(16)


def _xs_datetime(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def attribute_statement(release: Sequence[AttributeRelease]) -> AttributeStatement:
    """The BundID attributes: Name and NameFormat uri, FriendlyName, akdb:TrustLevel."""
    return AttributeStatement(attribute=[
        Attribute(name=item.name, name_format=NAME_FORMAT_URI, friendly_name=item.friendly_name,
                  attribute_value=[AttributeValue(text=value) for value in item.values],
                  extension_attributes={AKDB_TRUST_LEVEL: str(item.trust_level)})
        for item in release])
