"""Making and checking enveloped XML signatures on SAML elements, in-process.

Verification uses only the preset key from the given certificate; KeyInfo in the document is
never read (``xmlsec1 --enabled-key-data raw-x509-cert`` plus a preset key). Every signature
made or checked keeps to :mod:`idp.samlkit.signature_profile`. Errors are pysaml2's
:class:`~saml2.sigver.SignatureError` or one of its subclasses.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import os
import threading
from collections.abc import Sequence
from pathlib import Path

import xmlsec
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from lxml import etree  # type: ignore[import-untyped]  # no stubs installed
from saml2.sigver import SignatureError

from idp.samlkit.key_cache import KeyCache
from idp.samlkit.keys import KeyFileError, load_private_key
from idp.samlkit.signature_profile import (
    DIGEST_ALGORITHM,
    SHA1_DIGEST_METHODS,
    SHA1_METHODS,
    SHA1_SIGNATURE_METHODS,
    SIGN_ALGORITHM,
    SIGNING_PROFILE,
    RefusedSignature,
    SignatureProfile,
    check_signature_profile,
    own_signature,
    signature_context,
)
from idp.samlkit.untrusted_xml import (
    DSIG,
    RefusedDocument,
    element_with_id,
    parse_xml,
    reject_duplicate_ids,
    serialise,
)

_SIGNED_INFO = f"{{{DSIG}}}SignedInfo"
_REFERENCE = f"{{{DSIG}}}SignedInfo/{{{DSIG}}}Reference"
_SIGNATURE_VALUE = f"{{{DSIG}}}SignatureValue"
_DIGEST_VALUE = f"{{{DSIG}}}DigestValue"
_ISSUER = "{urn:oasis:names:tc:SAML:2.0:assertion}Issuer"

_T = xmlsec.constants
# Per thread: lxml trees are not shared between threads.
_TEMPLATES = threading.local()
_CERT_FORMATS = {"pem": _T.KeyDataFormatCertPem, "der": _T.KeyDataFormatCertDer}


def sign_statement(statement: str | bytes, node_name: str | None,
                   key_file: str | os.PathLike[str], node_id: str | None,
                   keys: KeyCache) -> str:
    """Fill the signature template on the element ``node_id`` (the root without one) with the
    key in ``key_file``; returns the signed document."""
    root = parse_xml(statement)
    reject_duplicate_ids(root)
    target = element_with_id(root, node_id, node_name, RefusedDocument)
    signature = own_signature(target, RefusedSignature)
    _raise_template_to_sha256(signature)
    check_signature_profile(signature, target, SIGNING_PROFILE, SHA1_METHODS)
    try:
        key = keys.load(key_file, _T.KeyDataFormatPem)
        signature_context(key, target, SIGNING_PROFILE).sign(signature)
    except (xmlsec.Error, OSError) as error:
        raise SignatureError(f"signing failed: {error}") from error
    return serialise(root)


def sign_elements(elements: Sequence[etree._Element], key_file: str | os.PathLike[str],
                  certificate: str) -> None:
    """Sign elements of a document we built ourselves, in the order given (inner first).

    Each gets an enveloped RSA-SHA256 signature (SHA-256 digest, exclusive c14n, one
    Reference to its own ``ID``) right after its Issuer, with ``certificate`` (base64 DER)
    in KeyInfo: what :func:`sign_statement` makes of pysaml2's template, without parsing
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
            signature = copy.deepcopy(_signature_template(certificate))
            reference = signature.find(_REFERENCE)
            reference.set("URI", f"#{element.get('ID')}")
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


def _signature_template(certificate: str) -> etree._Element:
    """The empty signature our signatures start from (Reference URI, DigestValue and
    SignatureValue still to fill in), made by xmlsec once per thread and certificate and
    copied for each signature: the same elements and whitespace, without five template calls
    per signature."""
    templates: dict[str, etree._Element] = _TEMPLATES.__dict__.setdefault("by_certificate", {})
    template = templates.get(certificate)
    if template is None:
        holder = etree.Element("template")
        template = xmlsec.template.create(holder, _T.TransformExclC14N, _T.TransformRsaSha256,
                                          ns="ds")
        reference = xmlsec.template.add_reference(template, _T.TransformSha256, uri="#")
        xmlsec.template.add_transform(reference, _T.TransformEnveloped)
        xmlsec.template.add_transform(reference, _T.TransformExclC14N)
        xmlsec.template.x509_data_add_certificate(xmlsec.template.add_x509_data(
            xmlsec.template.ensure_key_info(template))).text = certificate
        templates.clear()  # one certificate at a time (a key switch replaces it)
        templates[certificate] = template
    return template


