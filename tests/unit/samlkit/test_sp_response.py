"""The SP's checks on an IdP's Response (idp.samlkit.sp_response), one by one: each refuses the
answer it is there for, naming its problem, and a right answer gives the login it vouches for.

The answers come from the IdP's own ResponseBuilder on fresh keys and are changed before they
are signed, so a refusal is the check's, not a broken signature's.
"""

from __future__ import annotations

import base64
import copy
import tracemalloc
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from lxml import etree  # type: ignore[import-untyped]  # no stubs installed
from saml2.saml import NAMEID_FORMAT_PERSISTENT

from idp.samlkit.bundid import GIVEN_NAME, MAIL, SURNAME
from idp.samlkit.sp_response import (
    Expected,
    LoginNotGranted,
    Problem,
    ResponseRejected,
    VerifiedResponse,
    check,
    message,
    read_envelope,
)
from tests.sp_client.deflate_bomb import deflate_bomb, inflated_size
from tests.unit.samlkit.answering_idp import (
    ACS,
    IDP_ID,
    NS,
    RELEASED,
    REQUEST_ID,
    SAMLP,
    SIBLING_IDP,
    SP_ID,
    AnsweringIdp,
    answering_idp,
    envelope,
    expected,
)

STATUS = "urn:oasis:names:tc:SAML:2.0:status:"
AKDB = "https://www.akdb.de/request/2018/09"
Change = Callable[[etree._Element], None]


@pytest.fixture
def idp(tmp_path: Path) -> AnsweringIdp:
    return answering_idp(tmp_path)


def checked(idp: AnsweringIdp, xml: bytes, wanted: Expected | None = None) -> VerifiedResponse:
    return check(idp.client, envelope(xml), wanted or expected(), idp.now)


def problem_of(idp: AnsweringIdp, xml: bytes, wanted: Expected | None = None) -> Problem:
    with pytest.raises(ResponseRejected) as refused:
        checked(idp, xml, wanted)
    return refused.value.problem


def setting(path: str, name: str, value: str) -> Change:
    def change(root: etree._Element) -> None:
        for element in root.iterfind(path, NS):
            element.set(name, value)
    return change


def writing(path: str, text: str) -> Change:
    def change(root: etree._Element) -> None:
        for element in root.iterfind(path, NS):
            element.text = text
    return change


def removing(path: str) -> Change:
    def change(root: etree._Element) -> None:
        for element in root.findall(path, NS):
            element.getparent().remove(element)
    return change


def doubling(path: str, new_id: str | None = None) -> Change:
    def change(root: etree._Element) -> None:
        element = root.find(path, NS)
        twin = copy.deepcopy(element)
        if new_id:
            twin.set("ID", new_id)
        element.addnext(twin)
    return change


class KnowsAnotherRequest:
    """A client waiting for two of our requests: pysaml2 then takes an answer to either, and
    only our own check keeps the answer to the request we expect."""

    def __init__(self, idp: AnsweringIdp) -> None:
        self.client = idp.client

    def parse_authn_request_response(self, xmlstr: Any, binding: Any,
                                     outstanding: Any = None) -> Any:
        return self.client.parse_authn_request_response(
            xmlstr, binding, outstanding={**outstanding, "_other-request": "login"})


# --- the right answer --------------------------------------------------------------------------

def test_a_right_answer_gives_the_login_with_its_attributes_and_their_levels(
        idp: AnsweringIdp) -> None:
    login = checked(idp, idp.answer()).login
    assert (login.name_id, login.name_id_format) == ("persistent-1", NAMEID_FORMAT_PERSISTENT)
    assert (login.name_qualifier, login.sp_name_qualifier) == (IDP_ID, SP_ID)
    assert login.session_index == "_session-1"
    assert login.attributes == {item.name: list(item.values) for item in RELEASED}
    assert login.attribute_trust == {GIVEN_NAME: "HOCH", SURNAME: "HOCH", MAIL: "NORMAL"}
    assert login.friendly_names == {GIVEN_NAME: "givenName", SURNAME: "surname", MAIL: "mail"}
    assert (login.class_ref, login.level) == ("STORK-QAA-Level-3", 3)
    assert login.authenticated_at == idp.now - timedelta(seconds=30)
    assert login.issued_at == idp.now
    assert login.session_until == idp.now + timedelta(hours=8)


