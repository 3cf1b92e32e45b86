"""Which XML signatures we accept and make: placement, reference and algorithms.

What ``xmlsec1``'s command-line flags guaranteed for pysaml2, and a few refusals more:

- a signature must be a direct child of the element asked for, with exactly one Reference to
  that element's own ID (``--enabled-reference-uris empty,same-doc``, ``--node-id``);
- transforms and algorithms come from allow-lists (RSA/ECDSA with SHA-2; SHA-1 only in a
  :func:`verification_profile` that allows it); HMAC is never accepted;
- no ds:Object (where wrapped content would hide).

New signatures are RSA-SHA256 with SHA-256 digests (:data:`SIGN_ALGORITHM`,
:data:`DIGEST_ALGORITHM`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import xmlsec
from lxml import etree  # type: ignore[import-untyped]  # no stubs installed
from saml2.sigver import SignatureError

from idp.samlkit.untrusted_xml import DSIG

if TYPE_CHECKING:
    from xmlsec.constants import __Transform as _Transform

_SIGNATURE = f"{{{DSIG}}}Signature"

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
# Either kind of SHA-1 is refused with Sha1Refused, so a caller can tell it from the rest.
SHA1_METHODS = set(SHA1_SIGNATURE_METHODS) | set(SHA1_DIGEST_METHODS)
# What our own signatures use; SHA-1 in a pysaml2 template is raised to these.
SIGN_ALGORITHM = _T.TransformRsaSha256.href
DIGEST_ALGORITHM = _T.TransformSha256.href
_RSA_SIGNING = {t.href for t in (_T.TransformRsaSha256, _T.TransformRsaSha384,
                                 _T.TransformRsaSha512)}


class RefusedSignature(SignatureError):  # type: ignore[misc]
    """The signature breaks our profile: reference, transform, algorithm or placement."""


class Sha1Refused(RefusedSignature):
    """The signature uses SHA-1 and this backend does not accept it."""


@dataclass(frozen=True)
class SignatureProfile:
    """The signature and digest algorithms a signature may use."""

    signature_methods: dict[str, _Transform]
    digest_methods: dict[str, _Transform]


# Our own signatures: RSA (our keys are RSA keys) with SHA-2.
SIGNING_PROFILE = SignatureProfile({m: SIGNATURE_METHODS[m] for m in _RSA_SIGNING},
                                   dict(DIGEST_METHODS))


def verification_profile(allow_sha1: bool) -> SignatureProfile:
    """What a peer's signature may use: SHA-2, and SHA-1 only when ``allow_sha1``."""
    signature_methods = dict(SIGNATURE_METHODS)
    digest_methods = dict(DIGEST_METHODS)
    if allow_sha1:
        signature_methods.update(SHA1_SIGNATURE_METHODS)
        digest_methods.update(SHA1_DIGEST_METHODS)
    return SignatureProfile(signature_methods, digest_methods)


def own_signature(target: etree._Element, error: type[Exception]) -> etree._Element:
    """The one ds:Signature that is a direct child of ``target`` (SAML's enveloped profile)."""
    signatures = target.findall(_SIGNATURE)
    if len(signatures) != 1:
        raise error(f"expected one signature on the element, found {len(signatures)}")
    return signatures[0]


def _algorithm(parent: etree._Element, child: str, error: type[Exception]) -> str:
    element = parent.find(f"{{{DSIG}}}{child}")
    if element is None or not element.get("Algorithm"):
        raise error(f"no {child}")
    return str(element.get("Algorithm"))


def check_signature_profile(signature: etree._Element, target: etree._Element,
                            profile: SignatureProfile, sha1_methods: set[str]) -> None:
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


def signature_context(key: xmlsec.Key, target: etree._Element,
                      profile: SignatureProfile) -> xmlsec.SignatureContext:
    """An xmlsec context for ``key`` that resolves only ``target``'s ID and runs only the
    algorithms of ``profile``."""
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
