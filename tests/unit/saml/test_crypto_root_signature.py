"""The embedded signature of a message already parsed once (issue 12: no second parse on the SSO
path): verified on the root with keys from metadata, within the same profile as every other."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from saml2.sigver import SignatureError

from idp.samlkit.crypto import InProcessCryptoBackend
from idp.samlkit.untrusted_xml import parse_xml
from tests.saml_support import key_pair
from tests.unit.saml import forgery

REQUEST = (b'<samlp:AuthnRequest xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" '
           b'xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="id-request" Version="2.0" '
           b'IssueInstant="2026-01-01T00:00:00Z"><saml:Issuer>https://portal.example/sp'
           b'</saml:Issuer></samlp:AuthnRequest>')


def der(cert: Path) -> bytes:
    return x509.load_pem_x509_certificate(cert.read_bytes()).public_bytes(Encoding.DER)


def signed(key: Path, **options: object) -> bytes:
    root = forgery.raw_sign(forgery.parse(REQUEST), forgery.private_key(key), **options)
    return forgery.text(root).encode("utf-8")


@pytest.fixture
def keys(tmp_path: Path) -> tuple[tuple[Path, Path], tuple[Path, Path]]:
    return key_pair(tmp_path / "portal", "portal"), key_pair(tmp_path / "other", "other")


def test_a_signature_by_any_of_the_certificates_verifies(keys: tuple[tuple[Path, Path], ...]
                                                         ) -> None:
    (portal_key, portal_cert), (_, other_cert) = keys
    # During a key rollover metadata lists two certificates: either may have signed.
    InProcessCryptoBackend().verify_root_signature(parse_xml(signed(portal_key)),
                                                   [der(other_cert), der(portal_cert)])


def test_a_signature_by_a_key_not_listed_is_refused(keys: tuple[tuple[Path, Path], ...]) -> None:
    (portal_key, _), (_, other_cert) = keys
    with pytest.raises(SignatureError, match="does not verify"):
        InProcessCryptoBackend().verify_root_signature(parse_xml(signed(portal_key)),
                                                       [der(other_cert)])


def test_without_certificates_nothing_verifies(keys: tuple[tuple[Path, Path], ...]) -> None:
    (portal_key, _), _ = keys
    with pytest.raises(SignatureError, match="no certificate"):
        InProcessCryptoBackend().verify_root_signature(parse_xml(signed(portal_key)), [])


def test_a_reference_to_anything_but_the_root_is_refused(keys: tuple[tuple[Path, Path], ...]
                                                         ) -> None:
    (portal_key, portal_cert), _ = keys
    root = forgery.parse(REQUEST)
    issuer = forgery.first(root, "saml:Issuer")
    issuer.set("ID", "id-issuer")
    forgery.raw_sign(root, forgery.private_key(portal_key), uri="#id-issuer", register=[issuer])
    with pytest.raises(SignatureError, match="does not point to the signed element"):
        InProcessCryptoBackend().verify_root_signature(
            parse_xml(forgery.text(root)), [der(portal_cert)])


def test_an_id_given_twice_is_refused(keys: tuple[tuple[Path, Path], ...]) -> None:
    (portal_key, portal_cert), _ = keys
    root = parse_xml(signed(portal_key))
    forgery.first(root, "saml:Issuer").set("ID", "id-request")
    with pytest.raises(SignatureError, match="more than once"):
        InProcessCryptoBackend().verify_root_signature(root, [der(portal_cert)])
