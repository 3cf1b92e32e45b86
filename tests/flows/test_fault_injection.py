"""Fault injection: the next answers to a portal carry a named fault, and a portal that checks
what it receives (here pysaml2, as the test portal of tests/flows) refuses every one of them.

Each broken answer differs from the right one in exactly its fault; the status answers carry
every SAML status the IdP sends and every akdb:StatusDetail code.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest
from flask import Flask
from lxml import etree  # type: ignore[import-untyped]  # no stubs installed

from idp.container import app_parts
from idp.testing.faults import BROKEN, DETAILS, FAULTS, STATUS_ANSWERS
from tests.conftest import Browser
from tests.flows.conftest import (
    SP_ACS,
    SP_ENTITY,
    Portal,
    answer_to,
    consent_page,
    decide,
    field_value,
    logged_in,
)
from tests.integration.testing.conftest import TOKEN, Api

NS = {"samlp": "urn:oasis:names:tc:SAML:2.0:protocol",
      "saml": "urn:oasis:names:tc:SAML:2.0:assertion", "ds": "http://www.w3.org/2000/09/xmldsig#"}
# The portal's name in the registry (tests/flows/conftest.portal_policy).
NAME = "musterstadt"


@pytest.fixture
def settings(settings: dict[str, Any]) -> dict[str, Any]:
    return settings | {"testing_api_token": TOKEN}


@pytest.fixture
def api(sso_app: Flask) -> Api:
    return Api(sso_app.test_client(), TOKEN)


@pytest.fixture
def known(sso_app: Flask) -> Known:
    return Known(certificate=app_parts(sso_app).saml.responses.certificate)


@pytest.fixture
def citizen(sso_app: Flask, visitor: Browser, portal: Portal, known: Known) -> Browser:
    """Logged in, agreed once, and the portal took that first answer (a correct portal forgets
    the request it answered)."""
    consent_page(logged_in(sso_app, visitor), portal)
    first = portal.receive(decide(visitor).get_data(as_text=True))
    known.released = len(first.assertion.attribute_statement[0].attribute)
    portal.outstanding.clear()
    return visitor


def answer_with(api: Api, citizen: Browser, portal: Portal, fault: str) -> str:
    assert api.put(f"/portals/{NAME}/fault", {"fault": fault}).status_code == 200
    return answer_to(citizen, portal)


def xml_of(page: str) -> Any:
    return etree.fromstring(base64.b64decode(field_value(page, "SAMLResponse")))


def instant(value: str) -> datetime:
    return datetime.strptime(value, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)


@dataclass
class Known:
    """What the test knows of the right answer: our certificate, the portal's open requests,
    how many attributes the citizen's consent releases."""

    certificate: str = ""
    pending: set[str] = field(default_factory=set)
    released: int = 0


# What is broken in each answer, seen in its XML.
SEEN: dict[str, Any] = {
    "unsigned": lambda root, known: not root.findall(".//ds:Signature", NS),
    "wrong-key": lambda root, known: all(cert.text.strip() != known.certificate
                                  for cert in root.iterfind(".//ds:X509Certificate", NS)),
    "tampered": lambda root, known: root.find(".//saml:AttributeValue", NS).text.endswith(
        "-geaendert"),
    "sha1": lambda root, known: root.find(".//ds:SignatureMethod", NS).get("Algorithm").endswith(
        "rsa-sha1"),
    "expired": lambda root, known: instant(
        root.find(".//saml:Conditions", NS).get("NotOnOrAfter")) < datetime.now(UTC),
    "not-yet-valid": lambda root, known: instant(
        root.find(".//saml:Conditions", NS).get("NotBefore")) > datetime.now(UTC),
    "wrong-audience": lambda root, known: root.find(".//saml:Audience", NS).text != SP_ENTITY,
    "wrong-recipient": lambda root, known: root.find(".//saml:SubjectConfirmationData", NS).get(
        "Recipient") != SP_ACS and root.get("Destination") == SP_ACS,
    "wrong-destination": lambda root, known: root.get("Destination") != SP_ACS,
    "wrong-in-response-to": lambda root, known: root.get("InResponseTo") not in known.pending,
    "replayed": lambda root, known: root.get("InResponseTo") not in known.pending,
    "wrong-issuer": lambda root, known: root.find("saml:Issuer", NS).text != IDP_ENTITY,
    "xsw": lambda root, known: len(root.findall("saml:Assertion", NS)) == 2,
    "missing-attribute": lambda root, known: len(root.findall(".//saml:Attribute", NS))
    == known.released - 1,
    "lower-trust-level": lambda root, known: root.find(".//saml:AuthnContextClassRef", NS).text
    == "urn:oasis:names:tc:SAML:2.0:ac:classes:unspecified",
}
IDP_ENTITY = "http://localhost/saml/metadata"



