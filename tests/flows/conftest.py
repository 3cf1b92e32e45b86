"""A real pysaml2 SP federated with the IdP in-process: fresh keys, metadata exchanged."""

from __future__ import annotations

import base64
import html
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest
import yaml
from flask import Flask
from saml2 import BINDING_HTTP_POST, BINDING_HTTP_REDIRECT
from saml2.client import Saml2Client

from idp import create_app
from idp.db import db
from idp.saml.configuration import SLO_POST_PATH, SLO_REDIRECT_PATH
from idp.samlkit.crypto import install_backend
from tests.conftest import BASE_URL, Browser
from tests.saml_support import key_pair, metadata_of, sp_config

SP_ENTITY = "https://portal.example.org/saml/metadata"
SP_ACS = "https://portal.example.org/saml/acs"
IDP_ENTITY = f"{BASE_URL}/saml/metadata"
FORM_FIELD = re.compile(r'name="(SAMLResponse|RelayState)" value="([^"]*)"')
FORM_ACTION = re.compile(r'<form id="saml-weiter" method="post" action="([^"]+)"')
HIDDEN_FIELD = re.compile(r'<input type="hidden" name="(\w+)" value="([^"]*)">')
REFRESH = re.compile(r'<meta http-equiv="refresh" content="0; url=([^"]+)">')
SIGN_SHA256 = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"
DIGEST_SHA256 = "http://www.w3.org/2001/04/xmlenc#sha256"
IDP_SLO = {BINDING_HTTP_REDIRECT: BASE_URL + SLO_REDIRECT_PATH,
           BINDING_HTTP_POST: BASE_URL + SLO_POST_PATH}


def to_idp(binding: str, info: dict[str, Any]) -> tuple[str, dict[str, str] | None]:
    """Where a pysaml2 SP sends the browser: (IdP path with query, POST form or None)."""
    if binding == BINDING_HTTP_REDIRECT:
        parts = urlsplit(dict(info["headers"])["Location"])
        return f"{parts.path}?{parts.query}", None
    fields = dict(re.findall(r'name="(\w+)" value="([^"]*)"', info["data"]))
    return urlsplit(info["url"]).path, {k: html.unescape(v) for k, v in fields.items()}


@dataclass(frozen=True)
class Hop:
    """A SAML message a page of the IdP sends on to a portal through the browser."""

    binding: str
    # HTTP-Redirect: the whole address with its query; HTTP-POST: the form's action.
    url: str
    # The decoded query parameters or the form's hidden fields.
    params: dict[str, str]

    @property
    def endpoint(self) -> str:
        parts = urlsplit(self.url)
        return f"{parts.scheme}://{parts.netloc}{parts.path}"


def hop_from(response: Any) -> Hop:
    """Where the IdP's answer sends the browser on: an HTTP redirect (HTTP-Redirect reached by a
    GET) or a page (see :func:`hop_on`)."""
    if response.status_code in (302, 303):
        url = response.location
        return Hop(BINDING_HTTP_REDIRECT, url, dict(parse_qsl(urlsplit(url).query)))
    page = response.get_data(as_text=True)
    assert response.status_code == 200, page
    return hop_on(page)


def hop_on(page: str) -> Hop:
    """What a logout page of the IdP sends on: a meta refresh (Redirect) or an auto-POST form."""
    if match := REFRESH.search(page):
        url = html.unescape(match.group(1))
        return Hop(BINDING_HTTP_REDIRECT, url, dict(parse_qsl(urlsplit(url).query)))
    match = FORM_ACTION.search(page)
    assert match, page
    return Hop(BINDING_HTTP_POST, html.unescape(match.group(1)),
               {name: html.unescape(value) for name, value in HIDDEN_FIELD.findall(page)})


