"""The first, cheap look at an incoming protocol message: before pysaml2 builds its objects and
before any key is used.

Checks run cheapest first (docs/security.md, "Order of checks"): the binding has bounded the
size already; here one C-level parse bounds the structure (element count and depth), names the
message kind and reads its Issuer, so that a message from nobody we know, or of a shape no
portal sends, is refused without building pysaml2's object tree or verifying a signature.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from lxml import etree  # type: ignore[import-untyped]  # no stubs installed

from idp.saml.messages import RequestRejected
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
