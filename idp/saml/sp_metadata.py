"""A portal's SAML metadata: fetched within limits, checked, and read with pysaml2.

The document handed to pysaml2's ``Server`` (config ``metadata: {"inline": [...]}``) is exactly
the one checked here: one ``EntityDescriptor`` with an ``SPSSODescriptor``, the entity id the
portal's policy names, at least one HTTP-POST AssertionConsumerService at an http(s) URL, not
expired. When the policy names a certificate, the document must carry an enveloped signature over
its root, verified with that certificate by an injected verifier (the in-process crypto backend,
never the ``xmlsec1`` program).
"""

from __future__ import annotations

import base64
import re
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit
from xml.etree import ElementTree

from cryptography import x509
from saml2 import BINDING_HTTP_POST
from saml2.mdstore import InMemoryMetaData

from idp.samlkit.crypto import InProcessCryptoBackend
from idp.samlkit.instants import parse_instant
from idp.samlkit.metadata import MAX_METADATA_BYTES, MetadataError

ENTITY_DESCRIPTOR = "urn:oasis:names:tc:SAML:2.0:metadata:EntityDescriptor"
_MD = "{urn:oasis:names:tc:SAML:2.0:metadata}"
_DS = "{http://www.w3.org/2000/09/xmldsig#}"
_DOCTYPE = re.compile(rb"<!\s*(DOCTYPE|ENTITY)", re.IGNORECASE)

# verify(document, certificate_pem) -> True when the document's signature verifies with the key.
SignatureVerifier = Callable[[bytes, bytes], bool]


@dataclass(frozen=True)
class Endpoint:
    """One endpoint of the portal (AssertionConsumerService or SingleLogoutService)."""

    binding: str
    location: str
    index: int | None = None
    response_location: str | None = None


@dataclass(frozen=True)
class SpMetadata:
    """The checked metadata of one portal (a SAML service provider)."""

    entity_id: str
    # The document as received, for pysaml2's "inline" metadata.
    xml: str
    acs: tuple[Endpoint, ...]
    slo: tuple[Endpoint, ...]
    signing_certificates: tuple[x509.Certificate, ...]
    encryption_certificates: tuple[x509.Certificate, ...]
    valid_until: datetime | None
    organization_display_name: str | None


def parse_sp_metadata(document: bytes, expected_entity_id: str | None,
                      now: datetime) -> SpMetadata:
    """Check and read SP metadata; raise :class:`MetadataError` naming what is wrong.

    ``expected_entity_id`` (from the portal's policy) must equal the document's entityID.
    """
    if len(document) > MAX_METADATA_BYTES:
        raise MetadataError(f"larger than {MAX_METADATA_BYTES} bytes")
    if _DOCTYPE.search(document):
        # No DTDs at all: they are the door for XXE and entity expansion bombs.
        raise MetadataError("contains a DOCTYPE or ENTITY declaration")
    try:
        text = document.decode("utf-8")
    except UnicodeDecodeError:
        raise MetadataError("not UTF-8") from None
    store = InMemoryMetaData(None, text, check_validity=False)
    try:
        store.load()
    except Exception as error:  # pysaml2 raises many kinds for malformed XML
        raise MetadataError(f"not SAML metadata ({type(error).__name__})") from None
    descriptor = store.entity_descr
    if descriptor is None or store.entities_descr is not None:
        raise MetadataError("expected one md:EntityDescriptor as the document's root")
    entity_id = (descriptor.entity_id or "").strip()
    if expected_entity_id is not None and entity_id != expected_entity_id:
        raise MetadataError(f"entityID is {entity_id!r}, but the policy says "
                            f"{expected_entity_id!r}")
    valid_until = parse_instant(descriptor.valid_until)
    if descriptor.valid_until and valid_until is None:
        raise MetadataError(f"validUntil {descriptor.valid_until!r} is not a date and time")
    if valid_until is not None and valid_until <= now:
        raise MetadataError(f"expired at {valid_until:%Y-%m-%d %H:%M} UTC (validUntil)")
    entity: dict[str, Any] | None = store.entity.get(entity_id)
    if entity is None or not entity.get("spsso_descriptor"):
        raise MetadataError("has no SPSSODescriptor for SAML 2.0")
    sp = entity["spsso_descriptor"][0]
    acs = tuple(_endpoint(item) for item in sp.get("assertion_consumer_service", []))
    slo = tuple(_endpoint(item) for item in sp.get("single_logout_service", []))
    for endpoint in acs + slo:
        # A portal's endpoint receives citizens' data: never a javascript: or file: URL.
        for url in (endpoint.location, endpoint.response_location):
            if url is not None and (urlsplit(url).scheme not in ("http", "https")
                                    or not urlsplit(url).netloc):
                raise MetadataError(f"endpoint {url!r} is not an http(s) URL")
    if not any(endpoint.binding == BINDING_HTTP_POST for endpoint in acs):
        raise MetadataError("has no AssertionConsumerService with the HTTP-POST binding "
                            "(the only one we answer with)")
    return SpMetadata(
        entity_id=entity_id, xml=text, acs=acs, slo=slo,
        signing_certificates=_certificates(store, entity_id, "signing"),
        encryption_certificates=_certificates(store, entity_id, "encryption"),
        valid_until=valid_until, organization_display_name=_organization_name(entity))


