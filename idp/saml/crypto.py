"""Signing, verification and encryption for pysaml2, in-process with python-xmlsec.

pysaml2's own backend starts the ``xmlsec1`` program for every signature (~40 ms each, DESIGN §4).
:class:`InProcessCryptoBackend` keeps its contract (arguments, return values, ``XmlsecError``
subclasses) and what its command-line flags guaranteed, and adds a few refusals:

- verification uses only the preset key from the given certificate; KeyInfo in the document is
  never read (``--enabled-key-data raw-x509-cert`` plus a preset key);
- a signature must be a direct child of the element asked for, with exactly one Reference to
  that element's own ID (``--enabled-reference-uris empty,same-doc``, ``--node-id``);
- transforms and algorithms come from allow-lists (RSA/ECDSA with SHA-2; SHA-1 only when the
  backend is made with ``allow_sha1_verification=True``); HMAC is never accepted;
- an ID value occurring twice in a document is an error (``--id-attr`` refuses duplicates);
  the classic signature-wrapping move;
- documents are parsed without DTDs, entities or network; any DOCTYPE is refused.

New signatures are RSA-SHA256 with SHA-256 digests even where pysaml2's template asks for SHA-1
(its default). Assertions are encrypted with AES-256-GCM, the session key with RSA-OAEP.

pysaml2's ``crypto_backend`` setting only knows ``"xmlsec1"`` and ``"XMLSecurity"``: configure
``"XMLSecurity"`` (so no ``xmlsec1`` program is looked for) and install this backend on the
``Server``/``Saml2Client`` with :func:`install_backend` (or build a ``SecurityContext`` with
:func:`security_context`).
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
import threading
import uuid
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import xmlsec
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from lxml import etree  # type: ignore[import-untyped]  # no stubs installed
from saml2 import SamlBase
from saml2.mdstore import MetadataStore
from saml2.sigver import (
    ASSERT_XPATH,
    CryptoBackend,
    DecryptError,
    EncryptError,
    RSACrypto,
    SignatureError,
    pre_encrypt_assertion,
)
from saml2.sigver import security_context as pysaml2_security_context

from idp.saml.keys import KeyFileError, load_private_key

if TYPE_CHECKING:
    from xmlsec.constants import __Transform as _Transform

DSIG = "http://www.w3.org/2000/09/xmldsig#"
XENC = "http://www.w3.org/2001/04/xmlenc#"
_SIGNATURE = f"{{{DSIG}}}Signature"
_SIGNED_INFO = f"{{{DSIG}}}SignedInfo"
_SIGNATURE_VALUE = f"{{{DSIG}}}SignatureValue"
_DIGEST_VALUE = f"{{{DSIG}}}DigestValue"
_ISSUER = "{urn:oasis:names:tc:SAML:2.0:assertion}Issuer"
_ENCRYPTED_DATA = f"{{{XENC}}}EncryptedData"
_ENCRYPTED_KEY = f"{{{XENC}}}EncryptedKey"
_ENCRYPTION_METHOD = f"{{{XENC}}}EncryptionMethod"
_KEY_INFO = f"{{{DSIG}}}KeyInfo"
_KEY_NAME = f"{{{DSIG}}}KeyName"
_X509_DATA = f"{{{DSIG}}}X509Data"
_X509_CERTIFICATE = f"{{{DSIG}}}X509Certificate"

_T = xmlsec.constants
# Canonicalisation of SignedInfo and reference transforms (exclusive c14n is what SAML uses).
C14N_METHODS = {t.href: t for t in (_T.TransformExclC14N, _T.TransformExclC14NWithComments,
                                    _T.TransformInclC14N)}
REFERENCE_TRANSFORMS = {_T.TransformEnveloped.href: _T.TransformEnveloped, **C14N_METHODS}
SIGNATURE_METHODS = {t.href: t for t in (
    _T.TransformRsaSha256, _T.TransformRsaSha384, _T.TransformRsaSha512,
    _T.TransformEcdsaSha256, _T.TransformEcdsaSha384, _T.TransformEcdsaSha512)}
DIGEST_METHODS = {t.href: t for t in (_T.TransformSha256, _T.TransformSha384,
                                      _T.TransformSha512)}
SHA1_SIGNATURE_METHODS = {t.href: t for t in (_T.TransformRsaSha1, _T.TransformEcdsaSha1)}
SHA1_DIGEST_METHODS = {_T.TransformSha1.href: _T.TransformSha1}
# What our own signatures use; SHA-1 in a pysaml2 template is raised to these.
SIGN_ALGORITHM = _T.TransformRsaSha256.href
DIGEST_ALGORITHM = _T.TransformSha256.href
_RSA_SIGNING = {t.href for t in (_T.TransformRsaSha256, _T.TransformRsaSha384,
                                 _T.TransformRsaSha512)}
_SHA2_DIGESTS = set(DIGEST_METHODS)

DATA_ENCRYPTION = _T.TransformAes256Gcm
KEY_TRANSPORT = _T.TransformRsaOaep
RSA_OAEP_XMLENC11 = "http://www.w3.org/2009/xmlenc11#rsa-oaep"
# Decryption accepts AES (GCM, and CBC for older senders) and RSA-OAEP key transport; never
# RSA PKCS#1 v1.5 (Bleichenbacher) or 3DES.
DECRYPT_DATA_ALGORITHMS = {t.href for t in (
    _T.TransformAes128Gcm, _T.TransformAes192Gcm, _T.TransformAes256Gcm,
    _T.TransformAes128Cbc, _T.TransformAes192Cbc, _T.TransformAes256Cbc)}
DECRYPT_KEY_ALGORITHMS = {KEY_TRANSPORT.href, RSA_OAEP_XMLENC11}

_Cached = TypeVar("_Cached", xmlsec.Key, xmlsec.KeysManager)

_XML_DECLARATION = re.compile(r"^\s*<\?xml[^>]*\?>")
_ID_NAMES = {"ID", "Id", "id"}


class RefusedDocument(SignatureError):  # type: ignore[misc]
    """The document is not one we process at all (DOCTYPE, unparsable, duplicate IDs)."""


class RefusedSignature(SignatureError):  # type: ignore[misc]
    """The signature breaks our profile: reference, transform, algorithm or placement."""


class Sha1Refused(RefusedSignature):
    """The signature uses SHA-1 and this backend does not accept it."""


# --- parsing -------------------------------------------------------------------------------

def parse_xml(document: str | bytes, error: type[Exception] = RefusedDocument) -> etree._Element:
    """Parse untrusted XML: no DTD, no entities, no network, no DOCTYPE; raises ``error``."""
    if isinstance(document, str):
        # A str has no bytes to declare: drop a declaration (lxml refuses an encoding in one).
        data = _XML_DECLARATION.sub("", document, count=1).encode("utf-8")
    else:
        data = bytes(document)
    if b"<!DOCTYPE" in data or b"<!ENTITY" in data:
        raise error("XML with a DOCTYPE is refused")
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False,
                             dtd_validation=False, huge_tree=False,
                             # xml:id attributes are IDs only where we register them.
                             collect_ids=False)
    try:
        root = etree.fromstring(data, parser)
    except etree.XMLSyntaxError as problem:
        raise error(f"unparsable XML: {problem}") from None
    docinfo = root.getroottree().docinfo
    if docinfo.doctype or docinfo.internalDTD is not None or docinfo.externalDTD is not None:
        raise error("XML with a DOCTYPE is refused")  # e.g. UTF-16 hid it from the byte check
    return root


def reject_duplicate_ids(root: etree._Element, error: type[Exception] = RefusedDocument) -> None:
    """Raise ``error`` when one ID value is carried by two elements (signature wrapping)."""
    seen: set[str] = set()
    for element in root.iter(etree.Element):
        for name, value in element.attrib.items():
            if etree.QName(name).localname in _ID_NAMES:
                if value in seen:
                    raise error(f"the ID {value!r} occurs more than once")
                seen.add(value)


def _serialise(root: etree._Element) -> str:
    return str(etree.tostring(root, encoding="unicode"))


def _exclusive_c14n(element: etree._Element) -> bytes:
    """Exclusive c14n of ``element``'s subtree without comments (what a ``#ID`` reference and
    SignedInfo's CanonicalizationMethod select)."""
    return bytes(etree.tostring(element, method="c14n", exclusive=True, with_comments=False))


