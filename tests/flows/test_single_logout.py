"""Single logout end to end: real pysaml2 portals, two of them logged in through SSO, then the
logout from one of them (or from the IdP's own "Abmelden") runs through the other."""

from __future__ import annotations

import base64
import re
import zlib
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, quote, urlsplit

import pytest
from cryptography import x509
from flask import Flask
from lxml import etree
from saml2 import BINDING_HTTP_POST, BINDING_HTTP_REDIRECT
from saml2.response import StatusUnknownPrincipal
from saml2.s_utils import status_message_factory
from saml2.saml import NAMEID_FORMAT_TRANSIENT
from saml2.samlp import STATUS_RESPONDER

from idp.samlkit.bindings import decode_redirect, verify_redirect_signature
from tests.conftest import Browser, log_in
from tests.flows.conftest import (
    IDP_ENTITY,
    IDP_SLO,
    SP_ACS,
    Hop,
    Portal,
    answer_to,
    connect_portal,
    consent_page,
    decide,
    field_value,
    hop_from,
    hop_on,
    logged_in,
    portal_policy,
    to_idp,
)
from tests.saml_support import key_pair, metadata_of, sp_config

OTHER_ENTITY = "https://rathaus.example.org/saml/metadata"
OTHER_ACS = "https://rathaus.example.org/saml/acs"
OTHER_SLO = "https://rathaus.example.org/saml/slo"
SP_SLO = SP_ACS.rsplit("/", 1)[0] + "/slo"
SUCCESS = "urn:oasis:names:tc:SAML:2.0:status:Success"
PARTIAL_LOGOUT = "urn:oasis:names:tc:SAML:2.0:status:PartialLogout"
SHA256 = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"


# --- a second portal: "Rathaus Beispielstadt" --------------------------------------------

@pytest.fixture
def other_slo_bindings() -> tuple[str, ...]:
    """The bindings of the second portal's SingleLogoutService (a test may parametrize it)."""
    return (BINDING_HTTP_REDIRECT,)


@pytest.fixture
def other_changes() -> dict[str, Any]:
    """Policy settings of the second portal (a test may parametrize them)."""
    return {}


@pytest.fixture
def other_keys(tmp_path: Path) -> tuple[Path, Path]:
    return key_pair(tmp_path / "other", "other")


@pytest.fixture
def policy_dir(policy_dir: Path, tmp_path: Path, other_keys: tuple[Path, Path],
               other_slo_bindings: tuple[str, ...], other_changes: dict[str, Any]) -> Path:
    """Besides Musterstadt (written by ``sso_app``), the second portal."""
    metadata = tmp_path / "other-metadata.xml"
    metadata.write_text(metadata_of(sp_config(OTHER_ENTITY, OTHER_ACS, *other_keys,
                                              slo_bindings=other_slo_bindings)),
                        encoding="utf-8")
    portal_policy(policy_dir, metadata, name="beispielstadt", entity_id=OTHER_ENTITY,
                  display_name="Rathaus Beispielstadt", consent_required=False,
                  name_id_format="transient", **other_changes)
    return policy_dir


@pytest.fixture
def other_portal(sso_app: Flask, other_keys: tuple[Path, Path],
                 other_slo_bindings: tuple[str, ...]) -> Portal:
    return connect_portal(sso_app, OTHER_ENTITY, OTHER_ACS, other_keys,
                          slo_bindings=other_slo_bindings)


@pytest.fixture
def erika(sso_app: Flask, visitor: Browser, portal: Portal, other_portal: Portal) -> Browser:
    """Erika is logged in and has used her Servicekonto at Musterstadt, then at Beispielstadt."""
    logged_in(sso_app, visitor)
    sso_at(visitor, portal)
    sso_at(visitor, other_portal, sign=True, sigalg=SHA256)  # (a policy may demand it)
    return visitor


def sso_at(visitor: Browser, portal: Portal, **kwargs: Any) -> None:
    """A logged-in citizen logs in at the portal (agreeing if asked)."""
    portal.receive(answer_to(visitor, portal, **kwargs))


