"""The portal checks the IdP's answer as a careful SP must: forged, unsigned, replayed, expired,
misaddressed or unrequested answers end on a German error page, and nobody is logged in.

The answers are the real IdP's, taken before the browser sends them on; the forged ones are
changed and signed again with the IdP's own key (so only our own checks can catch them) or with
a stranger's key.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest
from lxml import etree  # type: ignore[import-untyped]  # no stubs installed

from idp.samlkit.crypto import InProcessCryptoBackend
from tests.saml_support import key_pair
from tests.sp_client.conftest import Journey

SAMLP = "urn:oasis:names:tc:SAML:2.0:protocol"
SAML = "urn:oasis:names:tc:SAML:2.0:assertion"
DS = "http://www.w3.org/2000/09/xmldsig#"
NS = {"samlp": SAMLP, "saml": SAML, "ds": DS}
ACS = "http://127.0.0.1:5001/saml/acs"


def held_answer(journey: Journey) -> dict[str, str]:
    """The citizen logs in and agrees; the IdP's form to the ACS is kept, not yet sent."""
    journey.hold_at = ACS
    journey.log_in()
    fields = journey.held_form()
    assert "SAMLResponse" in fields, journey.page[:2000]
    journey.hold_at = None
    return fields


def xml_of(fields: dict[str, str]) -> bytes:
    return base64.b64decode(fields["SAMLResponse"])


def with_xml(fields: dict[str, str], xml: bytes) -> dict[str, str]:
    return {**fields, "SAMLResponse": base64.b64encode(xml).decode("ascii")}


def resigned(xml: bytes, key_file: Path, change: Callable[[etree._Element], None]) -> bytes:
    """The Response changed by ``change``, then its Assertion and itself signed again."""
    root = etree.fromstring(xml)
    change(root)
    backend = InProcessCryptoBackend()
    assertion_id = root.find("saml:Assertion", NS).get("ID")
    text = backend.sign_statement(etree.tostring(root).decode(), f"{SAML}:Assertion", key_file,
                                  assertion_id)
    text = backend.sign_statement(text, f"{SAMLP}:Response", key_file, root.get("ID"))
    return text.encode("utf-8")


def refused(journey: Journey, fields: dict[str, str], message: str,
            logged_in_before: bool = False) -> None:
    """Posting the answer ends on an error page naming the problem, and on no session."""
    response = journey.open(ACS, fields)
    assert response.status_code == 400, journey.page[:2000]
    assert message in journey.page
    assert "Sie sind bei diesem Portal nicht angemeldet worden." in journey.page
    if logged_in_before:
        return  # a refused copy does not end the session the original answer made
    journey.open("/uebersicht")
    assert journey.url.endswith("/anmelden") and "Sie sind angemeldet" not in journey.page


@pytest.fixture
def idp_key(signing_keys: tuple[Path, Path]) -> Path:
    return signing_keys[0]


def test_the_untouched_answer_logs_the_citizen_in(citizen: Journey) -> None:
    fields = held_answer(citizen)
    citizen.open(ACS, fields)
    assert "Sie sind angemeldet" in citizen.page


def test_a_changed_answer_breaks_the_signature(citizen: Journey) -> None:
    fields = held_answer(citizen)
    xml = xml_of(fields).replace(b"Mustermann", b"Musterfrau")
    refused(citizen, with_xml(fields, xml), "Die Signatur der Antwort ist ungültig")


def test_an_answer_signed_with_another_key_is_refused(citizen: Journey,
                                                      tmp_path: Path) -> None:
    stranger, _ = key_pair(tmp_path / "stranger", "stranger")
    fields = held_answer(citizen)
    xml = resigned(xml_of(fields), stranger, lambda root: None)
    refused(citizen, with_xml(fields, xml), "Die Signatur der Antwort ist ungültig")


def test_an_unsigned_answer_is_refused(citizen: Journey) -> None:
    fields = held_answer(citizen)
    root = etree.fromstring(xml_of(fields))
    for signature in root.iter(f"{{{DS}}}Signature"):
        signature.getparent().remove(signature)
    refused(citizen, with_xml(fields, etree.tostring(root)), "nicht signiert")


def test_the_same_answer_twice_logs_in_only_once(citizen: Journey) -> None:
    fields = held_answer(citizen)
    citizen.open(ACS, fields)
    assert "Sie sind angemeldet" in citizen.page
    refused(citizen, fields, "keine offene Anmeldung", logged_in_before=True)


def test_a_copy_of_the_answer_logs_no_other_browser_in(citizen: Journey) -> None:
    fields = held_answer(citizen)
    citizen.open(ACS, fields)
    citizen.new_portal_browser()
    refused(citizen, fields, "keine offene Anmeldung")


