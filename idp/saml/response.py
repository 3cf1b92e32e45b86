"""Successful SAML Responses, built with lxml: one builder for clear and encrypted assertions.

No pysaml2 object model, no parse and serialisation per signature: the elements are made once
and signed in place by :meth:`InProcessCryptoBackend.sign_elements`. For a portal that wants its
assertion encrypted, the assertion is signed first, then encrypted for the portal's key
(AES-256-GCM, RSA-OAEP) inside saml:EncryptedAssertion, and the Response signed last — the order
pysaml2 uses, so the signature inside the decrypted assertion verifies on its own.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Protocol

from lxml import etree  # type: ignore[import-untyped]  # no stubs installed
from saml2.saml import NAME_FORMAT_URI, NAMEID_FORMAT_ENTITY

from idp.saml.messages import STATUS_SUCCESS
from idp.samlkit.bundid import AKDB_NAMESPACE
from idp.samlkit.crypto import InProcessCryptoBackend
from idp.samlkit.ids import new_id

# How long an assertion may be presented at the ACS (Conditions, SubjectConfirmationData).
ASSERTION_LIFETIME = timedelta(minutes=5)

SAMLP_NS = "urn:oasis:names:tc:SAML:2.0:protocol"
SAML_NS = "urn:oasis:names:tc:SAML:2.0:assertion"
BEARER = "urn:oasis:names:tc:SAML:2.0:cm:bearer"
AKDB_TRUST_LEVEL = f"{{{AKDB_NAMESPACE}}}TrustLevel"
XSI_TYPE = "{http://www.w3.org/2001/XMLSchema-instance}type"
XS_NS = "http://www.w3.org/2001/XMLSchema"
_NSMAP = {"samlp": SAMLP_NS, "saml": SAML_NS, "ds": "http://www.w3.org/2000/09/xmldsig#",
          "akdb": AKDB_NAMESPACE, "xsi": "http://www.w3.org/2001/XMLSchema-instance"}
# An assertion standing alone (encrypted) declares what it uses; xs is declared on the values.
_ASSERTION_NSMAP = {prefix: _NSMAP[prefix] for prefix in ("saml", "ds", "akdb", "xsi")}


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
    """Per-portal choices of what to sign (whether to encrypt: an :class:`EncryptionKey`)."""

    sign_response: bool = True
    sign_assertion: bool = True


@dataclass(frozen=True)
class EncryptionKey:
    """The portal's encryption certificate from its metadata (base64 DER) and its KeyName."""

    certificate: str
    name: str | None = None


@dataclass(frozen=True)
class Recipient:
    """Whom a Response answers: the portal (audience), its ACS and its request's ID."""

    audience: str
    acs_url: str
    # None for IdP-initiated SSO: no InResponseTo anywhere (SAML profiles §4.1.5).
    in_response_to: str | None


