"""What the backend refuses to verify, each with an otherwise sound signature where possible."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import xmlsec
from saml2.sigver import SignatureError, XmlsecError

from idp.samlkit.crypto import InProcessCryptoBackend
from idp.samlkit.signature_profile import RefusedSignature, Sha1Refused
from idp.samlkit.untrusted_xml import RefusedDocument
from tests.saml_support import key_pair
from tests.unit.saml import forgery
from tests.unit.saml.federation import Federation, federation

ASSERTION = "urn:oasis:names:tc:SAML:2.0:assertion:Assertion"
RESPONSE = "urn:oasis:names:tc:SAML:2.0:protocol:Response"
T = xmlsec.constants


@pytest.fixture
def fed(tmp_path: Path) -> Federation:
    return federation(tmp_path)


@pytest.fixture
def backend() -> InProcessCryptoBackend:
    return InProcessCryptoBackend()


def _signed_assertion(fed: Federation) -> tuple[forgery.Element, str]:
    root = forgery.parse(fed.response(sign_response=False))
    return root, str(forgery.first(root, "saml:Assertion").get("ID"))


def _verify(backend: InProcessCryptoBackend, fed: Federation, document: str | bytes,
            node_id: str | None, node_name: str = ASSERTION, cert: Path | None = None) -> bool:
    return bool(backend.validate_signature(document, str(cert or fed.idp_cert), "pem",
                                           node_name, node_id))


def test_an_untouched_signed_assertion_verifies(fed: Federation,
                                                backend: InProcessCryptoBackend) -> None:
    root, assertion_id = _signed_assertion(fed)
    assert _verify(backend, fed, forgery.text(root), assertion_id)


def test_a_changed_attribute_value_breaks_the_digest(fed: Federation,
                                                    backend: InProcessCryptoBackend) -> None:
    root, assertion_id = _signed_assertion(fed)
    forgery.first(root, "saml:Assertion/saml:Subject/saml:NameID").text = "mallory"
    with pytest.raises(SignatureError):
        _verify(backend, fed, forgery.text(root), assertion_id)


def test_a_changed_signature_value_does_not_verify(fed: Federation,
                                                   backend: InProcessCryptoBackend) -> None:
    root, assertion_id = _signed_assertion(fed)
    value = forgery.first(root, "saml:Assertion/ds:Signature/ds:SignatureValue")
    value.text = ("A" if value.text[0] != "A" else "B") + value.text[1:]
    with pytest.raises(SignatureError):
        _verify(backend, fed, forgery.text(root), assertion_id)


def test_another_certificate_does_not_verify_the_idps_signature(
        fed: Federation, backend: InProcessCryptoBackend, tmp_path: Path) -> None:
    root, assertion_id = _signed_assertion(fed)
    _, other_cert = key_pair(tmp_path / "other", "other")
    with pytest.raises(SignatureError):
        _verify(backend, fed, forgery.text(root), assertion_id, cert=other_cert)


def test_keyinfo_naming_the_attackers_certificate_is_never_used(
        fed: Federation, backend: InProcessCryptoBackend, tmp_path: Path) -> None:
    attacker_key, attacker_cert = key_pair(tmp_path / "attacker", "attacker")
    root, assertion_id = _signed_assertion(fed)
    assertion = forgery.first(root, "saml:Assertion")
    forgery.raw_sign(assertion, forgery.private_key(attacker_key), key_info_cert=attacker_cert)
    with pytest.raises(SignatureError):
        _verify(backend, fed, forgery.text(root), assertion_id)
    # ...although the same document is perfectly signed for the attacker's own certificate.
    assert _verify(backend, fed, forgery.text(root), assertion_id, cert=attacker_cert)


def test_a_reference_to_another_element_is_refused(fed: Federation,
                                                   backend: InProcessCryptoBackend) -> None:
    root = forgery.parse(fed.response(sign_response=False, sign_assertion=False))
    assertion = forgery.first(root, "saml:Assertion")
    # The signature on the Assertion covers the Response (which contains it) instead.
    forgery.raw_sign(assertion, forgery.private_key(fed.idp_key), uri=f"#{root.get('ID')}",
                     register=[root])
    with pytest.raises(RefusedSignature):
        _verify(backend, fed, forgery.text(root), assertion.get("ID"))


def test_an_external_uri_reference_is_refused(fed: Federation, backend: InProcessCryptoBackend,
                                              tmp_path: Path) -> None:
    outside = tmp_path / "outside.xml"
    outside.write_text("<Harmless/>")
    root = forgery.parse(fed.response(sign_response=False, sign_assertion=False))
    assertion = forgery.first(root, "saml:Assertion")
    signature = forgery.raw_sign(assertion, forgery.private_key(fed.idp_key))
    forgery.first(signature, "ds:Signature/ds:SignedInfo/ds:Reference").set(
        "URI", outside.as_uri())
    with pytest.raises(RefusedSignature):
        _verify(backend, fed, forgery.text(root), assertion.get("ID"))


def test_an_xpath_transform_is_refused_even_when_the_signature_is_sound(
        fed: Federation, backend: InProcessCryptoBackend) -> None:
    root = forgery.parse(fed.response(sign_response=False, sign_assertion=False))
    assertion = forgery.first(root, "saml:Assertion")
    # The XPath leaves the Conditions out of the signature: they could be changed freely.
    forgery.raw_sign(assertion, forgery.private_key(fed.idp_key),
                     extra_transforms=[T.TransformXPath])
    with pytest.raises(RefusedSignature, match="transform"):
        _verify(backend, fed, forgery.text(root), assertion.get("ID"))


def test_an_xslt_transform_is_refused(fed: Federation, backend: InProcessCryptoBackend) -> None:
    root, assertion_id = _signed_assertion(fed)
    transform = forgery.first(root, "saml:Assertion/ds:Signature/ds:SignedInfo/ds:Reference/"
                                    "ds:Transforms/ds:Transform")
    transform.set("Algorithm", T.TransformXslt.href)
    with pytest.raises(RefusedSignature, match="transform"):
        _verify(backend, fed, forgery.text(root), assertion_id)


def test_a_doctype_with_an_entity_is_refused(fed: Federation,
                                             backend: InProcessCryptoBackend) -> None:
    root, assertion_id = _signed_assertion(fed)
    document = '<!DOCTYPE r [<!ENTITY who "mallory">]>' + forgery.text(root)
    with pytest.raises(RefusedDocument, match="DOCTYPE"):
        _verify(backend, fed, document, assertion_id)


def test_a_doctype_hidden_by_utf16_is_refused(fed: Federation,
                                              backend: InProcessCryptoBackend) -> None:
    root, assertion_id = _signed_assertion(fed)
    document = ('<?xml version="1.0" encoding="UTF-16"?><!DOCTYPE r [<!ENTITY a "b">]>'
                + forgery.text(root)).encode("utf-16")
    with pytest.raises(RefusedDocument, match="DOCTYPE"):
        _verify(backend, fed, document, assertion_id)


def test_an_entity_reference_without_a_doctype_is_refused(
        fed: Federation, backend: InProcessCryptoBackend) -> None:
    root, assertion_id = _signed_assertion(fed)
    document = forgery.text(root).replace(">transient-1<", ">&who;<")
    with pytest.raises(RefusedDocument):
        _verify(backend, fed, document, assertion_id)


def test_an_id_occurring_twice_is_refused(fed: Federation,
                                          backend: InProcessCryptoBackend) -> None:
    root, assertion_id = _signed_assertion(fed)
    decoy = copy.deepcopy(forgery.first(root, "saml:Assertion/saml:Issuer"))
    decoy.set("Id", assertion_id)  # any spelling of an ID attribute counts
    root.append(decoy)
    with pytest.raises(RefusedDocument, match="more than once"):
        _verify(backend, fed, forgery.text(root), assertion_id)


def _sha1_signed(fed: Federation) -> tuple[str, str]:
    root = forgery.parse(fed.response(sign_response=False, sign_assertion=False))
    assertion = forgery.first(root, "saml:Assertion")
    forgery.raw_sign(assertion, forgery.private_key(fed.idp_key),
                     sign_method=T.TransformRsaSha1, digest=T.TransformSha1)
    return forgery.text(root), str(assertion.get("ID"))


def test_a_sha1_signature_is_refused_by_default(fed: Federation,
                                                backend: InProcessCryptoBackend) -> None:
    document, assertion_id = _sha1_signed(fed)
    with pytest.raises(Sha1Refused):
        _verify(backend, fed, document, assertion_id)


def test_a_sha1_signature_verifies_when_the_backend_allows_it(fed: Federation) -> None:
    document, assertion_id = _sha1_signed(fed)
    assert _verify(InProcessCryptoBackend(allow_sha1_verification=True), fed, document,
                   assertion_id)


def test_the_signed_element_must_be_of_the_type_asked_for(
        fed: Federation, backend: InProcessCryptoBackend) -> None:
    root, assertion_id = _signed_assertion(fed)
    with pytest.raises(SignatureError):
        _verify(backend, fed, forgery.text(root), assertion_id, node_name=RESPONSE)


def test_a_signature_with_an_object_element_is_refused(
        fed: Federation, backend: InProcessCryptoBackend) -> None:
    root, assertion_id = _signed_assertion(fed)
    signature = forgery.first(root, "saml:Assertion/ds:Signature")
    signature.append(signature.makeelement(f"{{{forgery.DSIG}}}Object", {}))
    with pytest.raises(RefusedSignature, match="Object"):
        _verify(backend, fed, forgery.text(root), assertion_id)


def test_an_element_without_its_own_signature_does_not_borrow_a_nested_one(
        fed: Federation, backend: InProcessCryptoBackend) -> None:
    root, _ = _signed_assertion(fed)
    # The Response is unsigned; the only signature inside it belongs to the Assertion.
    with pytest.raises(RefusedSignature):
        _verify(backend, fed, forgery.text(root), root.get("ID"), node_name=RESPONSE)


def test_every_refusal_is_one_of_pysaml2s_xmlsec_errors() -> None:
    for refusal in (RefusedDocument, RefusedSignature, Sha1Refused):
        assert issubclass(refusal, SignatureError)
        assert issubclass(refusal, XmlsecError)
