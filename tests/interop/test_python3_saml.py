"""Portals built with python3-saml (OneLogin) log citizens in and out through the IdP.

Two python3-saml portals, in-process, each a Flask app as python3-saml's Flask demo builds it,
federated with the IdP by metadata: "strict" with the settings of docs/examples/python3-saml
(signed requests and logout messages, signed answers demanded, SHA-256, the IdP's part read
from /saml/metadata by OneLogin_Saml2_IdPMetadataParser), and python3-saml's defaults (no key,
nothing signed; registered with ``want_authn_requests_signed: false``). A browser
(tests/interop/web.py) carries the citizen between the sites.
"""

from __future__ import annotations

import base64
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from flask import Flask
from onelogin.saml2.idp_metadata_parser import OneLogin_Saml2_IdPMetadataParser

from idp.testing.browser import Hop, InProcessSites, Page, WebBrowser
from tests.conftest import (
    BASE_URL,
    GOOD_PASSWORD,
    REGISTRATION,
    Browser,
    activate,
    app_with,
    register,
)
from tests.interop.python3_saml_support import (
    PERSISTENT,
    POST,
    REDIRECT,
    TRANSIENT,
    Portal,
    PortalSpec,
    example,
    own_settings,
    register_portal,
    sso_post_url,
    with_idp,
)
from tests.saml_support import key_pair

EINS = PortalSpec("musterstadt", "Bürgerportal Musterstadt",
                  "https://buergerportal.musterstadt.example", PERSISTENT,
                  ("givenName", "surname", "mail"))
ZWEI = PortalSpec("beispielstadt", "Rathaus Beispielstadt", "https://rathaus.beispielstadt.test",
                  TRANSIENT, ("givenName", "surname", "birthName"))
SPECS = (EINS, ZWEI)
EXPECTED_ATTRIBUTES = {
    "musterstadt": {"givenName": ["Erika"], "surname": ["Mustermann"],
                    "mail": ["erika.mustermann@example.org"]},
    "beispielstadt": {"givenName": ["Erika"], "surname": ["Mustermann"],
                      "birthName": ["Gabler"]},
}
RSA_SHA256 = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"
IDP_LOGIN_PATH = "/anmelden"


@pytest.fixture(scope="session")
def python3_saml_keys(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, Path]]:
    """A key and certificate per portal, made at run time (never committed)."""
    folder = tmp_path_factory.mktemp("python3-saml")
    return {spec.short_name: key_pair(folder, spec.short_name) for spec in SPECS}


@dataclass
class Federation:
    idp: Flask
    eins: Portal
    zwei: Portal
    browser: WebBrowser


@pytest.fixture
def kind() -> str:
    """How the portals' python3-saml is set up (tests/interop/python3_saml_support.py, KINDS)."""
    return "strict"


@pytest.fixture
def federation(kind: str, settings: dict[str, Any], policy_dir: Path,
               python3_saml_keys: dict[str, tuple[Path, Path]]) -> Iterator[Federation]:
    """The IdP with both portals registered, Erika's account activated (not logged in)."""
    own = {}
    for spec in SPECS:
        key, cert = python3_saml_keys[spec.short_name]
        own[spec.short_name] = own_settings(kind, spec, cert, key)
        register_portal(policy_dir, spec, own[spec.short_name], signs_requests=kind == "strict")
    with app_with(settings) as idp:
        metadata = idp.test_client().get("/saml/metadata").get_data(as_text=True)
        eins, zwei = (Portal(spec, kind, with_idp(kind, own[spec.short_name], metadata),
                             sso_post_url(metadata)) for spec in SPECS)
        browser = WebBrowser(InProcessSites({BASE_URL: idp, eins.spec.origin: eins.app,
                                             zwei.spec.origin: zwei.app}).send)
        account = Browser(idp.test_client())
        register(account)
        activate(account, idp)
        yield Federation(idp, eins, zwei, browser)


# --- the citizen's steps ----------------------------------------------------------------

def start_login(browser: WebBrowser, portal: Portal, binding: str = REDIRECT) -> Page:
    """"Anmelden mit Servicekonto" at the portal: where the browser stops."""
    return browser.open(portal.url("/anmelden?binding=" + ("post" if binding == POST
                                                             else "redirect")))


def is_login_page(page: Page) -> bool:
    return page.url.startswith(BASE_URL + IDP_LOGIN_PATH) and \
        any("password" in form.fields for form in page.forms)


def is_consent_page(page: Page) -> bool:
    return page.url.startswith(BASE_URL) and "Zustimmung zur Weitergabe" in page.text


def enter_password(browser: WebBrowser, page: Page) -> Page:
    assert is_login_page(page), page.text[:2000]
    return browser.submit(page, page.form(with_field="password"),
                          username=REGISTRATION["username"], password=GOOD_PASSWORD)


