"""Reading XML from outside: parsed without DTDs, entities or network, and refused on sight.

Every signed or encrypted document goes through :func:`parse_xml` first:

- a DOCTYPE is refused outright (entity expansion, external entities);
- an ID value occurring twice in a document is an error (:func:`reject_duplicate_ids`); the
  classic signature-wrapping move, which ``xmlsec1 --id-attr`` refuses too.
"""

from __future__ import annotations

import re

from lxml import etree  # type: ignore[import-untyped]  # no stubs installed
from saml2.sigver import SignatureError

DSIG = "http://www.w3.org/2000/09/xmldsig#"
XENC = "http://www.w3.org/2001/04/xmlenc#"

_XML_DECLARATION = re.compile(r"^\s*<\?xml[^>]*\?>")
_ID_NAMES = {"ID", "Id", "id"}


class RefusedDocument(SignatureError):  # type: ignore[misc]
    """The document is not one we process at all (DOCTYPE, unparsable, duplicate IDs)."""


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


def element_with_id(root: etree._Element, node_id: str | None, node_name: str | None,
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


def serialise(root: etree._Element) -> str:
    """The document under ``root`` as text, as pysaml2 expects it back."""
    return str(etree.tostring(root, encoding="unicode"))
