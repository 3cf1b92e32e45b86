"""The settings of one running portal: one typed object, checked when the portal starts.

A portal needs no configuration to run as a demo: its instance folder (``instance/portal-<name>``)
receives a SQLite database, a secret key and freshly generated keys on the first start, and keeps
them for the next (so the IdP's cached copy of our metadata stays valid).
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from idp.samlkit.keys import KeyFileError, KeyPair, generate_key_pair, load_key_pair
from sp_client.files import default_instance_folder
from sp_client.profiles import PROFILES, PortalProfile

# Reads the IdP's metadata (a test hands in the IdP's test client instead of a URL).
MetadataLoader = Callable[[], bytes]

SIGNING_KEY, SIGNING_CERT = "portal-signing.key", "portal-signing.crt"
ENCRYPTION_KEY, ENCRYPTION_CERT = "portal-encryption.key", "portal-encryption.crt"


class PortalConfigError(Exception):
    """A setting is wrong; the message says which and why (the portal does not start)."""


@dataclass(frozen=True)
class PortalSettings:
    """All settings of one portal process."""

    profile: PortalProfile
    # Our public URL; every SAML endpoint and the entity id are built from it.
    base_url: str
    # The IdP's metadata: an http(s) URL or a file. Read on first use, not at start, so that
    # the portals and the IdP can be started in any order.
    idp_metadata: str
    instance_path: Path
    database_url: str
    secret_key: str
    signing: KeyPair
    encryption: KeyPair
    # The trust level to ask for (the profile's by default; higher ones provoke NoAuthnContext).
    minimum_trust_level: int
    # The demo's "Post": a page listing the letters with Bestätigungscodes. Off in anything
    # that is not a demo, since it shows the codes.
    show_postal_outbox: bool = True
    # The outbox answers only this machine's loopback clients unless this is set: behind a proxy
    # or in a container, anyone on the way could read every code.
    postal_outbox_remote: bool = False
    metadata_loader: MetadataLoader | None = None

    @property
    def entity_id(self) -> str:
        return self.base_url + "/saml/metadata"

    @property
    def uses_https(self) -> bool:
        return self.base_url.startswith("https://")

    @property
    def host(self) -> str:
        return urlsplit(self.base_url).hostname or "127.0.0.1"


def build_settings(profile: str | PortalProfile, *, idp_metadata: str,
                   base_url: str | None = None, instance_path: Path | None = None,
                   database_url: str | None = None, secret_key: str | None = None,
                   key_files: tuple[Path, Path] | None = None,
                   encryption_key_files: tuple[Path, Path] | None = None,
                   minimum_trust_level: int | None = None, show_postal_outbox: bool = True,
                   postal_outbox_remote: bool = False,
                   metadata_loader: MetadataLoader | None = None) -> PortalSettings:
    """Check the settings and fill in the demo defaults; raise :class:`PortalConfigError`."""
    if isinstance(profile, str):
        if profile not in PROFILES:
            raise PortalConfigError(f"Unbekanntes Portal {profile!r}; bekannt sind: "
                                    + ", ".join(sorted(PROFILES)))
        profile = PROFILES[profile]
    base_url = (base_url or profile.default_base_url).rstrip("/")
    parts = urlsplit(base_url)
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.path:
        raise PortalConfigError(f"Die Basis-URL {base_url!r} muss http(s)://Host[:Port] sein.")
    if not idp_metadata and metadata_loader is None:
        raise PortalConfigError("Die Metadaten des Servicekontos (URL oder Datei) fehlen.")
    level = minimum_trust_level or profile.minimum_trust_level
    if level not in (1, 2, 3, 4):
        raise PortalConfigError("Das Vertrauensniveau muss 1, 2, 3 oder 4 sein.")
    instance = (instance_path or default_instance_folder() / f"portal-{profile.name}").resolve()
    instance.mkdir(parents=True, exist_ok=True)
    secret = secret_key or _instance_secret(instance)
    if len(secret) < 32:
        raise PortalConfigError("Der geheime Schlüssel muss mindestens 32 Zeichen lang sein.")
    try:
        signing = _key_pair(instance, key_files, SIGNING_KEY, SIGNING_CERT, profile)
        encryption = _key_pair(instance, encryption_key_files, ENCRYPTION_KEY, ENCRYPTION_CERT,
                               profile)
    except KeyFileError as error:
        raise PortalConfigError(str(error)) from None
    return PortalSettings(
        profile=profile, base_url=base_url, idp_metadata=idp_metadata, instance_path=instance,
        database_url=database_url or f"sqlite:///{instance / 'portal.sqlite3'}",
        secret_key=secret, signing=signing, encryption=encryption, minimum_trust_level=level,
        show_postal_outbox=show_postal_outbox, postal_outbox_remote=postal_outbox_remote,
        metadata_loader=metadata_loader)


def _instance_secret(instance: Path) -> str:
    """The portal's secret key, made on first start and kept in the instance folder (0600)."""
    path = instance / "secret_key"
    if path.exists():
        return path.read_text(encoding="ascii").strip()
    secret = secrets.token_urlsafe(48)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w", encoding="ascii") as handle:
        handle.write(secret)
    return secret


def _key_pair(instance: Path, given: tuple[Path, Path] | None, key_name: str, cert_name: str,
              profile: PortalProfile) -> KeyPair:
    """The given pair, else the one in ``<instance>/keys`` (generated on the first start)."""
    if given is not None:
        return load_key_pair(*given)
    folder = instance / "keys"
    if not (folder / key_name).exists():
        return generate_key_pair(folder, key_name=key_name, cert_name=cert_name,
                                 common_name=profile.display_name)
    return load_key_pair(folder / key_name, folder / cert_name)
