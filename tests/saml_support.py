"""Test helpers for SAML: fresh keys and a real pysaml2 SP, made anew for every test."""

from __future__ import annotations

import datetime
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from saml2 import BINDING_HTTP_POST, BINDING_HTTP_REDIRECT
from saml2.client import Saml2Client
from saml2.config import IdPConfig, SPConfig
from saml2.metadata import create_metadata_string

from idp.samlkit.crypto import install_backend


def key_pair(folder: Path, name: str, bits: int = 2048) -> tuple[Path, Path]:
    """A private key and a self-signed certificate, written as PEM files into ``folder``."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=bits)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
                   .public_key(key.public_key()).serial_number(x509.random_serial_number())
                   .not_valid_before(now - datetime.timedelta(minutes=5))
                   .not_valid_after(now + datetime.timedelta(days=30))
                   .sign(key, hashes.SHA256()))
    folder.mkdir(parents=True, exist_ok=True)
    key_path, cert_path = folder / f"{name}.key", folder / f"{name}.crt"
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    return key_path, cert_path


def sp_config(entity_id: str, acs_url: str, key: Path, cert: Path,
              idp_metadata: str | None = None, sign_requests: bool = True,
              encryption: bool = True,
              slo_bindings: Sequence[str] = (BINDING_HTTP_REDIRECT,),
              **sp_options: Any) -> SPConfig:
    """A pysaml2 SP; its SingleLogoutService (next to the ACS, at …/slo) takes ``slo_bindings``
    (none: the portal offers no single logout); ``sp_options`` change its ``service.sp``
    settings (a careless portal: ``want_response_signed=False`` …)."""
    config = SPConfig()
    config.load({
        "entityid": entity_id,
        "key_file": str(key),
        "cert_file": str(cert),
        "encryption_keypairs": [{"key_file": str(key), "cert_file": str(cert)}]
        if encryption else None,
        "crypto_backend": "XMLSecurity",
        "metadata": {"inline": [idp_metadata]} if idp_metadata else {},
        "service": {"sp": {
            "endpoints": {
                "assertion_consumer_service": [(acs_url, BINDING_HTTP_POST)],
                "single_logout_service": [(acs_url.rsplit("/", 1)[0] + "/slo", binding)
                                          for binding in slo_bindings],
            },
            "authn_requests_signed": sign_requests,
            "want_response_signed": True,
            "want_assertions_signed": True,
            "allow_unsolicited": False,
        } | sp_options},
    })
    return config


def metadata_of(config: SPConfig | IdPConfig) -> str:
    """The entity's metadata as an XML string (pysaml2 returns bytes)."""
    return bytes(create_metadata_string(None, config=config, valid=24)).decode("utf-8")


sp_metadata = metadata_of


def sp_client(config: SPConfig) -> Saml2Client:
    """A pysaml2 SP signing and verifying with our in-process backend (pysaml2's own
    "XMLSecurity" backend needs another package of the module name ``xmlsec``)."""
    client = Saml2Client(config=config)
    install_backend(client)
    return client


def abbrechen_target(login_page: str) -> str:
    """Where ABBRECHEN on the IdP's login page posts: its own form, without the credentials."""
    found = re.search(r'<form id="abbrechen" method="post" action="([^"]+)"', login_page)
    assert found, login_page[:2000]
    return found.group(1).replace("&amp;", "&")
