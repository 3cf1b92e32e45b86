"""A real pysaml2 SP federated with the IdP in-process: fresh keys, metadata exchanged."""

from __future__ import annotations

import base64
import html
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml
from flask import Flask
from saml2 import BINDING_HTTP_POST, BINDING_HTTP_REDIRECT
from saml2.client import Saml2Client

from idp import create_app
from idp.db import db
from idp.saml.crypto import install_backend
from tests.conftest import BASE_URL, Browser
from tests.saml_support import key_pair, metadata_of, sp_config

SP_ENTITY = "https://portal.example.org/saml/metadata"
SP_ACS = "https://portal.example.org/saml/acs"
IDP_ENTITY = f"{BASE_URL}/saml/metadata"
FORM_FIELD = re.compile(r'name="(SAMLResponse|RelayState)" value="([^"]*)"')
FORM_ACTION = re.compile(r'<form id="saml-weiter" method="post" action="([^"]+)"')


@dataclass
class Portal:
    """The test portal: a pysaml2 SP and the requests it has sent (ID → RelayState)."""

    client: Saml2Client
    outstanding: dict[str, str] = field(default_factory=dict)

    def login_url(self, binding: str = BINDING_HTTP_REDIRECT, relay_state: str = "/start",
                  **kwargs: Any) -> tuple[str, dict[str, str] | None]:
        """Start SSO: (IdP path with query, POST form or None)."""
        request_id, info = self.client.prepare_for_authenticate(
            entityid=IDP_ENTITY, binding=binding, relay_state=relay_state, **kwargs)
        self.outstanding[request_id] = relay_state
        if binding == BINDING_HTTP_REDIRECT:
            location = dict(info["headers"])["Location"]
            parts = urlsplit(location)
            return f"{parts.path}?{parts.query}", None
        fields = dict(re.findall(r'name="(\w+)" value="([^"]*)"', info["data"]))
        return "/saml/sso/post", {k: html.unescape(v) for k, v in fields.items()}

    def receive(self, page: str) -> Any:
        """Take the auto-POST form the IdP rendered, as the portal's ACS would."""
        fields = {k: html.unescape(v) for k, v in FORM_FIELD.findall(page)}
        match = FORM_ACTION.search(page)
        assert match and html.unescape(match.group(1)) == SP_ACS, page
        response = self.client.parse_authn_request_response(
            fields["SAMLResponse"], BINDING_HTTP_POST, outstanding=self.outstanding)
        response.relay_state = fields.get("RelayState")
        return response


def portal_policy(policy_dir: Path, metadata: Path, **changes: Any) -> None:
    policy = {"display_name": "Bürgerportal Musterstadt", "entity_id": SP_ENTITY,
              "metadata": str(metadata),
              "attributes": ["gender", "givenName", "surname", "birthName", "mail", "bPK2",
                             "EID-CITIZEN-QAA-LEVEL", "AssertionProvedBy"],
              "name_id_format": "persistent"} | changes
    (policy_dir / "portals" / "musterstadt.yaml").write_text(
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


@pytest.fixture
def portal(sso_app: Flask, portal_keys: tuple[Path, Path]) -> Portal:
    idp_metadata = sso_app.test_client().get("/saml/metadata").get_data(as_text=True)
    client = Saml2Client(config=sp_config(SP_ENTITY, SP_ACS, *portal_keys, idp_metadata))
    install_backend(client)
    return Portal(client)


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
