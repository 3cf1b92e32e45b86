"""The broker against an upstream that is not our own software: a pysaml2 IdP in process
(docs/broker.md). It speaks pysaml2's attribute names (converted to urn:oid Names with NameFormat
uri), answers at STORK-QAA-Level-4, and may encrypt its assertions to our key."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from flask import Flask
from saml2 import BINDING_HTTP_REDIRECT
from saml2.config import IdPConfig
from saml2.saml import NAMEID_FORMAT_PERSISTENT, NameID
from saml2.server import Server

from idp.broker.runtime import broker
from idp.samlkit.crypto import install_backend
from tests.conftest import Browser
from tests.flows.conftest import Portal, b64, hop_from
from tests.flows.test_broker import BPK2, GIVEN_NAME, PROVED_BY, QAA_LEVEL, attributes_of, finish
from tests.flows.test_broker import upstream_file as write_upstream
from tests.saml_support import key_pair, metadata_of

UPSTREAM = "https://idp.fremdland.example/metadata"
SSO = "https://idp.fremdland.example/sso"
SIGN_SHA256 = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"
DIGEST_SHA256 = "http://www.w3.org/2001/04/xmlenc#sha256"


@pytest.fixture
def encrypted() -> bool:
    return False


@pytest.fixture
def portal_changes(tmp_path: Path, policy_dir: Path, encrypted: bool) -> dict[str, Any]:
    write_upstream(policy_dir, tmp_path / "fremdland-metadata.xml", name="fremdland",
                   display_name="Servicekonto Fremdland", entity_id=UPSTREAM,
                   maximum_trust_level="STORK-QAA-Level-4", bpk2_prefix="FL:",
                   encrypted_assertions=encrypted)
    return {}


@pytest.fixture
def fremdland(sso_app: Flask, tmp_path: Path) -> Iterator[Server]:
    """The pysaml2 IdP, knowing our broker's SP metadata; its metadata where we read it."""
    key, cert = key_pair(tmp_path / "fremdland", "fremdland")
    config = IdPConfig()
    config.load({
        "entityid": UPSTREAM, "key_file": str(key), "cert_file": str(cert),
        "crypto_backend": "XMLSecurity",
        "metadata": {"inline": [broker(sso_app).clients.metadata_xml()]},
        "service": {"idp": {
            "endpoints": {"single_sign_on_service": [(SSO, BINDING_HTTP_REDIRECT)]},
            "name_id_format": [NAMEID_FORMAT_PERSISTENT],
            "policy": {"default": {"sign_response": True, "sign_assertion": True,
                                   "name_form": "urn:oasis:names:tc:SAML:2.0:attrname-format:uri",
                                   "lifetime": {"minutes": 5}}},
        }},
    })
    (tmp_path / "fremdland-metadata.xml").write_text(metadata_of(config), encoding="utf-8")
    server = Server(config=config)
    install_backend(server)
    yield server


def answer(server: Server, location: str, *, encrypt: bool = False) -> str:
    """What the pysaml2 IdP posts back for our AuthnRequest (Redirect binding)."""
    assert location.startswith(SSO)
    query = parse_qs(urlsplit(location).query)
    request = server.parse_authn_request(query["SAMLRequest"][0], BINDING_HTTP_REDIRECT)
    ours = request.message
    identity = {"givenName": ["Maria"], "sn": ["Musterfrau"],
                "mail": ["maria.musterfrau@example.org"]}
    response = server.create_authn_response(
        identity, in_response_to=ours.id, destination=ours.assertion_consumer_service_url,
        sp_entity_id=ours.issuer.text,
        name_id=NameID(format=NAMEID_FORMAT_PERSISTENT, text="fremdland-4711"),
        authn={"class_ref": "STORK-QAA-Level-4", "authn_auth": UPSTREAM},
        sign_response=True, sign_assertion=True, sign_alg=SIGN_SHA256,
        digest_alg=DIGEST_SHA256, encrypt_assertion=encrypt,
        encrypted_advice_attributes=False, encrypt_cert_assertion=None)
    return b64(str(response))


def to_fremdland(visitor: Browser, portal: Portal) -> tuple[str, str]:
    path, _ = portal.login_url()
    login_page = visitor.client.get(path).location
    reference = parse_qs(urlsplit(login_page).query)["anfrage"][0]
    visitor.get(f"/extern?anfrage={reference}")
    sent = visitor.submit(f"/extern/fremdland?anfrage={reference}")
    assert sent.status_code == 200  # a page that goes on by itself (meta refresh)
    return reference, hop_from(sent).url


def test_a_pysaml2_idp_as_upstream_brings_its_citizen_to_our_portal_at_its_level(
        sso_app: Flask, fremdland: Server, visitor: Browser, portal: Portal) -> None:
    _, location = to_fremdland(visitor, portal)
    back = visitor.client.post("/extern/acs", data={
        "SAMLResponse": answer(fremdland, location), "servicekonto_resubmitted": "1"})
    assert back.status_code == 303 and back.location.endswith("/extern/erste-anmeldung")
    visitor.get(back.location)
    chosen = visitor.submit("/extern/erste-anmeldung", {"aktion": "neu"})
    page = finish(visitor, chosen.location, "Servicekonto Fremdland")
    released = attributes_of(page)
    portal.receive(page)
    assert released[PROVED_BY][0] == "FINK"
    assert released[QAA_LEVEL][0] == "STORK-QAA-Level-4"
    assert released[GIVEN_NAME][0] == "Maria"
    assert released[BPK2][0].startswith("FL:")


@pytest.mark.parametrize("encrypted", [True])
def test_an_upstream_agreed_to_encrypt_is_refused_with_a_clear_assertion_and_taken_encrypted(
        sso_app: Flask, fremdland: Server, visitor: Browser, portal: Portal) -> None:
    _, location = to_fremdland(visitor, portal)
    clear = visitor.client.post("/extern/acs", data={
        "SAMLResponse": answer(fremdland, location), "servicekonto_resubmitted": "1"})
    assert clear.status_code == 400
    assert "unverschlüsselt" in clear.get_data(as_text=True)
    _, location = to_fremdland(visitor, portal)
    sealed = visitor.client.post("/extern/acs", data={
        "SAMLResponse": answer(fremdland, location, encrypt=True),
        "servicekonto_resubmitted": "1"})
    assert sealed.status_code == 303, sealed.get_data(as_text=True)
    assert sealed.location.endswith("/extern/erste-anmeldung")