def test_the_replay_cache_keeps_the_assertion_until_it_could_no_longer_be_taken(
        idp: AnsweringIdp) -> None:
    xml = idp.answer()
    first, again = checked(idp, xml), checked(idp, xml)
    assert first.assertion_id == again.assertion_id
    assert first.assertion_id == etree.fromstring(xml).find("saml:Assertion", NS).get("ID")
    # The builder's assertions live five minutes; the IdP's clock may be a minute off.
    assert first.keep_until == idp.now + timedelta(minutes=5) + timedelta(minutes=1)


def test_an_encrypted_assertion_is_decrypted_and_checked(idp: AnsweringIdp) -> None:
    verified = checked(idp, idp.encrypted_answer(), expected(encrypted=True))
    assert verified.login.attributes[GIVEN_NAME] == ["Björn"]


def test_a_level_above_the_one_asked_for_is_taken_with_its_level(idp: AnsweringIdp) -> None:
    assert checked(idp, idp.answer(class_ref="STORK-QAA-Level-4")).login.level == 4


# --- the envelope ------------------------------------------------------------------------------

@pytest.mark.parametrize("form", [
    {}, {"SAMLResponse": ["nicht-base64!!"]},
    {"SAMLResponse": [base64.b64encode(b"<kein-xml").decode()]},
    {"SAMLResponse": [base64.b64encode(b'<!DOCTYPE x [<!ENTITY a "b">]><x/>').decode()]},
    {"SAMLResponse": [base64.b64encode(f'<samlp:AuthnRequest xmlns:samlp="{SAMLP}"/>'
                                       .encode()).decode()]}])
def test_anything_but_a_samlp_response_is_refused_as_malformed(form: dict[str, list[str]]) -> None:
    with pytest.raises(ResponseRejected) as refused:
        read_envelope(form)
    assert refused.value.problem is Problem.MALFORMED


def test_the_envelope_names_the_request_it_claims_to_answer(idp: AnsweringIdp) -> None:
    assert envelope(idp.answer()).in_response_to == REQUEST_ID
    unsolicited = idp.answer(lambda root: root.attrib.pop("InResponseTo"))
    assert envelope(unsolicited).in_response_to is None


def test_an_answer_that_is_a_deflate_bomb_too_is_read_as_the_xml_it_is(
        idp: AnsweringIdp) -> None:
    """Told HTTP-POST, pysaml2 would first inflate it: ~40 MiB for one answer."""
    bomb = deflate_bomb(idp.answer(), 49_000)
    assert inflated_size(bomb) > 40 * 2**20
    tracemalloc.start()
    try:
        verified = checked(idp, bomb)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert verified.login.name_id == "persistent-1"
    assert peak < 20 * 2**20


# --- signatures --------------------------------------------------------------------------------

def test_an_unsigned_answer_is_refused(idp: AnsweringIdp) -> None:
    assert problem_of(idp, idp.answer(sign=False)) is Problem.UNSIGNED


def test_a_signed_response_around_an_unsigned_assertion_is_refused(idp: AnsweringIdp) -> None:
    root = etree.fromstring(idp.answer(sign=False))
    idp.builder.crypto.sign_elements([root], idp.builder.key_file, idp.builder.certificate)
    assert problem_of(idp, etree.tostring(root)) is Problem.UNSIGNED


def test_a_signed_assertion_in_an_unsigned_response_is_refused(idp: AnsweringIdp) -> None:
    root = etree.fromstring(idp.answer(sign=False))
    idp.builder.crypto.sign_elements(root.findall("saml:Assertion", NS), idp.builder.key_file,
                                     idp.builder.certificate)
    assert problem_of(idp, etree.tostring(root)) is Problem.UNSIGNED


def test_an_answer_changed_after_signing_is_refused(idp: AnsweringIdp) -> None:
    xml = idp.answer().replace(b"bjoern@example.test", b"mallory@example.test")
    assert problem_of(idp, xml) is Problem.BAD_SIGNATURE


def test_a_clear_assertion_where_encryption_is_agreed_is_refused(idp: AnsweringIdp) -> None:
    assert problem_of(idp, idp.answer(), expected(encrypted=True)) is Problem.UNENCRYPTED


# --- who sent it, to whom, for which request ---------------------------------------------------

def test_an_answer_from_another_idp_the_client_trusts_is_refused(idp: AnsweringIdp) -> None:
    """Signed with a key its metadata names, but our request went to the other IdP."""
    xml = idp.answer(writing(".//saml:Issuer", SIBLING_IDP))
    assert problem_of(idp, xml) is Problem.WRONG_ISSUER