def _base64(data: bytes) -> str:
    """Base64 in lines of 64 characters, as xmlsec writes DigestValue and SignatureValue."""
    text = base64.b64encode(data).decode("ascii")
    return "\n".join(text[start:start + 64] for start in range(0, len(text), 64))


def _element_with_id(root: etree._Element, node_id: str | None, node_name: str | None,
                     error: type[Exception]) -> etree._Element:
    """The element whose ``ID`` is ``node_id`` (the root without one), of type ``node_name``."""
    if node_id:
        found = [e for e in root.iter(etree.Element) if e.get("ID") == node_id]
        if len(found) != 1:
            raise error(f"no element with ID {node_id!r}")
        target = found[0]
    else:
        target = root
    if node_name:
        namespace, _, local = node_name.rpartition(":")
        qname = etree.QName(target)
        if qname.localname != local or (namespace and qname.namespace != namespace):
            raise error(f"the element with ID {node_id!r} is not a {node_name}")
    return target


def _own_signature(target: etree._Element, error: type[Exception]) -> etree._Element:
    """The one ds:Signature that is a direct child of ``target`` (SAML's enveloped profile)."""
    signatures = target.findall(_SIGNATURE)
    if len(signatures) != 1:
        raise error(f"expected one signature on the element, found {len(signatures)}")
    return signatures[0]


