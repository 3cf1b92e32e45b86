"""The BundID request extension ``akdb:AuthenticationRequest``, read into plain data
(docs/architecture.md, "The akdb:AuthenticationRequest extension").

A portal puts it into the AuthnRequest's ``samlp:Extensions`` to say which attributes it wants
(and which it cannot do without), which login methods the citizen may use, what the consent page
should say about it, and whether error responses should carry an ``akdb:StatusDetail``. Whether
it is honoured at all is decided elsewhere (:func:`idp.saml.sso.receive`: only on signed
requests); here it is only read, with a cap on everything a portal could make large.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from lxml import etree  # type: ignore[import-untyped]  # no stubs installed

from idp.samlkit.bundid import AKDB_NAMESPACE, CLASSIC_UI_NAMESPACE
from idp.samlkit.untrusted_xml import RefusedDocument, parse_xml

SAMLP_NAMESPACE = "urn:oasis:names:tc:SAML:2.0:protocol"
SUPPORTED_VERSION = "2"

# BundID has a dozen attributes and half a dozen login methods; more is not a real request.
MAX_REQUESTED_ATTRIBUTES = 32
MAX_AUTHN_METHODS = 16
MAX_ATTRIBUTE_NAME_LENGTH = 256
MAX_METHOD_NAME_LENGTH = 32
# BundID shows the first 50 characters of OrganizationDisplayName; we do the same.
ORGANIZATION_DISPLAY_NAME_LENGTH = 50
PURPOSE_LENGTH = 300
# The column the consent keeps it in (idp.consent.models.Consent.online_service_id). An id is
# never cut short: a longer one makes the extension invalid.
ONLINE_SERVICE_ID_LENGTH = 200
_LANG = re.compile(r"^[A-Za-z]{2,8}(-[A-Za-z0-9]{1,8}){0,4}$")
_TRUE = ("true", "1")
_BOOLEAN = ("true", "false", "1", "0")


class AuthnMethod(StrEnum):
    """Login methods as BundID names them in ``akdb:AuthnMethods``."""

    BENUTZERNAME = "Benutzername"
    EID = "eID"
    EIDAS = "eIDAS"
    ELSTER = "Elster"
    FINK = "FINK"
    AUTHEGA = "Authega"
    DIIA = "Diia"


class StatusDetail(StrEnum):
    """Codes of ``akdb:StatusDetail`` in error responses to requests with EnableStatusDetail.

    IDP_REQUIRED_ATTRIBUTES_MISSING is BundID's; the others follow its pattern (the full BundID
    list is in its interface description, which is not public).
    """

    REQUIRED_ATTRIBUTES_MISSING = "IDP_REQUIRED_ATTRIBUTES_MISSING"
    REQUIRED_ATTRIBUTES_NOT_ALLOWED = "IDP_REQUIRED_ATTRIBUTES_NOT_ALLOWED"
    CONSENT_DECLINED = "IDP_CONSENT_DECLINED"
    AUTHN_CANCELLED = "IDP_AUTHN_CANCELLED"
    AUTHN_METHOD_NOT_AVAILABLE = "IDP_AUTHN_METHOD_NOT_AVAILABLE"
    TRUST_LEVEL_NOT_REACHABLE = "IDP_TRUST_LEVEL_NOT_REACHABLE"
    PASSIVE_NOT_POSSIBLE = "IDP_PASSIVE_NOT_POSSIBLE"
    NAME_ID_FORMAT_NOT_SUPPORTED = "IDP_NAMEID_FORMAT_NOT_SUPPORTED"
    INVALID_EXTENSION = "IDP_INVALID_REQUEST_EXTENSION"


class ExtensionError(ValueError):
    """The extension is there but cannot be understood; ``str(error)`` says why (for the log)."""


@dataclass(frozen=True)
class RequestedAttribute:
    """``akdb:RequestedAttribute``: an attribute by Name (urn:oid:…), and whether it is required."""

    name: str
    required: bool = False


@dataclass(frozen=True)
class DisplayInformation:
    """``akdb:DisplayInformation/classic-ui:Version``: what the citizen learns about the portal."""

    organization_display_name: str | None = None
    purpose: str | None = None
    lang: str | None = None
    online_service_id: str | None = None


@dataclass(frozen=True)
class AuthenticationRequest:
    """What a portal asked for in ``akdb:AuthenticationRequest``.

    ``None`` means the element was absent (no restriction); an empty tuple means it was present
    and empty (nothing requested, no method enabled).
    """

    requested_attributes: tuple[RequestedAttribute, ...] | None = None
    # The methods with <akdb:Enabled>true</akdb:Enabled>, as named in the request.
    authn_methods: tuple[str, ...] | None = None
    display: DisplayInformation = DisplayInformation()
    enable_status_detail: bool = False

    def allows(self, method: AuthnMethod) -> bool:
        """Whether the portal lets the citizen log in with ``method``."""
        return self.authn_methods is None or method.value in self.authn_methods

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (for the pending request in the database)."""
        return {
            "requested_attributes": None if self.requested_attributes is None else [
                [item.name, item.required] for item in self.requested_attributes],
            "authn_methods": None if self.authn_methods is None else list(self.authn_methods),
            "display": {"organization_display_name": self.display.organization_display_name,
                        "purpose": self.display.purpose, "lang": self.display.lang,
                        "online_service_id": self.display.online_service_id},
            "enable_status_detail": self.enable_status_detail,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AuthenticationRequest:
        attributes = data["requested_attributes"]
        methods = data["authn_methods"]
        return cls(
            requested_attributes=None if attributes is None else tuple(
                RequestedAttribute(str(name), bool(required)) for name, required in attributes),
            authn_methods=None if methods is None else tuple(methods),
            display=DisplayInformation(**data["display"]),
            enable_status_detail=bool(data["enable_status_detail"]))


def _q(namespace: str, local: str) -> str:
    return f"{{{namespace}}}{local}"


def _text(element: etree._Element) -> str:
    """The element's text with whitespace collapsed (CDATA included, markup dropped)."""
    return " ".join("".join(element.itertext()).split())


def _flag(value: str | None, what: str) -> bool:
    if value is None:
        return False
    value = value.strip()
    if value not in _BOOLEAN:
        raise ExtensionError(f"{what} must be true or false")
    return value in _TRUE


def _requested_attributes(parent: etree._Element) -> tuple[RequestedAttribute, ...]:
    found = parent.findall(_q(AKDB_NAMESPACE, "RequestedAttribute"))
    if len(found) > MAX_REQUESTED_ATTRIBUTES:
        raise ExtensionError(f"more than {MAX_REQUESTED_ATTRIBUTES} requested attributes")
    required: dict[str, bool] = {}
    for element in found:
        name = (element.get("Name") or "").strip()
        if not name or len(name) > MAX_ATTRIBUTE_NAME_LENGTH:
            raise ExtensionError("RequestedAttribute without a usable Name")
        # Asked twice: required if either says so.
        required[name] = required.get(name, False) or _flag(
            element.get("RequiredAttribute"), "RequiredAttribute")
    return tuple(RequestedAttribute(name, flag) for name, flag in required.items())


def _authn_methods(parent: etree._Element) -> tuple[str, ...]:
    methods = [child for child in parent if isinstance(child.tag, str)]
    if len(methods) > MAX_AUTHN_METHODS:
        raise ExtensionError(f"more than {MAX_AUTHN_METHODS} authentication methods")
    enabled = []
    for method in methods:
        name = etree.QName(method).localname
        if etree.QName(method).namespace != AKDB_NAMESPACE or len(name) > MAX_METHOD_NAME_LENGTH:
            raise ExtensionError("AuthnMethods holds an element that is not an akdb method")
        flag = method.find(_q(AKDB_NAMESPACE, "Enabled"))
        # A method is enabled only when the portal says so.
        if flag is not None and _flag(_text(flag), f"{name}/Enabled") and name not in enabled:
            enabled.append(name)
    return tuple(enabled)


def _display_information(parent: etree._Element) -> DisplayInformation:
    version = parent.find(_q(CLASSIC_UI_NAMESPACE, "Version"))
    if version is None:
        return DisplayInformation()

    def value(local: str) -> str | None:
        element = version.find(_q(CLASSIC_UI_NAMESPACE, local))
        return (_text(element) or None) if element is not None else None

    organization = value("OrganizationDisplayName")
    purpose = value("Purpose")
    lang = value("Lang")
    if lang is not None and not _LANG.match(lang):
        raise ExtensionError("Lang is not a language tag")
    service_id = value("OnlineServiceId")
    if service_id is not None and len(service_id) > ONLINE_SERVICE_ID_LENGTH:
        raise ExtensionError(f"OnlineServiceId is longer than {ONLINE_SERVICE_ID_LENGTH}")
    return DisplayInformation(
        organization_display_name=organization[:ORGANIZATION_DISPLAY_NAME_LENGTH]
        if organization else None,
        purpose=purpose[:PURPOSE_LENGTH] if purpose else None,
        lang=lang, online_service_id=service_id)


def read_extension(xml: bytes | etree._Element) -> AuthenticationRequest | None:
    """The ``akdb:AuthenticationRequest`` of an AuthnRequest (its XML, or its parsed root);
    None if it has none.

    Only a direct child of the AuthnRequest's own ``samlp:Extensions`` counts (that is what
    the request's signature covers). Raises :class:`ExtensionError` for one that is there but
    broken, too large, of another version, or given twice.
    """
    if isinstance(xml, bytes):
        try:
            root = parse_xml(xml)
        except RefusedDocument as error:
            raise ExtensionError(str(error)) from None
    else:
        root = xml
    extensions = root.findall(_q(SAMLP_NAMESPACE, "Extensions"))
    if len(extensions) > 1:
        raise ExtensionError("more than one samlp:Extensions")
    if not extensions:
        return None
    found = extensions[0].findall(_q(AKDB_NAMESPACE, "AuthenticationRequest"))
    if not found:
        return None
    if len(found) > 1:
        raise ExtensionError("more than one akdb:AuthenticationRequest")
    request = found[0]
    if request.get("Version") != SUPPORTED_VERSION:
        raise ExtensionError(f"unsupported Version {request.get('Version')!r}")

    def single(local: str) -> etree._Element | None:
        elements = request.findall(_q(AKDB_NAMESPACE, local))
        if len(elements) > 1:
            raise ExtensionError(f"more than one akdb:{local}")
        return elements[0] if elements else None

    attributes = single("RequestedAttributes")
    methods = single("AuthnMethods")
    display = single("DisplayInformation")
    return AuthenticationRequest(
        requested_attributes=_requested_attributes(attributes) if attributes is not None
        else None,
        authn_methods=_authn_methods(methods) if methods is not None else None,
        display=_display_information(display) if display is not None else DisplayInformation(),
        enable_status_detail=_flag(request.get("EnableStatusDetail"), "EnableStatusDetail"))
