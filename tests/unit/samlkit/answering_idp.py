"""An IdP that answers with the IdP's own ResponseBuilder, and a pysaml2 SP client that trusts
it through inline metadata, configured as every SP of ours is (sp_client/saml/provider.py).

Fresh keys per test; answers are built unsigned, changed, then signed (assertion first, then
the Response), so only the checks after the signature can catch the change.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from lxml import etree  # type: ignore[import-untyped]  # no stubs installed
from saml2 import BINDING_HTTP_POST
from saml2.client import Saml2Client
from saml2.config import IdPConfig, SPConfig
from saml2.saml import NAMEID_FORMAT_PERSISTENT

from idp.saml.identifiers import TrustLevel
from idp.saml.response import (
    Authentication,
    EncryptionKey,
    Recipient,
    ResponseBuilder,
    Signing,
)
from idp.samlkit.bundid import GIVEN_NAME, MAIL, SURNAME
from idp.samlkit.crypto import InProcessCryptoBackend, install_backend
from idp.samlkit.sp_response import CLOCK_SKEW, Envelope, Expected, read_envelope
from tests.saml_support import key_pair, metadata_of

IDP_ID = "https://idp.example.test/saml/metadata"
# Another IdP the SP's client trusts, with the same key (one federation, one operator).
SIBLING_IDP = "https://schwester-idp.example.test/saml/metadata"
SP_ID = "https://broker.example.test/saml/metadata"
ACS = "https://broker.example.test/saml/acs"
REQUEST_ID = "_request-1"
SAMLP = "urn:oasis:names:tc:SAML:2.0:protocol"
SAML = "urn:oasis:names:tc:SAML:2.0:assertion"
NS = {"samlp": SAMLP, "saml": SAML}


@dataclass(frozen=True)
class Released:
    """One released attribute, as the builder takes it."""

    name: str
    friendly_name: str
    values: tuple[str, ...]
    trust_level: str


RELEASED = (Released(GIVEN_NAME, "givenName", ("Björn",), "HOCH"),
            Released(SURNAME, "surname", ("Müller",), "HOCH"),
            Released(MAIL, "mail", ("bjoern@example.test",), "NORMAL"))


def idp_metadata(entity_id: str, key: Path, cert: Path) -> str:
    config = IdPConfig()
    config.load({
        "entityid": entity_id, "key_file": str(key), "cert_file": str(cert),
        "crypto_backend": "XMLSecurity",
        "service": {"idp": {"endpoints": {"single_sign_on_service": [
            (entity_id.replace("/metadata", "/sso"), BINDING_HTTP_POST)]}}},
    })
    return metadata_of(config)


def sp_client(key: Path, cert: Path, idp_metadata: list[str]) -> Saml2Client:
    """A pysaml2 SP with the settings :class:`idp.samlkit.sp_response.ResponseParser` asks for."""
    config = SPConfig()
    config.load({
        "entityid": SP_ID, "key_file": str(key), "cert_file": str(cert),
        "encryption_keypairs": [{"key_file": str(key), "cert_file": str(cert)}],
        "crypto_backend": "XMLSecurity",
        "metadata": {"inline": idp_metadata},
        "only_use_keys_in_metadata": True,
        "accepted_time_diff": int(CLOCK_SKEW.total_seconds()),
        "allow_unknown_attributes": True,
        "service": {"sp": {
            "endpoints": {"assertion_consumer_service": [(ACS, BINDING_HTTP_POST)]},
            "want_response_signed": True, "want_assertions_signed": True,
            "allow_unsolicited": False}},
    })
    client = Saml2Client(config=config)
    install_backend(client, InProcessCryptoBackend())
    return client


@dataclass
class AnsweringIdp:
    """The IdP's builder on fresh keys, and the client of an SP that trusts it."""

    builder: ResponseBuilder
    client: Saml2Client
    sp_certificate: str
    now: datetime

    def recipient(self) -> Recipient:
        return Recipient(audience=SP_ID, acs_url=ACS, in_response_to=REQUEST_ID)

    def authentication(self, class_ref: str = "STORK-QAA-Level-3") -> Authentication:
        return Authentication(class_ref=class_ref, instant=self.now - timedelta(seconds=30),
                              session_index="_session-1",
                              session_not_on_or_after=self.now + timedelta(hours=8))

    def answer(self, change: Callable[[etree._Element], None] = lambda root: None, *,
               class_ref: str = "STORK-QAA-Level-3", released: tuple[Released, ...] = RELEASED,
               issued: datetime | None = None, sign: bool = True) -> bytes:
        """A Response to our request, changed by ``change`` before it is signed."""
        root = etree.fromstring(self.builder.build(
            self.recipient(), "persistent-1", NAMEID_FORMAT_PERSISTENT, released,
            self.authentication(class_ref), Signing(sign_response=False, sign_assertion=False),
            issued or self.now).encode("utf-8"))
        change(root)
        if sign:
            crypto, key, certificate = (self.builder.crypto, self.builder.key_file,
                                        self.builder.certificate)
            crypto.sign_elements(root.findall("saml:Assertion", NS), key, certificate)
            crypto.sign_elements([root], key, certificate)
        return bytes(etree.tostring(root))

    def encrypted_answer(self) -> bytes:
        """A Response whose signed assertion is encrypted to the SP's key."""
        return self.builder.build(
            self.recipient(), "persistent-1", NAMEID_FORMAT_PERSISTENT, RELEASED,
            self.authentication(), Signing(), self.now,
            EncryptionKey(self.sp_certificate)).encode("utf-8")


def answering_idp(folder: Path) -> AnsweringIdp:
    idp_key, idp_cert = key_pair(folder, "idp")
    sp_key, sp_cert = key_pair(folder, "sp")
    builder = ResponseBuilder(IDP_ID, InProcessCryptoBackend(), str(idp_key),
                              _base64_der(idp_cert))
    trusted = [idp_metadata(entity, idp_key, idp_cert) for entity in (IDP_ID, SIBLING_IDP)]
    return AnsweringIdp(builder, sp_client(sp_key, sp_cert, trusted),
                        _base64_der(sp_cert), datetime.now(UTC).replace(microsecond=0))


def _base64_der(cert_file: Path) -> str:
    certificate = x509.load_pem_x509_certificate(cert_file.read_bytes())
    return base64.b64encode(certificate.public_bytes(Encoding.DER)).decode("ascii")


def expected(**changes: Any) -> Expected:
    """What our SP expects of an answer to REQUEST_ID: level 3, given name and surname."""
    return replace(Expected(issuer=IDP_ID, audience=SP_ID, acs_url=ACS, request_id=REQUEST_ID,
                            trust_level=3, level_of=TrustLevel.from_class_ref,
                            required=(GIVEN_NAME, SURNAME)), **changes)


def envelope(xml: bytes) -> Envelope:
    """``xml`` as it arrives in the browser's form."""
    return read_envelope({"SAMLResponse": [base64.b64encode(xml).decode("ascii")]})