def verify_signature(signedtext: str | bytes, cert_file: str | os.PathLike[str],
                     cert_type: str, node_name: str | None, node_id: str | None,
                     keys: KeyCache, profile: SignatureProfile) -> None:
    """Return when the element ``node_id`` (the root without one) carries a valid signature
    by the key of ``cert_file`` within ``profile``; raise otherwise."""
    root = parse_xml(signedtext)
    reject_duplicate_ids(root)
    target = element_with_id(root, node_id, node_name, RefusedSignature)
    signature = own_signature(target, RefusedSignature)
    check_signature_profile(signature, target, profile, SHA1_METHODS)
    key_format = _CERT_FORMATS.get(cert_type)
    if key_format is None:
        raise SignatureError(f"unsupported certificate type {cert_type!r}")
    try:
        # The preset key: xmlsec reads no KeyInfo when the context has a key.
        key = keys.load(cert_file, key_format)
        signature_context(key, target, profile).verify(signature)
    except (xmlsec.Error, OSError) as error:
        raise SignatureError(f"signature does not verify: {error}") from error


def verify_root_signature(root: etree._Element, certificates: Sequence[bytes],
                          keys: KeyCache, profile: SignatureProfile) -> None:
    """Return when the document's root, already parsed with
    :func:`~idp.samlkit.untrusted_xml.parse_xml`, carries a valid signature by the key of one of
    ``certificates`` (DER) within ``profile``; raise a :class:`SignatureError` otherwise.

    The same checks as :func:`verify_signature` on the root, without parsing the document again:
    no ID twice, one signature as the root's direct child, one Reference to the root's own ID,
    allowed algorithms only; the keys come from ``certificates`` (never from KeyInfo).
    """
    reject_duplicate_ids(root)
    signature = own_signature(root, RefusedSignature)
    check_signature_profile(signature, root, profile, SHA1_METHODS)
    if not certificates:
        raise SignatureError("no certificate to verify the signature with")
    problem: Exception | None = None
    for certificate in certificates:
        try:
            key = keys.load_data(certificate, _T.KeyDataFormatCertDer)
            signature_context(key, root, profile).verify(signature)
            return
        except xmlsec.Error as error:
            problem = error
    raise SignatureError(f"signature does not verify: {problem}")


def _raise_template_to_sha256(signature: etree._Element) -> None:
    """Our signatures are RSA-SHA2: SHA-1 in pysaml2's template (its default) becomes SHA-256."""
    method = signature.find(f"{{{DSIG}}}SignedInfo/{{{DSIG}}}SignatureMethod")
    if method is not None and method.get("Algorithm") in SHA1_SIGNATURE_METHODS:
        method.set("Algorithm", SIGN_ALGORITHM)
    for digest in signature.iterfind(f"{{{DSIG}}}SignedInfo/{{{DSIG}}}Reference/"
                                     f"{{{DSIG}}}DigestMethod"):
        if digest.get("Algorithm") in SHA1_DIGEST_METHODS:
            digest.set("Algorithm", DIGEST_ALGORITHM)


def _exclusive_c14n(element: etree._Element) -> bytes:
    """Exclusive c14n of ``element``'s subtree without comments (what a ``#ID`` reference and
    SignedInfo's CanonicalizationMethod select)."""
    return bytes(etree.tostring(element, method="c14n", exclusive=True, with_comments=False))


def _base64(data: bytes) -> str:
    """Base64 in lines of 64 characters, as xmlsec writes DigestValue and SignatureValue."""
    text = base64.b64encode(data).decode("ascii")
    return "\n".join(text[start:start + 64] for start in range(0, len(text), 64))
