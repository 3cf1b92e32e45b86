"""Single logout at the demo portals: "Abmelden" at the portal, and the IdP's LogoutRequest
during its front-channel chain (answered with a signed LogoutResponse)."""

from __future__ import annotations

import base64
import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from lxml import etree  # type: ignore[import-untyped]  # no stubs installed
from saml2 import BINDING_HTTP_POST, BINDING_HTTP_REDIRECT
from saml2.saml import NAMEID_FORMAT_PERSISTENT, NameID
from saml2.samlp import logout_request_from_string
from sqlalchemy import select

from idp.container import app_parts
from idp.samlkit.bindings import decode_post, decode_redirect, verify_redirect_signature
from idp.samlkit.keys import load_certificate
from sp_client.extensions import portal_db
from sp_client.models import BrowserSession
from tests.sp_client.conftest import Journey

SIG_ALG = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"
DIGEST_ALG = "http://www.w3.org/2001/04/xmlenc#sha256"
SAMLP = "urn:oasis:names:tc:SAML:2.0:protocol"
SAML = "urn:oasis:names:tc:SAML:2.0:assertion"
NS = {"samlp": SAMLP, "saml": SAML, "ds": "http://www.w3.org/2000/09/xmldsig#"}
SUCCESS = "urn:oasis:names:tc:SAML:2.0:status:Success"


def idp_server(journey: Journey) -> Any:
    """The IdP's own pysaml2 Server (with its key and the portal's metadata)."""
    return app_parts(journey.federation.idp_app()).saml.idp.server


def portal_login(journey: Journey) -> tuple[str, str | None]:
    """(NameID, SessionIndex) of the citizen's session at the portal."""
    with portal_db.bound(journey.federation.portal).sessionmaker() as session:
        record = session.scalars(select(BrowserSession).where(
            BrowserSession.name_id.is_not(None))).one()
        return str(record.name_id), record.session_index


def portal_url(journey: Journey, path: str) -> str:
    return journey.federation.portal_url + path


def is_logged_in(journey: Journey) -> bool:
    journey.open(portal_url(journey, "/uebersicht"))
    return "Sie sind angemeldet" in journey.page


def portal_certificate(portal_keys: dict[str, tuple[Path, Path]]) -> Any:
    return load_certificate(portal_keys["signing"][1])


# --- "Abmelden" at the portal -----------------------------------------------------------------

def test_abmelden_ends_the_session_and_sends_a_signed_logout_request(
        logged_in: Journey, portal_keys: dict[str, tuple[Path, Path]]) -> None:
    name_id, session_index = portal_login(logged_in)
    logged_in.submit(portal_url(logged_in, "/abmelden"), follow=False)
    location = logged_in.sent_to()
    assert location.startswith("http://localhost/saml/slo/redirect?")
    message = decode_redirect(location.split("?", 1)[1].encode())
    assert message.sig_alg == SIG_ALG
    assert verify_redirect_signature(message, [portal_certificate(portal_keys)])
    request = etree.fromstring(message.xml)
    assert request.tag == f"{{{SAMLP}}}LogoutRequest"
    assert request.findtext("saml:NameID", namespaces=NS) == name_id
    assert request.findtext("samlp:SessionIndex", namespaces=NS) == session_index
    # The portal session ended at once, whatever the IdP does next.
    assert not is_logged_in(logged_in)


def test_abmelden_goes_through_the_servicekonto_and_back(logged_in: Journey) -> None:
    logged_in.submit(portal_url(logged_in, "/abmelden"))
    assert logged_in.url.startswith(portal_url(logged_in, "/saml/slo/")), logged_in.url
    assert "Sie haben sich beim Bürgerportal der Stadt Düren und beim Servicekonto.NRW " \
           "abgemeldet." in logged_in.page
    assert not is_logged_in(logged_in)
    # Logged out at the IdP too: the next login asks for the password again.
    logged_in.go_to_servicekonto()
    assert "Anmelden mit Benutzername und Passwort" in logged_in.page


