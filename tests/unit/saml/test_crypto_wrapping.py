"""Signature wrapping and key-data attacks on responses a real pysaml2 portal receives.

Ported from pysaml2's tests/test_xsw.py and tests/test_xmlsec1_key_data.py (whose data files
were signed with pysaml2's test key): here the signed responses come from a pysaml2 Server on
fresh keys and are rearranged in the test, plus the classic XSW1-8 variants.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import xmlsec
from saml2.response import InvalidAssertion
from saml2.sigver import SignatureError

from idp.samlkit.crypto import InProcessCryptoBackend
from tests.saml_support import key_pair
from tests.unit.saml import forgery
from tests.unit.saml.federation import Federation, federation

ASSERTION = "urn:oasis:names:tc:SAML:2.0:assertion:Assertion"


@pytest.fixture
def fed(tmp_path: Path) -> Federation:
    return federation(tmp_path)


def test_a_signed_response_from_the_idp_is_accepted_by_the_portal(fed: Federation) -> None:
    response = fed.receive(fed.response())
    assert response.name_id.text == "transient-1"
    assert response.ava["givenName"] == ["Björn"]


@pytest.mark.parametrize("attack", sorted(forgery.ASSERTION_WRAPPING))
def test_a_wrapped_assertion_naming_another_citizen_is_refused(fed: Federation,
                                                              attack: str) -> None:
    signed = forgery.parse(fed.response(sign_response=False))
    original_id = forgery.first(signed, "saml:Assertion").get("ID")
    forged = forgery.text(forgery.ASSERTION_WRAPPING[attack](signed))
    # With two Assertion children pysaml2's one-assertion rule refuses before any signature.
    with pytest.raises((SignatureError, InvalidAssertion)):
        fed.receive(forged)
    # The backend on its own refuses the twin, whichever ID it carries; xmlsec1's depth-first
    # search would have verified the original nested in an unsigned twin.
    twin_id = "id-evil" if 'ID="id-evil"' in forged else original_id
    with pytest.raises(SignatureError):
        InProcessCryptoBackend().validate_signature(forged, str(fed.idp_cert), "pem",
                                                    ASSERTION, twin_id)


@pytest.mark.parametrize("attack", sorted(forgery.RESPONSE_WRAPPING))
def test_a_wrapped_response_naming_another_citizen_is_refused(fed: Federation,
                                                             attack: str) -> None:
    signed = forgery.parse(fed.response(sign_assertion=False))
    forged = forgery.text(forgery.RESPONSE_WRAPPING[attack](signed))
    with pytest.raises(SignatureError):
        fed.receive(forged)


def _hmac_signed(fed: Federation, where: str) -> str:
    """Signed with HMAC keyed by the IdP's public certificate (anyone has it)."""
    root = forgery.parse(fed.response(sign_response=False, sign_assertion=False))
    element = root if where == "response" else forgery.first(root, "saml:Assertion")
    forgery.first(root, "saml:Assertion/saml:Subject/saml:NameID").text = "mallory"
    key = xmlsec.Key.from_binary_data(xmlsec.constants.KeyDataHmac,
                                      fed.idp_cert.read_bytes())
    forgery.raw_sign(element, key, sign_method=xmlsec.constants.TransformHmacSha256)
    return forgery.text(root)


def test_a_response_signed_with_hmac_is_refused(fed: Federation) -> None:
    with pytest.raises(SignatureError):
        fed.receive(_hmac_signed(fed, "response"))


def test_an_assertion_signed_with_hmac_is_refused(fed: Federation) -> None:
    with pytest.raises(SignatureError):
        fed.receive(_hmac_signed(fed, "assertion"))


def _assertion_signed_by(fed: Federation, key_file: Path, key_info_cert: Path) -> str:
    root = forgery.parse(fed.response(sign_response=False, sign_assertion=False))
    assertion = forgery.first(root, "saml:Assertion")
    forgery.raw_sign(assertion, forgery.private_key(key_file), key_info_cert=key_info_cert)
    return forgery.text(root)


def test_a_random_certificate_embedded_in_the_signature_is_ignored(fed: Federation,
                                                                   tmp_path: Path) -> None:
    _, random_cert = key_pair(tmp_path / "random", "random")
    response = fed.receive(_assertion_signed_by(fed, fed.idp_key, random_cert))
    assert response.name_id.text == "transient-1"


def test_an_attackers_certificate_in_keyinfo_does_not_make_his_signature_valid(
        fed: Federation, tmp_path: Path) -> None:
    attacker_key, attacker_cert = key_pair(tmp_path / "attacker", "attacker")
    with pytest.raises(SignatureError):
        fed.receive(_assertion_signed_by(fed, attacker_key, attacker_cert))
