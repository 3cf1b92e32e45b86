"""What an attacker can do to a signed SAML document: re-sign it raw and rearrange it.

``raw_sign`` uses python-xmlsec without any of the backend's restrictions, so a refused document
carries a signature that is cryptographically fine: the refusal is our policy, not bad maths.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from pathlib import Path

import xmlsec
from lxml import etree  # type: ignore[import-untyped]

DSIG = "http://www.w3.org/2000/09/xmldsig#"
SAML = "urn:oasis:names:tc:SAML:2.0:assertion"
SAMLP = "urn:oasis:names:tc:SAML:2.0:protocol"
T = xmlsec.constants
Element = etree._Element


def parse(xml: str | bytes) -> Element:
    data = xml.encode("utf-8") if isinstance(xml, str) else xml
    return etree.fromstring(data)


def text(root: Element) -> str:
    return str(etree.tostring(root, encoding="unicode"))


def private_key(path: Path) -> xmlsec.Key:
    return xmlsec.Key.from_file(str(path), T.KeyDataFormatPem)


def own_signature(element: Element) -> Element | None:
    return element.find(f"{{{DSIG}}}Signature")


def raw_sign(element: Element, key: xmlsec.Key, *, uri: str | None = None,
             sign_method: object = T.TransformRsaSha256, digest: object = T.TransformSha256,
             extra_transforms: Sequence[object] = (), key_info_cert: Path | None = None,
             register: Sequence[Element] = ()) -> Element:
    """Put a freshly made enveloped signature on ``element`` (after its Issuer)."""
    old = own_signature(element)
    if old is not None:
        element.remove(old)
    signature = xmlsec.template.create(element, T.TransformExclC14N, sign_method, ns="ds")
    issuer = element.find(f"{{{SAML}}}Issuer")
    element.insert(0 if issuer is None else element.index(issuer) + 1, signature)
    reference = xmlsec.template.add_reference(
        signature, digest, uri=f"#{element.get('ID')}" if uri is None else uri)
    xmlsec.template.add_transform(reference, T.TransformEnveloped)
    for transform in extra_transforms:
        node = xmlsec.template.add_transform(reference, transform)
        if transform is T.TransformXPath:
            xpath = etree.SubElement(node, f"{{{DSIG}}}XPath")
            xpath.text = "not(ancestor-or-self::*[local-name()='Conditions'])"
    xmlsec.template.add_transform(reference, T.TransformExclC14N)
    if key_info_cert is not None:
        key_info = xmlsec.template.ensure_key_info(signature)
        certificate = xmlsec.template.x509_data_add_certificate(
            xmlsec.template.add_x509_data(key_info))
        certificate.text = "".join(key_info_cert.read_text().strip().splitlines()[1:-1])
    context = xmlsec.SignatureContext()
    context.key = key
    for node in (element, *register):
        if node.get("ID"):
            context.register_id(node, "ID")
    context.sign(signature)
    return element


def first(root: Element, path: str) -> Element:
    found = root.find(path, {"saml": SAML, "samlp": SAMLP, "ds": DSIG})
    assert found is not None, path
    return found


def evil_twin(assertion: Element, new_id: str | None = None) -> Element:
    """A copy of ``assertion`` naming another citizen (with the original's signature)."""
    evil = copy.deepcopy(assertion)
    first(evil, "saml:Subject/saml:NameID").text = "mallory"
    if new_id is not None:
        evil.set("ID", new_id)
    return evil


# --- signature wrapping (XSW) on a Response whose Assertion is signed ----------------------

def _assertion(root: Element) -> Element:
    return first(root, "saml:Assertion")


def _wrapper(root: Element) -> Element:
    """Original assertion moved into an unknown wrapper element, evil twin in its place."""
    original = _assertion(root)
    evil = evil_twin(original)
    wrapper = etree.Element("{urn:example:evil}Wrapper")
    root.replace(original, evil)
    wrapper.append(original)
    evil.addprevious(wrapper)
    return root


def _extensions(root: Element) -> Element:
    """Original assertion hidden in samlp:Extensions, evil twin in its place (XSW7)."""
    original = _assertion(root)
    evil = evil_twin(original)
    root.replace(original, evil)
    extensions = etree.Element(f"{{{SAMLP}}}Extensions")
    extensions.append(original)
    first(root, "saml:Issuer").addnext(extensions)
    return root


def _assertion_in_assertion(root: Element) -> Element:
    """The evil twin wraps the original assertion (XSW4)."""
    original = _assertion(root)
    evil = evil_twin(original)
    root.replace(original, evil)
    evil.append(original)
    return root


def _sibling_before(root: Element) -> Element:
    """The evil twin placed before the original, both in the Response (XSW3)."""
    original = _assertion(root)
    original.addprevious(evil_twin(original))
    return root


def _inside_signature(root: Element) -> Element:
    """The original assertion inside the evil twin's (copied) signature (XSW6)."""
    original = _assertion(root)
    evil = evil_twin(original)
    root.replace(original, evil)
    signature = own_signature(evil)
    assert signature is not None
    signature.append(original)
    return root


def _in_object(root: Element) -> Element:
    """The original assertion in a ds:Object of the evil twin's signature (XSW8)."""
    original = _assertion(root)
    evil = evil_twin(original)
    root.replace(original, evil)
    signature = own_signature(evil)
    assert signature is not None
    etree.SubElement(signature, f"{{{DSIG}}}Object").append(original)
    return root


def _new_id_copied_signature(root: Element) -> Element:
    """An evil assertion with its own ID carrying the original's signature; the original
    appended at the end of the Response (XSW5)."""
    original = _assertion(root)
    evil = evil_twin(original, new_id="id-evil")
    root.replace(original, evil)
    root.append(original)
    return root


def _unsigned_wrapping_signed(root: Element) -> Element:
    """An unsigned evil assertion whose first signature in document order is the original's,
    nested inside it (what a depth-first signature search would find first)."""
    original = _assertion(root)
    evil = evil_twin(original, new_id="id-evil")
    signature = own_signature(evil)
    assert signature is not None
    evil.remove(signature)
    root.replace(original, evil)
    first(evil, "saml:Issuer").addnext(original)
    return root


ASSERTION_WRAPPING: dict[str, Callable[[Element], Element]] = {
    "wrapper": _wrapper,
    "extensions": _extensions,
    "assertion-in-assertion": _assertion_in_assertion,
    "sibling-before": _sibling_before,
    "inside-signature": _inside_signature,
    "in-object": _in_object,
    "new-id-copied-signature": _new_id_copied_signature,
    "unsigned-wrapping-signed": _unsigned_wrapping_signed,
}


# --- wrapping a signed Response ------------------------------------------------------------

def _response_inside_signature(root: Element) -> Element:
    """XSW1: evil Response (same ID) with the original inside its copied signature."""
    evil = copy.deepcopy(root)
    first(evil, "saml:Assertion/saml:Subject/saml:NameID").text = "mallory"
    signature = own_signature(evil)
    assert signature is not None
    signature.append(root)
    return evil


def _response_before_signature(root: Element) -> Element:
    """XSW2: evil Response (same ID) with the original placed just before its signature."""
    evil = copy.deepcopy(root)
    first(evil, "saml:Assertion/saml:Subject/saml:NameID").text = "mallory"
    signature = own_signature(evil)
    assert signature is not None
    signature.addprevious(root)
    return evil


def _response_new_id(root: Element) -> Element:
    """Evil Response with a new ID, the copied signature still pointing to the original,
    which sits in samlp:Extensions."""
    evil = copy.deepcopy(root)
    evil.set("ID", "id-evil-response")
    first(evil, "saml:Assertion/saml:Subject/saml:NameID").text = "mallory"
    extensions = etree.Element(f"{{{SAMLP}}}Extensions")
    extensions.append(root)
    signature = own_signature(evil)
    assert signature is not None
    signature.addnext(extensions)
    return evil


RESPONSE_WRAPPING: dict[str, Callable[[Element], Element]] = {
    "response-inside-signature": _response_inside_signature,
    "response-before-signature": _response_before_signature,
    "response-new-id": _response_new_id,
}
