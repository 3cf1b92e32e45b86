"""pysaml2's own signing tests (tests/test_40_sigver.py) on the in-process backend.

The cases are ported with fresh keys per test instead of pysaml2's test key files; SHA-1 in
pysaml2's default signature template is raised to SHA-256 by the backend.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from lxml import etree
from saml2 import BINDING_HTTP_REDIRECT, class_name, extension_elements_to_elements, saml, samlp
from saml2.md import EntityDescriptor
from saml2.metadata import sign_entity_descriptor
from saml2.s_utils import do_attribute_statement, factory, success_status_factory
from saml2.saml import EncryptedAssertion
from saml2.samlp import response_from_string
from saml2.sigver import (
    SignatureError,
    XmlsecError,
    make_temp,
    pre_encryption_part,
    pre_signature_part,
    signed_instance_factory,
)

from idp.samlkit.crypto import InProcessCryptoBackend, security_context
from tests.saml_support import key_pair
from tests.unit.saml.federation import federation

SHA256 = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"
DIGEST_SHA256 = "http://www.w3.org/2001/04/xmlenc#sha256"
NAMES = {"ascii": ("Foo", "Bar"), "non-ascii": ("Föö", "Bär")}


@dataclass
class FakeConfig:
    """Only what ``security_context`` reads (as pysaml2's own FakeConfig)."""

    cert_file: str
    key_file: str
    crypto_backend: str = "xmlsec1"  # what pysaml2 would use; ours replaces it
    metadata: Any = None
    only_use_keys_in_metadata: bool = False
    encryption_keypairs: list[dict[str, str]] = field(default_factory=list)
    cert_handler_extra_class: Any = None
    generate_cert_info: bool = False
    tmp_cert_file: Any = None
    tmp_key_file: Any = None
    validate_certificate: bool = False
    delete_tmpfiles: bool = True

    def getattr(self, name: str, default: Any) -> Any:
        return getattr(self, name, default)


@pytest.fixture
def keys(tmp_path: Path) -> tuple[Path, Path]:
    return key_pair(tmp_path, "pysaml2-test")


@pytest.fixture
def sec(keys: tuple[Path, Path]) -> Any:
    key, cert = keys
    return security_context(FakeConfig(
        cert_file=str(cert), key_file=str(key),
        encryption_keypairs=[{"key_file": str(key), "cert_file": str(cert)}]))


def _assertion(sec: Any, ident: str = "id-11111", names: tuple[str, str] = NAMES["ascii"],
               signed: bool = True, **signature: Any) -> Any:
    return factory(
        saml.Assertion, version="2.0", id=ident, issuer=saml.Issuer(text="the-issuer"),
        issue_instant="2009-10-30T13:20:28Z",
        signature=pre_signature_part(ident, sec.my_cert, 1, **signature) if signed else None,
        attribute_statement=do_attribute_statement({
            ("name:surName", "nameformat", "surName"): (names[0], ""),
            ("name:givenName", "nameformat", "givenName"): (names[1], "")}))


def _response(sec: Any, assertion: Any, ident: str = "id-22222") -> Any:
    return factory(samlp.Response, issuer=saml.Issuer(text="the-isser"),
                   status=success_status_factory(), assertion=assertion, version="2.0",
                   issue_instant="2099-10-30T13:20:28Z", id=ident,
                   signature=pre_signature_part(ident, sec.my_cert))


def test_the_security_context_uses_the_in_process_backend(sec: Any) -> None:
    assert isinstance(sec.crypto, InProcessCryptoBackend)
    assert sec.crypto.version_nums >= (1, 3)


@pytest.mark.parametrize("names", NAMES.values(), ids=NAMES.keys())
def test_a_signed_assertion_passes_pysaml2s_signature_check(sec: Any,
                                                            names: tuple[str, str]) -> None:
    assertion = _assertion(sec, names=names)
    signed = sec.sign_assertion(str(assertion), node_id=assertion.id)
    parsed = saml.assertion_from_string(signed)
    assert parsed.id == "id-11111"
    assert isinstance(sec.check_signature(parsed, class_name(parsed), signed), saml.Assertion)
    assert SHA256 in signed  # pysaml2's default template asked for SHA-1


def test_signing_the_same_assertion_twice_leaves_one_valid_signature(sec: Any) -> None:
    assertion = _assertion(sec)
    signed = sec.multiple_signatures(str(assertion), [(assertion, assertion.id)] * 2)
    parsed = saml.assertion_from_string(signed)
    assert sec.check_signature(parsed, class_name(parsed), signed, must=True)


@pytest.mark.parametrize("names", NAMES.values(), ids=NAMES.keys())
def test_a_response_and_its_assertion_both_verify(sec: Any, names: tuple[str, str]) -> None:
    assertion = _assertion(sec, names=names)
    response = _response(sec, assertion)
    # Order matters: the assertion first, then the response around it.
    signed = sec.multiple_signatures(str(response), [(assertion, assertion.id),
                                                     (response, response.id)])
    parsed = response_from_string(signed)
    assert sec.check_signature(parsed, class_name(parsed), signed, must=True) == parsed
    inner = parsed.assertion[0]
    assert sec.check_signature(inner, class_name(inner), signed, must=True) == inner


def test_signed_instance_factory_signs_assertion_and_response(sec: Any) -> None:
    assertion = _assertion(sec, ident="id-11122")
    response = _response(sec, assertion, ident="id-22233")
    signed = signed_instance_factory(response, sec, [(class_name(assertion), assertion.id),
                                                     (class_name(response), response.id)])
    parsed = response_from_string(signed)
    assert parsed.assertion[0].id == "id-11122"
    assert isinstance(sec.check_signature(parsed, class_name(parsed), signed), samlp.Response)
    # Without a node id, the signature of the document's root is the one verified.
    assert sec.verify_signature(signed, node_name=class_name(samlp.Response()))


def test_the_certificate_in_the_document_verifies_when_there_is_no_metadata(sec: Any) -> None:
    assertion = _assertion(sec, ident="id-11100")
    signed = signed_instance_factory(assertion, sec, [(class_name(assertion), assertion.id)])
    parsed = saml.assertion_from_string(signed)
    assert sec._check_signature(signed, parsed, class_name(parsed))


def test_a_response_whose_id_was_changed_after_signing_fails(sec: Any) -> None:
    response = _response(sec, _assertion(sec, signed=False))
    signed = signed_instance_factory(response, sec, [(class_name(response), response.id)])
    parsed = response_from_string(signed)
    parsed.id = "id-23456"
    with pytest.raises(SignatureError):
        sec._check_signature(signed, parsed, class_name(parsed))


def test_signing_with_a_missing_key_file_raises_an_xmlsec_error(sec: Any,
                                                                tmp_path: Path) -> None:
    assertion = _assertion(sec)
    with pytest.raises(XmlsecError):
        sec.sign_statement(assertion, class_name(assertion),
                           key_file=str(tmp_path / "non-existent.key"), node_id=assertion.id)


def test_an_explicit_sha256_template_is_signed_as_asked(sec: Any) -> None:
    assertion = _assertion(sec, sign_alg=SHA256)
    signed = sec.sign_statement(assertion, class_name(assertion), node_id=assertion.id)
    assert f'Algorithm="{SHA256}"' in signed


@pytest.mark.parametrize("names", NAMES.values(), ids=NAMES.keys())
def test_a_signed_assertion_survives_encryption_and_decryption(  # pysaml2's test_xbox
        sec: Any, keys: tuple[Path, Path], names: tuple[str, str]) -> None:
    key, cert = keys
    assertion = _assertion(sec, names=names)
    signed = sec.sign_statement(assertion, class_name(assertion), key_file=str(key),
                                node_id=assertion.id)
    encrypted_assertion = EncryptedAssertion()
    encrypted_assertion.add_extension_element(saml.assertion_from_string(signed))
    template = make_temp(str(pre_encryption_part()).encode("utf-8"), decode=False)
    encrypted = sec.crypto.encrypt(
        str(encrypted_assertion), str(cert), template.name, "des-192",
        '/*[local-name()="EncryptedAssertion"]/*[local-name()="Assertion"]')
    # Only the element tree can tell: random base64 cipher text may well contain "Foo".
    plain = {element.tag.rsplit("}", 1)[-1] for element in etree.fromstring(encrypted).iter()}
    assert "EncryptedData" in plain and not plain & {"Assertion", "AttributeValue"}
    decrypted = sec.decrypt(encrypted, key_file=str(key))
    inner = extension_elements_to_elements(
        saml.encrypted_assertion_from_string(decrypted).extension_elements, [saml, samlp])
    assert len(inner) == 1
    assert sec.verify_signature(str(inner[0]), str(cert), node_name=class_name(assertion))


def test_installed_on_a_client_redirect_binding_messages_are_signed(tmp_path: Path) -> None:
    fed = federation(tmp_path)
    info = fed.sp.apply_binding(BINDING_HTTP_REDIRECT, "<samlp:AuthnRequest/>",
                                destination="https://idp.example.test/sso", relay_state="r",
                                sign=True, sigalg=SHA256)
    location = dict(info["headers"])["Location"]
    assert "Signature=" in location and "SigAlg=" in location


def test_metadata_signed_through_the_security_context_verifies(sec: Any,
                                                               keys: tuple[Path, Path]) -> None:
    _, cert = keys
    descriptor = EntityDescriptor(entity_id="https://idp.example.test/saml/metadata")
    _, signed = sign_entity_descriptor(descriptor, "id-metadata", sec, SHA256, DIGEST_SHA256)
    assert InProcessCryptoBackend().validate_signature(
        str(signed), str(cert), "pem", class_name(descriptor), None)
