"""Signing documents we built ourselves in one pass (``sign_elements``), as the SSO Response is:
portals verify it with xmlsec exactly as if xmlsec had signed it."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import xmlsec
from lxml import etree
from saml2.sigver import SignatureError

from idp.samlkit.crypto import InProcessCryptoBackend
from idp.samlkit.untrusted_xml import DSIG
from tests.saml_support import key_pair

SAMLP = "urn:oasis:names:tc:SAML:2.0:protocol"
SAML = "urn:oasis:names:tc:SAML:2.0:assertion"
XS = "http://www.w3.org/2001/XMLSchema"
XSI_TYPE = "{http://www.w3.org/2001/XMLSchema-instance}type"
RESPONSE = f"{SAMLP}:Response"
CERTIFICATE = "MIIB"  # KeyInfo is signed along in the Response, never read by the verifier
ASSERTION = f"{SAML}:Assertion"


@pytest.fixture
def keys(tmp_path: Path) -> tuple[Path, Path]:
    return key_pair(tmp_path, "idp", bits=2048)


def _response(given_name: str = "Jürgen") -> etree._Element:
    """A Response with an Assertion, each with an Issuer first, and an attribute value that
    declares its own xs prefix (as ours do)."""
    response = etree.Element(f"{{{SAMLP}}}Response", nsmap={"samlp": SAMLP, "saml": SAML},
                             ID="_r1", Version="2.0")
    etree.SubElement(response, f"{{{SAML}}}Issuer").text = "https://idp.example/metadata"
    assertion = etree.SubElement(response, f"{{{SAML}}}Assertion", ID="_a1", Version="2.0")
    etree.SubElement(assertion, f"{{{SAML}}}Issuer").text = "https://idp.example/metadata"
    attribute = etree.SubElement(etree.SubElement(assertion, f"{{{SAML}}}AttributeStatement"),
                                 f"{{{SAML}}}Attribute", Name="urn:oid:2.5.4.42")
    value = etree.SubElement(attribute, f"{{{SAML}}}AttributeValue", {XSI_TYPE: "xs:string"},
                             nsmap={"xs": XS})
    value.text = given_name
    return response


def _signed(keys: tuple[Path, Path], response: etree._Element) -> str:
    InProcessCryptoBackend().sign_elements(
        [response.find(f"{{{SAML}}}Assertion"), response], str(keys[0]), CERTIFICATE)
    return str(etree.tostring(response, encoding="unicode"))


def _verifies(keys: tuple[Path, Path], xml: str, node_name: str, node_id: str) -> bool:
    try:
        return bool(InProcessCryptoBackend().validate_signature(
            xml, str(keys[1]), "pem", node_name, node_id))
    except SignatureError:
        return False


def _signed_by_xmlsec(keys: tuple[Path, Path], element: etree._Element) -> etree._Element:
    """The Signature xmlsec itself makes for ``element`` (same template, same place)."""
    signature = xmlsec.template.create(element, xmlsec.constants.TransformExclC14N,
                                       xmlsec.constants.TransformRsaSha256, ns="ds")
    element.insert(1, signature)
    reference = xmlsec.template.add_reference(signature, xmlsec.constants.TransformSha256,
                                              uri=f"#{element.get('ID')}")
    xmlsec.template.add_transform(reference, xmlsec.constants.TransformEnveloped)
    xmlsec.template.add_transform(reference, xmlsec.constants.TransformExclC14N)
    xmlsec.template.x509_data_add_certificate(xmlsec.template.add_x509_data(
        xmlsec.template.ensure_key_info(signature))).text = CERTIFICATE
    context = xmlsec.SignatureContext()
    context.key = xmlsec.Key.from_file(str(keys[0]), xmlsec.constants.KeyDataFormatPem)
    context.register_id(element, "ID")
    context.sign(signature)
    return signature


def _values(signature: etree._Element) -> tuple[str, str]:
    digest = signature.findtext(f".//{{{DSIG}}}DigestValue") or ""
    value = signature.findtext(f"{{{DSIG}}}SignatureValue") or ""
    return "".join(digest.split()), "".join(value.split())


def test_the_response_and_its_assertion_both_verify_with_xmlsec(
        keys: tuple[Path, Path]) -> None:
    xml = _signed(keys, _response())
    assert _verifies(keys, xml, RESPONSE, "_r1")
    assert _verifies(keys, xml, ASSERTION, "_a1")


def test_a_value_changed_after_signing_fails_both_signatures(keys: tuple[Path, Path]) -> None:
    xml = _signed(keys, _response()).replace("Jürgen", "Mallory")
    assert not _verifies(keys, xml, RESPONSE, "_r1")
    assert not _verifies(keys, xml, ASSERTION, "_a1")


def test_the_signatures_are_the_ones_xmlsec_would_make(keys: tuple[Path, Path]) -> None:
    # RSA PKCS#1 v1.5 is deterministic: equal values mean equal canonical octets.
    ours = _response()
    _signed(keys, ours)
    theirs = _response()
    theirs_assertion = theirs.find(f"{{{SAML}}}Assertion")
    assert theirs_assertion is not None
    expected_assertion = _values(_signed_by_xmlsec(keys, theirs_assertion))
    expected_response = _values(_signed_by_xmlsec(keys, theirs))
    signatures = {element.getparent().get("ID"): _values(element)
                  for element in ours.iter(f"{{{DSIG}}}Signature")}
    assert signatures == {"_a1": expected_assertion, "_r1": expected_response}


def test_signing_with_a_missing_key_file_raises_a_signature_error(
        keys: tuple[Path, Path], tmp_path: Path) -> None:
    with pytest.raises(SignatureError):
        InProcessCryptoBackend().sign_elements([copy.deepcopy(_response())],
                                               str(tmp_path / "missing.key"), CERTIFICATE)


def test_each_signature_is_a_fresh_copy_naming_the_certificate_given(
        keys: tuple[Path, Path]) -> None:
    """The signature template is made once per certificate and copied: no signature shares
    elements with another, and a new certificate (key switch) is the one in KeyInfo."""
    first, second = _response(), _response("Erika")
    _signed(keys, first)
    _signed(keys, second)
    signatures = [*first.iter(f"{{{DSIG}}}Signature"), *second.iter(f"{{{DSIG}}}Signature")]
    assert len({id(signature) for signature in signatures}) == 4
    assert len({_values(signature) for signature in signatures}) == 4
    other = _response()
    InProcessCryptoBackend().sign_elements([other], str(keys[0]), "T3RoZXI=")
    assert other.findtext(f".//{{{DSIG}}}X509Certificate") == "T3RoZXI="
    assert {signature.findtext(f".//{{{DSIG}}}X509Certificate")
            for signature in signatures} == {CERTIFICATE}