# --- helpers ----------------------------------------------------------------------------

def go(visitor: Browser, path: str, form: dict[str, str] | None = None) -> Any:
    """The browser follows a portal to the IdP (GET for Redirect, POST for a form)."""
    return visitor.client.get(path) if form is None else visitor.client.post(path, data=form)


def page_of(response: Any) -> str:
    page = response.get_data(as_text=True)
    assert response.status_code == 200, page
    return str(page)


def signed_by_idp(hop: Hop, signing_keys: tuple[Path, Path]) -> bool:
    """The Redirect query's signature verifies with the IdP's certificate (RSA-SHA256)."""
    certificate = x509.load_pem_x509_certificate(signing_keys[1].read_bytes())
    message = decode_redirect(urlsplit(hop.url).query.encode(), parameter=None)
    return message.sig_alg == SHA256 and verify_redirect_signature(message, [certificate])


def last_logout_id(portal: Portal) -> str:
    """The ID of the LogoutRequest the portal sent last (pysaml2 keeps it in its state)."""
    return [key for key, value in portal.client.state.items()
            if isinstance(value, dict) and value.get("operation") == "SLO"][-1]


def status_of(portal: Portal, hop: Hop) -> tuple[str, str | None, Any]:
    """(top-level status, second-level status, response) of the IdP's LogoutResponse as the
    initiating portal's pysaml2 takes it."""
    response = portal.client.parse_logout_request_response(hop.params["SAMLResponse"],
                                                           hop.binding)
    code = response.response.status.status_code
    return code.value, code.status_code.value if code.status_code else None, response


def is_logged_in(visitor: Browser) -> bool:
    return bool(visitor.client.get("/konto").status_code == 200)


def crafted_logout(portal: Portal, binding: str = BINDING_HTTP_REDIRECT, *,
                   destination: str | None = None, name_id: Any = None,
                   relay_state: str = "") -> tuple[str, dict[str, str] | None]:
    """A LogoutRequest the portal signs (query or embedded), with the given details."""
    _, request = portal.client.create_logout_request(
        destination or IDP_SLO[binding], IDP_ENTITY, name_id=name_id or portal.name_id,
        sign=binding == BINDING_HTTP_POST, sign_alg=SHA256,
        digest_alg="http://www.w3.org/2001/04/xmlenc#sha256")
    info = portal.client.apply_binding(binding, str(request), IDP_SLO[binding], relay_state,
                                       sign=binding == BINDING_HTTP_REDIRECT, sigalg=SHA256)
    return to_idp(binding, info)


def assert_refused(response: Any, status: int = 400) -> None:
    page = response.get_data(as_text=True)
    assert response.status_code == status, page
    assert "SAMLResponse" not in page and "SAMLRequest" not in page
    assert "Abmelde" in page or "Abmeldung" in page


# --- the chain --------------------------------------------------------------------------

@pytest.mark.parametrize("binding", [BINDING_HTTP_REDIRECT, BINDING_HTTP_POST])
def test_logout_at_one_portal_logs_out_at_the_other_and_answers_success(
        erika: Browser, portal: Portal, other_portal: Portal, binding: str,
        signing_keys: tuple[Path, Path]) -> None:
    path, form = portal.logout_url(binding)
    sent_relay_state = (form or dict(parse_qsl(urlsplit(path).query)))["RelayState"]
    started = go(erika, path, form)
    # SAML bindings §3.4: over HTTP-Redirect every hop is an HTTP redirect, which any user
    # agent follows. Only after a POST is the first hop a page (docs/portal-integration.md).
    assert started.status_code == (302 if binding == BINDING_HTTP_REDIRECT else 200)
    to_other = hop_from(started)
    assert not is_logged_in(erika)  # ended before any portal answered

    assert to_other.binding == BINDING_HTTP_REDIRECT and to_other.endpoint == OTHER_SLO
    assert signed_by_idp(to_other, signing_keys)
    request = other_portal.logout_request(to_other)
    assert request.message.name_id == other_portal.name_id  # exactly as in its assertion
    # Found by the SessionIndex that portal got, which is its own.
    assert [index.text for index in request.message.session_index] == \
        [other_portal.session_index]
    assert request.message.destination == OTHER_SLO

    answered = go(erika, *other_portal.answer_logout(to_other))
    assert answered.status_code == 302
    back = hop_from(answered)
    assert back.binding == BINDING_HTTP_REDIRECT and back.endpoint == SP_SLO
    assert signed_by_idp(back, signing_keys)
    status, sub_status, response = status_of(portal, back)
    assert (status, sub_status) == (SUCCESS, None)
    assert response.response.in_response_to == last_logout_id(portal)
    assert response.response.destination == SP_SLO
    assert response.response.issuer.text == IDP_ENTITY
    assert back.params["RelayState"] == sent_relay_state