def test_a_replayed_assertion_for_a_new_request_is_refused(citizen: Journey,
                                                           idp_key: Path) -> None:
    first = held_answer(citizen)
    citizen.open(ACS, first)
    assert "Sie sind angemeldet" in citizen.page
    citizen.submit("/abmelden", follow=False)
    # A new login (still logged in at the IdP, which answers at once): its request ID, but
    # the old assertion, signed again with the IdP's key.
    citizen.hold_at = ACS
    citizen.go_to_servicekonto()
    second = citizen.held_form()
    new_request = etree.fromstring(xml_of(second)).get("InResponseTo")

    def to_new_request(root: etree._Element) -> None:
        root.set("InResponseTo", new_request)
        for data in root.iter(f"{{{SAML}}}SubjectConfirmationData"):
            data.set("InResponseTo", new_request)

    replay = resigned(xml_of(first), idp_key, to_new_request)
    refused(citizen, with_xml(second, replay), "Diese Anmeldung wurde bereits verwendet.")


def test_an_answer_to_a_request_the_portal_never_sent_is_refused(citizen: Journey,
                                                                 idp_key: Path) -> None:
    fields = held_answer(citizen)

    def unknown_request(root: etree._Element) -> None:
        root.set("InResponseTo", "_never-sent")
        for data in root.iter(f"{{{SAML}}}SubjectConfirmationData"):
            data.set("InResponseTo", "_never-sent")

    refused(citizen, with_xml(fields, resigned(xml_of(fields), idp_key, unknown_request)),
            "keine offene Anmeldung")


def test_an_answer_brought_by_another_browser_is_refused(citizen: Journey) -> None:
    fields = held_answer(citizen)
    citizen.new_portal_browser()  # the answer arrives in a browser that did not ask
    refused(citizen, fields, "keine offene Anmeldung")


def test_an_expired_answer_is_refused(citizen: Journey, monkeypatch: pytest.MonkeyPatch) -> None:
    fields = held_answer(citizen)
    monkeypatch.setattr("sp_client.database.clock_offset", timedelta(minutes=20))
    refused(citizen, fields, "abgelaufen")


def test_an_answer_for_another_portal_is_refused(citizen: Journey, idp_key: Path) -> None:
    fields = held_answer(citizen)

    def other_audience(root: etree._Element) -> None:
        for audience in root.iter(f"{{{SAML}}}Audience"):
            audience.text = "https://andere-stadt.example/saml/metadata"

    refused(citizen, with_xml(fields, resigned(xml_of(fields), idp_key, other_audience)),
            "für ein anderes Portal bestimmt")


def test_an_answer_with_another_recipient_is_refused(citizen: Journey, idp_key: Path) -> None:
    fields = held_answer(citizen)

    def other_recipient(root: etree._Element) -> None:
        for data in root.iter(f"{{{SAML}}}SubjectConfirmationData"):
            data.set("Recipient", "https://andere-stadt.example/saml/acs")

    refused(citizen, with_xml(fields, resigned(xml_of(fields), idp_key, other_recipient)),
            "an eine andere Adresse gerichtet")


def test_an_answer_with_another_destination_is_refused(citizen: Journey,
                                                       idp_key: Path) -> None:
    fields = held_answer(citizen)

    def other_destination(root: etree._Element) -> None:
        root.set("Destination", "https://andere-stadt.example/saml/acs")

    refused(citizen, with_xml(fields, resigned(xml_of(fields), idp_key, other_destination)),
            "an eine andere Adresse gerichtet")


def test_an_answer_below_the_requested_trust_level_is_refused(citizen: Journey,
                                                              idp_key: Path) -> None:
    fields = held_answer(citizen)

    def lower(root: etree._Element) -> None:
        for ref in root.iter(f"{{{SAML}}}AuthnContextClassRef"):
            ref.text = "urn:oasis:names:tc:SAML:2.0:ac:classes:Password"

    refused(citizen, with_xml(fields, resigned(xml_of(fields), idp_key, lower)),
            "Vertrauensniveau der Anmeldung reicht")


@pytest.mark.parametrize("garbage", [
    "", "nicht-base64!!", base64.b64encode(b"<kein-saml/>").decode(),
    base64.b64encode(b'<!DOCTYPE x [<!ENTITY a "b">]><x/>').decode()])
def test_garbage_instead_of_an_answer_gets_an_error_page(journey: Journey, garbage: str) -> None:
    journey.open("/anmelden")
    response = journey.open(ACS, {"SAMLResponse": garbage})
    assert response.status_code == 400
    assert "unvollständig oder fehlerhaft" in journey.page or "keine offene" in journey.page
