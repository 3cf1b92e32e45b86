"""The decisions of single logout, one at a time: whose session a request names, where a
portal takes logout messages, how a chain ends, and how both messages come off the wire."""

from __future__ import annotations

import base64
import json
from dataclasses import replace
from urllib.parse import quote

import pytest
from saml2 import BINDING_HTTP_ARTIFACT, BINDING_HTTP_POST, BINDING_HTTP_REDIRECT, BINDING_SOAP
from saml2.saml import NAMEID_FORMAT_PERSISTENT, NAMEID_FORMAT_TRANSIENT

from idp.saml.logout import (
    PARTIAL,
    SUCCESS,
    Chain,
    Initiator,
    Participant,
    names_this_session,
    outcome,
    slo_endpoint,
)
from idp.saml.messages import LogoutSubject, ParsedLogoutRequest
from idp.saml.sp_metadata import Endpoint
from idp.samlkit.bindings import BindingError, decode_post, decode_redirect
from tests.unit.saml.test_bindings import deflate

IDP = "https://idp.example/saml/metadata"
PORTAL = "https://portal.example/saml/metadata"
OTHER = "https://other.example/saml/metadata"
LOGIN = Participant(PORTAL, "_nameid-at-portal", NAMEID_FORMAT_TRANSIENT, "index-1")
OTHER_LOGIN = Participant(OTHER, "pairwise-at-other", NAMEID_FORMAT_PERSISTENT, "index-1")
REQUEST = ParsedLogoutRequest(
    request_id="_lr1", issuer=PORTAL, destination="https://idp.example/saml/slo/redirect",
    subject=LogoutSubject("_nameid-at-portal", NAMEID_FORMAT_TRANSIENT, IDP, PORTAL),
    session_indexes=("index-1",), signed=True)


def named(**subject: str | None) -> ParsedLogoutRequest:
    return replace(REQUEST, subject=replace(REQUEST.subject, **subject))


def test_a_request_with_the_nameid_sent_to_its_portal_names_this_session() -> None:
    assert names_this_session(REQUEST, [OTHER_LOGIN, LOGIN], IDP)


@pytest.mark.parametrize("request_", [
    named(name_qualifier=None, sp_name_qualifier=None, name_id_format=None),
    named(name_id_format="urn:oasis:names:tc:SAML:1.1:nameid-format:unspecified"),
    replace(REQUEST, session_indexes=()),
    replace(REQUEST, session_indexes=("index-0", "index-1")),
])
def test_qualifiers_format_and_session_index_may_be_left_out(
        request_: ParsedLogoutRequest) -> None:
    assert names_this_session(request_, [LOGIN], IDP)


@pytest.mark.parametrize("request_", [
    named(name_id="_someone-else"),
    named(name_id="pairwise-at-other"),  # another portal's NameID of the same citizen
    named(name_id_format=NAMEID_FORMAT_PERSISTENT),
    named(name_qualifier="https://other-idp.example/saml/metadata"),
    named(sp_name_qualifier=OTHER),
    replace(REQUEST, session_indexes=("index-2",)),
    replace(REQUEST, issuer=OTHER),
])
def test_a_request_naming_anyone_else_does_not_name_this_session(
        request_: ParsedLogoutRequest) -> None:
    assert not names_this_session(request_, [LOGIN, OTHER_LOGIN], IDP)


def test_a_session_without_logins_is_named_by_no_request() -> None:
    assert not names_this_session(REQUEST, [], IDP)


REDIRECT = Endpoint(BINDING_HTTP_REDIRECT, "https://portal.example/slo/redirect")
POST = Endpoint(BINDING_HTTP_POST, "https://portal.example/slo/post",
                response_location="https://portal.example/slo/post-answer")
SOAP = Endpoint(BINDING_SOAP, "https://portal.example/slo/soap")
ARTIFACT = Endpoint(BINDING_HTTP_ARTIFACT, "https://portal.example/slo/artifact")