def test_every_id_the_idp_makes_carries_160_random_bits(
        sso_app: Flask, visitor: Browser, portal: Portal, other_portal: Portal) -> None:
    """SAML core §1.3.4: two IDs may collide with probability at most 2⁻¹²⁸ (SHOULD 2⁻¹⁶⁰):
    Response, Assertion, transient NameID, SessionIndex, an error Response, LogoutRequest and
    LogoutResponse (pysaml2's own IDs carry about 101 random bits)."""
    logged_in(sso_app, visitor)
    consent_page(visitor, portal)
    declined = decide(visitor, "decline").get_data(as_text=True)
    made = [etree.fromstring(base64.b64decode(field_value(declined, "SAMLResponse"))).get("ID")]
    for each in (portal, other_portal):
        response = each.receive(answer_to(visitor, each))
        made += [response.response.id, response.assertion.id, each.session_index]
    assert other_portal.name_id.format == NAMEID_FORMAT_TRANSIENT
    made.append(other_portal.name_id.text)
    to_other = hop_from(go(visitor, *portal.logout_url()))
    made.append(other_portal.logout_request(to_other).message.id)
    back = hop_from(go(visitor, *other_portal.answer_logout(to_other)))
    made.append(status_of(portal, back)[2].response.id)
    assert len(made) == 10 and len(set(made)) == 10
    for value in made:
        assert re.fullmatch(r"_[0-9a-f]{40}", value), value  # 40 hex digits: 160 bits


def test_each_portal_gets_an_unguessable_session_index_of_its_own(
        erika: Browser, portal: Portal, other_portal: Portal) -> None:
    """Two portals comparing SessionIndex values cannot link their pairwise identifiers."""
    assert portal.session_index and other_portal.session_index
    assert portal.session_index != other_portal.session_index
    for index in (portal.session_index, other_portal.session_index):
        assert len(index.lstrip("_")) * 4 >= 128  # hexadecimal: at least 128 random bits
    kept = portal.session_index
    sso_at(erika, portal)  # a second login there in the same session keeps its index
    assert portal.session_index == kept


@pytest.mark.parametrize("other_slo_bindings", [(BINDING_HTTP_POST,)])
def test_a_portal_offering_only_post_gets_a_signed_form_and_may_answer_by_post(
        erika: Browser, portal: Portal, other_portal: Portal) -> None:
    to_other = hop_from(go(erika, *portal.logout_url()))
    assert to_other.binding == BINDING_HTTP_POST and to_other.endpoint == OTHER_SLO
    request = other_portal.logout_request(to_other)  # verifies the embedded signature
    assert request.message.signature is not None
    assert request.message.name_id == other_portal.name_id
    answered = go(erika, *other_portal.answer_logout(to_other))
    assert status_of(portal, hop_from(answered))[:2] == (SUCCESS, None)


def test_a_portal_answering_with_an_error_makes_the_logout_partial(
        erika: Browser, portal: Portal, other_portal: Portal) -> None:
    to_other = hop_from(go(erika, *portal.logout_url()))
    refusal = status_message_factory("Sitzung nicht beendet", STATUS_RESPONDER)
    back = hop_from(go(erika, *other_portal.answer_logout(to_other, refusal)))
    # SAML core §3.7.3.2: the IdP ended its session (Success), not every portal did.
    assert status_of(portal, back)[:2] == (SUCCESS, PARTIAL_LOGOUT)
    assert not is_logged_in(erika)