def _endpoint(item: dict[str, Any]) -> Endpoint:
    index = item.get("index")
    return Endpoint(binding=item["binding"], location=item["location"],
                    index=int(index) if index is not None and str(index).isdigit() else None,
                    response_location=item.get("response_location"))


def _certificates(store: InMemoryMetaData, entity_id: str,
                  use: str) -> tuple[x509.Certificate, ...]:
    certificates = []
    for _name, encoded in store.certs(entity_id, "spsso", use):
        try:
            certificates.append(x509.load_der_x509_certificate(
                base64.b64decode("".join(encoded.split()))))
        except ValueError:
            raise MetadataError(f"a {use} certificate in KeyDescriptor is broken") from None
    return tuple(certificates)


def _organization_name(entity: dict[str, Any]) -> str | None:
    names = entity.get("organization", {}).get("organization_display_name", [])
    german = [name for name in names if name.get("lang") == "de"]
    for name in german + names:
        if text := (name.get("text") or "").strip():
            return str(text)
    return None


def check_signature(document: bytes, certificate_pem: bytes,
                    verifier: SignatureVerifier | None) -> None:
    """Raise :class:`MetadataError` unless ``document`` is signed as a whole with the key.

    Before the cryptography, the shape: one enveloped signature directly under the root whose
    only reference is the root itself, and no duplicate IDs, so that a signature over some other
    element cannot vouch for the descriptor pysaml2 reads (signature wrapping).
    """
    if _DOCTYPE.search(document):
        raise MetadataError("contains a DOCTYPE or ENTITY declaration")
    try:
        root = ElementTree.fromstring(document)  # noqa: S314 (no DTD, checked above)
    except ElementTree.ParseError as error:
        raise MetadataError(f"not well-formed XML: {error}") from None
    signatures = root.findall(f"{_DS}Signature")
    if not signatures:
        raise MetadataError("is not signed, but the policy requires a signature")
    if len(signatures) > 1:
        raise MetadataError("carries more than one signature on its root")
    references = signatures[0].findall(f"{_DS}SignedInfo/{_DS}Reference")
    root_id = root.get("ID")
    allowed = {"", f"#{root_id}"} if root_id else {""}
    if len(references) != 1 or references[0].get("URI") not in allowed:
        raise MetadataError("the signature does not cover the whole document")
    ids = [element.get("ID") for element in root.iter() if element.get("ID")]
    if len(ids) != len(set(ids)):
        raise MetadataError("contains duplicate IDs")
    if verifier is None:
        raise MetadataError("a signature is required, but no signature verifier is configured")
    if not verifier(document, certificate_pem):
        raise MetadataError("the signature does not verify with the configured certificate")


def verifier_from_backend(backend: Any) -> SignatureVerifier:
    """A verifier on a pysaml2 ``CryptoBackend`` (its ``validate_signature`` takes a file)."""

    def verify(document: bytes, certificate_pem: bytes) -> bool:
        with tempfile.NamedTemporaryFile(suffix=".pem") as handle:
            handle.write(certificate_pem)
            handle.flush()
            try:
                return bool(backend.validate_signature(document, handle.name, "pem",
                                                       ENTITY_DESCRIPTOR, None))
            except Exception:  # any failure of the backend means: not verified
                return False

    return verify


def default_verifier() -> SignatureVerifier:
    """A verifier on the project's in-process crypto backend, for callers outside a running IdP
    (the ``servicekonto portal`` commands); the IdP's start passes the backend its Server uses."""
    return verifier_from_backend(InProcessCryptoBackend())
