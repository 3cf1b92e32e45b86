"""The first look at a message: bounded structure and an exact Issuer, before pysaml2 or a key."""

from __future__ import annotations

import pytest

from idp.saml.incoming import MAX_DEPTH, MAX_ELEMENTS, read_envelope
from idp.saml.messages import RequestRejected

PORTAL = "https://portal.example.org/saml/metadata"


def request(issuer: str = f"<saml:Issuer>{PORTAL}</saml:Issuer>", inside: str = "",
            root: str = "samlp:AuthnRequest", version: str = "2.0") -> bytes:
    return (f'<{root} xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" '
            f'xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="_a1" Version="{version}" '
            f'IssueInstant="2026-12-05T10:00:00Z">{issuer}{inside}</{root}>').encode()


def test_a_plain_request_names_its_issuer_kind_and_version() -> None:
    envelope = read_envelope(request(), ("AuthnRequest",))
    assert (envelope.kind, envelope.issuer, envelope.version, envelope.message_id) == \
        ("AuthnRequest", PORTAL, "2.0", "_a1")
    assert not envelope.has_signature


def test_an_entity_format_issuer_is_accepted() -> None:
    issuer = ('<saml:Issuer Format="urn:oasis:names:tc:SAML:2.0:nameid-format:entity">'
              f"{PORTAL}</saml:Issuer>")
    assert read_envelope(request(issuer), ("AuthnRequest",)).issuer == PORTAL


@pytest.mark.parametrize("issuer", [
    f"<saml:Issuer> {PORTAL}</saml:Issuer>",
    f"<saml:Issuer>{PORTAL}\n</saml:Issuer>",
    "<saml:Issuer></saml:Issuer>",
    "",
    f'<saml:Issuer Format="urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress">{PORTAL}'
    "</saml:Issuer>",
    f"<saml:Issuer>{PORTAL}</saml:Issuer><saml:Issuer>{PORTAL}</saml:Issuer>",
    f"<saml:Issuer>{PORTAL}<b/></saml:Issuer>",
], ids=["leading space", "trailing newline", "empty", "missing", "email format", "two",
        "markup"])
def test_an_issuer_that_is_not_exactly_an_entity_id_is_refused(issuer: str) -> None:
    with pytest.raises(RequestRejected):
        read_envelope(request(issuer), ("AuthnRequest",))


def test_a_message_of_another_kind_is_refused() -> None:
    with pytest.raises(RequestRejected):
        read_envelope(request(root="samlp:LogoutRequest"), ("AuthnRequest",))


def test_a_message_with_too_many_elements_is_refused() -> None:
    padding = "<samlp:Extensions>" + "<x:e xmlns:x='urn:x'/>" * MAX_ELEMENTS + \
        "</samlp:Extensions>"
    with pytest.raises(RequestRejected, match="elements"):
        read_envelope(request(inside=padding), ("AuthnRequest",))


def test_a_message_nested_too_deep_is_refused() -> None:
    nested = "<x:e xmlns:x='urn:x'>" * MAX_DEPTH + "</x:e>" * MAX_DEPTH
    with pytest.raises(RequestRejected, match="deeper"):
        read_envelope(request(inside=f"<samlp:Extensions>{nested}</samlp:Extensions>"),
                      ("AuthnRequest",))


def test_the_version_is_read_not_judged() -> None:
    assert read_envelope(request(version="1.1"), ("AuthnRequest",)).version == "1.1"