@pytest.mark.parametrize("other_slo_bindings", [()])
def test_a_portal_without_single_logout_makes_the_logout_partial_at_once(
        erika: Browser, portal: Portal) -> None:
    back = hop_from(go(erika, *portal.logout_url()))
    assert back.endpoint == SP_SLO
    assert status_of(portal, back)[:2] == (SUCCESS, PARTIAL_LOGOUT)
    assert not is_logged_in(erika)


def test_after_single_logout_the_next_login_asks_for_the_password(
        erika: Browser, portal: Portal, other_portal: Portal) -> None:
    to_other = hop_from(go(erika, *portal.logout_url()))
    go(erika, *other_portal.answer_logout(to_other))
    path, _ = portal.login_url()
    again = erika.client.get(path)
    assert again.status_code == 302 and "/anmelden?anfrage=" in again.location


def test_logging_in_again_keeps_the_portals_for_single_logout(
        erika: Browser, portal: Portal, other_portal: Portal) -> None:
    """ForceAuthn gives the browser session a new id; the earlier portal logins go with it."""
    to_login = erika.client.get(portal.login_url(force_authn="true")[0])
    assert "/anmelden?anfrage=" in to_login.location
    erika.get(to_login.location)
    resumed = erika.submit(to_login.location, {"username": "ErikaM",
                                               "password": "Kräftig-Grün 42"})
    portal.receive(erika.client.get(resumed.location).get_data(as_text=True))
    to_other = hop_from(go(erika, *portal.logout_url()))
    assert to_other.endpoint == OTHER_SLO  # not UnknownPrincipal, not a forgotten portal
    assert other_portal.logout_request(to_other).message.name_id == other_portal.name_id


def test_a_cross_site_post_without_the_session_cookie_is_resubmitted_same_site(
        sso_app: Flask, erika: Browser, portal: Portal) -> None:
    path, form = portal.logout_url(BINDING_HTTP_POST)
    assert form is not None
    page = page_of(sso_app.test_client().post(path, data=form))  # no cookie on the way in
    resubmit = hop_on(page)
    assert resubmit.url == path and resubmit.params["SAMLRequest"] == form["SAMLRequest"]
    assert is_logged_in(erika)  # nothing happened without the session
    to_other = hop_from(erika.client.post(path, data=resubmit.params))
    assert to_other.endpoint == OTHER_SLO
    assert not is_logged_in(erika)


def test_a_logout_request_without_an_idp_session_is_answered_with_success(
        sso_app: Flask, erika: Browser, portal: Portal) -> None:
    path, _ = portal.logout_url()
    stranger = Browser(sso_app.test_client())  # the session ended long ago (another browser)
    back = hop_from(stranger.client.get(path))
    assert status_of(portal, back)[:2] == (SUCCESS, None)
    assert is_logged_in(erika)


def test_a_second_answer_to_the_same_step_is_refused_and_changes_nothing(
        erika: Browser, portal: Portal, other_portal: Portal) -> None:
    to_other = hop_from(go(erika, *portal.logout_url()))
    answer = other_portal.answer_logout(to_other)
    hop_from(go(erika, *answer))
    assert_refused(go(erika, *answer), 410)


# --- "Abmelden" at the IdP ----------------------------------------------------------------