def _idp_answer(journey: Journey, request_xml: bytes, sign: bool = True,
                status_ok: bool = True) -> str:
    """The IdP's LogoutResponse to our LogoutRequest, as a Redirect URL to the portal."""
    from saml2.samlp import STATUS_PARTIAL_LOGOUT, Status, StatusCode

    server = idp_server(journey)
    request = logout_request_from_string(request_xml.decode())
    status = None if status_ok else Status(status_code=StatusCode(
        value="urn:oasis:names:tc:SAML:2.0:status:Responder",
        status_code=StatusCode(value=STATUS_PARTIAL_LOGOUT)))
    response = server.create_logout_response(request, [BINDING_HTTP_REDIRECT], status=status,
                                             sign=False)
    destination = portal_url(journey, "/saml/slo/redirect")
    info = server.apply_binding(BINDING_HTTP_REDIRECT, str(response), destination, "",
                                response=True, sign=sign, sigalg=SIG_ALG)
    return str(dict(info["headers"])["Location"])


def _our_logout_request(journey: Journey) -> bytes:
    journey.submit(portal_url(journey, "/abmelden"), follow=False)
    return decode_redirect(journey.sent_to().split("?", 1)[1].encode()).xml


def test_a_partial_logout_says_the_servicekonto_may_still_be_logged_in(
        logged_in: Journey) -> None:
    answer = _idp_answer(logged_in, _our_logout_request(logged_in), status_ok=False)
    assert logged_in.open(answer).status_code == 200
    assert "Sie sind bei diesem Portal abgemeldet" in logged_in.page
    assert "bitte schließen Sie Ihren Browser" in logged_in.page


def test_a_logout_response_is_taken_only_once(logged_in: Journey) -> None:
    answer = _idp_answer(logged_in, _our_logout_request(logged_in))
    logged_in.open(answer)
    assert "Sie sind abgemeldet" in logged_in.page
    assert logged_in.open(answer).status_code == 400
    assert "Die Abmeldenachricht konnte nicht geprüft werden." in logged_in.page


def test_an_unsigned_logout_response_is_refused(logged_in: Journey) -> None:
    answer = _idp_answer(logged_in, _our_logout_request(logged_in), sign=False)
    assert logged_in.open(answer).status_code == 400


def test_a_logout_response_to_a_request_never_sent_is_refused(logged_in: Journey) -> None:
    request = _our_logout_request(logged_in).replace(b'ID="', b'ID="x', 1)
    assert logged_in.open(_idp_answer(logged_in, request)).status_code == 400


# --- the IdP's LogoutRequest ----------------------------------------------------------------

def _idp_logout_request(journey: Journey, binding: str, sign: bool = True,
                        name_id: str | None = None) -> tuple[str, dict[str, str] | None, str]:
    """The IdP's LogoutRequest for the citizen's portal session: (URL, POST form, its ID)."""
    server = idp_server(journey)
    known, session_index = portal_login(journey)
    path = "/saml/slo/redirect" if binding == BINDING_HTTP_REDIRECT else "/saml/slo/post"
    destination = portal_url(journey, path)
    request_id, request = server.create_logout_request(
        destination, journey.federation.portal.config["PORTAL"].entity_id,
        name_id=NameID(text=name_id or known, format=NAMEID_FORMAT_PERSISTENT),
        session_indexes=[session_index] if session_index else None,
        sign=sign and binding == BINDING_HTTP_POST, sign_alg=SIG_ALG, digest_alg=DIGEST_ALG)
    if binding == BINDING_HTTP_REDIRECT:
        info = server.apply_binding(binding, str(request), destination, "kette-42",
                                    sign=sign, sigalg=SIG_ALG)
        return str(dict(info["headers"])["Location"]), None, request_id
    form = {"SAMLRequest": base64.b64encode(str(request).encode()).decode(),
            "RelayState": "kette-42"}
    return destination, form, request_id