def agree(browser: WebBrowser, page: Page) -> Page:
    assert is_consent_page(page), page.text[:2000]
    return browser.submit(page, page.form(with_field="transaction"),
                          button=("decision", "agree"))


def log_in_at(browser: WebBrowser, portal: Portal, binding: str = REDIRECT) -> Page:
    """The whole first login: password, consent, back at the portal."""
    return agree(browser, enter_password(browser, start_login(browser, portal, binding)))


def logged_in_at(browser: WebBrowser, portal: Portal) -> bool:
    return browser.open(portal.url("/konto")).status == 200


def logged_in_at_idp(browser: WebBrowser) -> bool:
    return browser.open(BASE_URL + "/konto").url.startswith(BASE_URL + "/konto")


def idp_hops(hops: list[Hop], path: str) -> list[Hop]:
    return [hop for hop in hops if hop.origin == BASE_URL and hop.path == path]


def sent_authn_request(hops: list[Hop], binding: str) -> tuple[str, dict[str, list[str]]]:
    """The AuthnRequest the portal sent (XML) and the Redirect query's parameters."""
    if binding == REDIRECT:
        (hop,) = idp_hops(hops, "/saml/sso/redirect")
        query = parse_qs(urlsplit(hop.url).query)
        xml = zlib.decompress(base64.b64decode(query["SAMLRequest"][0]), -15).decode()
        return xml, query
    first = idp_hops(hops, "/saml/sso/post")[0]
    assert first.fields is not None
    return base64.b64decode(first.fields["SAMLRequest"]).decode(), {}


def assert_received(portal: Portal, page: Page) -> None:
    """python3-saml took the answer without complaint, with what the portal may have."""
    login = portal.logins[-1]
    assert login.errors == [] and login.reason is None, (login.errors, login.reason)
    assert login.authenticated
    assert login.friendly_attributes == EXPECTED_ATTRIBUTES[portal.spec.short_name]
    assert all(name.startswith("urn:oid:") for name in login.attributes)  # BundID names
    assert login.name_id and login.name_id_format == portal.spec.name_id_format
    assert login.session_index and len(login.session_index.lstrip("_")) >= 32
    assert login.request_id is not None and login.in_response_to == login.request_id
    assert login.relay_state == portal.url("/konto")
    assert page.url == portal.url("/konto") and page.status == 200
    assert "angemeldet als Erika" in page.text


# --- single sign-on ---------------------------------------------------------------------

@pytest.mark.parametrize("binding", [REDIRECT, POST], ids=["redirect", "post"])
@pytest.mark.parametrize("which", ["eins", "zwei"])
@pytest.mark.parametrize("kind", ["strict", "unsigned"])
def test_a_python3_saml_portal_gets_the_citizen_with_name_id_session_index_and_attributes(
        federation: Federation, kind: str, which: str, binding: str) -> None:
    portal: Portal = getattr(federation, which)
    browser = federation.browser
    page = start_login(browser, portal, binding)
    assert is_login_page(page)
    page = agree(browser, enter_password(browser, page))
    assert_received(portal, page)

    xml, query = sent_authn_request(browser.history, binding)
    if kind == "strict":
        # Signed as the registration demands: on the query (Redirect) or in the XML (POST).
        if binding == REDIRECT:
            assert query["SigAlg"] == [RSA_SHA256] and query["Signature"]
        else:
            assert "<ds:Signature" in xml and RSA_SHA256 in xml
        assert portal.logins[-1].authn_contexts == ["STORK-QAA-Level-1"]
    else:
        assert "Signature" not in query and "Signature" not in xml


def test_the_citizen_is_not_asked_for_the_password_again_at_the_second_portal(
        federation: Federation) -> None:
    browser = federation.browser
    log_in_at(browser, federation.eins)
    start = len(browser.history)

    page = start_login(browser, federation.zwei)
    assert not is_login_page(page)
    # A portal she has not agreed to yet: asked once, then she is in.
    page = agree(browser, page)
    assert_received(federation.zwei, page)
    assert idp_hops(browser.hops_since(start), IDP_LOGIN_PATH) == []
    # Two portals, two identities that cannot be linked by what they were given.
    eins, zwei = federation.eins.logins[-1], federation.zwei.logins[-1]
    assert eins.name_id != zwei.name_id and eins.session_index != zwei.session_index

    again = start_login(browser, federation.zwei)  # agreed: nothing at all to answer
    assert again.url == federation.zwei.url("/konto")
    assert federation.zwei.logins[-1].errors == []


# --- single logout ----------------------------------------------------------------------

