"""XML encryption of SAML elements and its reverse, in-process.

Elements are encrypted with AES-256-GCM, the session key with RSA-OAEP, whatever pysaml2's
template asks for. Decryption accepts AES (GCM, and CBC for older senders) with RSA-OAEP key
transport only: for pysaml2 (:func:`decrypt`), and for the ``saml:EncryptedID`` a portal sends
in a LogoutRequest (:func:`decrypt_identifier`, docs/security.md, "Order of checks"). Errors are
pysaml2's :class:`~saml2.sigver.EncryptError` and :class:`~saml2.sigver.DecryptError`.
"""

from __future__ import annotations

import base64
import copy
import os
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import xmlsec
from lxml import etree  # type: ignore[import-untyped]  # no stubs installed
from saml2 import SamlBase
from saml2.sigver import DecryptError, EncryptError

from idp.samlkit.key_cache import KeyCache
from idp.samlkit.untrusted_xml import DSIG, XENC, parse_xml, reject_duplicate_ids, serialise

_ENCRYPTED_DATA = f"{{{XENC}}}EncryptedData"
_ENCRYPTED_KEY = f"{{{XENC}}}EncryptedKey"
_ENCRYPTION_METHOD = f"{{{XENC}}}EncryptionMethod"
_KEY_INFO = f"{{{DSIG}}}KeyInfo"
_KEY_NAME = f"{{{DSIG}}}KeyName"
_X509_DATA = f"{{{DSIG}}}X509Data"
_X509_CERTIFICATE = f"{{{DSIG}}}X509Certificate"
_CIPHER_DATA = f"{{{XENC}}}CipherData"
_CIPHER_VALUE = f"{{{XENC}}}CipherValue"
_DIGEST_METHOD = f"{{{DSIG}}}DigestMethod"
XENC11 = "http://www.w3.org/2009/xmlenc11#"
_MGF = f"{{{XENC11}}}MGF"
SAML = "urn:oasis:names:tc:SAML:2.0:assertion"
_NAME_ID = f"{{{SAML}}}NameID"
TYPE_ELEMENT = f"{XENC}Element"

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
# RSA-OAEP's hash and mask generation: SHA-1 (the default of both algorithms) or SHA-256.
OAEP_DIGESTS = {f"{DSIG}sha1", f"{XENC}sha256"}
OAEP_MASKS = {f"{XENC11}mgf1sha1", f"{XENC11}mgf1sha256"}
# Bounds on an EncryptedID (the message is small already: idp/samlkit/bindings.py, envelope.py).
MAX_ENCRYPTED_KEYS = 4
MAX_KEY_CIPHER_CHARS = 2048  # base64 of an RSA-8192 block with line breaks
MAX_DATA_CIPHER_CHARS = 8192  # a NameID of a few KiB
_KEY_BYTES = {t.href: size for t, size in (
    (_T.TransformAes128Gcm, 16), (_T.TransformAes192Gcm, 24), (_T.TransformAes256Gcm, 32),
    (_T.TransformAes128Cbc, 16), (_T.TransformAes192Cbc, 24), (_T.TransformAes256Cbc, 32))}


class AlgorithmRefused(DecryptError):  # type: ignore[misc]  # pysaml2 is untyped
    """The sender used an algorithm we never decrypt (e.g. RSA PKCS#1 v1.5 key transport)."""


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


def decrypt_identifier(encrypted_id: etree._Element,
                       key_files: Sequence[str | os.PathLike[str]],
                       keys: KeyCache) -> etree._Element:
    """The ``saml:NameID`` inside a ``saml:EncryptedID`` (SAML core §2.2.4), decrypted with
    whichever of our private keys in ``key_files`` its EncryptedKey was made for.

    The EncryptedKey may sit in the EncryptedData's KeyInfo or beside the EncryptedData in
    the EncryptedID; nothing is fetched (no CipherReference, no RetrievalMethod followed, no
    KeyInfo read: our keys are tried in turn). ``encrypted_id`` is left as it was. Raises
    :class:`AlgorithmRefused` for an algorithm outside the allow-lists and
    :class:`~saml2.sigver.DecryptError` for anything else that does not decrypt to a NameID.
    """
    data, encrypted_keys = _encrypted_id_parts(encrypted_id)
    algorithm = data.find(_ENCRYPTION_METHOD).get("Algorithm")
    session_key = _session_key(encrypted_keys, key_files, keys, _KEY_BYTES[algorithm])
    # Work on a copy: xmlsec puts the plaintext in the EncryptedData's place, parsed in the
    # context of the EncryptedID (its namespace declarations; the document has no DTD).
    holder = copy.deepcopy(encrypted_id)
    target = holder.find(_ENCRYPTED_DATA)
    key_info = target.find(_KEY_INFO)
    if key_info is not None:
        target.remove(key_info)
    for node in list(holder):  # the EncryptedKeys beside it, comments
        if node is not target:
            holder.remove(node)
    target.set("Type", TYPE_ELEMENT)  # SAML core §2.2.4: the plaintext is an element
    try:
        context = xmlsec.EncryptionContext()
        context.key = xmlsec.Key.from_binary_data(_T.KeyDataAes, session_key)
        decrypted = context.decrypt(target)
    except Exception as error:  # python-xmlsec raises IndexError for a text-only plaintext
        raise DecryptError(f"EncryptedID does not decrypt: {error!r}") from error
    if not isinstance(decrypted, etree._Element) or len(holder) != 1 \
            or holder[0] is not decrypted or (holder.text or "").strip() \
            or (decrypted.tail or "").strip():
        raise DecryptError("EncryptedID does not hold exactly one element")
    if decrypted.tag != _NAME_ID or len(decrypted):
        raise DecryptError(f"EncryptedID holds {etree.QName(decrypted).localname!r}, "
                           "not a plain saml:NameID")
    return decrypted


