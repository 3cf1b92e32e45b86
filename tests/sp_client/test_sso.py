"""Logging in at a demo portal through the real IdP: what the citizen sees on both sides."""

from __future__ import annotations

import base64
import re
from datetime import UTC, datetime
from pathlib import Path

import pytest
from lxml import etree  # type: ignore[import-untyped]  # no stubs installed
from saml2 import BINDING_HTTP_POST
from sqlalchemy import select

from idp.container import app_parts
from idp.saml.messages import ParsedAuthnRequest
from idp.samlkit.bindings import decode_redirect, verify_redirect_signature
from idp.samlkit.keys import load_certificate
from sp_client import create_app as create_portal
from sp_client.extensions import portal_db
from sp_client.models import OutstandingRequest
from tests.saml_support import abbrechen_target
from tests.sp_client.conftest import Federation, Journey, visible_and_technical

DUEREN_ACS = "http://127.0.0.1:5001/saml/acs"
SAMLP = "urn:oasis:names:tc:SAML:2.0:protocol"
SAML = "urn:oasis:names:tc:SAML:2.0:assertion"
AKDB = "https://www.akdb.de/request/2018/09"
MD = "urn:oasis:names:tc:SAML:2.0:metadata"
NS = {"samlp": SAMLP, "saml": SAML, "akdb": AKDB, "md": MD,
      "ds": "http://www.w3.org/2000/09/xmldsig#"}
REQUESTER = "urn:oasis:names:tc:SAML:2.0:status:Requester"
RESPONDER = "urn:oasis:names:tc:SAML:2.0:status:Responder"
STATUS = "urn:oasis:names:tc:SAML:2.0:status:"


def not_logged_in(journey: Journey) -> bool:
    journey.open("/uebersicht")
    return journey.url.endswith("/anmelden") and "Sie sind angemeldet" not in journey.page


def test_a_citizen_logs_in_at_dueren_agrees_and_sees_her_data(citizen: Journey) -> None:
    citizen.go_to_servicekonto()
    citizen.log_in_at_idp()
    # The consent page names the portal, and what the BundID extension says about it.
    for shown in ("Bürgerportal der Stadt Düren", "<dd>Stadt Düren</dd>",
                  "Anmeldung an den Onlinediensten der Stadt Düren"):
        assert shown in citizen.page
    citizen.decide("agree")
    assert citizen.url.endswith("/uebersicht")
    page = citizen.page
    assert "<h1>Mein Bereich</h1>" in page
    assert "Guten Tag, Frau Erika Mustermann! Sie sind angemeldet." in page
    visible, technical = visible_and_technical(page)
    for shown in ("Erika", "Mustermann", "erika.mustermann@example.org", "Frau (Code 2)",
                  "basisregistriert"):
        assert shown in visible
    for shown in ("STORK-QAA-Level-1", "UNTERGEORDNET", "NORMAL"):
        assert shown in technical and shown not in visible
    # Düren asks for a persistent NameID: it is the citizen's bPK2 there (both in the details).
    name_id = re.search(r'NameID</th><td class="code">([^<]+)<', technical)
    assert name_id and technical.count(name_id.group(1)) == 2
    assert name_id.group(1) not in visible


@pytest.mark.parametrize("portal_profile", ["mags"])
def test_a_citizen_logs_in_at_mags_over_the_post_binding(citizen: Journey) -> None:
    citizen.open("/anmelden")
    sent = citizen.submit("/anmelden", follow=False)
    assert 'action="http://localhost/saml/sso/post"' in citizen.page  # auto-POST to the IdP
    assert "form-action 'self' http://localhost" in sent.headers["Content-Security-Policy"]
    citizen.follow()
    citizen.log_in_at_idp()
    citizen.decide("agree")
    page = citizen.page
    assert "<h1>Übersicht der Services</h1>" in page
    visible, technical = visible_and_technical(page)
    assert "Sie sind angemeldet" in visible and "Gabler" in visible  # the Geburtsname, too
    assert "Um die anmeldepflichtigen Services nutzen zu können, müssen Sie nun Ihr " \
           "Kassenzeichen hinterlegen. (Beispiel: 1500.0000.0000)" in visible
    assert "urn:oasis:names:tc:SAML:2.0:nameid-format:transient" in technical


@pytest.mark.parametrize("policy_changes", [{"encrypt_assertion": True}])
def test_an_encrypted_assertion_is_decrypted_with_the_portals_key(citizen: Journey) -> None:
    citizen.hold_at = DUEREN_ACS
    citizen.log_in()
    answer = base64.b64decode(citizen.held_form()["SAMLResponse"])
    assert b"EncryptedAssertion" in answer and b"Mustermann" not in answer
    citizen.hold_at = None
    citizen.follow()
    assert "Sie sind angemeldet" in citizen.page and "Mustermann" in citizen.page


