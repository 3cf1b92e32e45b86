"""Whatever arrives at a portal, the answer is a German page with a 4xx status, never a 500."""

from __future__ import annotations

import base64
import tracemalloc

import pytest

from idp.samlkit.bindings import MAX_ENCODED_BYTES, decode_redirect
from idp.samlkit.untrusted_xml import parse_xml
from tests.sp_client.conftest import Journey
from tests.sp_client.deflate_bomb import deflate_bomb, inflated_size

DUEREN = "http://127.0.0.1:5001"
# An unsigned Response with an empty signature: enough to pass the portal's own first checks.
FORGED_ANSWER = (
    '<samlp:Response xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" '
    'xmlns:ds="http://www.w3.org/2000/09/xmldsig#" ID="_bomb" Version="2.0" '
    'IssueInstant="2026-01-01T00:00:00Z" InResponseTo="{request}" '
    'Destination="http://127.0.0.1:5001/saml/acs"><ds:Signature/></samlp:Response>')


def assert_german_error(journey: Journey, response: object, status: int) -> None:
    assert getattr(response, "status_code", None) == status, journey.page[:1500]
    assert '<html lang="de">' in journey.page and "Technischer Fehler" not in journey.page


@pytest.mark.parametrize("query", [
    "", "SAMLRequest=%%%", "SAMLResponse=", "SAMLRequest=" + "A" * 200_000,
    "SAMLRequest=eJw%3D&SAMLRequest=eJw%3D"])
def test_broken_single_logout_redirects_get_an_error_page(journey: Journey, query: str) -> None:
    response = journey.open(f"{DUEREN}/saml/slo/redirect?{query}")
    assert_german_error(journey, response, 400)


@pytest.mark.parametrize("form", [
    {}, {"SAMLRequest": "kein base64"}, {"SAMLResponse": base64.b64encode(b"<x/>").decode()},
    {"SAMLRequest": base64.b64encode(b'<!DOCTYPE a [<!ENTITY b "c">]><a/>').decode()}])
def test_broken_single_logout_posts_get_an_error_page(journey: Journey,
                                                       form: dict[str, str]) -> None:
    response = journey.open(f"{DUEREN}/saml/slo/post", form)
    assert_german_error(journey, response, 400)


def test_an_answer_sent_twice_in_one_form_is_refused(journey: Journey) -> None:
    journey.open(f"{DUEREN}/anmelden")
    answer = base64.b64encode(b"<samlp:Response/>").decode()
    response = journey.portal.post("/saml/acs", data={"SAMLResponse": [answer, answer]},
                                   base_url=DUEREN)
    journey.page = response.get_data(as_text=True)
    assert_german_error(journey, response, 400)


def test_an_oversized_request_is_refused(journey: Journey) -> None:
    response = journey.portal.post("/saml/acs", data={"SAMLResponse": "A" * 300_000},
                                   base_url=DUEREN)
    journey.page = response.get_data(as_text=True)
    assert_german_error(journey, response, 413)


def test_another_host_name_is_refused(journey: Journey) -> None:
    response = journey.portal.get("/", base_url="http://evil.example")
    journey.page = response.get_data(as_text=True)
    assert_german_error(journey, response, 400)


@pytest.mark.parametrize("path, status", [("/gibt-es-nicht", 404), ("/saml/acs", 405),
                                          ("/abmelden", 405)])
def test_unknown_pages_and_wrong_methods_get_german_pages(journey: Journey, path: str,
                                                          status: int) -> None:
    assert_german_error(journey, journey.open(DUEREN + path), status)


def test_logging_out_without_a_session_just_goes_to_the_start(journey: Journey) -> None:
    journey.open(f"{DUEREN}/anmelden")
    journey.submit(f"{DUEREN}/abmelden")
    assert journey.url == DUEREN + "/"
    assert journey.response.status_code == 200


@pytest.mark.parametrize("path", ["/saml/acs", "/saml/slo/post"])
def test_a_body_larger_than_any_saml_message_is_refused_before_it_is_read(
        journey: Journey, path: str) -> None:
    message = "A" * (MAX_ENCODED_BYTES * 3 // 2)
    response = journey.portal.post(path, data={"SAMLResponse": message}, base_url=DUEREN)
    journey.page = response.get_data(as_text=True)
    assert_german_error(journey, response, 413)
    assert "Anfrage zu groß" in journey.page


def test_an_answer_that_would_inflate_to_48_mib_is_refused_without_using_that_memory(
        journey: Journey) -> None:
    """XML and a DEFLATE bomb at once, answering the browser's own request: a portal that lets
    pysaml2 inflate what it already decoded holds ~48 MiB for one request."""
    journey.open(f"{DUEREN}/anmelden")
    journey.submit(f"{DUEREN}/anmelden", follow=False)
    request = parse_xml(decode_redirect(journey.sent_to().split("?", 1)[1].encode()).xml)
    answer = deflate_bomb(FORGED_ANSWER.format(request=request.get("ID")).encode(), 49_000)
    assert parse_xml(answer).get("InResponseTo") == request.get("ID")
    assert inflated_size(answer) > 45 * 2**20
    tracemalloc.start()
    try:
        response = journey.portal.post(
            "/saml/acs", data={"SAMLResponse": base64.b64encode(answer).decode("ascii")},
            base_url=DUEREN)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    journey.page = response.get_data(as_text=True)
    assert_german_error(journey, response, 400)
    assert "Sie sind bei diesem Portal nicht angemeldet worden." in journey.page
    assert peak < 20 * 2**20