def test_logout_messages_go_by_redirect_when_the_portal_offers_it() -> None:
    assert slo_endpoint([SOAP, POST, REDIRECT]) == REDIRECT


def test_the_binding_the_request_came_with_is_preferred_for_the_answer() -> None:
    assert slo_endpoint([REDIRECT, POST], preferred=BINDING_HTTP_POST) == POST
    assert slo_endpoint([REDIRECT], preferred=BINDING_HTTP_POST) == REDIRECT


def test_a_portal_with_only_back_channel_logout_has_no_endpoint_for_us() -> None:
    assert slo_endpoint([SOAP, ARTIFACT]) is None
    assert slo_endpoint([]) is None


INITIATOR = Initiator(PORTAL, "_lr1", "/nach-abmeldung?x=1", BINDING_HTTP_REDIRECT,
                      "https://portal.example/slo/redirect")


def test_a_chain_survives_the_database_round_trip() -> None:
    chain = Chain(INITIATOR, (OTHER_LOGIN,), logged_out=("https://a.example",),
                  not_logged_out=("https://b.example",))
    assert Chain.from_dict(json.loads(json.dumps(chain.to_dict()))) == chain
    started_here = Chain(None, (LOGIN, OTHER_LOGIN))
    assert Chain.from_dict(json.loads(json.dumps(started_here.to_dict()))) == started_here


def test_the_initiator_hears_success_only_when_every_portal_confirmed() -> None:
    assert not Chain(INITIATOR, (OTHER_LOGIN,)).complete  # still to be told
    chain = Chain(INITIATOR, ())  # told, the answer awaited
    assert outcome(chain.answered(OTHER, confirmed=True)) == SUCCESS
    partial = chain.answered(OTHER, confirmed=False)
    assert outcome(partial) == PARTIAL
    # SAML core §3.7.3.2: Success at the top (our session ended), PartialLogout below.
    assert PARTIAL.status.endswith(":Success") and PARTIAL.sub_status is not None
    assert PARTIAL.sub_status.endswith(":PartialLogout")


RESPONSE = (b'<samlp:LogoutResponse xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" '
            b'ID="_r" Version="2.0" IssueInstant="2026-11-23T10:00:00Z" InResponseTo="_lr1"/>')


def test_the_logout_endpoints_take_a_response_as_well_as_a_request() -> None:
    encoded = quote(base64.b64encode(deflate(RESPONSE)), safe="")
    message = decode_redirect(f"SAMLResponse={encoded}&RelayState=abc&SigAlg=x&Signature=AAAA"
                              .encode(), parameter=None)
    assert message.is_response and message.xml == RESPONSE
    # The signature covers SAMLResponse, RelayState, SigAlg (SAML bindings §3.4.4.1).
    assert message.signed_query == f"SAMLResponse={encoded}&RelayState=abc&SigAlg=x".encode()
    posted = decode_post({"SAMLResponse": [base64.b64encode(RESPONSE).decode()]},
                         parameter=None)
    assert posted.is_response and posted.xml == RESPONSE


def test_a_request_and_a_response_in_one_message_are_refused() -> None:
    both = base64.b64encode(RESPONSE).decode()
    with pytest.raises(BindingError):
        decode_post({"SAMLRequest": [both], "SAMLResponse": [both]}, parameter=None)
    with pytest.raises(BindingError):
        decode_redirect(f"SAMLRequest={both}&SAMLResponse={both}".encode(), parameter=None)
    with pytest.raises(BindingError):
        decode_redirect(b"RelayState=abc", parameter=None)


def test_the_sso_endpoints_still_take_only_a_request() -> None:
    encoded = quote(base64.b64encode(deflate(RESPONSE)), safe="")
    with pytest.raises(BindingError):
        decode_redirect(f"SAMLResponse={encoded}".encode())
    with pytest.raises(BindingError):
        decode_post({"SAMLResponse": [base64.b64encode(RESPONSE).decode()]})