@dataclass
class Portal:
    """The test portal: a pysaml2 SP and the requests it has sent (ID → RelayState)."""

    client: Saml2Client
    outstanding: dict[str, str] = field(default_factory=dict)
    acs_url: str = SP_ACS
    # The NameID and the SessionIndex of the citizen this portal received last.
    name_id: Any = None
    session_index: str | None = None

    def login_url(self, binding: str = BINDING_HTTP_REDIRECT, relay_state: str = "/start",
                  **kwargs: Any) -> tuple[str, dict[str, str] | None]:
        """Start SSO: (IdP path with query, POST form or None); signed unless ``sign=False``
        (on the query for Redirect, embedded for POST), as portals must by default."""
        kwargs = {"sign": True, "sigalg": SIGN_SHA256, "digest_alg": DIGEST_SHA256} | kwargs
        request_id, info = self.client.prepare_for_authenticate(
            entityid=IDP_ENTITY, binding=binding, relay_state=relay_state, **kwargs)
        self.outstanding[request_id] = relay_state
        return to_idp(binding, info)

    def receive(self, page: str) -> Any:
        """Take the auto-POST form the IdP rendered, as the portal's ACS would."""
        fields = {k: html.unescape(v) for k, v in FORM_FIELD.findall(page)}
        match = FORM_ACTION.search(page)
        assert match and html.unescape(match.group(1)) == self.acs_url, page
        response = self.client.parse_authn_request_response(
            fields["SAMLResponse"], BINDING_HTTP_POST, outstanding=self.outstanding)
        response.relay_state = fields.get("RelayState")
        self.name_id = response.name_id
        self.session_index = response.assertion.authn_statement[0].session_index
        return response

    def logout_url(self, binding: str = BINDING_HTTP_REDIRECT, sign: bool = True,
                   sigalg: str = SIGN_SHA256) -> tuple[str, dict[str, str] | None]:
        """Start single logout of the citizen received last, as pysaml2's SP does (signed:
        on the query for Redirect, embedded for POST): (IdP path with query, POST form or
        None)."""
        responses = self.client.do_logout(
            self.name_id, [IDP_ENTITY], reason="", expire=None, sign=sign,
            expected_binding=binding, sign_alg=sigalg, digest_alg=DIGEST_SHA256)
        return to_idp(*responses[IDP_ENTITY])

    def logout_request(self, hop: Hop) -> Any:
        """The IdP's LogoutRequest, taken as the portal's SingleLogoutService would (pysaml2
        verifies an embedded signature with the IdP's key from metadata)."""
        return self.client.parse_logout_request(
            hop.params["SAMLRequest"], hop.binding, relay_state=hop.params.get("RelayState"),
            sigalg=hop.params.get("SigAlg"), signature=hop.params.get("Signature"))

    def answer_logout(self, hop: Hop, status: Any = None) -> tuple[str, dict[str, str] | None]:
        """Answer the IdP's LogoutRequest over the binding it came with, signed (Success
        unless ``status``): (IdP path with query, POST form or None)."""
        request = self.logout_request(hop)
        response = self.client.create_logout_response(
            request.message, [hop.binding], status=status, sign=hop.binding == BINDING_HTTP_POST,
            sign_alg=SIGN_SHA256, digest_alg=DIGEST_SHA256)
        return self.send_logout_response(str(response), hop)

    def send_logout_response(self, xml: str, hop: Hop) -> tuple[str, dict[str, str] | None]:
        """Send a LogoutResponse to the IdP over ``hop``'s binding with its RelayState (the
        Redirect query signed with the portal's key)."""
        info = self.client.apply_binding(
            hop.binding, xml, IDP_SLO[hop.binding], hop.params.get("RelayState", ""),
            response=True, sign=hop.binding == BINDING_HTTP_REDIRECT, sigalg=SIGN_SHA256)
        return to_idp(hop.binding, info)