def _encrypted_id_parts(encrypted_id: etree._Element
                        ) -> tuple[etree._Element, list[etree._Element]]:
    """The EncryptedData and the EncryptedKeys of an EncryptedID, every algorithm allowed."""
    children = [child for child in encrypted_id if isinstance(child.tag, str)]
    if not children or children[0].tag != _ENCRYPTED_DATA or \
            any(child.tag != _ENCRYPTED_KEY for child in children[1:]):
        raise DecryptError("EncryptedID is not one EncryptedData and EncryptedKeys")
    data = children[0]
    if data.get("Type", TYPE_ELEMENT) != TYPE_ELEMENT:
        raise DecryptError("EncryptedData of an EncryptedID must be of Type Element")
    method = data.find(_ENCRYPTION_METHOD)
    algorithm = method.get("Algorithm") if method is not None else None
    if algorithm not in DECRYPT_DATA_ALGORITHMS:
        raise AlgorithmRefused(f"data encryption algorithm {algorithm!r} not allowed")
    if len(method):
        raise DecryptError("parameters of the data encryption algorithm are not allowed")
    _cipher_value(data, MAX_DATA_CIPHER_CHARS)
    key_info = data.find(_KEY_INFO)
    inline = key_info.findall(_ENCRYPTED_KEY) if key_info is not None else []
    encrypted_keys = inline + children[1:]
    if not encrypted_keys:
        raise DecryptError("EncryptedID without an EncryptedKey")
    if len(encrypted_keys) > MAX_ENCRYPTED_KEYS:
        raise DecryptError(f"EncryptedID with more than {MAX_ENCRYPTED_KEYS} EncryptedKeys")
    for encrypted_key in encrypted_keys:
        _check_key_transport(encrypted_key.find(_ENCRYPTION_METHOD))
        _cipher_value(encrypted_key, MAX_KEY_CIPHER_CHARS)
    return data, encrypted_keys


def _check_key_transport(method: etree._Element | None) -> None:
    """RSA-OAEP only, with SHA-1 or SHA-256 for its hash and its mask generation."""
    if method is None or method.get("Algorithm") not in DECRYPT_KEY_ALGORITHMS:
        found = method.get("Algorithm") if method is not None else None
        raise AlgorithmRefused(f"key transport algorithm {found!r} not allowed")
    algorithm = method.get("Algorithm")
    for parameter in method:
        if not isinstance(parameter.tag, str):
            continue
        if parameter.tag == _DIGEST_METHOD and parameter.get("Algorithm") in OAEP_DIGESTS:
            continue
        if parameter.tag == _MGF and algorithm == RSA_OAEP_XMLENC11 and \
                parameter.get("Algorithm") in OAEP_MASKS:
            continue
        raise AlgorithmRefused(f"RSA-OAEP parameter {etree.QName(parameter).localname} "
                               f"{parameter.get('Algorithm')!r} not allowed")


def _cipher_value(element: etree._Element, limit: int) -> None:
    """CipherData must carry the ciphertext itself (a CipherReference would be fetched)."""
    cipher_data = element.findall(_CIPHER_DATA)
    if len(cipher_data) != 1 or len(cipher_data[0]) != 1 or \
            cipher_data[0][0].tag != _CIPHER_VALUE or len(cipher_data[0][0]):
        raise DecryptError("CipherData must hold exactly one CipherValue")
    if len(cipher_data[0][0].text or "") > limit:
        raise DecryptError(f"CipherValue longer than {limit} characters")


def _session_key(encrypted_keys: Sequence[etree._Element],
                 key_files: Sequence[str | os.PathLike[str]], keys: KeyCache,
                 size: int) -> bytes:
    """The data key of the first EncryptedKey one of our keys opens (RSA-OAEP checks it)."""
    for key_file in key_files:
        try:
            private_key = keys.load(key_file, _T.KeyDataFormatPem)
        except (xmlsec.Error, OSError) as error:
            raise DecryptError(f"our key {key_file} is unusable: {error}") from error
        for encrypted_key in encrypted_keys:
            bare = copy.deepcopy(encrypted_key)  # without KeyInfo: our key is preset
            for key_info in bare.findall(_KEY_INFO):
                bare.remove(key_info)
            try:
                context = xmlsec.EncryptionContext()
                context.key = private_key
                session_key = context.decrypt(bare)
            except Exception:  # noqa: S112  # made for another key (or tampered with)
                continue
            if not isinstance(session_key, bytes) or len(session_key) != size:
                raise DecryptError("the EncryptedKey's key does not fit the data algorithm")
            return session_key
    raise DecryptError("no EncryptedKey opens with any of our keys")


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
        _check_key_transport(key.find(_ENCRYPTION_METHOD))


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