def test_the_catalogue_names_every_fault_with_what_a_correct_portal_does(api: Api) -> None:
    listed = api.get("/faults").get_json()
    assert [fault["name"] for fault in listed["faults"]] == list(FAULTS)
    assert set(SEEN) == {fault.name for fault in BROKEN}
    assert len(STATUS_ANSWERS) == 8 + len(DETAILS)
    assert all(fault["expected"] for fault in listed["faults"])
    assert listed["waiting"] == []


@pytest.mark.parametrize("fault", [fault.name for fault in BROKEN])
def test_each_broken_answer_carries_its_fault_and_a_checking_portal_refuses_it(
        fault: str, api: Api, citizen: Browser, portal: Portal, known: Known) -> None:
    path, _ = portal.login_url()
    known.pending = set(portal.outstanding)
    assert api.put(f"/portals/{NAME}/fault", {"fault": fault}).get_json() == {
        "portal": NAME, "fault": fault, "remaining": 1}
    page = citizen.client.get(path).get_data(as_text=True)
    root = xml_of(page)
    assert SEEN[fault](root, known), etree.tostring(root).decode()
    if fault not in ("missing-attribute", "lower-trust-level", "wrong-recipient"):
        # pysaml2 does not know which attributes and levels a portal needs, and compares the
        # Recipient only when told to (Response.verify_recipient without conv_info); the demo
        # portals check all three (tests/integration/testing/test_portal_checker.py).
        with pytest.raises(Exception):  # noqa: B017  (pysaml2 raises many kinds)
            portal.receive(page)
    # One fault, one answer: the next login is right again.
    right = portal.receive(answer_to(citizen, portal))
    assert len(right.assertion.attribute_statement[0].attribute) == known.released


@pytest.mark.parametrize("fault", [fault.name for fault in STATUS_ANSWERS])
def test_each_status_answer_carries_its_status_and_no_assertion(
        fault: str, api: Api, citizen: Browser, portal: Portal) -> None:
    root = xml_of(answer_with(api, citizen, portal, fault))
    codes = [code.get("Value").rsplit(":", 1)[1]
             for code in root.iterfind(".//samlp:StatusCode", NS)]
    assert codes[0] in ("Requester", "Responder", "VersionMismatch")
    if fault.startswith("status:"):
        assert fault.removeprefix("status:") in codes
    else:
        detail = root.find(".//{https://www.akdb.de/request/2018/09}StatusDetail")
        assert detail is not None and detail.text == fault.removeprefix("detail:")
    assert root.find("saml:Assertion", NS) is None


def test_a_fault_counts_down_over_the_logins_and_can_be_cleared(
        api: Api, citizen: Browser, portal: Portal) -> None:
    api.put(f"/portals/{NAME}/fault", {"fault": "unsigned", "count": 3})
    assert not xml_of(answer_to(citizen, portal)).findall(".//ds:Signature", NS)
    assert api.get("/faults").get_json()["waiting"] == [
        {"portal": NAME, "fault": "unsigned", "remaining": 2}]
    assert api.delete(f"/portals/{NAME}/fault").status_code == 204
    assert api.get("/faults").get_json()["waiting"] == []
    assert xml_of(answer_to(citizen, portal)).findall(".//ds:Signature", NS)


@pytest.mark.parametrize(("body", "status"), [
    ({"fault": "erfunden"}, 422), ({"fault": "unsigned", "count": 0}, 422),
    ({"fault": "unsigned", "count": 101}, 422), ({"fault": "unsigned", "count": "2"}, 400),
    ({"fault": "unsigned", "extra": 1}, 400), ({}, 400)])
def test_a_fault_that_cannot_be_set_is_refused_and_nothing_waits(
        api: Api, body: dict[str, Any], status: int) -> None:
    answer = api.put(f"/portals/{NAME}/fault", body)
    assert answer.status_code == status and answer.get_json()["error"]
    assert api.get("/faults").get_json()["waiting"] == []


def test_a_portal_that_is_not_registered_is_named_so(api: Api) -> None:
    answer = api.put("/portals/gibtsnicht/fault", {"fault": "unsigned"})
    assert answer.status_code == 404 and NAME in answer.get_json()["error"]
    assert api.delete("/portals/gibtsnicht/fault").status_code == 404


def test_replayed_before_any_answer_waits_for_one_to_replay(
        sso_app: Flask, api: Api, visitor: Browser, portal: Portal) -> None:
    """Nothing went to the portal yet: the first answer is right, the next is its replay."""
    assert api.put(f"/portals/{NAME}/fault", {"fault": "replayed"}).status_code == 200
    consent_page(logged_in(sso_app, visitor), portal)
    first = decide(visitor).get_data(as_text=True)
    portal.receive(first)
    assert api.get("/faults").get_json()["waiting"] == [
        {"portal": NAME, "fault": "replayed", "remaining": 1}]
    again = answer_to(visitor, portal)
    assert field_value(again, "SAMLResponse") == field_value(first, "SAMLResponse")
