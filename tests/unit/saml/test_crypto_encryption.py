"""Encrypted assertions: AES-256-GCM with an RSA-OAEP key, from the IdP to a pysaml2 portal."""

from __future__ import annotations

from pathlib import Path

import pytest
from saml2.sigver import DecryptError, pre_encryption_part

from idp.samlkit.crypto import InProcessCryptoBackend
from idp.samlkit.encryption import DATA_ENCRYPTION, KEY_TRANSPORT
from tests.saml_support import key_pair
from tests.unit.saml import forgery
from tests.unit.saml.federation import Federation, federation

XENC = "http://www.w3.org/2001/04/xmlenc#"


@pytest.fixture
def fed(tmp_path: Path) -> Federation:
    return federation(tmp_path)


def _encrypted(fed: Federation) -> str:
    """A response whose signed assertion is encrypted for the portal, as the backend does it."""
    root = forgery.parse(fed.response(sign_response=False))
    assertion = forgery.first(root, "saml:Assertion")
    wrapper = forgery.etree.Element(f"{{{forgery.SAML}}}EncryptedAssertion")
    assertion.addprevious(wrapper)
    wrapper.append(assertion)  # moves it (prefixes depend on what pysaml2 registered before)
    return InProcessCryptoBackend().encrypt_assertion(
        forgery.text(root), str(fed.sp_cert), pre_encryption_part(key_name="portal"))


def _algorithms(document: str) -> list[str]:
    root = forgery.parse(document)
    return [str(m.get("Algorithm")) for m in root.iter(f"{{{XENC}}}EncryptionMethod")]


def test_the_portal_reads_an_assertion_the_idp_encrypted(fed: Federation) -> None:
    sent = fed.response(encrypt_assertion=True)
    assert "Björn" not in sent
    assert _algorithms(sent) == [DATA_ENCRYPTION.href, KEY_TRANSPORT.href]
    response = fed.receive(sent)
    assert response.ava["givenName"] == ["Björn"]
    assert response.name_id.text == "transient-1"


def test_an_encrypted_assertion_decrypts_to_the_signed_original(fed: Federation) -> None:
    backend = InProcessCryptoBackend()
    encrypted = _encrypted(fed)
    assert "transient-1" not in encrypted
    decrypted = backend.decrypt(encrypted, str(fed.sp_key))
    root = forgery.parse(decrypted)
    assertion = forgery.first(root, "saml:EncryptedAssertion/saml:Assertion")
    assert backend.validate_signature(decrypted, str(fed.idp_cert), "pem",
                                      "urn:oasis:names:tc:SAML:2.0:assertion:Assertion",
                                      assertion.get("ID"))


def test_the_encrypted_key_names_the_portals_key_for_the_portal(fed: Federation) -> None:
    root = forgery.parse(_encrypted(fed))
    key_name = root.find(f".//{{{XENC}}}EncryptedKey/{{{forgery.DSIG}}}KeyInfo/"
                         f"{{{forgery.DSIG}}}KeyName")
    assert key_name is not None and key_name.text == "portal"


def test_another_private_key_cannot_decrypt(fed: Federation, tmp_path: Path) -> None:
    other_key, _ = key_pair(tmp_path / "other", "other")
    with pytest.raises(DecryptError):
        InProcessCryptoBackend().decrypt(_encrypted(fed), str(other_key))


def test_pysaml2_tries_each_decryption_key_until_one_fits(fed: Federation,
                                                          tmp_path: Path) -> None:
    other_key, _ = key_pair(tmp_path / "other", "other")
    decrypted = fed.sp.sec.decrypt(_encrypted(fed), key_file=[str(other_key), str(fed.sp_key)])
    assert "transient-1" in decrypted


@pytest.mark.parametrize("weak", [
    "http://www.w3.org/2001/04/xmlenc#rsa-1_5",
    "http://www.w3.org/2001/04/xmlenc#tripledes-cbc",
])
def test_weak_encryption_algorithms_are_refused(fed: Federation, weak: str) -> None:
    encrypted = _encrypted(fed)
    target = KEY_TRANSPORT.href if "rsa" in weak else DATA_ENCRYPTION.href
    with pytest.raises(DecryptError, match="not allowed"):
        InProcessCryptoBackend().decrypt(encrypted.replace(target, weak), str(fed.sp_key))


def test_an_encrypted_document_with_a_doctype_is_refused(fed: Federation) -> None:
    with pytest.raises(DecryptError, match="DOCTYPE"):
        InProcessCryptoBackend().decrypt('<!DOCTYPE r [<!ENTITY a "b">]>' + _encrypted(fed),
                                         str(fed.sp_key))


def test_a_document_that_is_only_encrypted_data_decrypts_to_the_element(fed: Federation) -> None:
    """When the root is the EncryptedData, the decrypted element takes its place as the root."""
    backend = InProcessCryptoBackend()
    assertion = forgery.first(forgery.parse(fed.response(sign_response=False)), "saml:Assertion")
    encrypted = backend.encrypt(forgery.text(assertion), str(fed.sp_cert),
                                pre_encryption_part(key_name="portal"))
    assert forgery.parse(encrypted).tag == f"{{{XENC}}}EncryptedData"
    decrypted = forgery.parse(backend.decrypt(encrypted, str(fed.sp_key)))
    assert decrypted.tag == f"{{{forgery.SAML}}}Assertion"
    assert forgery.first(decrypted, "saml:Subject/saml:NameID").text == "transient-1"