def _logout_response_xml(answer: Any, page: str,
                         portal_keys: dict[str, tuple[Path, Path]]) -> etree._Element:
    """Our LogoutResponse to the IdP, its signature checked with the portal's certificate."""
    if answer.status_code == 303:
        assert answer.location.startswith("http://localhost/saml/slo/redirect?")
        message = decode_redirect(answer.location.split("?", 1)[1].encode(), "SAMLResponse")
        assert verify_redirect_signature(message, [portal_certificate(portal_keys)])
    else:
        assert 'action="http://localhost/saml/slo/post"' in page
        fields = dict(re.findall(r'name="(SAMLResponse|RelayState)" value="([^"]*)"', page))
        message = decode_post({k: [v] for k, v in fields.items()}, "SAMLResponse")
        assert b"Signature" in message.xml
    assert message.relay_state == "kette-42"  # the IdP's chain goes on with it
    return etree.fromstring(message.xml)


@pytest.mark.parametrize("portal_profile, binding", [("dueren", BINDING_HTTP_REDIRECT),
                                                     ("mags", BINDING_HTTP_POST)])
def test_the_idps_logout_request_ends_the_session_and_gets_a_signed_answer(
        logged_in: Journey, portal_keys: dict[str, tuple[Path, Path]], binding: str) -> None:
    url, form, request_id = _idp_logout_request(logged_in, binding)
    # The IdP's front channel may arrive without the portal's cookie (a cross-site POST).
    logged_in.new_portal_browser()
    answer = logged_in.open(url, form, follow=False)
    response = _logout_response_xml(answer, logged_in.page, portal_keys)
    assert response.get("InResponseTo") == request_id
    assert response.find("samlp:Status/samlp:StatusCode", NS).get("Value") == SUCCESS
    assert urlsplit(response.get("Destination")).path.startswith("/saml/slo/")
    logged_in.portal = logged_in.federation.portal.test_client()
    assert not is_logged_in(logged_in)


def test_an_unsigned_logout_request_ends_nothing(logged_in: Journey) -> None:
    url, _, _ = _idp_logout_request(logged_in, BINDING_HTTP_REDIRECT, sign=False)
    assert logged_in.open(url, follow=False).status_code == 400
    assert "Die Abmeldenachricht konnte nicht geprüft werden." in logged_in.page
    assert is_logged_in(logged_in)


def test_a_logout_request_with_a_broken_signature_ends_nothing(logged_in: Journey) -> None:
    url, _, _ = _idp_logout_request(logged_in, BINDING_HTTP_REDIRECT)
    forged = url.replace("RelayState=kette-42", "RelayState=kette-43")
    assert logged_in.open(forged, follow=False).status_code == 400
    assert is_logged_in(logged_in)


def test_a_logout_request_for_someone_else_leaves_the_session_alone(
        logged_in: Journey, portal_keys: dict[str, tuple[Path, Path]]) -> None:
    url, _, _ = _idp_logout_request(logged_in, BINDING_HTTP_REDIRECT, name_id="jemand-anderes")
    answer = logged_in.open(url, follow=False)
    assert answer.status_code == 303
    _logout_response_xml(answer, logged_in.page, portal_keys)
    assert is_logged_in(logged_in)


# --- the IdP's chain through both demo portals ----------------------------------------------

@pytest.mark.parametrize("other_portals", [["mags"]])
def test_abmelden_at_dueren_logs_the_citizen_out_at_mags_too(citizen: Journey) -> None:
    mags = "http://127.0.0.1:5002"
    citizen.log_in()
    citizen.open(mags + "/anmelden")
    citizen.submit(mags + "/anmelden")  # single sign-on: no password, only mags' consent
    citizen.decide("agree")
    assert citizen.url == mags + "/uebersicht" and "Sie sind angemeldet" in citizen.page
    citizen.open(portal_url(citizen, "/uebersicht"))
    citizen.submit(portal_url(citizen, "/abmelden"))
    assert "Sie haben sich beim Bürgerportal der Stadt Düren und beim Servicekonto.NRW " \
           "abgemeldet." in citizen.page
    citizen.open(mags + "/uebersicht")
    assert citizen.url == mags + "/anmelden"