def test_an_assertion_issued_by_another_idp_than_the_response_is_refused(
        idp: AnsweringIdp) -> None:
    xml = idp.answer(writing("saml:Assertion/saml:Issuer", SIBLING_IDP))
    assert problem_of(idp, xml) is Problem.WRONG_ISSUER


def test_an_answer_naming_an_idp_the_client_does_not_know_is_refused(
        idp: AnsweringIdp) -> None:
    xml = idp.answer(writing(".//saml:Issuer", "https://fremder-idp.example.test/metadata"))
    # No key in the metadata for that Issuer: the signature cannot be the IdP's.
    assert problem_of(idp, xml) is Problem.BAD_SIGNATURE


def test_an_answer_addressed_to_another_acs_is_refused(idp: AnsweringIdp) -> None:
    xml = idp.answer(setting(".", "Destination", "https://anderes-portal.example/acs"))
    assert problem_of(idp, xml) is Problem.WRONG_RECIPIENT


def test_a_confirmation_for_another_recipient_is_refused(idp: AnsweringIdp) -> None:
    xml = idp.answer(setting(".//saml:SubjectConfirmationData", "Recipient",
                             "https://anderes-portal.example/acs"))
    assert problem_of(idp, xml) is Problem.WRONG_RECIPIENT


def test_an_assertion_for_another_audience_is_refused(idp: AnsweringIdp) -> None:
    xml = idp.answer(writing(".//saml:Audience", "https://anderes-portal.example/metadata"))
    assert problem_of(idp, xml) is Problem.WRONG_AUDIENCE


def test_an_answer_to_another_of_our_requests_is_refused(idp: AnsweringIdp) -> None:
    xml = idp.answer(setting(".", "InResponseTo", "_other-request"))
    with pytest.raises(ResponseRejected) as refused:
        check(KnowsAnotherRequest(idp), envelope(xml), expected(), idp.now)
    assert refused.value.problem is Problem.UNKNOWN_REQUEST


def test_a_confirmation_for_another_of_our_requests_is_refused(idp: AnsweringIdp) -> None:
    xml = idp.answer(setting(".//saml:SubjectConfirmationData", "InResponseTo",
                             "_other-request"))
    with pytest.raises(ResponseRejected) as refused:
        check(KnowsAnotherRequest(idp), envelope(xml), expected(), idp.now)
    assert refused.value.problem is Problem.UNKNOWN_REQUEST


def test_an_answer_to_a_request_never_sent_is_refused(idp: AnsweringIdp) -> None:
    xml = idp.answer(setting(".", "InResponseTo", "_never-sent"))
    assert problem_of(idp, xml) is Problem.UNKNOWN_REQUEST


def test_an_assertion_without_bearer_confirmation_is_refused(idp: AnsweringIdp) -> None:
    xml = idp.answer(setting(".//saml:SubjectConfirmation", "Method",
                             "urn:oasis:names:tc:SAML:2.0:cm:sender-vouches"))
    assert problem_of(idp, xml) is Problem.MALFORMED


# --- time --------------------------------------------------------------------------------------

def test_an_answer_issued_long_ago_is_refused_though_its_assertion_still_holds(
        idp: AnsweringIdp) -> None:
    xml = idp.answer(setting(".", "IssueInstant", "2020-01-01T00:00:00Z"))
    assert problem_of(idp, xml) is Problem.EXPIRED


@pytest.mark.parametrize("shift", [timedelta(minutes=-10), timedelta(minutes=10)])
def test_an_assertion_outside_its_conditions_is_refused(idp: AnsweringIdp,
                                                        shift: timedelta) -> None:
    assert problem_of(idp, idp.answer(issued=idp.now + shift)) is Problem.EXPIRED


def test_a_minute_of_clock_skew_is_forgiven(idp: AnsweringIdp) -> None:
    assert checked(idp, idp.answer(issued=idp.now + timedelta(seconds=50))).login.name_id


def test_an_assertion_without_an_end_is_refused(idp: AnsweringIdp) -> None:
    xml = idp.answer(lambda root: root.find(".//saml:Conditions", NS).attrib.pop("NotOnOrAfter"))
    assert problem_of(idp, xml) is Problem.EXPIRED


def test_an_expired_bearer_confirmation_is_refused(idp: AnsweringIdp) -> None:
    xml = idp.answer(setting(".//saml:SubjectConfirmationData", "NotOnOrAfter",
                             "2020-01-01T00:00:00Z"))
    assert problem_of(idp, xml) is Problem.EXPIRED