def test_the_request_is_signed_and_asks_for_trust_level_and_attributes(
        journey: Journey, portal_keys: dict[str, tuple[Path, Path]]) -> None:
    journey.open("/anmelden")
    sent = journey.submit("/anmelden", follow=False)
    # A page, not a 303: the form's CSP form-action would stop a redirect to the IdP.
    assert sent.status_code == 200 and '<meta http-equiv="refresh"' in journey.page
    location = journey.sent_to()
    assert location.startswith("http://localhost/saml/sso/redirect?")
    message = decode_redirect(location.split("?", 1)[1].encode())
    certificate = load_certificate(portal_keys["signing"][1])
    assert message.sig_alg == "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"
    assert verify_redirect_signature(message, [certificate])
    request = etree.fromstring(message.xml)
    assert request.get("Destination") == "http://localhost/saml/sso/redirect"
    assert request.get("AssertionConsumerServiceURL") == DUEREN_ACS
    context = request.find("samlp:RequestedAuthnContext", NS)
    assert context.get("Comparison") == "minimum"
    assert context.findtext("saml:AuthnContextClassRef", namespaces=NS) == "STORK-QAA-Level-1"
    assert request.find("samlp:NameIDPolicy", NS).get("Format").endswith(":persistent")
    extension = request.find("samlp:Extensions/akdb:AuthenticationRequest", NS)
    assert extension.get("Version") == "2"
    wished = {item.get("Name"): item.get("RequiredAttribute")
              for item in extension.iterfind(".//akdb:RequestedAttribute", NS)}
    assert wished["urn:oid:2.5.4.42"] == "true" and wished[
        "urn:oid:1.3.6.1.4.1.33592.1.3.5"] == "false"


def test_declining_consent_shows_that_no_data_was_passed_on(citizen: Journey) -> None:
    citizen.go_to_servicekonto()
    citizen.log_in_at_idp()
    refused = citizen.decide("decline")
    assert refused.status_code == 403
    assert "Sie haben der Weitergabe Ihrer Daten nicht zugestimmt." in citizen.page
    assert "Erneut anmelden" in citizen.page
    assert not_logged_in(citizen)


def test_cancelling_at_the_servicekonto_says_the_login_was_cancelled(citizen: Journey) -> None:
    citizen.go_to_servicekonto()
    refused = citizen.submit(abbrechen_target(citizen.page))
    assert refused.status_code == 403
    assert "Sie haben die Anmeldung beim Servicekonto.NRW abgebrochen." in citizen.page
    assert not_logged_in(citizen)


@pytest.mark.parametrize("portal_options", [{"minimum_trust_level": 3}])
def test_a_portal_asking_for_more_than_a_password_is_offered_only_the_online_ausweisfunktion(
        citizen: Journey) -> None:
    citizen.go_to_servicekonto()
    assert "Anmelden mit der Online-Ausweisfunktion erforderlich" in citizen.page
    assert 'name="password"' not in citizen.page


def _pending_request_id(federation: Federation) -> str:
    with portal_db.bound(federation.portal).sessionmaker() as session:
        return session.scalars(select(OutstandingRequest.request_id)).one()


def _idp_refusal(federation: Federation, status: str, sub_status: str | None,
                 detail: str | None = None, sign: bool = True) -> str:
    """The real IdP's error Response to the portal's open request, base64 as POSTed."""
    runtime = app_parts(federation.idp_app()).saml
    request = ParsedAuthnRequest(
        request_id=_pending_request_id(federation),
        issuer=federation.portal.config["PORTAL"].entity_id,
        issue_instant=datetime.now(UTC), destination=None, acs_url=DUEREN_ACS,
        acs_binding=BINDING_HTTP_POST, force_authn=False, is_passive=False,
        name_id_format=None, allow_create=True)
    xml = runtime.idp.create_error_response(request, status, sub_status, "Grund", sign=sign,
                                            status_detail=detail)
    return base64.b64encode(xml.encode()).decode()


