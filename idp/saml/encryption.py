"""XML encryption of SAML elements and its reverse, in-process.

Elements are encrypted with AES-256-GCM, the session key with RSA-OAEP, whatever pysaml2's
template asks for. Decryption accepts AES (GCM, and CBC for older senders) with RSA-OAEP key
transport only. Errors are pysaml2's :class:`~saml2.sigver.EncryptError` and
:class:`~saml2.sigver.DecryptError`.
"""

from __future__ import annotations

import base64
import os
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import xmlsec
from lxml import etree  # type: ignore[import-untyped]  # no stubs installed
from saml2 import SamlBase
from saml2.sigver import DecryptError, EncryptError

from idp.saml.key_cache import KeyCache
from idp.saml.untrusted_xml import DSIG, XENC, parse_xml, reject_duplicate_ids, serialise

_ENCRYPTED_DATA = f"{{{XENC}}}EncryptedData"
_ENCRYPTED_KEY = f"{{{XENC}}}EncryptedKey"
_ENCRYPTION_METHOD = f"{{{XENC}}}EncryptionMethod"
_KEY_INFO = f"{{{DSIG}}}KeyInfo"
_KEY_NAME = f"{{{DSIG}}}KeyName"
_X509_DATA = f"{{{DSIG}}}X509Data"
_X509_CERTIFICATE = f"{{{DSIG}}}X509Certificate"

_T = xmlsec.constants
DATA_ENCRYPTION = _T.TransformAes256Gcm
KEY_TRANSPORT = _T.TransformRsaOaep
RSA_OAEP_XMLENC11 = "http://www.w3.org/2009/xmlenc11#rsa-oaep"
# Decryption accepts AES (GCM, and CBC for older senders) and RSA-OAEP key transport; never
# RSA PKCS#1 v1.5 (Bleichenbacher) or 3DES.
DECRYPT_DATA_ALGORITHMS = {t.href for t in (
    _T.TransformAes128Gcm, _T.TransformAes192Gcm, _T.TransformAes256Gcm,
    _T.TransformAes128Cbc, _T.TransformAes192Cbc, _T.TransformAes256Cbc)}
DECRYPT_KEY_ALGORITHMS = {KEY_TRANSPORT.href, RSA_OAEP_XMLENC11}


def encrypt_document(text: str | bytes, recv_key: str | os.PathLike[str], template: Any,
                     xpath: str, keys: KeyCache) -> bytes:
    """Encrypt the element at ``xpath`` (the root without one) for the PEM certificate in
    ``recv_key``; returns the document as UTF-8 bytes."""
    root = parse_xml(text, EncryptError)
    nodes = root.xpath(xpath) if xpath else [root]
    if not isinstance(nodes, list) or not nodes or not isinstance(nodes[0], etree._Element):
        raise EncryptError(f"nothing to encrypt at {xpath!r}")
    root = _encrypt_element(root, nodes[0], _receiver(recv_key, keys),
                            _EncryptionTemplate.read(template))
    return serialise(root).encode("utf-8")


def encrypt_assertion(statement: str, enc_key: str | os.PathLike[str], template: Any,
                      node_xpath: str, node_id: str | None, keys: KeyCache) -> str:
    """Replace the element ``node_id`` (else the first at ``node_xpath``) of ``statement`` by
    its EncryptedData for the PEM certificate in ``enc_key``; returns the document."""
    root = parse_xml(statement, EncryptError)
    if node_id:
        nodes = [e for e in root.iter(etree.Element) if e.get("ID") == node_id]
    else:
        found = root.xpath(node_xpath)
        nodes = [n for n in found if isinstance(n, etree._Element)] \
            if isinstance(found, list) else []
    if not nodes:
        raise EncryptError("no assertion to encrypt")
    root = _encrypt_element(root, nodes[0], _receiver(enc_key, keys),
                            _EncryptionTemplate.read(template))
    return serialise(root)


def encrypt_element(element: etree._Element, certificate: str, key_name: str | None,
                    keys: KeyCache) -> etree._Element:
    """The xenc:EncryptedData of ``element`` (the root of its own document) for
    ``certificate`` (base64 DER, as in metadata), with ``key_name`` in the EncryptedKey.

    xmlsec serialises the element alone, and only a root declares every namespace it uses,
    so that the decrypted element stands alone too (pysaml2's "self-contained" assertion).
    """
    if element.getparent() is not None:
        raise EncryptError("only a document's root is encrypted (its namespaces)")
    try:
        receiver = keys.receiver(base64.b64decode("".join(certificate.split())),
                                 _T.KeyDataFormatCertDer)
    except (xmlsec.Error, ValueError) as error:
        raise EncryptError(f"unusable encryption certificate: {error}") from error
    return _encrypt_element(element, element, receiver,
                            _EncryptionTemplate.for_certificate(certificate, key_name))