def portal_policy(policy_dir: Path, metadata: Path, name: str = "musterstadt",
                  **changes: Any) -> None:
    policy = {"display_name": "Bürgerportal Musterstadt", "entity_id": SP_ENTITY,
              "metadata": str(metadata),
              "attributes": ["gender", "givenName", "surname", "birthName", "mail", "bPK2",
                             "EID-CITIZEN-QAA-LEVEL", "AssertionProvedBy"],
              "name_id_format": "persistent"} | changes
    (policy_dir / "portals" / f"{name}.yaml").write_text(
        yaml.safe_dump(policy, allow_unicode=True), encoding="utf-8")


@pytest.fixture
def portal_keys(tmp_path: Path) -> tuple[Path, Path]:
    return key_pair(tmp_path / "sp", "sp")


@pytest.fixture
def portal_changes() -> dict[str, Any]:
    """Policy settings a test module may override."""
    return {}


@pytest.fixture
def sso_app(settings: dict[str, Any], policy_dir: Path, tmp_path: Path,
            portal_keys: tuple[Path, Path], portal_changes: dict[str, Any]) -> Iterator[Flask]:
    metadata = tmp_path / "sp-metadata.xml"
    metadata.write_text(metadata_of(sp_config(SP_ENTITY, SP_ACS, *portal_keys)),
                        encoding="utf-8")
    portal_policy(policy_dir, metadata, **portal_changes)
    application = create_app(test_config=settings, env={})
    application.config["TESTING"] = True
    yield application
    db.bound(application).engine.dispose()


def connect_portal(app: Flask, entity_id: str, acs_url: str, keys: tuple[Path, Path],
                   **options: Any) -> Portal:
    """A pysaml2 SP that knows the IdP's metadata (``options`` go to ``sp_config``)."""
    idp_metadata = app.test_client().get("/saml/metadata").get_data(as_text=True)
    client = Saml2Client(config=sp_config(entity_id, acs_url, *keys, idp_metadata, **options))
    install_backend(client)
    return Portal(client, acs_url=acs_url)


@pytest.fixture
def portal(sso_app: Flask, portal_keys: tuple[Path, Path]) -> Portal:
    return connect_portal(sso_app, SP_ENTITY, SP_ACS, portal_keys)


@pytest.fixture
def visitor(sso_app: Flask) -> Browser:
    return Browser(sso_app.test_client())


def b64(xml: str) -> str:
    return base64.b64encode(xml.encode()).decode()


def field_value(page: str, name: str) -> str:
    """The value of a hidden form field on a page."""
    match = re.search(rf'name="{name}" value="([^"]*)"', page)
    assert match, f"no field {name} on the page"
    return html.unescape(match.group(1))


def logged_in(app: Flask, visitor: Browser, username: str = "ErikaM",
              email: str = "erika.mustermann@example.org") -> Browser:
    """The visitor registers, activates and logs in."""
    from tests.conftest import activate, log_in, register

    register(visitor, username=username, email=email)
    activate(visitor, app, recipient=email)
    log_in(visitor, username=username)
    return visitor


def consent_page(visitor: Browser, portal: Portal, binding: str = BINDING_HTTP_REDIRECT) -> str:
    """A logged-in visitor starts SSO at the portal and lands on the consent page."""
    path, form = portal.login_url(binding)
    response = visitor.client.get(path) if form is None else visitor.client.post(path, data=form)
    visitor.last_html = response.get_data(as_text=True)
    assert "Zustimmung zur Weitergabe an ein Fachverfahren" in visitor.last_html
    return visitor.last_html


def decide(visitor: Browser, decision: str = "agree") -> Any:
    """ZUSTIMMEN or ABLEHNEN on the consent page last seen."""
    return visitor.submit("/saml/zustimmung", {
        "transaction": field_value(visitor.last_html, "transaction"), "decision": decision})


def answer_to(visitor: Browser, portal: Portal, **request: Any) -> str:
    """The page the IdP answers a logged-in visitor's request with (agreeing if asked)."""
    path, _ = portal.login_url(**request)
    page = visitor.client.get(path).get_data(as_text=True)
    if "Zustimmung zur Weitergabe" in page:
        visitor.last_html = page
        page = decide(visitor).get_data(as_text=True)
    return str(page)
