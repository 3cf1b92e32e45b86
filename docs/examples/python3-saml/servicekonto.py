"""python3-saml settings for a portal of the Servicekonto: the portal's own settings.json and
advanced_settings.json, completed with the IdP's part read from the IdP's metadata.

Tested by tests/interop/test_python3_saml.py, which fills in the placeholders of the JSON files.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from onelogin.saml2.constants import OneLogin_Saml2_Constants
from onelogin.saml2.idp_metadata_parser import OneLogin_Saml2_IdPMetadataParser


def portal_settings(folder: Path) -> dict[str, Any]:
    """settings.json with advanced_settings.json on top, as python3-saml merges the two."""
    settings: dict[str, Any] = json.loads((folder / "settings.json").read_text("utf-8"))
    settings.update(json.loads((folder / "advanced_settings.json").read_text("utf-8")))
    return settings


def with_servicekonto(settings: dict[str, Any], idp_metadata: str,
                      sso_binding: str = OneLogin_Saml2_Constants.BINDING_HTTP_REDIRECT,
                      ) -> dict[str, Any]:
    """``settings`` with the IdP's entity ID, endpoints and certificate from its metadata.

    In production, fetch the metadata over https with
    ``OneLogin_Saml2_IdPMetadataParser.parse_remote(url, required_sso_binding=...)``.
    """
    parsed = OneLogin_Saml2_IdPMetadataParser.parse(
        idp_metadata, required_sso_binding=sso_binding,
        required_slo_binding=OneLogin_Saml2_Constants.BINDING_HTTP_REDIRECT)
    # Only the IdP's part: the parser also proposes sp.NameIDFormat (the first format our
    # metadata lists, transient), which would overwrite the portal's own and get a portal
    # registered for persistent NameIDs the answer InvalidNameIDPolicy.
    merged: dict[str, Any] = OneLogin_Saml2_IdPMetadataParser.merge_settings(
        settings, {"idp": parsed["idp"]})
    # The parser reads WantAuthnRequestsSigned as security.authnRequestsSigned; merged as it
    # stands, a "false" would also switch off signing the portal chose. Sign when either asks.
    if parsed.get("security", {}).get("authnRequestsSigned"):
        merged.setdefault("security", {})["authnRequestsSigned"] = True
    return merged
