"""Bad and hostile SSO requests end on an error page at the IdP: never a 500, never a POST of
anything to an address that is not the portal's ACS from metadata."""

from __future__ import annotations

import base64
import zlib
from typing import Any
from urllib.parse import quote

import pytest
from flask import Flask
from saml2 import BINDING_HTTP_POST, BINDING_HTTP_REDIRECT

from tests.conftest import Browser
from tests.flows.conftest import (
    SP_ACS,
    SP_ENTITY,
    Portal,
    consent_page,
    decide,
    field_value,
    logged_in,
)

REJECTED = "konnte nicht angenommen werden"


def deflate(data: bytes) -> bytes:
    compressor = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    return compressor.compress(data) + compressor.flush()


def redirect_path(xml: bytes, extra: str = "") -> str:
    return "/saml/sso/redirect?SAMLRequest=" + quote(base64.b64encode(deflate(xml)),
                                                     safe="") + extra


def post_sso(visitor: Browser, saml_request: str) -> Any:
    """POST binding, as after the same-site resubmit (the checks are what is tested here)."""
    return visitor.client.post("/saml/sso/post", data={"SAMLRequest": saml_request,
                                                       "servicekonto_resubmitted": "1"})


def assert_refused_at_the_idp(response: Any) -> None:
    page = response.get_data(as_text=True)
    assert response.status_code == 400, page
    assert REJECTED in page
    assert "SAMLResponse" not in page and response.location is None


def request_xml(portal: Portal, **kwargs: Any) -> bytes:
    path, _ = portal.login_url(BINDING_HTTP_REDIRECT, **kwargs)
    from idp.samlkit.bindings import decode_redirect

    return decode_redirect(path.split("?", 1)[1].encode()).xml


def test_an_unknown_issuer_is_refused_at_the_idp(visitor: Browser, portal: Portal) -> None:
    xml = request_xml(portal).replace(SP_ENTITY.encode(), b"https://stranger.example/sp")
    assert_refused_at_the_idp(visitor.client.get(redirect_path(xml)))


def test_an_acs_url_outside_the_metadata_gets_no_post_anywhere(visitor: Browser,
                                                                portal: Portal) -> None:
    xml = request_xml(portal).replace(SP_ACS.encode(), b"https://evil.example/acs")
    assert_refused_at_the_idp(visitor.client.get(redirect_path(xml)))


def test_a_deflate_bomb_is_refused_on_both_bindings(visitor: Browser) -> None:
    bomb = base64.b64encode(deflate(b"<" + b"A" * (40 * 1024 * 1024)))
    assert_refused_at_the_idp(visitor.client.get(
        "/saml/sso/redirect?SAMLRequest=" + quote(bomb, safe="")))
    assert_refused_at_the_idp(post_sso(visitor, bomb.decode()))


@pytest.mark.parametrize("xml", [
    b'<!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]><r>&x;</r>',
    b'<!DOCTYPE l [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;">]><l>&b;</l>',
])
def test_doctype_xxe_and_billion_laughs_are_refused(visitor: Browser, xml: bytes) -> None:
    assert_refused_at_the_idp(visitor.client.get(redirect_path(xml)))
    assert_refused_at_the_idp(post_sso(visitor, base64.b64encode(xml).decode()))


@pytest.mark.parametrize("query", [
    "SAMLRequest=%%%not-base64", "SAMLRequest=", "RelayState=only", "",
])
def test_malformed_redirect_requests_are_refused(visitor: Browser, query: str) -> None:
    assert_refused_at_the_idp(visitor.client.get("/saml/sso/redirect?" + query))


def test_duplicated_parameters_are_refused(visitor: Browser, portal: Portal) -> None:
    path, _ = portal.login_url(BINDING_HTTP_REDIRECT)
    query = path.split("?", 1)[1]
    assert_refused_at_the_idp(visitor.client.get(path + "&" + query))


def test_a_wrong_saml_encoding_is_refused(visitor: Browser, portal: Portal) -> None:
    path, _ = portal.login_url(BINDING_HTTP_REDIRECT)
    assert_refused_at_the_idp(visitor.client.get(path + "&SAMLEncoding=urn%3Ax%3Agzip"))