# --- keys ----------------------------------------------------------------------------------

class _KeyCache:
    """Keys loaded from files, by content hash: pysaml2 writes certificates to new temp files."""

    def __init__(self, size: int = 32) -> None:
        self._keys: OrderedDict[tuple[int, bytes], xmlsec.Key] = OrderedDict()
        self._managers: OrderedDict[tuple[int, bytes], xmlsec.KeysManager] = OrderedDict()
        self._size = size
        self._lock = threading.Lock()

    def load(self, path: str | os.PathLike[str], key_format: int) -> xmlsec.Key:
        return self.load_data(Path(path).read_bytes(), key_format)

    def load_data(self, data: bytes, key_format: int) -> xmlsec.Key:
        # Contexts and managers copy the key they are given; the cached one is only read.
        return self._cached(self._keys, (key_format, hashlib.sha256(data).digest()),
                            lambda: xmlsec.Key.from_memory(data, key_format, None))

    def receiver(self, data: bytes, key_format: int) -> xmlsec.KeysManager:
        """A keys manager holding only the public key in ``data``, to encrypt for it.

        Made once per key: a new manager costs ~6 ms (xmlsec sets up an X509 store for it),
        four times the rest of an encryption. Encrypting only reads it (the EncryptedKey's
        KeyInfo, which xmlsec would resolve, is added afterwards).
        """
        def make() -> xmlsec.KeysManager:
            manager = xmlsec.KeysManager()
            manager.add_key(self.load_data(data, key_format))
            return manager

        return self._cached(self._managers, (key_format, hashlib.sha256(data).digest()), make)

    def _cached(self, store: OrderedDict[tuple[int, bytes], _Cached], index: tuple[int, bytes],
                make: Callable[[], _Cached]) -> _Cached:
        with self._lock:
            value = store.get(index)
            if value is not None:
                store.move_to_end(index)
                return value
        value = make()
        with self._lock:
            store[index] = value
            while len(store) > self._size:
                store.popitem(last=False)
        return value


_CERT_FORMATS = {"pem": _T.KeyDataFormatCertPem, "der": _T.KeyDataFormatCertDer}


# --- signatures ----------------------------------------------------------------------------

@dataclass(frozen=True)
class _SignatureProfile:
    signature_methods: dict[str, _Transform]
    digest_methods: dict[str, _Transform]


