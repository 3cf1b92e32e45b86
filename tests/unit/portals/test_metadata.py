"""Portal metadata from a file: what the IdP learns from it, and what stops the start."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.serialization import Encoding
from saml2 import BINDING_HTTP_POST, BINDING_HTTP_REDIRECT

from idp.config import ConfigError
from idp.portals.registry import PortalRegistry
from idp.saml.sp_metadata import (
    SignatureVerifier,
    check_signature,
    default_verifier,
    parse_sp_metadata,
    verifier_from_backend,
)
from idp.samlkit.metadata import MetadataError
from tests.saml_support import key_pair
from tests.unit.portals.support import (
    FakeVerifier,
    fake_signed,
    really_signed,
    sp_metadata_xml,
    write_policy,
)

ENTITY_ID = "https://portal.example/saml/metadata"
NOW = datetime.now(UTC)


@pytest.fixture
def metadata_xml(tmp_path: Path) -> str:
    return sp_metadata_xml(tmp_path, ENTITY_ID, "https://portal.example/saml/acs")


def _registry(tmp_path: Path, xml: str, verifier: SignatureVerifier | None = None,
              **settings: object) -> PortalRegistry:
    write_policy(tmp_path / "policies", "musterstadt", **settings)
    (tmp_path / "policies" / "portals" / "portal.xml").write_text(xml, encoding="utf-8")
    return PortalRegistry.load(tmp_path / "policies", tmp_path / "instance", verifier=verifier)


def test_file_metadata_gives_the_portal_its_endpoints_and_certificates(
        tmp_path: Path, metadata_xml: str) -> None:
    portal = _registry(tmp_path, metadata_xml).by_name("musterstadt")
    assert portal is not None and portal.available
    [acs] = portal.acs_endpoints()
    assert (acs.location, acs.binding, acs.index) == (
        "https://portal.example/saml/acs", BINDING_HTTP_POST, 1)
    [slo] = portal.slo_endpoints()
    assert (slo.location, slo.binding) == ("https://portal.example/saml/slo",
                                           BINDING_HTTP_REDIRECT)
    [certificate] = portal.signing_certificates()
    sp_cert = (tmp_path / "sp-keys" / "sp.crt").read_bytes()
    assert certificate.public_bytes(Encoding.PEM) == sp_cert
    assert portal.metadata_read_at is not None


def test_sso_finds_an_available_portal_by_entity_id(tmp_path: Path, metadata_xml: str) -> None:
    registry = _registry(tmp_path, metadata_xml)
    policy = registry.portal_for(ENTITY_ID)
    assert policy is not None and policy.display_name == "Bürgerportal Musterstadt"
    found = registry.portal(ENTITY_ID)
    assert found is not None and len(found.signing_certificates()) == 1
    assert registry.portal_for("https://unknown.example/md") is None
    assert registry.portal("https://unknown.example/md") is None
    assert registry.metadata_xml() == [metadata_xml]


def test_a_disabled_portal_gets_no_answers(tmp_path: Path, metadata_xml: str) -> None:
    registry = _registry(tmp_path, metadata_xml, enabled=False)
    assert registry.portal_for(ENTITY_ID) is None
    assert registry.metadata_xml() == []
    assert registry.by_name("musterstadt") is not None


def test_pysaml2s_idp_server_takes_the_registrys_metadata(tmp_path: Path,
                                                          metadata_xml: str) -> None:
    from saml2.server import Server

    from idp.saml.configuration import IdpEndpoints, idp_config

    registry = _registry(tmp_path, metadata_xml)
    key, cert = key_pair(tmp_path / "idp-keys", "idp")
    server = Server(config=idp_config(IdpEndpoints("https://idp.example"), str(key), str(cert),
                                      registry.metadata_xml()))
    assert server.metadata.assertion_consumer_service(ENTITY_ID)[0]["location"] == \
        "https://portal.example/saml/acs"
    server.metadata.reload(registry.metadata_spec())
    assert list(server.metadata.keys()) == [ENTITY_ID]


def test_metadata_for_another_entity_id_stops_the_start_naming_the_portal(
        tmp_path: Path, metadata_xml: str) -> None:
    with pytest.raises(ConfigError, match=r"portal musterstadt .*entityID is "
                                          r"'https://portal.example/saml/metadata', but the "
                                          r"policy says 'https://other.example/md'"):
        _registry(tmp_path, metadata_xml, entity_id="https://other.example/md")


def test_a_missing_metadata_file_stops_the_start_naming_the_portal(tmp_path: Path) -> None:
    write_policy(tmp_path / "policies", "musterstadt", metadata="nowhere.xml")
    with pytest.raises(ConfigError, match=r"portal musterstadt .*cannot read metadata .*"
                                          r"nowhere\.xml"):
        PortalRegistry.load(tmp_path / "policies", tmp_path / "instance")


@pytest.mark.parametrize(("change", "message"), [
    (lambda xml: "<html>Wartungsarbeiten</html>", "not SAML metadata|EntityDescriptor"),
    (lambda xml: xml[: len(xml) // 2], "not SAML metadata"),
    (lambda xml: '<!DOCTYPE x [<!ENTITY a "b">]>' + xml, "DOCTYPE"),
    (lambda xml: xml.replace("HTTP-POST", "HTTP-Artifact"), "HTTP-POST"),
    (lambda xml: xml.replace("https://portal.example/saml/acs", "javascript:alert(1)"),
     "not an http\\(s\\) URL"),
    (lambda xml: _valid_until(xml, "2020-01-01T00:00:00Z"), "expired at 2020-01-01"),
    (lambda xml: _valid_until(xml, "bald"), "validUntil 'bald' is not a date"),
    (lambda xml: xml.replace("SPSSODescriptor", "IDPSSODescriptor"), "no SPSSODescriptor"),
])
def test_broken_metadata_file_stops_the_start_saying_why(
        tmp_path: Path, metadata_xml: str, change: object, message: str) -> None:
    assert callable(change)
    with pytest.raises(ConfigError, match=rf"portal musterstadt .*({message})"):
        _registry(tmp_path, change(metadata_xml))


def _valid_until(xml: str, value: str) -> str:
    return re.sub(r"(<ns0:EntityDescriptor )", rf'\1validUntil="{value}" ', xml, count=1)


def test_metadata_valid_until_a_future_date_is_accepted(metadata_xml: str) -> None:
    tomorrow = (NOW + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    document = _valid_until(metadata_xml, tomorrow).encode()
    metadata = parse_sp_metadata(document, ENTITY_ID, NOW)
    assert metadata.valid_until is not None and metadata.valid_until > NOW
    later = NOW + timedelta(days=2)
    with pytest.raises(MetadataError, match="expired"):
        parse_sp_metadata(document, ENTITY_ID, later)


# --- signatures (the verifier is injected; a fake stands in for the cryptography) ---------

CERT = b"-----BEGIN CERTIFICATE-----\nportal federation signer\n-----END CERTIFICATE-----\n"


def test_signed_metadata_is_accepted_when_the_signature_verifies(metadata_xml: str) -> None:
    verifier = FakeVerifier(CERT)
    check_signature(fake_signed(metadata_xml).encode(), CERT, verifier)
    assert verifier.calls == 1


def test_unsigned_metadata_is_refused_when_a_signature_is_required(metadata_xml: str) -> None:
    verifier = FakeVerifier(CERT)
    with pytest.raises(MetadataError, match="is not signed"):
        check_signature(metadata_xml.encode(), CERT, verifier)
    assert verifier.calls == 0


def test_metadata_signed_with_another_key_is_refused(metadata_xml: str) -> None:
    with pytest.raises(MetadataError, match="does not verify"):
        check_signature(fake_signed(metadata_xml, marker="someone-else").encode(), CERT,
                        FakeVerifier(CERT))


def test_a_signature_over_something_else_than_the_root_is_refused(metadata_xml: str) -> None:
    document = fake_signed(metadata_xml, reference="#_elsewhere").encode()
    with pytest.raises(MetadataError, match="does not cover the whole document"):
        check_signature(document, CERT, FakeVerifier(CERT))


def test_duplicate_ids_are_refused(metadata_xml: str) -> None:
    document = fake_signed(metadata_xml).replace(
        "<ns0:SPSSODescriptor ", '<ns0:SPSSODescriptor ID="_md1" ').encode()
    with pytest.raises(MetadataError, match="duplicate IDs"):
        check_signature(document, CERT, FakeVerifier(CERT))


def test_without_a_verifier_a_required_signature_cannot_be_accepted(metadata_xml: str) -> None:
    with pytest.raises(MetadataError, match="no signature verifier"):
        check_signature(fake_signed(metadata_xml).encode(), CERT, None)


def test_file_metadata_whose_required_signature_is_missing_stops_the_start(
        tmp_path: Path, metadata_xml: str) -> None:
    (tmp_path / "policies" / "portals").mkdir(parents=True)
    (tmp_path / "policies" / "portals" / "signer.pem").write_bytes(CERT)
    with pytest.raises(ConfigError, match=r"portal musterstadt .*is not signed"):
        _registry(tmp_path, metadata_xml, metadata_certificate="signer.pem")


def test_file_metadata_with_a_verified_signature_is_used(tmp_path: Path,
                                                         metadata_xml: str) -> None:
    (tmp_path / "policies" / "portals").mkdir(parents=True)
    (tmp_path / "policies" / "portals" / "signer.pem").write_bytes(CERT)
    registry = _registry(tmp_path, fake_signed(metadata_xml), verifier=FakeVerifier(CERT),
                         metadata_certificate="signer.pem")
    assert registry.portal_for(ENTITY_ID) is not None


def test_the_in_process_crypto_backend_verifies_metadata_signatures(
        tmp_path: Path, metadata_xml: str) -> None:
    verifier = default_verifier()
    key, cert = key_pair(tmp_path / "federation", "federation")
    other_key, _ = key_pair(tmp_path / "other", "other")
    signed = really_signed(metadata_xml, key)
    check_signature(signed, cert.read_bytes(), verifier)
    tampered = signed.replace(b"https://portal.example/saml/acs", b"https://evil.example/acs")
    with pytest.raises(MetadataError, match="does not verify"):
        check_signature(tampered, cert.read_bytes(), verifier)
    with pytest.raises(MetadataError, match="does not verify"):
        check_signature(really_signed(metadata_xml, other_key), cert.read_bytes(), verifier)


class _XmlsecBackend:
    """A minimal pysaml2-style backend on python-xmlsec: key from the given file only."""

    def validate_signature(self, signed: bytes, cert_file: str, cert_type: str,
                           node_name: str, node_id: str | None) -> bool:
        import xmlsec
        from lxml import etree

        root = etree.fromstring(signed)
        xmlsec.tree.add_ids(root, ["ID"])
        context = xmlsec.SignatureContext()
        context.key = xmlsec.Key.from_file(cert_file, xmlsec.KeyFormat.CERT_PEM)
        context.verify(xmlsec.tree.find_node(root, xmlsec.constants.NodeSignature))
        return True


def test_a_pysaml2_crypto_backend_serves_as_the_metadata_verifier(
        tmp_path: Path, metadata_xml: str) -> None:
    verifier = verifier_from_backend(_XmlsecBackend())
    key, cert = key_pair(tmp_path / "federation", "federation")
    signed = really_signed(metadata_xml, key)
    assert verifier(signed, cert.read_bytes())
    # The backend raises on a bad signature; the verifier says no.
    assert not verifier(signed.replace(b"portal.example/saml/acs", b"evil.example/acs"),
                        cert.read_bytes())