@pytest.mark.parametrize("relay_state", ["x" * 600, "<script>alert(1)</script>",
                                         "a\r\nSet-Cookie: x=1"])
def test_oversized_or_marked_up_relay_state_is_refused(visitor: Browser, portal: Portal,
                                                        relay_state: str) -> None:
    path, _ = portal.login_url(BINDING_HTTP_REDIRECT)
    assert_refused_at_the_idp(visitor.client.get(path + "&RelayState=" +
                                                 quote(relay_state, safe="")))


def test_a_stale_issue_instant_is_refused(visitor: Browser, portal: Portal) -> None:
    import re

    xml = re.sub(rb'IssueInstant="[^"]+"', b'IssueInstant="2020-01-01T00:00:00Z"',
                 request_xml(portal))
    assert_refused_at_the_idp(visitor.client.get(redirect_path(xml)))


def test_a_post_request_with_a_forged_embedded_signature_is_refused(
        visitor: Browser, portal: Portal) -> None:
    signature = (b'<ds:Signature xmlns:ds="http://www.w3.org/2000/09/xmldsig#"><ds:SignedInfo>'
                 b'<ds:CanonicalizationMethod Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#"/>'
                 b'<ds:SignatureMethod Algorithm="http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"/>'
                 b'<ds:Reference URI=""><ds:DigestMethod Algorithm="http://www.w3.org/2001/04/xmlenc#sha256"/>'
                 b"<ds:DigestValue>AAAA</ds:DigestValue></ds:Reference></ds:SignedInfo>"
                 b"<ds:SignatureValue>AAAA</ds:SignatureValue></ds:Signature>")
    import re

    xml = request_xml(portal)
    issuer_end = re.search(rb"</[\w:]*Issuer>", xml)
    assert issuer_end is not None
    end_of_issuer = issuer_end.end()
    forged = xml[:end_of_issuer] + signature + xml[end_of_issuer:]
    assert_refused_at_the_idp(post_sso(visitor, base64.b64encode(forged).decode()))


def test_a_consent_post_for_a_transaction_of_another_browser_is_refused(
        sso_app: Flask, visitor: Browser, portal: Portal) -> None:
    transaction = field_value(consent_page(logged_in(sso_app, visitor), portal), "transaction")
    other = logged_in(sso_app, Browser(sso_app.test_client()), "Zweite", "zweite@example.org")
    other.get("/konto")
    stolen = other.submit("/saml/zustimmung", {"transaction": transaction,
                                               "decision": "agree"})
    assert stolen.status_code == 410
    assert "SAMLResponse" not in stolen.get_data(as_text=True)


def test_a_forged_consent_transaction_is_refused(sso_app: Flask, visitor: Browser) -> None:
    logged_in(sso_app, visitor).get("/konto")
    answer = visitor.submit("/saml/zustimmung", {"transaction": "forged", "decision": "agree"})
    assert answer.status_code == 410


def test_a_post_request_is_answered_over_post_only_to_the_metadata_acs(
        sso_app: Flask, visitor: Browser, portal: Portal) -> None:
    consent_page(logged_in(sso_app, visitor), portal, BINDING_HTTP_POST)
    answer = decide(visitor)
    assert f'action="{SP_ACS}"' in answer.get_data(as_text=True)
    assert f"form-action {SP_ACS.rsplit('/saml', 1)[0]}" in \
        answer.headers["Content-Security-Policy"]


def test_another_browser_cannot_resume_or_cancel_a_parked_request(
        sso_app: Flask, visitor: Browser, portal: Portal) -> None:
    path, _ = portal.login_url(BINDING_HTTP_REDIRECT)
    to_login = visitor.client.get(path)
    resume = "/saml/weiter/" + to_login.location.split("anfrage=", 1)[1]
    stranger = logged_in(sso_app, Browser(sso_app.test_client()))
    assert stranger.client.get(resume).status_code == 410
    stranger.get("/konto")
    cancel = resume.replace("/saml/weiter/", "/saml/abbrechen/")
    assert stranger.submit(cancel).status_code == 410