def _algorithm(parent: etree._Element, child: str, error: type[Exception]) -> str:
    element = parent.find(f"{{{DSIG}}}{child}")
    if element is None or not element.get("Algorithm"):
        raise error(f"no {child}")
    return str(element.get("Algorithm"))


def check_signature_profile(signature: etree._Element, target: etree._Element,
                            profile: _SignatureProfile, sha1_methods: set[str]) -> None:
    """Refuse anything but one same-document Reference to ``target`` with allowed algorithms.

    Raises :class:`Sha1Refused` for SHA-1 (when not allowed), else :class:`RefusedSignature`.
    """
    signed_info = signature.findall(f"{{{DSIG}}}SignedInfo")
    if len(signed_info) != 1:
        raise RefusedSignature("expected one SignedInfo")
    if signature.find(f"{{{DSIG}}}Object") is not None:
        raise RefusedSignature("ds:Object is not allowed in SAML signatures")
    info = signed_info[0]
    if _algorithm(info, "CanonicalizationMethod", RefusedSignature) not in C14N_METHODS:
        raise RefusedSignature("canonicalization method not allowed")
    method = _algorithm(info, "SignatureMethod", RefusedSignature)
    if method not in profile.signature_methods:
        raise (Sha1Refused if method in sha1_methods else RefusedSignature)(
            f"signature method {method} not allowed")
    references = info.findall(f"{{{DSIG}}}Reference")
    if len(references) != 1:
        raise RefusedSignature(f"expected one Reference, found {len(references)}")
    reference = references[0]
    uri = reference.get("URI")
    target_id = target.get("ID")
    # Only "#<ID of the signed element>"; "" (whole document) only for a signature on the root.
    allowed = {f"#{target_id}"} if target_id else set()
    if target.getparent() is None:
        allowed.add("")
    if uri is None or uri not in allowed:
        raise RefusedSignature(f"reference {uri!r} does not point to the signed element")
    for transform in reference.iterfind(f"{{{DSIG}}}Transforms/{{{DSIG}}}Transform"):
        if transform.get("Algorithm") not in REFERENCE_TRANSFORMS:
            raise RefusedSignature(f"transform {transform.get('Algorithm')} not allowed")
    digest = _algorithm(reference, "DigestMethod", RefusedSignature)
    if digest not in profile.digest_methods:
        raise (Sha1Refused if digest in sha1_methods else RefusedSignature)(
            f"digest method {digest} not allowed")


def _signature_context(key: xmlsec.Key, target: etree._Element,
                       profile: _SignatureProfile) -> xmlsec.SignatureContext:
    context = xmlsec.SignatureContext()
    context.key = key
    # Only the signed element's ID is registered: the reference cannot resolve elsewhere.
    if target.get("ID"):
        context.register_id(target, "ID")
    # xmlsec's own allow-lists, a second line behind check_signature_profile.
    for transform in (*REFERENCE_TRANSFORMS.values(), *profile.digest_methods.values()):
        context.enable_reference_transform(transform)
    for transform in (*C14N_METHODS.values(), *profile.signature_methods.values()):
        context.enable_signature_transform(transform)
    return context


def _raise_template_to_sha256(signature: etree._Element) -> None:
    """Our signatures are RSA-SHA2: SHA-1 in pysaml2's template (its default) becomes SHA-256."""
    method = signature.find(f"{{{DSIG}}}SignedInfo/{{{DSIG}}}SignatureMethod")
    if method is not None and method.get("Algorithm") in SHA1_SIGNATURE_METHODS:
        method.set("Algorithm", SIGN_ALGORITHM)
    for digest in signature.iterfind(f"{{{DSIG}}}SignedInfo/{{{DSIG}}}Reference/"
                                     f"{{{DSIG}}}DigestMethod"):
        if digest.get("Algorithm") in SHA1_DIGEST_METHODS:
            digest.set("Algorithm", DIGEST_ALGORITHM)


# --- the backend ---------------------------------------------------------------------------

