"""Portals as the workbench names them: by their name in the registry (the policy file's name,
``dueren``, ``mags``), as the test-control API's paths and the commands take them."""

from __future__ import annotations

from idp.portals.registry import Portal, PortalRegistry
from idp.testing.errors import NotFound


def registered_portal(registry: PortalRegistry, name: str) -> Portal:
    """The portal registered as ``name``; :class:`NotFound`, naming those there are."""
    portal = registry.by_name(name)
    if portal is None:
        known = ", ".join(item.name for item in registry.portals()) or "keines"
        raise NotFound(f"Ein Portal „{name}“ gibt es nicht; registriert: {known}.")
    return portal