def log_out_everywhere_from_eins(federation: Federation) -> list[Hop]:
    """Erika, logged in at both portals, presses "Abmelden" at the first; the hops of it."""
    browser = federation.browser
    log_in_at(browser, federation.eins)
    agree(browser, start_login(browser, federation.zwei))
    assert logged_in_at(browser, federation.eins) and logged_in_at(browser, federation.zwei)
    start = len(browser.history)
    page = browser.open(federation.eins.url("/abmelden"))
    assert page.url == federation.eins.url("/abgemeldet"), page.text[:2000]
    return browser.hops_since(start)


def test_logout_at_one_python3_saml_portal_logs_the_citizen_out_at_the_other_and_the_idp(
        federation: Federation) -> None:
    hops = log_out_everywhere_from_eins(federation)
    eins, zwei, browser = federation.eins, federation.zwei, federation.browser

    # The IdP's LogoutRequest reached the second portal, which took it (signature, NameID,
    # Destination, Issuer) and answered; the first took the IdP's LogoutResponse.
    assert [(out.kind, out.errors, out.reason) for out in zwei.logouts] == \
        [("LogoutRequest", [], None)]
    assert [(out.kind, out.errors, out.reason) for out in eins.logouts] == \
        [("LogoutResponse", [], None)]
    name_id, session_index = zwei.logins[-1].name_id, zwei.logins[-1].session_index
    assert name_id and session_index
    assert f">{name_id}</" in zwei.logouts[0].message_xml
    assert f">{session_index}</" in zwei.logouts[0].message_xml
    assert "urn:oasis:names:tc:SAML:2.0:status:Success" in eins.logouts[0].message_xml
    assert [hop.origin for hop in hops if hop.path == "/saml/sls"] == \
        [zwei.spec.origin, eins.spec.origin]

    assert not logged_in_at(browser, eins)
    assert not logged_in_at(browser, zwei)
    assert not logged_in_at_idp(browser)


def test_after_logout_the_next_login_asks_for_the_password_again(
        federation: Federation) -> None:
    log_out_everywhere_from_eins(federation)
    browser = federation.browser

    page = start_login(browser, federation.zwei)
    assert is_login_page(page)
    page = enter_password(browser, page)  # agreed before: straight back to the portal
    assert_received(federation.zwei, page)


def test_each_step_of_a_logout_started_by_a_link_is_an_http_redirect(
        federation: Federation) -> None:
    """Contract: single logout over HTTP-Redirect answers each hop with 302/303, no pages."""
    hops = log_out_everywhere_from_eins(federation)
    answered_by_idp = [hop for hop in hops if hop.origin == BASE_URL]
    assert len(answered_by_idp) == 2  # the first portal's request, the second's response
    assert [(hop.path, hop.then) for hop in answered_by_idp] == \
        [("/saml/slo/redirect", "redirect")] * 2, answered_by_idp
    assert all(hop.status in (302, 303) for hop in answered_by_idp), answered_by_idp


# --- metadata and settings --------------------------------------------------------------

def test_python3_saml_reads_from_our_metadata_that_requests_must_be_signed(
        federation: Federation) -> None:
    metadata = federation.idp.test_client().get("/saml/metadata").get_data(as_text=True)
    parsed = OneLogin_Saml2_IdPMetadataParser.parse(metadata)
    assert parsed["security"] == {"authnRequestsSigned": True}
    assert parsed["idp"]["entityId"] == BASE_URL + "/saml/metadata"
    assert parsed["idp"]["singleSignOnService"]["url"] == BASE_URL + "/saml/sso/redirect"
    assert parsed["idp"]["singleLogoutService"]["url"] == BASE_URL + "/saml/slo/redirect"

    # The documented snippet signs whatever the portal's file said, and keeps its NameIDFormat
    # (the parser would propose our first one, transient).
    own = {"sp": {"NameIDFormat": PERSISTENT}, "security": {"authnRequestsSigned": False}}
    merged = example.with_servicekonto(own, metadata)
    assert merged["security"]["authnRequestsSigned"] is True
    assert merged["sp"]["NameIDFormat"] == PERSISTENT
    assert federation.eins.settings["security"]["authnRequestsSigned"] is True


@pytest.mark.parametrize("kind", ["defaults"])
def test_a_python3_saml_portal_with_all_its_defaults_gets_the_citizen(
        federation: Federation) -> None:
    """python3-saml's defaults, ``requestedAuthnContext`` too: its AuthnRequest asks for
    PasswordProtectedTransport (Comparison="exact"), which a password login over https is, and
    the answer names exactly that context (SAML core §3.3.2.2.1)."""
    portal = federation.eins
    page = start_login(federation.browser, portal)
    page = agree(federation.browser, enter_password(federation.browser, page))
    assert_received(portal, page)
    assert portal.logins[-1].authn_contexts == [
        "urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport"]