class InProcessCryptoBackend(CryptoBackend):  # type: ignore[misc]  # pysaml2 is untyped
    """pysaml2's ``CryptoBackend`` on python-xmlsec: no ``xmlsec1`` program, no temp files.

    Thread-safe: every call works on its own parsed document and xmlsec contexts.
    """

    def __init__(self, *, allow_sha1_verification: bool = False) -> None:
        super().__init__()
        # Old peers may still sign with SHA-1; accepting that is a deliberate, visible choice.
        self.allow_sha1_verification = allow_sha1_verification
        signature_methods = dict(SIGNATURE_METHODS)
        digest_methods = dict(DIGEST_METHODS)
        if allow_sha1_verification:
            signature_methods.update(SHA1_SIGNATURE_METHODS)
            digest_methods.update(SHA1_DIGEST_METHODS)
        self._verify_profile = _SignatureProfile(signature_methods, digest_methods)
        self._sha1_methods = set(SHA1_SIGNATURE_METHODS) | set(SHA1_DIGEST_METHODS)
        self._keys = _KeyCache()

    @property
    def version(self) -> str:
        """The xmlsec library version, as pysaml2's ``version_nums`` expects ("1.3.7")."""
        library_version = getattr(xmlsec, "get_libxmlsec_version", None)
        if library_version is None:
            return str(getattr(xmlsec, "__version__", "0.0.0"))
        return ".".join(str(part) for part in library_version())

    # -- signatures --

    def sign_statement(self, statement: str | bytes | Any, node_name: str | None,
                       key_file: str | os.PathLike[str], node_id: str | None) -> str:
        """Fill the signature template on the element ``node_id`` (the root without one).

        Returns the signed document; raises :class:`~saml2.sigver.SignatureError` (a subclass).
        """
        if isinstance(statement, SamlBase):
            statement = str(statement)
        root = parse_xml(statement)
        reject_duplicate_ids(root)
        target = _element_with_id(root, node_id, node_name, RefusedDocument)
        signature = _own_signature(target, RefusedSignature)
        _raise_template_to_sha256(signature)
        signing_profile = _SignatureProfile(
            {m: SIGNATURE_METHODS[m] for m in _RSA_SIGNING},
            {m: DIGEST_METHODS[m] for m in _SHA2_DIGESTS})
        check_signature_profile(signature, target, signing_profile, self._sha1_methods)
        try:
            key = self._keys.load(key_file, _T.KeyDataFormatPem)
            _signature_context(key, target, signing_profile).sign(signature)
        except (xmlsec.Error, OSError) as error:
            raise SignatureError(f"signing failed: {error}") from error
        return _serialise(root)

    def sign_elements(self, elements: Sequence[etree._Element],
                      key_file: str | os.PathLike[str], certificate: str) -> None:
        """Sign elements of a document we built ourselves, in the order given (inner first).

        Each gets an enveloped RSA-SHA256 signature (SHA-256 digest, exclusive c14n, one
        Reference to its own ``ID``) right after its Issuer, with ``certificate`` (base64 DER)
        in KeyInfo: what :meth:`sign_statement` makes of pysaml2's template, without parsing
        and serialising the document once per signature.

        Digest and SignedInfo are libxml2's exclusive c14n (as in xmlsec); the RSA signature
        comes from ``cryptography`` with the key object kept per process: xmlsec prepares its
        key afresh for every signature, which cost half as much again as the signature itself
        at 2048 bits (~0.12 ms each). Verification stays with xmlsec.
        """
        try:
            key = load_private_key(Path(key_file))
        except KeyFileError as error:
            raise SignatureError(f"signing failed: {error}") from error
        if not isinstance(key, rsa.RSAPrivateKey):
            raise SignatureError("signing failed: the key is not an RSA key")
        try:
            for element in elements:
                signature = xmlsec.template.create(element, _T.TransformExclC14N,
                                                   _T.TransformRsaSha256, ns="ds")
                reference = xmlsec.template.add_reference(
                    signature, _T.TransformSha256, uri=f"#{element.get('ID')}")
                xmlsec.template.add_transform(reference, _T.TransformEnveloped)
                xmlsec.template.add_transform(reference, _T.TransformExclC14N)
                xmlsec.template.x509_data_add_certificate(xmlsec.template.add_x509_data(
                    xmlsec.template.ensure_key_info(signature))).text = certificate
                # The enveloped-signature transform takes this Signature out of the element
                # again: the element digested before the Signature goes in gives the same octets.
                reference.find(_DIGEST_VALUE).text = _base64(
                    hashlib.sha256(_exclusive_c14n(element)).digest())
                issuer = element.find(_ISSUER)
                element.insert(0 if issuer is None else element.index(issuer) + 1, signature)
                signature.find(_SIGNATURE_VALUE).text = _base64(key.sign(
                    _exclusive_c14n(signature.find(_SIGNED_INFO)), padding.PKCS1v15(),
                    hashes.SHA256()))
        except (xmlsec.Error, etree.C14NError, ValueError) as error:
            raise SignatureError(f"signing failed: {error}") from error

    def validate_signature(self, signedtext: str | bytes, cert_file: str | os.PathLike[str],
                           cert_type: str, node_name: str | None, node_id: str | None) -> bool:
        """True when the element ``node_id`` (the root without one) carries a valid signature
        by the key of ``cert_file``; otherwise raises a :class:`~saml2.sigver.SignatureError`.
        """
        root = parse_xml(signedtext)
        reject_duplicate_ids(root)
        target = _element_with_id(root, node_id, node_name, RefusedSignature)
        signature = _own_signature(target, RefusedSignature)
        check_signature_profile(signature, target, self._verify_profile, self._sha1_methods)
        key_format = _CERT_FORMATS.get(cert_type)
        if key_format is None:
            raise SignatureError(f"unsupported certificate type {cert_type!r}")
        try:
            # The preset key: xmlsec reads no KeyInfo when the context has a key.
            key = self._keys.load(cert_file, key_format)
            _signature_context(key, target, self._verify_profile).verify(signature)
        except (xmlsec.Error, OSError) as error:
            raise SignatureError(f"signature does not verify: {error}") from error
        return True

    # -- encryption --

    def encrypt(self, text: str | bytes, recv_key: str | os.PathLike[str],
                template: str | os.PathLike[str] | Any, session_key_type: str = "",
                xpath: str = "") -> bytes:
        """Encrypt the element at ``xpath`` (the root without one) for the certificate
        ``recv_key``. Returns the document as UTF-8 bytes, as pysaml2's xmlsec1 backend does.

        AES-256-GCM and RSA-OAEP whatever ``session_key_type`` and the template ask for; the
        template gives only the Ids and the KeyInfo of the EncryptedKey.
        """
        root = parse_xml(text, EncryptError)
        nodes = root.xpath(xpath) if xpath else [root]
        if not isinstance(nodes, list) or not nodes or not isinstance(nodes[0], etree._Element):
            raise EncryptError(f"nothing to encrypt at {xpath!r}")
        root = _encrypt_element(root, nodes[0], self._receiver(recv_key),
                                _EncryptionTemplate.read(template))
        return _serialise(root).encode("utf-8")

    def encrypt_assertion(self, statement: str | Any, enc_key: str | os.PathLike[str],
                          template: str | Any, key_type: str = "", node_xpath: str | None = None,
                          node_id: str | None = None) -> str:
        """Replace the assertion in the response's EncryptedAssertion by its EncryptedData."""
        if isinstance(statement, SamlBase):
            statement = pre_encrypt_assertion(statement)
        root = parse_xml(str(statement), EncryptError)
        if node_id:
            nodes = [e for e in root.iter(etree.Element) if e.get("ID") == node_id]
        else:
            found = root.xpath(node_xpath or ASSERT_XPATH)
            nodes = [n for n in found if isinstance(n, etree._Element)] \
                if isinstance(found, list) else []
        if not nodes:
            raise EncryptError("no assertion to encrypt")
        root = _encrypt_element(root, nodes[0], self._receiver(enc_key),
                                _EncryptionTemplate.read(template))
        return _serialise(root)

    def encrypt_element(self, element: etree._Element, certificate: str,
                        key_name: str | None = None) -> etree._Element:
        """The xenc:EncryptedData of ``element`` for ``certificate`` (base64 DER, as in
        metadata); raises ``EncryptError``.

        What :meth:`encrypt_assertion` does with pysaml2's template (AES-256-GCM, RSA-OAEP,
        the certificate and ``key_name`` in the EncryptedKey's KeyInfo), without a template,
        temp file or parse. ``element`` must be the root of its own document: xmlsec
        serialises it alone, and only a root declares every namespace it uses, so that the
        decrypted element stands alone too (pysaml2's "self-contained" assertion).
        """
        if element.getparent() is not None:
            raise EncryptError("only a document's root is encrypted (its namespaces)")
        try:
            receiver = self._keys.receiver(base64.b64decode("".join(certificate.split())),
                                           _T.KeyDataFormatCertDer)
        except (xmlsec.Error, ValueError) as error:
            raise EncryptError(f"unusable encryption certificate: {error}") from error
        return _encrypt_element(element, element, receiver,
                                _EncryptionTemplate.for_certificate(certificate, key_name))

    def _receiver(self, path: str | os.PathLike[str]) -> xmlsec.KeysManager:
        """The public key of the PEM certificate in ``path`` (pysaml2 writes temp files)."""
        try:
            return self._keys.receiver(Path(path).read_bytes(), _T.KeyDataFormatCertPem)
        except (xmlsec.Error, OSError) as error:
            raise EncryptError(f"encryption failed: {error}") from error

    def decrypt(self, enctext: str | bytes, key_file: str | os.PathLike[str]) -> str:
        """Decrypt the first EncryptedData with the private key in ``key_file``.

        Returns the whole document; raises :class:`~saml2.sigver.DecryptError`.
        """
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
            manager.add_key(self._keys.load(key_file, _T.KeyDataFormatPem))
            xmlsec.EncryptionContext(manager).decrypt(encrypted)
        except (xmlsec.Error, OSError) as error:
            raise DecryptError(f"decryption failed: {error}") from error
        return _serialise(root)


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