def test_abmelden_at_the_idp_logs_out_at_every_portal_and_says_so(
        erika: Browser, portal: Portal, other_portal: Portal,
        signing_keys: tuple[Path, Path]) -> None:
    erika.get("/konto")
    # The form's POST is answered with one page (a browser would check a redirect against
    # the form's CSP form-action); the portals' answers come back as GETs, answered by 302s.
    submitted = erika.submit("/abmelden")
    assert submitted.status_code == 200
    to_first = hop_from(submitted)
    assert not is_logged_in(erika)
    assert to_first.endpoint == SP_SLO and signed_by_idp(to_first, signing_keys)
    assert portal.logout_request(to_first).message.name_id == portal.name_id
    answered = go(erika, *portal.answer_logout(to_first))
    assert answered.status_code == 302
    to_second = hop_from(answered)
    assert to_second.endpoint == OTHER_SLO and signed_by_idp(to_second, signing_keys)
    done = page_of(go(erika, *other_portal.answer_logout(to_second)))
    assert "Sie sind abgemeldet" in done
    assert "Bürgerportal Musterstadt" in done and "Rathaus Beispielstadt" in done
    assert "nicht abgemeldet werden" not in done


def test_abmelden_names_the_portals_that_could_not_be_logged_out(
        erika: Browser, portal: Portal, other_portal: Portal) -> None:
    erika.get("/konto")
    to_first = hop_from(erika.submit("/abmelden"))
    refusal = status_message_factory("Fehler", STATUS_RESPONDER)
    to_second = hop_from(go(erika, *portal.answer_logout(to_first, refusal)))
    done = page_of(go(erika, *other_portal.answer_logout(to_second)))
    assert "Sie sind abgemeldet" in done
    logged_out, not_reached = done.split('id="nicht-abgemeldet-bei"')
    assert "Rathaus Beispielstadt" in logged_out.split('id="abgemeldet-bei"')[1]
    assert "Bürgerportal Musterstadt" in not_reached


def test_a_citizen_who_stops_in_the_middle_is_logged_out_all_the_same(
        sso_app: Flask, erika: Browser, portal: Portal) -> None:
    erika.get("/konto")
    hop_from(erika.submit("/abmelden"))  # the portal never answers
    assert not is_logged_in(erika)
    path, _ = portal.login_url()
    assert "/anmelden?anfrage=" in erika.client.get(path).location
    log_in(erika)  # and a new login works as ever
    assert is_logged_in(erika)


def test_abmelden_without_portals_ends_on_the_logged_out_page(
        sso_app: Flask, visitor: Browser) -> None:
    logged_in(sso_app, visitor)
    visitor.get("/konto")
    response = visitor.submit("/abmelden")
    assert response.status_code == 302 and response.location.endswith("/abgemeldet")
    assert "Sie sind abgemeldet" in visitor.get("/abgemeldet").get_data(as_text=True)


# --- attacks: none ends a session it should not, none gives a 500 -------------------------

@pytest.mark.parametrize("binding", [BINDING_HTTP_REDIRECT, BINDING_HTTP_POST])
def test_an_unsigned_logout_request_is_refused(erika: Browser, portal: Portal,
                                               binding: str) -> None:
    assert_refused(go(erika, *portal.logout_url(binding, sign=False)))
    assert is_logged_in(erika)


def test_a_logout_request_with_an_invalid_signature_is_refused(erika: Browser,
                                                               portal: Portal) -> None:
    path, _ = portal.logout_url()
    head, signature = path.split("Signature=", 1)
    forged = head + "Signature=" + ("A" if signature[0] != "A" else "B") + signature[1:]
    assert_refused(go(erika, forged))
    assert is_logged_in(erika)


def test_a_sha1_redirect_signature_is_refused(erika: Browser, portal: Portal) -> None:
    path, _ = portal.logout_url(sigalg="http://www.w3.org/2000/09/xmldsig#rsa-sha1")
    assert "rsa-sha1" in path
    assert_refused(go(erika, path))
    assert is_logged_in(erika)


def test_a_logout_request_from_an_unknown_portal_is_refused(
        sso_app: Flask, erika: Browser, portal: Portal, tmp_path: Path) -> None:
    stranger = connect_portal(sso_app, "https://stranger.example/saml/metadata",
                              "https://stranger.example/saml/acs",
                              key_pair(tmp_path / "stranger", "stranger"))
    stranger.name_id = portal.name_id  # a NameID it may have seen somewhere
    assert_refused(go(erika, *stranger.logout_url()))
    assert is_logged_in(erika)


