"""Every portal must sign its AuthnRequests unless its registration makes the documented
exception: unsigned, SHA-1 or tampered requests are refused, and the IdP's metadata says so."""

from __future__ import annotations

import pytest
from lxml import etree
from saml2 import BINDING_HTTP_POST, BINDING_HTTP_REDIRECT
from saml2.xmldsig import SIG_RSA_SHA1, SIG_RSA_SHA256

from idp.web.saml_pages import RESUBMITTED
from tests.conftest import Browser
from tests.flows.conftest import Portal
from tests.flows.test_sso_attacks import assert_refused_at_the_idp

MD = "urn:oasis:names:tc:SAML:2.0:metadata"


def signed_path(portal: Portal, sigalg: str = SIG_RSA_SHA256) -> str:
    path, _ = portal.login_url(BINDING_HTTP_REDIRECT, sign=True, sigalg=sigalg)
    assert "Signature=" in path
    return path


def test_a_request_signed_with_sha256_is_accepted(visitor: Browser, portal: Portal) -> None:
    response = visitor.client.get(signed_path(portal))
    assert response.status_code == 302
    assert "/anmelden?anfrage=" in response.location


def test_the_idp_metadata_says_it_wants_signed_authn_requests(visitor: Browser) -> None:
    """SPs such as python3-saml read this flag and sign (or stop signing) accordingly: it must
    say what the IdP does with a portal registered with the defaults."""
    metadata = etree.fromstring(visitor.client.get("/saml/metadata").get_data())
    descriptor = metadata.find(f"{{{MD}}}IDPSSODescriptor")
    assert descriptor is not None and descriptor.get("WantAuthnRequestsSigned") == "true"


@pytest.mark.parametrize("binding", [BINDING_HTTP_REDIRECT, BINDING_HTTP_POST])
def test_an_unsigned_request_of_a_portal_registered_with_the_defaults_is_refused(
        visitor: Browser, portal: Portal, binding: str) -> None:
    path, form = portal.login_url(binding, sign=False)
    # POST: as after the same-site resubmit of a cross-site POST (idp/web/saml_pages.py).
    assert_refused_at_the_idp(visitor.client.post(path, data=form | {RESUBMITTED: "1"}) if form
                              else visitor.client.get(path))


@pytest.mark.parametrize("portal_changes", [{"want_authn_requests_signed": False}])
def test_a_portal_registered_with_no_sign_requests_may_send_unsigned_requests(
        visitor: Browser, portal: Portal) -> None:
    path, _ = portal.login_url(BINDING_HTTP_REDIRECT, sign=False)
    assert "Signature=" not in path
    response = visitor.client.get(path)
    assert response.status_code == 302 and "/anmelden?anfrage=" in response.location


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