def test_a_session_that_has_ended_is_refused(idp: AnsweringIdp) -> None:
    xml = idp.answer(setting(".//saml:AuthnStatement", "SessionNotOnOrAfter",
                             "2020-01-01T00:00:00Z"))
    assert problem_of(idp, xml) is Problem.EXPIRED


# --- what the assertion says -------------------------------------------------------------------

@pytest.mark.parametrize("change", [
    doubling("saml:Assertion", "_second-assertion"), doubling(".//saml:AuthnStatement"),
    removing(".//saml:NameID"), writing(".//saml:NameID", "  ")],
    ids=["two assertions", "two AuthnStatements", "no NameID", "an empty NameID"])
def test_an_assertion_not_made_as_a_login_needs_is_refused(idp: AnsweringIdp,
                                                          change: Change) -> None:
    assert problem_of(idp, idp.answer(change)) is Problem.MALFORMED


@pytest.mark.parametrize("class_ref", [
    "STORK-QAA-Level-2", "urn:oasis:names:tc:SAML:2.0:ac:classes:unspecified", ""])
def test_a_level_below_the_one_asked_for_or_none_known_is_refused(idp: AnsweringIdp,
                                                                 class_ref: str) -> None:
    assert problem_of(idp, idp.answer(class_ref=class_ref)) is Problem.LEVEL_TOO_LOW


@pytest.mark.parametrize("change", [
    removing(f".//saml:Attribute[@Name='{GIVEN_NAME}']"),
    writing(f".//saml:Attribute[@Name='{SURNAME}']/saml:AttributeValue", " ")],
    ids=["left out", "empty"])
def test_a_required_attribute_without_a_value_is_refused(idp: AnsweringIdp,
                                                         change: Change) -> None:
    assert problem_of(idp, idp.answer(change)) is Problem.MISSING_ATTRIBUTE


def test_an_attribute_not_required_may_be_missing(idp: AnsweringIdp) -> None:
    login = checked(idp, idp.answer(removing(f".//saml:Attribute[@Name='{MAIL}']"))).login
    assert MAIL not in login.attributes


# --- the IdP's refusal -------------------------------------------------------------------------

def refusal_xml(idp: AnsweringIdp, *, sign: bool = True) -> bytes:
    """The IdP's answer RequestDenied with the akdb:StatusDetail of declined consent."""
    root = etree.fromstring(idp.answer(sign=False))
    root.remove(root.find("saml:Assertion", NS))
    status = root.find("samlp:Status", NS)
    status.remove(status.find("samlp:StatusCode", NS))
    code = etree.SubElement(status, f"{{{SAMLP}}}StatusCode", Value=STATUS + "Requester")
    etree.SubElement(code, f"{{{SAMLP}}}StatusCode", Value=STATUS + "RequestDenied")
    etree.SubElement(status, f"{{{SAMLP}}}StatusMessage").text = " Zustimmung verweigert "
    detail = etree.SubElement(status, f"{{{SAMLP}}}StatusDetail")
    etree.SubElement(detail, f"{{{AKDB}}}StatusDetail").text = "IDP_CONSENT_DECLINED"
    if sign:
        idp.builder.crypto.sign_elements([root], idp.builder.key_file, idp.builder.certificate)
    return bytes(etree.tostring(root))


def test_the_idps_signed_refusal_says_why_nobody_is_logged_in(idp: AnsweringIdp) -> None:
    with pytest.raises(LoginNotGranted) as refused:
        checked(idp, refusal_xml(idp))
    refusal = refused.value.refusal
    assert (refusal.status, refusal.sub_status) == (STATUS + "Requester", STATUS + "RequestDenied")
    assert (refusal.message, refusal.detail) == ("Zustimmung verweigert", "IDP_CONSENT_DECLINED")


def test_an_unsigned_refusal_is_not_believed(idp: AnsweringIdp) -> None:
    assert problem_of(idp, refusal_xml(idp, sign=False)) is Problem.UNSIGNED


# --- words -------------------------------------------------------------------------------------

@pytest.mark.parametrize("problem", list(Problem))
def test_every_problem_has_a_german_sentence_that_names_neither_side(problem: Problem) -> None:
    sentence = message(problem)
    assert sentence.endswith(".") and sentence[0].isupper()
    assert "Servicekonto" not in sentence and "Portal" not in sentence
    assert ACS not in sentence
