"""Incoming protocol messages, read with lxml from one hardened parse.

First the cheap look at any message (:func:`read_envelope`), before pysaml2 builds its objects
and before any key is used. Checks run cheapest first (docs/security.md, "Order of checks"): the
binding has bounded the size already; here one C-level parse bounds the structure (element
count and depth), names the message kind and reads its Issuer, so that a message from nobody we
know, or of a shape no portal sends, is refused without building an object tree or verifying a
signature.

Then, for single sign-on, the full reading of an AuthnRequest from that same tree
(:func:`read_authn_request`) against the portal's metadata as the registry checked it: no second
parse and no pysaml2 object model on the hot path.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import datetime

from cryptography.hazmat.primitives.serialization import Encoding
from lxml import etree  # type: ignore[import-untyped]  # no stubs installed
from saml2 import BINDING_HTTP_POST
from saml2.saml import NAMEID_FORMAT_UNSPECIFIED
from saml2.sigver import SignatureError, SigverError

from idp.saml.akdb import AuthenticationRequest, ExtensionError, read_extension
from idp.saml.configuration import ISSUE_INSTANT_WINDOW
from idp.saml.messages import ParsedAuthnRequest, RequestedSubject, RequestRejected
from idp.saml.sp_metadata import SpMetadata
from idp.samlkit.crypto import InProcessCryptoBackend
from idp.samlkit.instants import parse_instant
from idp.samlkit.untrusted_xml import parse_xml

SAMLP = "urn:oasis:names:tc:SAML:2.0:protocol"
SAML = "urn:oasis:names:tc:SAML:2.0:assertion"
DSIG = "http://www.w3.org/2000/09/xmldsig#"
ENTITY_FORMAT = "urn:oasis:names:tc:SAML:2.0:nameid-format:entity"
# A signed AuthnRequest with the BundID extension and a certificate has about 60 elements and
# a depth of 6; these bounds leave ample room and cap the work a message can cause.
MAX_ELEMENTS = 300
MAX_DEPTH = 12


@dataclass(frozen=True)
class Envelope:
    """What the outside of a message says: its kind, Issuer, Version and ID (unverified)."""

    kind: str  # local name of the root, e.g. "AuthnRequest"
    issuer: str
    version: str | None
    message_id: str | None
    # An embedded ds:Signature is present (not yet verified).
    has_signature: bool = False
    # The parsed message (hardened parser, bounded structure): parsed once, read again by the
    # full check (:meth:`idp.saml.server.SamlIdp.parse_authn_request`).
    root: etree._Element | None = field(default=None, compare=False, repr=False)


def read_envelope(xml: bytes, kinds: tuple[str, ...]) -> Envelope:
    """Refuse (RequestRejected) what is too large in structure, not one of ``kinds`` of the
    SAML protocol namespace, or without an exact Issuer; else the envelope."""
    # Every element opens with "<" (and a non-empty one closes with another): counting them
    # costs next to nothing and spares the parser a document of thousands of elements.
    if xml.count(b"<") > 2 * MAX_ELEMENTS:
        raise RequestRejected(f"message has more than {MAX_ELEMENTS} elements")
    root = parse_xml(xml, error=RequestRejected)
    _check_structure(root)
    name = etree.QName(root)
    if name.namespace != SAMLP or name.localname not in kinds:
        raise RequestRejected(f"expected a samlp:{' or '.join(kinds)}, got {name.text!r}")
    return Envelope(kind=name.localname, issuer=issuer_of(root), version=root.get("Version"),
                    message_id=root.get("ID"),
                    has_signature=root.find(f"{{{DSIG}}}Signature") is not None, root=root)


def _check_structure(root: etree._Element) -> None:
    for count, _ in enumerate(root.iter(), start=1):
        if count > MAX_ELEMENTS:
            raise RequestRejected(f"message has more than {MAX_ELEMENTS} elements")
    # Depth: walk up from each leaf (bounded by MAX_ELEMENTS × MAX_DEPTH steps).
    for element in root.iter():
        if len(element) == 0:
            depth = 0
            parent = element
            while parent is not None:
                depth += 1
                if depth > MAX_DEPTH:
                    raise RequestRejected(f"message is nested deeper than {MAX_DEPTH}")
                parent = parent.getparent()


def issuer_of(root: etree._Element) -> str:
    """The Issuer as sent: exactly one, first child, an entity ID without surrounding space.

    SAML core §3.2.1 and the profiles (§4.1.4.1) make the Issuer an entity; a value that only
    matches after trimming, or another Format, is not the portal's entity ID.
    """
    issuers = root.findall(f"{{{SAML}}}Issuer")
    if len(issuers) != 1 or root.index(issuers[0]) != 0:
        raise RequestRejected("message without exactly one leading Issuer")
    issuer = issuers[0]
    text = issuer.text or ""
    if not text or text != text.strip() or len(issuer):
        raise RequestRejected("Issuer is empty, has surrounding whitespace or markup")
    if issuer.get("Format", ENTITY_FORMAT) != ENTITY_FORMAT:
        raise RequestRejected(f"Issuer Format {issuer.get('Format')!r} is not entity")
    return str(text)


_AUTHN_REQUEST = f"{{{SAMLP}}}AuthnRequest"
_SIGNATURE = f"{{{DSIG}}}Signature"
_EXTENSIONS = f"{{{SAMLP}}}Extensions"
_CLASS_REF = f"{{{SAML}}}AuthnContextClassRef"
_NAME_ID = f"{{{SAML}}}NameID"
# Children an AuthnRequest has at most once (SAML core §3.4.1) that the answer depends on: two
# are refused rather than one picked (pysaml2 took the last). Two samlp:Extensions are the akdb
# reader's to refuse (RequestUnsupported to a signed request).
_SINGLE_CHILDREN = {"Subject": SAML, "NameIDPolicy": SAMLP, "RequestedAuthnContext": SAMLP}
_BOOLEANS = {"true": True, "1": True, "false": False, "0": False}


def _at_most_one(root: etree._Element, name: str) -> etree._Element | None:
    found = root.findall(f"{{{_SINGLE_CHILDREN[name]}}}{name}")
    if len(found) > 1:
        raise RequestRejected(f"unparsable AuthnRequest: more than one {name}")
    return found[0] if found else None


def _boolean(element: etree._Element, name: str, default: bool = False) -> bool:
    """An xs:boolean attribute; anything else is refused (as pysaml2's schema check did)."""
    value = element.get(name)
    if value is None:
        return default
    # xs:boolean: exactly these four literals (case matters), whitespace collapsed.
    if value.strip() not in _BOOLEANS:
        raise RequestRejected(f"unparsable AuthnRequest: {name}={value!r} is not a boolean")
    return _BOOLEANS[value.strip()]


def _requested_subject(subject: etree._Element | None) -> RequestedSubject | None:
    """The principal an AuthnRequest names; a Subject without a plain NameID names nobody we
    could find (encrypted or base identifiers are not issued by us)."""
    if subject is None:
        return None
    name_id = subject.find(_NAME_ID)
    if name_id is None or not (name_id.text or "").strip():
        return RequestedSubject(name_id="")
    return RequestedSubject(name_id=name_id.text.strip(), name_id_format=name_id.get("Format"))


def read_authn_request(root: etree._Element, now: datetime, *, metadata: SpMetadata | None,
                       our_urls: Collection[str], crypto: InProcessCryptoBackend,
                       require_signature: bool = False) -> ParsedAuthnRequest:
    """Check an AuthnRequest, as :func:`read_envelope` parsed it, against the metadata of the
    portal its Issuer names (None: nobody we know); raise :class:`RequestRejected`.

    An embedded signature is verified with the portal's signing keys from metadata, never with
    KeyInfo, and must sign the root itself (:func:`idp.samlkit.signatures.verify_root_signature`);
    ``our_urls`` are the endpoints a Destination may name.
    """
    if root.tag != _AUTHN_REQUEST:
        raise RequestRejected("not an AuthnRequest")
    try:
        issuer = issuer_of(root)
    except RequestRejected:
        raise RequestRejected("message without an exact Issuer") from None
    if metadata is None or metadata.entity_id != issuer:
        raise RequestRejected(f"unknown issuer {issuer!r}")
    request_id = root.get("ID")
    if not request_id:
        raise RequestRejected("unparsable AuthnRequest: no ID")
    if root.get("Version") != "2.0":
        raise RequestRejected(f"SAML version {root.get('Version')!r}")
    singles = {name: _at_most_one(root, name) for name in _SINGLE_CHILDREN}
    signed = root.find(_SIGNATURE) is not None
    if signed:
        try:
            crypto.verify_root_signature(root, [certificate.public_bytes(Encoding.DER) for
                                                certificate in metadata.signing_certificates])
        except (SignatureError, SigverError) as error:
            raise RequestRejected(f"bad signature: {error}") from None
    # A portal that must sign is refused without one.
    if require_signature and not signed:
        raise RequestRejected("unsigned request where a signature is required")
    destination = root.get("Destination")
    # docs/architecture.md, pysaml2 trap 4: Destination must be ours when given, and must be
    # given when signed.
    if destination is not None and destination not in our_urls:
        raise RequestRejected(f"Destination {destination!r} is not ours")
    if signed and destination is None:
        raise RequestRejected("signed request without Destination")
    issue_instant = parse_instant(root.get("IssueInstant"))
    if issue_instant is None or abs(now - issue_instant) > ISSUE_INSTANT_WINDOW:
        raise RequestRejected("IssueInstant outside the accepted window")
    # docs/architecture.md, pysaml2 trap 2: the ACS only from metadata (URL or index must
    # match exactly).
    acs_url = _acs_from_metadata(metadata, root.get("AssertionConsumerServiceURL"),
                                 root.get("AssertionConsumerServiceIndex"))
    policy = singles["NameIDPolicy"]
    context = singles["RequestedAuthnContext"]
    name_id_format = policy.get("Format") if policy is not None else None
    akdb: AuthenticationRequest | None = None
    akdb_problem: str | None = None
    # Most portals send no samlp:Extensions at all; where there is one, the BundID extension
    # may be in it.
    if root.find(_EXTENSIONS) is not None:
        try:
            akdb = read_extension(root)
        except ExtensionError as error:  # told to the portal if the request is signed
            akdb_problem = str(error)
    return ParsedAuthnRequest(
        request_id=request_id, issuer=issuer, issue_instant=issue_instant,
        destination=destination, acs_url=acs_url, acs_binding=BINDING_HTTP_POST,
        force_authn=_boolean(root, "ForceAuthn"), is_passive=_boolean(root, "IsPassive"),
        name_id_format=(name_id_format if name_id_format
                        and name_id_format != NAMEID_FORMAT_UNSPECIFIED else None),
        allow_create=policy is None or _boolean(policy, "AllowCreate", default=True),
        requested_contexts=tuple(ref.text.strip() for ref in (
            context.iterfind(_CLASS_REF) if context is not None else ()) if ref.text),
        comparison=(context.get("Comparison") or "exact") if context is not None
        else "exact",
        signed=signed, akdb=akdb, akdb_problem=akdb_problem,
        subject=_requested_subject(singles["Subject"]))


def _acs_from_metadata(metadata: SpMetadata, url: str | None, index: str | None) -> str:
    """The HTTP-POST AssertionConsumerService a request names (by URL or index), or the first
    in metadata if it names none (pysaml2's ``response_args`` choice)."""
    services = [service for service in metadata.acs if service.binding == BINDING_HTTP_POST]
    if url:
        found = next((url for service in services if service.location == url), None)
    elif index:
        found = next((service.location for service in services
                      if service.index is not None and str(service.index) == index), None)
    else:
        found = services[0].location if services else None
    if not found:
        raise RequestRejected("ACS not in metadata: no matching HTTP-POST service")
    return found