# --- wiring into pysaml2 -------------------------------------------------------------------

def install_backend(entity: Any, backend: InProcessCryptoBackend | None = None
                    ) -> InProcessCryptoBackend:
    """Use ``backend`` (a new one by default) in a pysaml2 ``Server``/``Saml2Client`` or in a
    ``SecurityContext``; also for its metadata store and Redirect-binding signatures.

    The entity's config should say ``"crypto_backend": "XMLSecurity"``: pysaml2 cannot name a
    custom backend class there, and ``"xmlsec1"`` makes it look for the program.
    """
    backend = backend or InProcessCryptoBackend()
    security = getattr(entity, "sec", entity)
    security.crypto = backend
    if security.sec_backend is None and security.key_file:
        # pysaml2 sets up its Redirect-binding signer only for the xmlsec1 backend.
        security.sec_backend = RSACrypto(load_private_key(Path(security.key_file)))
    metadata = getattr(entity, "metadata", None)
    if isinstance(metadata, MetadataStore) and metadata.security is not None:
        # Signed remote metadata is verified through the store's own security context.
        metadata.security.crypto = backend
    return backend


def security_context(config: Any, backend: InProcessCryptoBackend | None = None) -> Any:
    """pysaml2's ``security_context(config)`` with this backend, e.g. to sign metadata."""
    previous = config.crypto_backend
    config.crypto_backend = "XMLSecurity"  # only so pysaml2 does not look for xmlsec1
    try:
        context = pysaml2_security_context(config)
    finally:
        config.crypto_backend = previous
    install_backend(context, backend)
    return context


__all__ = [
    "InProcessCryptoBackend",
    "RefusedDocument",
    "RefusedSignature",
    "Sha1Refused",
    "install_backend",
    "parse_xml",
    "security_context",
]
