"""Whatever arrives at a portal, the answer is a German page with a 4xx status, never a 500."""

from __future__ import annotations

import base64

import pytest

from tests.sp_client.conftest import Journey

DUEREN = "http://127.0.0.1:5001"


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