def test_a_replayed_logout_request_is_refused(sso_app: Flask, erika: Browser,
                                              portal: Portal) -> None:
    path, _ = portal.logout_url()
    hop_from(go(erika, path))
    logged_in_again = Browser(sso_app.test_client())
    log_in(logged_in_again)
    assert_refused(go(logged_in_again, path))
    assert is_logged_in(logged_in_again)


def test_a_stale_logout_request_is_refused(erika: Browser, portal: Portal,
                                           clock: Any) -> None:
    path, _ = portal.logout_url()
    clock.advance(minutes=5)
    assert_refused(go(erika, path))
    assert is_logged_in(erika)


@pytest.mark.parametrize("destination", ["https://evil.example/saml/slo",
                                         "http://localhost/saml/sso/redirect"])
def test_a_logout_request_for_another_destination_is_refused(
        erika: Browser, portal: Portal, destination: str) -> None:
    assert_refused(go(erika, *crafted_logout(portal, destination=destination)))
    assert is_logged_in(erika)


def test_a_logout_request_naming_another_citizen_ends_no_session(
        sso_app: Flask, visitor: Browser, portal: Portal) -> None:
    max_ = logged_in(sso_app, Browser(sso_app.test_client()), username="MaxM",
                     email="max.mustermann@example.org")
    sso_at(max_, portal)
    max_name_id = portal.name_id
    erika = logged_in(sso_app, visitor)
    sso_at(erika, portal)
    # Signed by the portal, sent through Erika's browser, naming Max.
    back = hop_from(go(erika, *crafted_logout(portal, name_id=max_name_id)))
    with pytest.raises(StatusUnknownPrincipal):
        status_of(portal, back)
    assert is_logged_in(erika) and is_logged_in(max_)
    # With the right NameID the same portal logs Erika out (and Max stays).
    hop_from(go(erika, *crafted_logout(portal)))
    assert not is_logged_in(erika) and is_logged_in(max_)


@pytest.mark.parametrize("binding", [BINDING_HTTP_REDIRECT, BINDING_HTTP_POST])
@pytest.mark.parametrize("relay_state", ["x" * 600, '"><script>alert(1)</script>'])
def test_an_oversized_or_markup_relay_state_is_refused(
        erika: Browser, portal: Portal, binding: str, relay_state: str) -> None:
    response = go(erika, *crafted_logout(portal, binding, relay_state=relay_state))
    assert_refused(response)
    assert "<script>alert" not in response.get_data(as_text=True)
    assert is_logged_in(erika)


def test_a_logout_response_answering_another_request_counts_as_not_logged_out(
        erika: Browser, portal: Portal, other_portal: Portal) -> None:
    to_other = hop_from(go(erika, *portal.logout_url()))
    request = other_portal.logout_request(to_other)
    xml = str(other_portal.client.create_logout_response(request.message, [to_other.binding]))
    forged = xml.replace(request.message.id, "id-something-else")
    assert forged != xml
    back = hop_from(go(erika, *other_portal.send_logout_response(forged, to_other)))
    assert status_of(portal, back)[:2] == (SUCCESS, PARTIAL_LOGOUT)


def test_a_logout_response_from_the_wrong_portal_is_refused_and_the_right_one_still_counts(
        erika: Browser, portal: Portal, other_portal: Portal) -> None:
    to_other = hop_from(go(erika, *portal.logout_url()))
    request = other_portal.logout_request(to_other)
    # Musterstadt answers in Beispielstadt's place (its own, valid signature).
    wrong = str(portal.client.create_logout_response(request.message, [to_other.binding]))
    assert_refused(go(erika, *portal.send_logout_response(wrong, to_other)))
    back = hop_from(go(erika, *other_portal.answer_logout(to_other)))
    assert status_of(portal, back)[:2] == (SUCCESS, None)


