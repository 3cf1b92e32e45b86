"""An IdP (pysaml2 Server) and a portal (pysaml2 Client) on the in-process backend, fresh keys.

Everything is made anew per test in a temporary folder; no key is ever committed.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from saml2 import BINDING_HTTP_POST, BINDING_HTTP_REDIRECT
from saml2.client import Saml2Client
from saml2.config import IdPConfig, SPConfig
from saml2.saml import NAMEID_FORMAT_TRANSIENT, NameID
from saml2.server import Server

from idp.samlkit.crypto import InProcessCryptoBackend, install_backend
from tests.saml_support import key_pair, metadata_of

IDP_ID = "https://idp.example.test/saml/metadata"
SP_ID = "https://portal.example.test/saml/metadata"
ACS = "https://portal.example.test/saml/acs"
REQUEST_ID = "id-request-1"
SHA256 = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"
DIGEST_SHA256 = "http://www.w3.org/2001/04/xmlenc#sha256"
PASSWORD = "urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport"
IDENTITY = {"givenName": ["Björn"], "sn": ["Müller"], "mail": ["bjoern@example.test"]}


def idp_config(key: Path, cert: Path, sp_metadata: str | None = None) -> IdPConfig:
    config = IdPConfig()
    config.load({
        "entityid": IDP_ID,
        "key_file": str(key), "cert_file": str(cert),
        "crypto_backend": "XMLSecurity",  # no xmlsec1 program; our backend is installed later
        "metadata": {"inline": [sp_metadata]} if sp_metadata else {},
        "service": {"idp": {
            "endpoints": {"single_sign_on_service": [
                ("https://idp.example.test/saml/sso/post", BINDING_HTTP_POST)]},
            "name_id_format": [NAMEID_FORMAT_TRANSIENT],
            "policy": {"default": {"fail_on_missing_requested": False}},
        }},
    })
    return config


def sp_config(key: Path, cert: Path, idp_metadata: str | None = None) -> SPConfig:
    config = SPConfig()
    config.load({
        "entityid": SP_ID,
        "key_file": str(key), "cert_file": str(cert),
        "encryption_keypairs": [{"key_file": str(key), "cert_file": str(cert)}],
        "crypto_backend": "XMLSecurity",
        "metadata": {"inline": [idp_metadata]} if idp_metadata else {},
        "service": {"sp": {
            "endpoints": {
                "assertion_consumer_service": [(ACS, BINDING_HTTP_POST)],
                "single_logout_service": [(ACS + "/slo", BINDING_HTTP_REDIRECT)],
            },
            "want_response_signed": False,
            "want_assertions_signed": True,
            "allow_unsolicited": False,
        }},
    })
    return config


@dataclass
class Federation:
    """One IdP and one portal that trust each other through inline metadata."""

    idp: Server
    sp: Saml2Client
    idp_key: Path
    idp_cert: Path
    sp_key: Path
    sp_cert: Path

    def response(self, *, sign_response: bool = True, sign_assertion: bool = True,
                 encrypt_assertion: bool = False, identity: dict[str, list[str]] | None = None
                 ) -> str:
        """A Response to REQUEST_ID as the IdP sends it (XML text), RSA-SHA256."""
        response = self.idp.create_authn_response(
            identity=identity or IDENTITY, in_response_to=REQUEST_ID, destination=ACS,
            sp_entity_id=SP_ID, userid="citizen-1",
            name_id=NameID(format=NAMEID_FORMAT_TRANSIENT, text="transient-1"),
            authn={"class_ref": PASSWORD, "authn_auth": IDP_ID},
            sign_response=sign_response, sign_assertion=sign_assertion,
            encrypt_assertion=encrypt_assertion,
            sign_alg=SHA256, digest_alg=DIGEST_SHA256)
        return str(response)

    def receive(self, xml: str | bytes) -> Any:
        """The portal's view of ``xml`` posted to its ACS (raises what pysaml2 raises)."""
        data = xml.encode("utf-8") if isinstance(xml, str) else xml
        return self.sp.parse_authn_request_response(
            base64.b64encode(data).decode("ascii"), BINDING_HTTP_POST,
            outstanding={REQUEST_ID: "/"})


def federation(folder: Path, backend: InProcessCryptoBackend | None = None) -> Federation:
    """A fresh IdP and portal, both on ``backend`` (a new in-process backend by default)."""
    idp_key, idp_cert = key_pair(folder, "idp")
    sp_key, sp_cert = key_pair(folder, "portal")
    sp_metadata = metadata_of(sp_config(sp_key, sp_cert))
    idp_metadata = metadata_of(idp_config(idp_key, idp_cert))
    idp = Server(config=idp_config(idp_key, idp_cert, sp_metadata))
    sp = Saml2Client(config=sp_config(sp_key, sp_cert, idp_metadata))
    backend = backend or InProcessCryptoBackend()
    install_backend(idp, backend)
    install_backend(sp, backend)
    return Federation(idp, sp, idp_key, idp_cert, sp_key, sp_cert)
