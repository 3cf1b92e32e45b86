"""EncryptedIDs as portals make them (SAML core §2.2.4, XML Encryption 1.1), built by hand with
``cryptography``, independent of the xmlsec code that decrypts them.

Shibboleth SP 3 sends AES-256-CBC data with an RSA-OAEP (MGF1 with SHA-1) EncryptedKey inside
the EncryptedData's KeyInfo; other senders put the EncryptedKey beside the EncryptedData in the
EncryptedID and point to it with a RetrievalMethod, or use AES-GCM and xmlenc11's rsa-oaep with
SHA-256.
"""

from __future__ import annotations

import base64
import copy
import os
from collections.abc import Callable
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
from cryptography.hazmat.primitives import hashes, padding
from cryptography.hazmat.primitives.asymmetric import padding as rsa_padding
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from lxml import etree  # type: ignore[import-untyped]

SAML = "urn:oasis:names:tc:SAML:2.0:assertion"
XENC = "http://www.w3.org/2001/04/xmlenc#"
XENC11 = "http://www.w3.org/2009/xmlenc11#"
DSIG = "http://www.w3.org/2000/09/xmldsig#"
TRANSIENT = "urn:oasis:names:tc:SAML:2.0:nameid-format:transient"

AES128_CBC = XENC + "aes128-cbc"
AES256_CBC = XENC + "aes256-cbc"
AES256_GCM = XENC11 + "aes256-gcm"
TRIPLEDES_CBC = XENC + "tripledes-cbc"
RSA_OAEP_MGF1P = XENC + "rsa-oaep-mgf1p"
RSA_OAEP = XENC11 + "rsa-oaep"
RSA_1_5 = XENC + "rsa-1_5"
SHA1 = DSIG + "sha1"
SHA256 = XENC + "sha256"
MGF1_SHA256 = XENC11 + "mgf1sha256"

_KEY_BYTES = {AES128_CBC: 16, AES256_CBC: 32, AES256_GCM: 32, TRIPLEDES_CBC: 24}


def name_id_xml(value: str, name_format: str | None = TRANSIENT, *,
                sp_name_qualifier: str | None = None) -> bytes:
    """A saml:NameID element standing alone (its namespace declared on it)."""
    element = etree.Element(f"{{{SAML}}}NameID", nsmap={"saml": SAML})
    if name_format:
        element.set("Format", name_format)
    if sp_name_qualifier:
        element.set("SPNameQualifier", sp_name_qualifier)
    element.text = value
    return bytes(etree.tostring(element))