@pytest.mark.parametrize("status, sub_status, detail, shown", [
    (REQUESTER, STATUS + "RequestDenied", None,
     "Sie haben der Weitergabe Ihrer Daten nicht zugestimmt."),
    (REQUESTER, STATUS + "RequestDenied", "IDP_REQUIRED_ATTRIBUTES_MISSING",
     "In Ihrem Servicekonto.NRW fehlen Angaben, die dieses Portal unbedingt benötigt."),
    (RESPONDER, STATUS + "AuthnFailed", None, "Sie haben die Anmeldung beim Servicekonto.NRW "
                                              "abgebrochen."),
    (RESPONDER, STATUS + "NoAuthnContext", None, "höheres Vertrauensniveau"),
    (RESPONDER, STATUS + "NoPassive", None, "eine Anmeldung ohne Ihre Mitwirkung"),
    (REQUESTER, STATUS + "InvalidNameIDPolicy", None, "kann die Kennung, die dieses Portal"),
    (REQUESTER, STATUS + "RequestUnsupported", "INVALID_EXTENSION",
     "kann die Anmeldeanfrage dieses Portals nicht bearbeiten"),
    (RESPONDER, None, None, "Die Anmeldung beim Servicekonto.NRW ist fehlgeschlagen."),
])
def test_every_error_status_of_the_idp_gets_its_own_german_page(
        journey: Journey, federation: Federation, status: str, sub_status: str | None,
        detail: str | None, shown: str) -> None:
    journey.go_to_servicekonto()
    answer = _idp_refusal(federation, status, sub_status, detail)
    refused = journey.open(DUEREN_ACS, {"SAMLResponse": answer})
    assert refused.status_code == 403
    assert shown in journey.page
    assert not_logged_in(journey)
    # The request is answered: the same answer again finds no open login.
    assert journey.open(DUEREN_ACS, {"SAMLResponse": answer}).status_code == 400


def test_the_refusal_explains_in_german_and_keeps_the_saml_status_for_support(
        journey: Journey, federation: Federation) -> None:
    journey.go_to_servicekonto()
    answer = _idp_refusal(federation, REQUESTER, STATUS + "RequestDenied")
    journey.open(DUEREN_ACS, {"SAMLResponse": answer})
    shown, details = journey.page.split("<details", 1)
    assert "Sie haben der Weitergabe Ihrer Daten nicht zugestimmt." in shown
    assert "RequestDenied" not in shown and "Requester" not in shown
    assert "Technische Angaben" in details
    assert "<code>Requester</code> / <code>RequestDenied</code>" in details


def test_an_unsigned_error_status_is_not_believed(journey: Journey,
                                                  federation: Federation) -> None:
    journey.go_to_servicekonto()
    answer = _idp_refusal(federation, REQUESTER, STATUS + "RequestDenied", sign=False)
    assert journey.open(DUEREN_ACS, {"SAMLResponse": answer}).status_code == 400
    assert "nicht signiert" in journey.page


def test_the_portal_metadata_names_its_endpoints_and_both_keys(
        journey: Journey, portal_keys: dict[str, tuple[Path, Path]]) -> None:
    response = journey.open("/saml/metadata")
    assert response.mimetype == "application/samlmetadata+xml"
    root = etree.fromstring(response.data)
    assert root.get("entityID") == "http://127.0.0.1:5001/saml/metadata"
    assert root.find("ds:Signature", NS) is not None
    sp = root.find("md:SPSSODescriptor", NS)
    assert sp.get("AuthnRequestsSigned") == "true" and sp.get("WantAssertionsSigned") == "true"
    acs = sp.find("md:AssertionConsumerService", NS)
    assert acs.get("Location") == DUEREN_ACS and acs.get("Binding").endswith("HTTP-POST")
    slo = {item.get("Binding").rsplit(":", 1)[1]: item.get("Location")
           for item in sp.iterfind("md:SingleLogoutService", NS)}
    assert slo == {"HTTP-Redirect": "http://127.0.0.1:5001/saml/slo/redirect",
                   "HTTP-POST": "http://127.0.0.1:5001/saml/slo/post"}
    uses = {key.get("use") for key in sp.iterfind("md:KeyDescriptor", NS)}
    assert uses == {"signing", "encryption"}


def test_without_the_servicekontos_metadata_the_portal_says_it_is_unreachable(
        tmp_path: Path, portal_database_url: str,
        portal_keys: dict[str, tuple[Path, Path]]) -> None:
    portal = create_portal("dueren", idp_metadata=str(tmp_path / "fehlt.xml"),
                           instance_path=tmp_path / "p", database_url=portal_database_url,
                           key_files=portal_keys["signing"],
                           encryption_key_files=portal_keys["encryption"])
    client = portal.test_client()
    base = "http://127.0.0.1:5001"
    page = client.get("/anmelden", base_url=base).get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert token
    response = client.post("/anmelden", data={"csrf_token": token.group(1)}, base_url=base)
    assert response.status_code == 503
    assert "Das Servicekonto.NRW ist gerade nicht erreichbar." in response.get_data(as_text=True)
    portal_db.bound(portal).engine.dispose()


def test_the_login_button_needs_the_forms_csrf_token(journey: Journey) -> None:
    journey.open("/anmelden")
    refused = journey.open("/anmelden", {})
    assert refused.status_code == 400
    assert "Das Formular ist abgelaufen" in journey.page
