"""IdP-initiated SSO: from "Mein Servicekonto" (or a link) straight into a portal that allows it."""

from __future__ import annotations

import base64
from typing import Any
from urllib.parse import urlencode

import pytest
from flask import Flask
from lxml import etree

from tests.conftest import Browser, activate, log_in, register
from tests.flows.conftest import FORM_FIELD, SP_ACS, SP_ENTITY, Portal, decide, logged_in
from tests.saml_support import abbrechen_target

SAML = "urn:oasis:names:tc:SAML:2.0:assertion"
SURNAME = "urn:oid:2.5.4.4"


@pytest.fixture
def portal_changes() -> dict[str, Any]:
    return {"idp_initiated_allowed": True}


@pytest.fixture
def accepting(portal: Portal) -> Portal:
    """The portal, configured (allow_unsolicited) to take responses it did not ask for."""
    portal.client.allow_unsolicited = True
    return portal


def go(visitor: Browser, **query: str) -> Any:
    """Open the IdP-initiated SSO link; follow one redirect."""
    response = visitor.client.get("/saml/sso/unsolicited?" + urlencode(query))
    if response.status_code == 302:
        response = visitor.get(response.location)
    visitor.last_html = response.get_data(as_text=True)
    return response


def assert_nothing_sent(response: Any, status: int) -> None:
    page = response.get_data(as_text=True)
    assert response.status_code == status, page
    assert "SAMLResponse" not in page and response.location is None


def test_a_logged_in_citizen_agrees_once_and_the_portal_accepts_the_unsolicited_response(
        sso_app: Flask, visitor: Browser, accepting: Portal) -> None:
    logged_in(sso_app, visitor)
    go(visitor, providerId=SP_ENTITY, RelayState="/formulare/42")
    assert "Zustimmung zur Weitergabe an ein Fachverfahren" in visitor.last_html
    page = decide(visitor).get_data(as_text=True)
    response = accepting.receive(page)
    assert response.relay_state == "/formulare/42"
    assert response.response.signature is not None and response.assertion.signature is not None
    assert {a.name for a in response.assertion.attribute_statement[0].attribute} >= {SURNAME}
    xml = base64.b64decode(dict(FORM_FIELD.findall(page))["SAMLResponse"])
    assert b"InResponseTo" not in xml
    root = etree.fromstring(xml)
    assert root.get("Destination") == SP_ACS
    [confirmation] = root.iter(f"{{{SAML}}}SubjectConfirmationData")
    assert confirmation.get("Recipient") == SP_ACS
    # The second time, with consent given, the portal is reached at once.
    again = go(visitor, providerId=SP_ENTITY, target="/start")
    assert accepting.receive(again.get_data(as_text=True)).relay_state == "/start"


def test_a_citizen_not_logged_in_logs_in_first_and_is_then_asked_for_consent(
        sso_app: Flask, visitor: Browser, accepting: Portal) -> None:
    register(visitor)
    activate(visitor, sso_app)
    to_login = visitor.client.get("/saml/sso/unsolicited?" + urlencode({"providerId": SP_ENTITY}))
    assert to_login.status_code == 302 and "/anmelden?anfrage=" in to_login.location
    visitor.get(to_login.location)
    back = visitor.submit(to_login.location, {"username": "ErikaM",
                                             "password": "Kräftig-Grün 42"})
    consent = visitor.get(back.location).get_data(as_text=True)
    assert "Zustimmung zur Weitergabe an ein Fachverfahren" in consent
    assert accepting.receive(decide(visitor).get_data(as_text=True)).assertion is not None


@pytest.mark.parametrize("portal_changes", [{"idp_initiated_allowed": False}])
def test_a_portal_that_does_not_allow_it_is_refused_with_a_german_page(
        sso_app: Flask, visitor: Browser) -> None:
    logged_in(sso_app, visitor)
    response = go(visitor, providerId=SP_ENTITY)
    assert_nothing_sent(response, 403)
    assert "nicht von hier aus anmelden" in visitor.last_html


def test_an_unknown_portal_is_refused(sso_app: Flask, visitor: Browser) -> None:
    logged_in(sso_app, visitor)
    response = go(visitor, providerId="https://evil.example/saml/metadata")
    assert_nothing_sent(response, 404)
    assert "kennt das Servicekonto nicht" in visitor.last_html


@pytest.mark.parametrize("query", [
    pytest.param("", id="no providerId"),
    pytest.param(urlencode([("providerId", SP_ENTITY), ("providerId", SP_ENTITY)]),
                 id="providerId twice"),
    pytest.param(urlencode({"providerId": SP_ENTITY, "RelayState": "x" * 513}),
                 id="RelayState too long"),
    pytest.param(urlencode({"providerId": SP_ENTITY, "RelayState": '"><script>'}),
                 id="RelayState with markup"),
    pytest.param(urlencode({"providerId": SP_ENTITY, "RelayState": "/a", "target": "/b"}),
                 id="RelayState and target"),
])
def test_a_broken_link_is_refused(visitor: Browser, query: str) -> None:
    response = visitor.client.get("/saml/sso/unsolicited?" + query)
    assert_nothing_sent(response, 400)
    assert "ungültig" in response.get_data(as_text=True)


def test_declining_consent_returns_to_the_account_page_and_sends_nothing(
        sso_app: Flask, visitor: Browser, accepting: Portal) -> None:
    logged_in(sso_app, visitor)
    go(visitor, providerId=SP_ENTITY)
    response = decide(visitor, "decline")
    assert response.status_code == 302 and response.location.endswith("/konto")
    page = visitor.get(response.location).get_data(as_text=True)
    assert "nicht zugestimmt" in page and "SAMLResponse" not in page


def test_abbrechen_on_the_login_page_returns_to_the_start_page(
        sso_app: Flask, visitor: Browser) -> None:
    page = go(visitor, providerId=SP_ENTITY).get_data(as_text=True)
    response = visitor.submit(abbrechen_target(page))
    assert response.status_code == 302 and response.location.endswith("/")
    assert "SAMLResponse" not in response.get_data(as_text=True)


def test_the_account_page_offers_the_portal_with_a_button(
        sso_app: Flask, visitor: Browser) -> None:
    logged_in(sso_app, visitor)
    page = visitor.get("/konto").get_data(as_text=True)
    assert "Zum Portal „Bürgerportal Musterstadt“" in page
    assert f'href="/saml/sso/unsolicited?providerId={SP_ENTITY}"' in page


@pytest.mark.parametrize("portal_changes", [{"idp_initiated_allowed": False}])
def test_the_account_page_lists_no_portal_that_does_not_allow_it(
        sso_app: Flask, visitor: Browser) -> None:
    logged_in(sso_app, visitor)
    page = visitor.get("/konto").get_data(as_text=True)
    assert "Bürgerportal Musterstadt" not in page and "/saml/sso/unsolicited" not in page


@pytest.mark.parametrize("portal_changes", [{"idp_initiated_allowed": True,
                                             "required_attributes": ["birthName"]}])
def test_a_portal_needing_data_the_account_lacks_gets_nothing_and_the_citizen_is_told(
        sso_app: Flask, visitor: Browser, accepting: Portal) -> None:
    register(visitor, birth_name="")
    activate(visitor, sso_app)
    log_in(visitor)
    response = go(visitor, providerId=SP_ENTITY)
    assert_nothing_sent(response, 403)
    assert "Bürgerportal Musterstadt" in visitor.last_html
