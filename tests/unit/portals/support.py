"""Helpers for portal tests: real SP metadata from pysaml2 with fresh keys, and portal files."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from tests.saml_support import key_pair, metadata_of, sp_config

DS = "http://www.w3.org/2000/09/xmldsig#"


def sp_metadata_xml(folder: Path, entity_id: str = "https://portal.example/saml/metadata",
                    acs_url: str = "https://portal.example/saml/acs") -> str:
    """SP metadata as pysaml2 publishes it, with a self-signed certificate made for this test."""
    key, cert = key_pair(folder / "sp-keys", "sp")
    return metadata_of(sp_config(entity_id, acs_url, key, cert))


def write_policy(policy_dir: Path, name: str, **settings: Any) -> Path:
    """``policy_dir/portals/<name>.yaml`` with sensible settings, changed by ``settings``."""
    folder = policy_dir / "portals"
    folder.mkdir(parents=True, exist_ok=True)
    raw: dict[str, Any] = {
        "display_name": "Bürgerportal Musterstadt",
        "entity_id": "https://portal.example/saml/metadata",
        "metadata": "portal.xml",
        "attributes": ["givenName", "surname", "mail"],
    }
    raw.update(settings)
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump({k: v for k, v in raw.items() if v is not None},
                                   allow_unicode=True), encoding="utf-8")
    return path


def fake_signed(xml: str, marker: str = "signed-by-test", reference: str | None = None) -> str:
    """The document with an ID and a (fake) enveloped signature over the root.

    The signature value is ``marker``; :class:`FakeVerifier` accepts exactly the marker it
    was made with, standing in for real cryptography.
    """
    xml = re.sub(r"<((?:\w+:)?EntityDescriptor) ", r'<\1 ID="_md1" ', xml, count=1)
    uri = "#_md1" if reference is None else reference
    signature = (f'<ds:Signature xmlns:ds="{DS}"><ds:SignedInfo><ds:Reference URI="{uri}"/>'
                 f"</ds:SignedInfo><ds:SignatureValue>{marker}</ds:SignatureValue>"
                 "</ds:Signature>")
    # Enveloped: the first child of the root.
    return re.sub(r"(<(?:\w+:)?EntityDescriptor [^>]*>)", r"\1" + signature, xml, count=1)


class FakeVerifier:
    """Accepts a document whose fake signature carries ``marker`` and the expected certificate."""

    def __init__(self, certificate_pem: bytes, marker: str = "signed-by-test") -> None:
        self.certificate_pem = certificate_pem
        self.marker = marker
        self.calls = 0

    def __call__(self, document: bytes, certificate_pem: bytes) -> bool:
        self.calls += 1
        return (certificate_pem == self.certificate_pem
                and f"<ds:SignatureValue>{self.marker}<".encode() in document)


def really_signed(xml: str, key_file: Path) -> bytes:
    """The document with a real enveloped RSA-SHA256 signature over its root (python-xmlsec)."""
    import xmlsec
    from lxml import etree

    root = etree.fromstring(xml.encode("utf-8"))
    root.set("ID", "_md1")
    signature = xmlsec.template.create(root, xmlsec.Transform.EXCL_C14N,
                                       xmlsec.Transform.RSA_SHA256, ns="ds")
    root.insert(0, signature)
    reference = xmlsec.template.add_reference(signature, xmlsec.Transform.SHA256, uri="#_md1")
    xmlsec.template.add_transform(reference, xmlsec.Transform.ENVELOPED)
    xmlsec.template.add_transform(reference, xmlsec.Transform.EXCL_C14N)
    context = xmlsec.SignatureContext()
    context.key = xmlsec.Key.from_file(str(key_file), xmlsec.KeyFormat.PEM)
    xmlsec.tree.add_ids(root, ["ID"])
    context.sign(signature)
    return bytes(etree.tostring(root))
