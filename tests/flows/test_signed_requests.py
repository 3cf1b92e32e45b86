"""A portal that must sign its AuthnRequests: unsigned, SHA-1 or tampered requests are refused."""

from __future__ import annotations

from typing import Any

import pytest
from saml2 import BINDING_HTTP_REDIRECT
from saml2.xmldsig import SIG_RSA_SHA1, SIG_RSA_SHA256

from tests.conftest import Browser
from tests.flows.conftest import Portal
from tests.flows.test_sso_attacks import assert_refused_at_the_idp


@pytest.fixture
def portal_changes() -> dict[str, Any]:
    return {"want_authn_requests_signed": True}


def signed_path(portal: Portal, sigalg: str = SIG_RSA_SHA256) -> str:
    path, _ = portal.login_url(BINDING_HTTP_REDIRECT, sign=True, sigalg=sigalg)
    assert "Signature=" in path
    return path


def test_a_request_signed_with_sha256_is_accepted(visitor: Browser, portal: Portal) -> None:
    response = visitor.client.get(signed_path(portal))
    assert response.status_code == 302
    assert "/anmelden?anfrage=" in response.location


def test_an_unsigned_request_is_refused(visitor: Browser, portal: Portal) -> None:
    path, _ = portal.login_url(BINDING_HTTP_REDIRECT)
    assert_refused_at_the_idp(visitor.client.get(path))


def test_a_sha1_signature_is_refused(visitor: Browser, portal: Portal) -> None:
    assert_refused_at_the_idp(visitor.client.get(signed_path(portal, SIG_RSA_SHA1)))


def test_a_tampered_relay_state_breaks_the_signature(visitor: Browser, portal: Portal) -> None:
    path = signed_path(portal).replace("RelayState=%2Fstart", "RelayState=%2Fother")
    assert "RelayState=%2Fother" in path
    assert_refused_at_the_idp(visitor.client.get(path))


def test_a_present_but_invalid_signature_is_refused(visitor: Browser, portal: Portal) -> None:
    path = signed_path(portal)
    head, signature = path.split("Signature=", 1)
    forged = head + "Signature=" + ("A" if signature[0] != "A" else "B") + signature[1:]
    assert_refused_at_the_idp(visitor.client.get(forged))
