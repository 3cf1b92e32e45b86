"""SAML messages are taken off the wire with every size capped and nothing trusted."""

from __future__ import annotations

import base64
import datetime
import resource
import zlib
from urllib.parse import quote, quote_plus

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID

from idp.samlkit.bindings import (
    MAX_XML_BYTES,
    BindingError,
    decode_post,
    decode_redirect,
    verify_redirect_signature,
)

REQUEST = (b'<samlp:AuthnRequest xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" '
           b'ID="_abc" Version="2.0" IssueInstant="2026-11-23T10:00:00Z"/>')
SHA256 = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"
SHA1 = "http://www.w3.org/2000/09/xmldsig#rsa-sha1"


def deflate(data: bytes) -> bytes:
    compressor = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    return compressor.compress(data) + compressor.flush()


def redirect_query(xml: bytes = REQUEST, relay_state: str | None = None) -> str:
    query = "SAMLRequest=" + quote(base64.b64encode(deflate(xml)), safe="")
    if relay_state is not None:
        query += "&RelayState=" + quote(relay_state, safe="")
    return query


def key_and_certificate() -> tuple[rsa.RSAPrivateKey, x509.Certificate]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "portal.example")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
                   .public_key(key.public_key()).serial_number(1).not_valid_before(now)
                   .not_valid_after(now + datetime.timedelta(days=1)).sign(key, hashes.SHA256()))
    return key, certificate


def signed_query(key: rsa.RSAPrivateKey, relay_state: str = "abc",
                 sig_alg: str = SHA256, digest: hashes.HashAlgorithm | None = None) -> str:
    query = redirect_query(relay_state=relay_state) + "&SigAlg=" + quote(sig_alg, safe="")
    signature = key.sign(query.encode(), padding.PKCS1v15(), digest or hashes.SHA256())
    return query + "&Signature=" + quote(base64.b64encode(signature), safe="")


def test_a_redirect_request_is_inflated_and_its_relay_state_kept() -> None:
    message = decode_redirect(redirect_query(relay_state="/start?x=1").encode())
    assert message.xml == REQUEST
    assert message.relay_state == "/start?x=1"
    assert not message.has_redirect_signature


def test_a_deflate_bomb_stops_at_the_cap_without_eating_memory() -> None:
    bomb = deflate(b"<" + b"A" * (40 * 1024 * 1024))  # 40 MiB in about 40 KiB
    assert len(base64.b64encode(bomb)) < 64 * 1024
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with pytest.raises(BindingError, match="inflates beyond"):
        decode_redirect(b"SAMLRequest=" + quote(base64.b64encode(bomb), safe="").encode())
    with pytest.raises(BindingError, match="inflates beyond"):
        decode_post({"SAMLRequest": [base64.b64encode(bomb).decode()]})
    grown_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
    assert grown_kib < 20 * 1024


@pytest.mark.parametrize("xml", [
    b'<!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><x>&e;</x>',
    b'<?xml version="1.0"?><!doctype lol [<!ENTITY lol "lol">]><x/>',
    b"<x/><!ENTITY a 'b'>",
])
def test_doctype_and_entity_declarations_are_refused_on_both_bindings(xml: bytes) -> None:
    with pytest.raises(BindingError, match="DOCTYPE"):
        decode_redirect(redirect_query(xml).encode())
    with pytest.raises(BindingError, match="DOCTYPE"):
        decode_post({"SAMLRequest": [base64.b64encode(xml).decode()]})


@pytest.mark.parametrize("value", ["!!!notbase64", "QUJD=extra", "%%%"])
def test_bad_base64_is_refused(value: str) -> None:
    with pytest.raises(BindingError):
        decode_redirect(f"SAMLRequest={value}".encode())
    with pytest.raises(BindingError):
        decode_post({"SAMLRequest": [value]})


def test_duplicated_parameters_are_refused() -> None:
    query = redirect_query() + "&" + redirect_query()
    with pytest.raises(BindingError, match="more than once"):
        decode_redirect(query.encode())
    with pytest.raises(BindingError, match="more than once"):
        decode_post({"SAMLRequest": [base64.b64encode(REQUEST).decode()] * 2})
    with pytest.raises(BindingError, match="more than once"):
        decode_redirect((redirect_query(relay_state="a") + "&RelayState=b").encode())


def test_an_unknown_saml_encoding_is_refused() -> None:
    query = redirect_query() + "&SAMLEncoding=urn%3Aexample%3Agzip"
    with pytest.raises(BindingError, match="SAMLEncoding"):
        decode_redirect(query.encode())


@pytest.mark.parametrize("relay_state", ["x" * 513, "a\r\nSet-Cookie: x=y",
                                         "<script>alert(1)</script>", "\u2028"])
def test_oversized_or_marked_up_relay_state_is_refused(relay_state: str) -> None:
    with pytest.raises(BindingError, match="RelayState"):
        decode_redirect(redirect_query(relay_state=relay_state).encode())
    with pytest.raises(BindingError, match="RelayState"):
        decode_post({"SAMLRequest": [base64.b64encode(REQUEST).decode()],
                     "RelayState": [relay_state]})


def test_an_oversized_message_is_refused_before_decoding() -> None:
    with pytest.raises(BindingError, match="larger than"):
        decode_post({"SAMLRequest": ["A" * (MAX_XML_BYTES * 2)]})


def test_a_post_request_may_be_plain_or_deflated() -> None:
    plain = decode_post({"SAMLRequest": [base64.b64encode(REQUEST).decode()]})
    deflated = decode_post({"SAMLRequest": [base64.b64encode(deflate(REQUEST)).decode()]})
    assert plain.xml == deflated.xml == REQUEST


def test_a_redirect_signature_is_verified_over_the_raw_query_string() -> None:
    key, certificate = key_and_certificate()
    message = decode_redirect(signed_query(key, relay_state="a b+c/ä").encode())
    assert message.has_redirect_signature
    assert verify_redirect_signature(message, [certificate])


def test_a_redirect_signature_by_another_key_fails() -> None:
    key, _ = key_and_certificate()
    _, other_certificate = key_and_certificate()
    message = decode_redirect(signed_query(key).encode())
    assert not verify_redirect_signature(message, [other_certificate])


def test_a_tampered_relay_state_breaks_the_redirect_signature() -> None:
    key, certificate = key_and_certificate()
    query = signed_query(key, relay_state="original").replace("original", "changed")
    assert not verify_redirect_signature(decode_redirect(query.encode()), [certificate])


def test_sha1_redirect_signatures_are_refused() -> None:
    key, certificate = key_and_certificate()
    query = signed_query(key, sig_alg=SHA1, digest=hashes.SHA1())  # noqa: S303
    assert not verify_redirect_signature(decode_redirect(query.encode()), [certificate])


def test_a_form_encoded_relay_state_is_decoded_plus_as_space_and_percent_2b_as_plus() -> None:
    # As an SP's urlencode sends it (quote_plus: a space becomes "+", a plus "%2B").
    query = redirect_query() + "&RelayState=" + quote_plus("/antrag?name=a b+c")
    assert decode_redirect(query.encode()).relay_state == "/antrag?name=a b+c"


def test_a_relay_state_of_80_bytes_is_taken_and_one_of_81_is_refused() -> None:
    assert decode_redirect(redirect_query(relay_state="x" * 80).encode()).relay_state == "x" * 80
    with pytest.raises(BindingError, match="80 bytes"):
        decode_redirect(redirect_query(relay_state="x" * 81).encode())
    with pytest.raises(BindingError, match="80 bytes"):  # bytes, not characters
        decode_redirect(redirect_query(relay_state="ä" * 41).encode())

