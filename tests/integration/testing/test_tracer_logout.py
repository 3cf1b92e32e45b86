"""The SAML tracer sees single logout too: every LogoutRequest and LogoutResponse in and out,
with the checks, the signature's verdict and what was decided (two real pysaml2 portals, as in
tests/flows/test_single_logout.py)."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask
from saml2 import BINDING_HTTP_POST, BINDING_HTTP_REDIRECT
from saml2.s_utils import status_message_factory
from saml2.samlp import STATUS_RESPONDER

from tests.conftest import Browser
from tests.flows import conftest as flows
from tests.flows import test_single_logout as logout
from tests.flows.conftest import Portal
from tests.flows.test_single_logout import OTHER_ENTITY, go, hop_from
from tests.integration.testing.conftest import Api

# The fixtures of tests/flows: Erika logged in at two real pysaml2 portals, "musterstadt" and
# "beispielstadt".
sso_app, portal, portal_keys, portal_changes, visitor = (
    flows.sso_app, flows.portal, flows.portal_keys, flows.portal_changes, flows.visitor)
policy_dir, other_keys, other_slo_bindings, other_changes, other_portal, erika = (
    logout.policy_dir, logout.other_keys, logout.other_slo_bindings, logout.other_changes,
    logout.other_portal, logout.erika)

SUCCESS = "urn:oasis:names:tc:SAML:2.0:status:Success"


def logout_messages(app: Flask) -> list[dict[str, Any]]:
    """The logout messages the tracer kept, oldest first (as they happened)."""
    response = Api(app.test_client()).get("/saml/messages?limit=500")
    assert response.status_code == 200
    found = response.json["messages"]  # type: ignore[index]
    return [message for message in reversed(found) if message["kind"].startswith("Logout")]


def summary(message: dict[str, Any]) -> tuple[str, str, str, str]:
    return message["direction"], message["kind"], message["binding"], message["portal"]


@pytest.mark.parametrize("binding", [BINDING_HTTP_REDIRECT, BINDING_HTTP_POST])
def test_a_logout_through_two_portals_is_recorded_hop_by_hop(
        sso_app: Flask, erika: Browser, portal: Portal, other_portal: Portal,
        binding: str) -> None:
    to_other = hop_from(go(erika, *portal.logout_url(binding)))
    hop_from(go(erika, *other_portal.answer_logout(to_other)))

    asked, told, answered, back = logout_messages(sso_app)
    wire = "HTTP-Redirect" if binding == BINDING_HTTP_REDIRECT else "HTTP-POST"
    assert summary(asked) == ("in", "LogoutRequest", wire, "musterstadt")
    assert asked["signature"].startswith("gültig (Redirect-Binding" if wire == "HTTP-Redirect"
                                         else "gültig (eingebettet")
    assert asked["checks"][-1] == "Replay-Cache: (Issuer, ID) zum ersten Mal gesehen"
    assert asked["decision"].startswith("angenommen: Sitzung beendet")
    assert summary(told) == ("out", "LogoutRequest", "HTTP-Redirect", "beispielstadt")
    assert told["signature"].startswith("signiert (Redirect-Binding")
    assert "LogoutRequest" in told["xml"] and other_portal.name_id.text in told["xml"]
    assert summary(answered) == ("in", "LogoutResponse", "HTTP-Redirect", "beispielstadt")
    assert answered["portal_entity_id"] == OTHER_ENTITY
    assert answered["decision"] == "Abmeldung bestätigt"
    assert "InResponseTo: unsere LogoutRequest" in answered["checks"]
    # Musterstadt's metadata offers HTTP-Redirect only for its SingleLogoutService.
    assert summary(back) == ("out", "LogoutResponse", "HTTP-Redirect", "musterstadt")
    assert back["decision"] == f"Status {SUCCESS}"
    assert "LogoutResponse" in back["xml"]


def test_an_answer_with_an_error_status_is_recorded_as_not_logged_out(
        sso_app: Flask, erika: Browser, portal: Portal, other_portal: Portal) -> None:
    to_other = hop_from(go(erika, *portal.logout_url()))
    refusal = status_message_factory("Sitzung nicht beendet", STATUS_RESPONDER)
    hop_from(go(erika, *other_portal.answer_logout(to_other, refusal)))

    answered, back = logout_messages(sso_app)[2:]
    assert answered["decision"] == ("gilt als nicht abgemeldet: status "
                                    "urn:oasis:names:tc:SAML:2.0:status:Responder")
    assert back["decision"].startswith(f"Status {SUCCESS[:-7]}PartialLogout")


@pytest.mark.parametrize("binding", [BINDING_HTTP_REDIRECT, BINDING_HTTP_POST])
def test_an_unsigned_logout_request_is_recorded_with_its_reason(
        sso_app: Flask, erika: Browser, portal: Portal, binding: str) -> None:
    refused = go(erika, *portal.logout_url(binding, sign=False))

    assert refused.status_code == 400
    (asked,) = logout_messages(sso_app)
    assert asked["signature"] == "keine Signatur"
    assert asked["decision"] == "abgelehnt, Fehlerseite beim IdP: unsigned LogoutRequest"


def test_a_logout_message_that_cannot_be_decoded_is_recorded(sso_app: Flask,
                                                             erika: Browser) -> None:
    assert erika.client.get("/saml/slo/redirect?SAMLRequest=%%%").status_code == 400

    (undecodable,) = logout_messages(sso_app)
    assert undecodable["portal"] is None
    assert undecodable["decision"].startswith("abgelehnt, nicht lesbar")


def test_abmelden_at_the_idp_records_the_logout_requests_it_sends(
        sso_app: Flask, erika: Browser) -> None:
    erika.get("/konto")
    erika.submit("/abmelden")

    (told,) = logout_messages(sso_app)
    assert summary(told)[:2] == ("out", "LogoutRequest")
    assert told["portal"] == "musterstadt"