def test_a_logout_response_with_a_forged_chain_reference_is_refused(
        erika: Browser, portal: Portal, other_portal: Portal) -> None:
    to_other = hop_from(go(erika, *portal.logout_url()))
    forged = Hop(to_other.binding, to_other.url,
                 to_other.params | {"RelayState": "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"})
    assert_refused(go(erika, *other_portal.answer_logout(forged)), 410)
    back = hop_from(go(erika, *other_portal.answer_logout(to_other)))
    assert status_of(portal, back)[:2] == (SUCCESS, None)


@pytest.mark.parametrize(("other_changes", "expected"), [
    ({"want_authn_requests_signed": False}, None),
    ({}, PARTIAL_LOGOUT),
])
def test_an_unsigned_logout_response_counts_only_for_portals_that_need_not_sign(
        erika: Browser, portal: Portal, other_portal: Portal, expected: str | None) -> None:
    to_other = hop_from(go(erika, *portal.logout_url()))
    request = other_portal.logout_request(to_other)
    xml = str(other_portal.client.create_logout_response(request.message, [to_other.binding],
                                                         sign=False))
    info = other_portal.client.apply_binding(to_other.binding, xml, IDP_SLO[to_other.binding],
                                             to_other.params["RelayState"], response=True,
                                             sign=False)
    back = hop_from(go(erika, *to_idp(to_other.binding, info)))
    # Bound to our single-use request ID and chain, it counts, unless the portal must sign.
    assert status_of(portal, back)[:2] == (SUCCESS, expected)


def deflate(data: bytes) -> bytes:
    compressor = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    return compressor.compress(data) + compressor.flush()


@pytest.mark.parametrize("parameter", ["SAMLRequest", "SAMLResponse"])
@pytest.mark.parametrize("xml", [
    b"<" + b"A" * (40 * 1024 * 1024),  # a deflate bomb
    b'<!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]><r>&x;</r>',
    b'<!DOCTYPE l [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;">]><l>&b;</l>',
    b"not xml at all",
])
def test_hostile_messages_on_both_slo_endpoints_get_an_error_page(
        erika: Browser, parameter: str, xml: bytes) -> None:
    encoded = base64.b64encode(deflate(xml))
    assert_refused(erika.client.get(f"/saml/slo/redirect?{parameter}="
                                    + quote(encoded, safe="")))
    assert_refused(erika.client.post("/saml/slo/post", data={
        parameter: encoded.decode(), "servicekonto_resubmitted": "1"}))
    assert is_logged_in(erika)


def test_an_empty_logout_request_is_refused(erika: Browser) -> None:
    xml = b"<samlp:LogoutRequest xmlns:samlp='urn:oasis:names:tc:SAML:2.0:protocol'/>"
    assert_refused(erika.client.get("/saml/slo/redirect?SAMLRequest="
                                    + quote(base64.b64encode(deflate(xml)), safe="")))
    assert is_logged_in(erika)


@pytest.mark.parametrize("query", ["", "SAMLRequest=", "SAMLRequest=a&SAMLResponse=b",
                                   "SAMLRequest=%%%", "SAMLResponse=a&SAMLResponse=b"])
def test_malformed_queries_get_an_error_page(erika: Browser, query: str) -> None:
    assert_refused(erika.client.get("/saml/slo/redirect?" + query))
    assert is_logged_in(erika)


def test_a_signed_logout_response_without_destination_counts_as_not_logged_out(
        erika: Browser, portal: Portal, other_portal: Portal) -> None:
    """SAML bindings §3.4.5.2: a signed message names where it is going, or it could be
    replayed to another endpoint."""
    to_other = hop_from(go(erika, *portal.logout_url()))
    request = other_portal.logout_request(to_other)
    response = other_portal.client.create_logout_response(request.message, [to_other.binding],
                                                          sign=False)
    response.destination = None
    info = other_portal.client.apply_binding(to_other.binding, str(response),
                                             IDP_SLO[to_other.binding],
                                             to_other.params["RelayState"], response=True,
                                             sign=True, sigalg=SHA256)
    back = hop_from(go(erika, *to_idp(to_other.binding, info)))
    assert status_of(portal, back)[:2] == (SUCCESS, PARTIAL_LOGOUT)
