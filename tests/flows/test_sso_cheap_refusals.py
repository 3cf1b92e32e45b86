"""Cheap refusals come first: a request from nobody we know, or of a shape no portal sends, is
refused before the request is parsed in full and before any signature is verified; the outside of
the message (Version, Issuer) is judged as strictly as SAML core says."""

from __future__ import annotations

import base64
import re
from typing import Any
from urllib.parse import quote

import pytest
from flask import Flask
from saml2.response import StatusError
from saml2.server import Server

from idp.saml import flow
from tests.conftest import Browser
from tests.flows.conftest import SP_ENTITY, Portal, consent_page, decide, logged_in
from tests.flows.test_sso_attacks import (
    assert_refused_at_the_idp,
    post_sso,
    redirect_path,
    request_xml,
)

SHA256 = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"
FORGED_SIGNATURE = "&SigAlg=" + quote(SHA256, safe="") + "&Signature=" + \
    quote(base64.b64encode(b"\x01" * 256).decode(), safe="")


def padded(xml: bytes, elements: int) -> bytes:
    """The request with ``elements`` made-up extension elements (about 46 KB for 1 500)."""
    padding = b"<samlp:Extensions xmlns:samlp='urn:oasis:names:tc:SAML:2.0:protocol'>" + \
        b"".join(b"<x:e xmlns:x='urn:x' a='%d'/>" % i for i in range(elements)) + \
        b"</samlp:Extensions>"
    end_of_issuer = xml.index(b"</", xml.index(b"Issuer"))
    end_of_issuer = xml.index(b">", end_of_issuer) + 1
    return xml[:end_of_issuer] + padding + xml[end_of_issuer:]


@pytest.fixture
def expensive_steps(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Records whenever a request is parsed in full (ours, or pysaml2's) or a Redirect signature
    is verified."""
    calls: list[str] = []
    parse, verify = Server.parse_authn_request, flow.verify_redirect_signature
    full_check = flow.read_authn_request

    def parse_spy(self: Server, *args: Any, **kwargs: Any) -> Any:
        calls.append("pysaml2 parse")
        return parse(self, *args, **kwargs)

    def full_check_spy(*args: Any, **kwargs: Any) -> Any:
        calls.append("full parse")
        return full_check(*args, **kwargs)

    def verify_spy(*args: Any, **kwargs: Any) -> bool:
        calls.append("signature")
        return verify(*args, **kwargs)

    monkeypatch.setattr(Server, "parse_authn_request", parse_spy)
    monkeypatch.setattr(flow, "read_authn_request", full_check_spy)
    monkeypatch.setattr(flow, "verify_redirect_signature", verify_spy)
    return calls


def test_a_46_kb_request_with_a_made_up_signature_is_refused_before_any_parse_or_key(
        visitor: Browser, portal: Portal, expensive_steps: list[str]) -> None:
    xml = padded(request_xml(portal), 1500)
    assert len(xml) > 45_000
    assert_refused_at_the_idp(visitor.client.get(redirect_path(xml, FORGED_SIGNATURE)))
    assert_refused_at_the_idp(post_sso(visitor, base64.b64encode(xml).decode()))
    assert expensive_steps == []


def test_a_request_from_an_unknown_issuer_costs_no_signature_check(
        visitor: Browser, portal: Portal, expensive_steps: list[str]) -> None:
    xml = request_xml(portal).replace(SP_ENTITY.encode(), b"https://stranger.example/sp")
    assert_refused_at_the_idp(visitor.client.get(redirect_path(xml, FORGED_SIGNATURE)))
    assert expensive_steps == []


def test_a_made_up_query_signature_is_refused_before_pysaml2_parses(
        visitor: Browser, portal: Portal, expensive_steps: list[str]) -> None:
    assert_refused_at_the_idp(
        visitor.client.get(redirect_path(request_xml(portal), FORGED_SIGNATURE)))
    assert expensive_steps == ["signature"]


@pytest.mark.parametrize("issuer", [f" {SP_ENTITY}", f"{SP_ENTITY}\n", f"\n  {SP_ENTITY}\n"])
def test_an_issuer_with_surrounding_whitespace_is_refused(
        visitor: Browser, portal: Portal, issuer: str) -> None:
    xml = request_xml(portal).replace(SP_ENTITY.encode(), issuer.encode(), 1)
    assert_refused_at_the_idp(visitor.client.get(redirect_path(xml)))


def test_an_issuer_of_another_format_is_refused(visitor: Browser, portal: Portal) -> None:
    xml = re.sub(rb"<(\w+:)?Issuer[^>]*>",
                 rb'<\1Issuer Format="urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress">',
                 request_xml(portal), count=1)
    assert b"emailAddress" in xml
    assert_refused_at_the_idp(visitor.client.get(redirect_path(xml)))


def test_a_request_of_another_saml_version_is_answered_version_mismatch(
        sso_app: Flask, visitor: Browser, portal: Portal) -> None:
    xml = request_xml(portal).replace(b'Version="2.0"', b'Version="3.0"', 1)
    page = visitor.client.get(redirect_path(xml)).get_data(as_text=True)
    # A top-level status code (SAML core §3.2.2.2), which pysaml2 reports as a plain StatusError.
    top_level = 'StatusCode Value="urn:oasis:names:tc:SAML:2.0:status:VersionMismatch" />'
    with pytest.raises(StatusError, match=re.escape(top_level)):
        portal.receive(page)


def test_the_answer_page_is_kept_out_of_every_cache(
        sso_app: Flask, visitor: Browser, portal: Portal) -> None:
    consent_page(logged_in(sso_app, visitor), portal)
    answer = decide(visitor)
    assert "SAMLResponse" in answer.get_data(as_text=True)
    assert answer.headers["Pragma"] == "no-cache"
    assert "no-store" in answer.headers["Cache-Control"]