@dataclass(frozen=True)
class ResponseBuilder:
    """Builds and signs (and encrypts) our successful Responses with our key."""

    entity_id: str
    crypto: InProcessCryptoBackend
    key_file: str
    # Our signing certificate, base64 DER, for the signatures' KeyInfo.
    certificate: str

    def build(self, recipient: Recipient, name_id: str, name_id_format: str,
              release: Sequence[AttributeRelease], authentication: Authentication,
              signing: Signing, now: datetime, encryption: EncryptionKey | None = None) -> str:
        """A Response with one assertion carrying exactly ``release`` and the NameID we chose
        (docs/architecture.md, pysaml2 traps 6 and 7), with Conditions, Audience and
        SubjectConfirmation with Recipient and InResponseTo, issued at ``now`` (the IdP's
        clock), signed as ``signing`` says; with ``encryption`` the assertion travels as
        saml:EncryptedAssertion for it."""
        response = _element(SAMLP_NS, "Response", ID=new_id(), Version="2.0",
                            IssueInstant=_xs_datetime(now), Destination=recipient.acs_url)
        if recipient.in_response_to:
            response.set("InResponseTo", recipient.in_response_to)
        self._issuer(response)
        status = _element(SAMLP_NS, "Status", parent=response)
        _element(SAMLP_NS, "StatusCode", parent=status, Value=STATUS_SUCCESS)
        if encryption is None:
            assertion = self._assertion(response, recipient, now, name_id, name_id_format,
                                        release, authentication)
            # Inner first: the Response signature covers the signed assertion.
            self._sign(([assertion] if signing.sign_assertion else [])
                       + ([response] if signing.sign_response else []))
        else:
            # Built as a document of its own, the assertion declares its namespaces itself:
            # decrypted, it stands alone (xsi:type, akdb:TrustLevel), as pysaml2's
            # "self-contained" encrypted assertion did.
            assertion = self._assertion(None, recipient, now, name_id, name_id_format,
                                        release, authentication)
            if signing.sign_assertion:
                self._sign([assertion])
            encrypted = self.crypto.encrypt_element(assertion, encryption.certificate,
                                                    encryption.name)
            _element(SAML_NS, "EncryptedAssertion", parent=response).append(encrypted)
            if signing.sign_response:
                self._sign([response])
        return str(etree.tostring(response, encoding="unicode"))

    def _assertion(self, parent: etree._Element | None, recipient: Recipient, now: datetime,
                   name_id: str, name_id_format: str, release: Sequence[AttributeRelease],
                   authentication: Authentication) -> etree._Element:
        issued, expires = _xs_datetime(now), _xs_datetime(now + ASSERTION_LIFETIME)
        attributes = {"ID": new_id(), "Version": "2.0", "IssueInstant": issued}
        assertion = etree.Element(f"{{{SAML_NS}}}Assertion", attributes,
                                  nsmap=_ASSERTION_NSMAP) if parent is None \
            else _element(SAML_NS, "Assertion", parent=parent, **attributes)
        self._issuer(assertion)
        subject = _element(SAML_NS, "Subject", parent=assertion)
        _element(SAML_NS, "NameID", parent=subject, text=name_id, Format=name_id_format,
                 NameQualifier=self.entity_id, SPNameQualifier=recipient.audience)
        confirmation = _element(SAML_NS, "SubjectConfirmation", parent=subject,
                                Method=BEARER)
        data = _element(SAML_NS, "SubjectConfirmationData", parent=confirmation,
                        NotOnOrAfter=expires, Recipient=recipient.acs_url)
        if recipient.in_response_to:
            data.set("InResponseTo", recipient.in_response_to)
        conditions = _element(SAML_NS, "Conditions", parent=assertion, NotBefore=issued,
                              NotOnOrAfter=expires)
        _element(SAML_NS, "Audience", text=recipient.audience,
                 parent=_element(SAML_NS, "AudienceRestriction", parent=conditions))
        statement = _element(
            SAML_NS, "AuthnStatement", parent=assertion,
            AuthnInstant=_xs_datetime(authentication.instant),
            SessionIndex=authentication.session_index,
            SessionNotOnOrAfter=_xs_datetime(authentication.session_not_on_or_after))
        _element(SAML_NS, "AuthnContextClassRef", text=authentication.class_ref,
                 parent=_element(SAML_NS, "AuthnContext", parent=statement))
        if release:
            _attribute_statement(assertion, release)
        return assertion

    def _issuer(self, parent: etree._Element) -> None:
        _element(SAML_NS, "Issuer", parent=parent, text=self.entity_id,
                 Format=NAMEID_FORMAT_ENTITY)

    def _sign(self, elements: list[etree._Element]) -> None:
        if elements:
            self.crypto.sign_elements(elements, self.key_file, self.certificate)


def _attribute_statement(assertion: etree._Element,
                         release: Sequence[AttributeRelease]) -> None:
    """The BundID attributes: Name and NameFormat uri, FriendlyName, akdb:TrustLevel."""
    attributes = _element(SAML_NS, "AttributeStatement", parent=assertion)
    for item in release:
        attribute = _element(SAML_NS, "Attribute", parent=attributes, Name=item.name,
                             NameFormat=NAME_FORMAT_URI, FriendlyName=item.friendly_name)
        attribute.set(AKDB_TRUST_LEVEL, str(item.trust_level))
        for value in item.values:
            # xs is declared on the value itself, as pysaml2 does: exclusive c14n leaves out
            # prefixes used only in attribute values (xsi:type), so an assertion taken out of
            # the response must carry its own declaration.
            value_element = etree.SubElement(
                attribute, f"{{{SAML_NS}}}AttributeValue", {XSI_TYPE: "xs:string"},
                nsmap={"xs": XS_NS})
            value_element.text = value


def _element(namespace: str, name: str, *, parent: etree._Element | None = None,
             text: str | None = None, **attributes: str) -> etree._Element:
    tag = f"{{{namespace}}}{name}"
    element = etree.Element(tag, attributes, nsmap=_NSMAP) if parent is None \
        else etree.SubElement(parent, tag, attributes)
    if text is not None:
        element.text = text
    return element


def _xs_datetime(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