def _encrypt_data(algorithm: str, key: bytes, plaintext: bytes) -> bytes:
    if algorithm == AES256_GCM:  # IV, ciphertext, 128-bit tag (XML Encryption 1.1 §5.2.4)
        iv = os.urandom(12)
        return iv + AESGCM(key).encrypt(iv, plaintext, None)
    # CBC: IV first; PKCS#7 padding is one of the paddings XML Encryption §5.2 allows.
    block = TripleDES(key) if algorithm == TRIPLEDES_CBC else algorithms.AES(key)
    iv = os.urandom(block.block_size // 8)
    padder = padding.PKCS7(block.block_size).padder()
    padded = padder.update(plaintext) + padder.finalize()
    encryptor = Cipher(block, modes.CBC(iv)).encryptor()
    return iv + encryptor.update(padded) + encryptor.finalize()


def _encrypt_key(transport: str, digest: str | None, certificate: Path, key: bytes) -> bytes:
    public = x509.load_pem_x509_certificate(certificate.read_bytes()).public_key()
    assert isinstance(public, rsa.RSAPublicKey)
    if transport == RSA_1_5:
        return public.encrypt(key, rsa_padding.PKCS1v15())
    # SHA-1 is RSA-OAEP's default hash and mask (what Shibboleth sends), safe within OAEP.
    hash_ = hashes.SHA256() if digest == SHA256 else hashes.SHA1()  # noqa: S303
    mask = hashes.SHA256() if transport == RSA_OAEP and digest == SHA256 \
        else hashes.SHA1()  # noqa: S303
    return public.encrypt(key, rsa_padding.OAEP(mgf=rsa_padding.MGF1(mask), algorithm=hash_,
                                                label=None))


def _sub(parent: etree._Element, namespace: str, name: str, **attributes: str) -> etree._Element:
    return etree.SubElement(parent, f"{{{namespace}}}{name}", attributes)


def encrypted_id(plaintext: bytes, certificate: Path, *, data: str = AES256_CBC,
                 transport: str = RSA_OAEP_MGF1P, digest: str | None = None,
                 beside: bool = False, more_keys: tuple[Path, ...] = ()) -> etree._Element:
    """A saml:EncryptedID of ``plaintext`` for the RSA key of ``certificate`` (PEM).

    By default as Shibboleth SP 3 makes it: AES-256-CBC, RSA-OAEP-MGF1P without DigestMethod,
    the EncryptedKey inside the EncryptedData's KeyInfo. ``beside`` puts the EncryptedKey(s)
    beside the EncryptedData with a RetrievalMethod to the first; ``digest`` adds a
    DigestMethod (with xmlenc11's rsa-oaep and SHA-256 also MGF1 with SHA-256); ``more_keys``
    adds an EncryptedKey of the same data key for each further certificate.
    """
    key = os.urandom(_KEY_BYTES[data])
    root = etree.Element(f"{{{SAML}}}EncryptedID",
                         nsmap={"saml": SAML, "xenc": XENC, "ds": DSIG, "xenc11": XENC11})
    encrypted_data = _sub(root, XENC, "EncryptedData", Id="ED-1",
                          Type=XENC + "Element")
    _sub(encrypted_data, XENC, "EncryptionMethod", Algorithm=data)
    key_info = _sub(encrypted_data, DSIG, "KeyInfo")
    cipher_data = _sub(encrypted_data, XENC, "CipherData")
    _sub(cipher_data, XENC, "CipherValue").text = base64.b64encode(
        _encrypt_data(data, key, plaintext)).decode("ascii")
    for number, receiver in enumerate((certificate, *more_keys), start=1):
        holder = root if beside else key_info
        encrypted_key = _sub(holder, XENC, "EncryptedKey", Id=f"EK-{number}")
        method = _sub(encrypted_key, XENC, "EncryptionMethod", Algorithm=transport)
        if digest is not None:
            _sub(method, DSIG, "DigestMethod", Algorithm=digest)
            if transport == RSA_OAEP and digest == SHA256:
                _sub(method, XENC11, "MGF", Algorithm=MGF1_SHA256)
        _sub(_sub(encrypted_key, XENC, "CipherData"), XENC, "CipherValue").text = \
            base64.b64encode(_encrypt_key(transport, digest, receiver, key)).decode("ascii")
        if beside:
            _sub(_sub(encrypted_key, XENC, "ReferenceList"), XENC, "DataReference",
                 URI="#ED-1")
            if number == 1:
                _sub(key_info, DSIG, "RetrievalMethod", URI="#EK-1",
                     Type=XENC + "EncryptedKey")
    return root


def replace_name_id(request_xml: str | bytes, encrypt: Callable[[bytes], etree._Element]
                    ) -> etree._Element:
    """A LogoutRequest (unsigned, as pysaml2 made it) with its NameID replaced by
    ``encrypt(the NameID standing alone)``, as a portal that encrypts it sends it."""
    root = etree.fromstring(request_xml.encode() if isinstance(request_xml, str)
                            else request_xml)
    name_id = root.find(f"{{{SAML}}}NameID")
    assert name_id is not None
    root.replace(name_id, encrypt(etree.tostring(copy.deepcopy(name_id))))
    return root


def signed(root: etree._Element, key: Path, certificate: Path) -> bytes:
    """``root`` with an enveloped RSA-SHA256 signature by ``key`` (what a portal sends over
    HTTP-POST)."""
    from idp.samlkit.crypto import InProcessCryptoBackend

    der = "".join(certificate.read_text(encoding="ascii").strip().splitlines()[1:-1])
    InProcessCryptoBackend().sign_elements([root], key, der)
    return bytes(etree.tostring(root))