def decrypt(enctext: str | bytes, key_file: str | os.PathLike[str], keys: KeyCache) -> str:
    """Decrypt the first EncryptedData with the private key in ``key_file``; returns the whole
    document, whose root is the decrypted element where the EncryptedData was the root."""
    root = parse_xml(enctext, DecryptError)
    reject_duplicate_ids(root, DecryptError)
    encrypted = next(root.iter(_ENCRYPTED_DATA), None)
    if encrypted is None:
        raise DecryptError("no EncryptedData in the document")
    _check_decryption_algorithms(root, encrypted)
    # RetrievalMethod may point to an EncryptedKey elsewhere in the document by its Id.
    xmlsec.tree.add_ids(root, ["Id"])
    try:
        manager = xmlsec.KeysManager()
        manager.add_key(keys.load(key_file, _T.KeyDataFormatPem))
        decrypted = xmlsec.EncryptionContext(manager).decrypt(encrypted)
    except (xmlsec.Error, OSError) as error:
        raise DecryptError(f"decryption failed: {error}") from error
    if encrypted is root and isinstance(decrypted, etree._Element):
        # xmlsec put the decrypted element in the old root's place: it is the document now.
        root = decrypted
    return serialise(root)


def _receiver(path: str | os.PathLike[str], keys: KeyCache) -> xmlsec.KeysManager:
    """The public key of the PEM certificate in ``path`` (pysaml2 writes temp files)."""
    try:
        return keys.receiver(Path(path).read_bytes(), _T.KeyDataFormatCertPem)
    except (xmlsec.Error, OSError) as error:
        raise EncryptError(f"encryption failed: {error}") from error


def _check_decryption_algorithms(root: etree._Element, encrypted: etree._Element) -> None:
    method = encrypted.find(_ENCRYPTION_METHOD)
    if method is None or method.get("Algorithm") not in DECRYPT_DATA_ALGORITHMS:
        raise DecryptError("data encryption algorithm not allowed")
    for key in root.iter(_ENCRYPTED_KEY):
        method = key.find(_ENCRYPTION_METHOD)
        if method is None or method.get("Algorithm") not in DECRYPT_KEY_ALGORITHMS:
            raise DecryptError("key transport algorithm not allowed")


@dataclass(frozen=True)
class _EncryptionTemplate:
    """What we take from pysaml2's EncryptedData template: Ids and the EncryptedKey's KeyInfo."""

    data_id: str | None = None
    key_id: str | None = None
    key_info: etree._Element | None = None

    @classmethod
    def read(cls, template: Any) -> _EncryptionTemplate:
        if isinstance(template, SamlBase):
            text: str | bytes = str(template)
        elif isinstance(template, os.PathLike) or (
                isinstance(template, str) and not template.lstrip().startswith("<")):
            try:
                text = Path(template).read_bytes()
            except OSError as error:
                raise EncryptError(f"cannot read encryption template: {error}") from error
        elif isinstance(template, str | bytes):
            text = template
        else:
            return cls()
        root = parse_xml(text, EncryptError)
        data = root if root.tag == _ENCRYPTED_DATA else next(root.iter(_ENCRYPTED_DATA), None)
        if data is None:
            return cls()
        key = next(data.iter(_ENCRYPTED_KEY), None)
        key_info = key.find(_KEY_INFO) if key is not None else None
        return cls(data.get("Id"), key.get("Id") if key is not None else None, key_info)

    @classmethod
    def for_certificate(cls, certificate: str, key_name: str | None) -> _EncryptionTemplate:
        """What pysaml2's ``pre_encryption_part`` would give for this receiver's key."""
        key_info = etree.Element(_KEY_INFO, nsmap={"ds": DSIG})
        if key_name:
            etree.SubElement(key_info, _KEY_NAME).text = key_name
        etree.SubElement(etree.SubElement(key_info, _X509_DATA), _X509_CERTIFICATE).text = \
            "".join(certificate.split())
        return cls(f"ED_{uuid.uuid4()}", f"EK_{uuid.uuid4()}", key_info)


def _encrypt_element(root: etree._Element, node: etree._Element,
                     receiver: xmlsec.KeysManager,
                     template: _EncryptionTemplate) -> etree._Element:
    """Replace ``node`` by its EncryptedData (AES-256-GCM, the key by RSA-OAEP for the one
    public key in ``receiver``)."""
    try:
        data = xmlsec.template.encrypted_data_create(
            root, DATA_ENCRYPTION, id=template.data_id, type=_T.TypeEncElement, ns="xenc")
        xmlsec.template.encrypted_data_ensure_cipher_value(data)
        key_info = xmlsec.template.encrypted_data_ensure_key_info(data, ns="ds")
        encrypted_key = xmlsec.template.add_encrypted_key(key_info, KEY_TRANSPORT,
                                                          id=template.key_id)
        xmlsec.template.encrypted_data_ensure_cipher_value(encrypted_key)
        context = xmlsec.EncryptionContext(receiver)
        context.key = xmlsec.Key.generate(_T.KeyDataAes, 256, _T.KeyDataTypeSession)
        was_root = node is root
        result = context.encrypt_xml(data, node)
    except xmlsec.Error as error:
        raise EncryptError(f"encryption failed: {error}") from error
    if template.key_info is not None:
        # The receiver's KeyName/certificate, so it can tell which of its keys to use; added
        # after encryption because xmlsec would otherwise try to resolve it as a key.
        result.find(f".//{_ENCRYPTED_KEY}").insert(1, template.key_info)
    return result if was_root else root
