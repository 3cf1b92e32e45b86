"""The policy of one relying portal: a ``policies/portals/<name>.yaml`` file, or the same YAML
kept in the database with its metadata and certificate beside it (:mod:`idp.portals.store`).

A portal file says who the portal is (entity id, German display name, where its SAML metadata
lives) and what it gets: which attributes, how well the citizen must be identified, which NameID,
what we sign or encrypt, whether the citizen is asked for consent. A broken file raises
:class:`PolicyError` naming the file and the key, so the IdP refuses to start instead of failing at
the first login (docs/architecture.md, "Decisions, and why").
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

from idp.config import PolicyError
from idp.consent.attributes import CATALOGUE

# docs/architecture.md, "Attributes": policies name attributes by FriendlyName; on the wire they
# are released by Name (NameFormat uri). One table for both: the consent catalogue.
BUNDID_ATTRIBUTES: dict[str, str] = {entry.friendly_name: entry.name for entry in CATALOGUE}

TRUST_LEVELS = {f"STORK-QAA-Level-{level}": level for level in range(1, 5)}
NAME_ID_FORMATS = ("transient", "persistent")
# The short key of a portal: its file name, used on the command line and in cache file names.
NAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_-]{0,39}$")
DEFAULT_REFRESH_MINUTES = 60


def portal_folder(policy_dir: Path) -> Path:
    """Where the portal files live (``IDP_POLICY_DIR/portals``)."""
    return policy_dir / "portals"


@dataclass(frozen=True)
class PortalPolicy:
    """What the IdP may do for one relying portal."""

    name: str
    display_name: str
    entity_id: str
    # An absolute file path or an http(s) URL.
    metadata: str
    # With it, URL metadata is only accepted when its XML signature verifies with this key.
    metadata_certificate: Path | None
    metadata_refresh_minutes: int
    # FriendlyNames (keys of BUNDID_ATTRIBUTES), in the order of the file.
    attributes: tuple[str, ...]
    required_attributes: tuple[str, ...]
    # 1 … 4 (STORK-QAA-Level-n); compares with idp.saml.identifiers.TrustLevel.
    minimum_trust_level: int
    name_id_format: str
    sign_response: bool
    sign_assertion: bool
    encrypt_assertion: bool
    consent_required: bool
    idp_initiated_allowed: bool
    want_authn_requests_signed: bool
    # Answer with eIDAS LoA URIs in AuthnContextClassRef instead of STORK-QAA levels.
    eidas_loa: bool
    enabled: bool
    # Where the policy came from, for messages: its file, or the database.
    source: str
    # File metadata and the metadata certificate as kept in the database (every host reads the
    # same bytes); None when they are read from the files the policy names.
    metadata_document: bytes | None = None
    metadata_certificate_pem: bytes | None = None

    @property
    def metadata_is_url(self) -> bool:
        return is_url(self.metadata)

    def certificate_pem(self) -> bytes | None:
        """The PEM that URL metadata must be signed with (OSError when its file is unreadable)."""
        if self.metadata_certificate_pem is not None:
            return self.metadata_certificate_pem
        return None if self.metadata_certificate is None else self.metadata_certificate.read_bytes()

    @cached_property  # read on every SSO request
    def attribute_names(self) -> dict[str, str]:
        """FriendlyName → Name (urn:oid) of every attribute the portal may receive."""
        return {friendly: BUNDID_ATTRIBUTES[friendly] for friendly in self.attributes}

    @property
    def minimum_trust_class_ref(self) -> str:
        return f"STORK-QAA-Level-{self.minimum_trust_level}"


@dataclass(frozen=True)
class StoredFiles:
    """What the database keeps beside a portal's YAML in place of the files it names."""

    source: str
    metadata_document: bytes | None
    certificate_pem: bytes | None


def is_url(value: str) -> bool:
    return urlsplit(value).scheme in ("http", "https")


_REQUIRED = ("display_name", "entity_id", "metadata", "attributes")
_FLAGS = {"sign_response": True, "sign_assertion": True, "encrypt_assertion": False,
          "consent_required": True, "idp_initiated_allowed": False,
          "want_authn_requests_signed": True, "eidas_loa": False, "enabled": True}
_OPTIONAL = ("metadata_certificate", "metadata_refresh_minutes", "required_attributes",
             "minimum_trust_level", "name_id_format", *_FLAGS)


def load_portal_policy(path: Path) -> PortalPolicy:
    """Read and check one portal file; a broken file raises :class:`PolicyError`."""
    try:
        raw: Any = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise PolicyError(f"{path}: cannot read: {error.strerror}") from None
    except (yaml.YAMLError, UnicodeDecodeError) as error:
        raise PolicyError(f"{path}: not valid YAML: {error}") from None
    return parse_portal_policy(raw, path)


def parse_portal_policy(raw: Any, path: Path, *, stored: StoredFiles | None = None
                        ) -> PortalPolicy:
    """Check the content of a portal file (``path`` names it in messages and gives the name).

    With ``stored`` the policy comes from the database: its file metadata and certificate are
    the stored bytes, and the paths in it are only their names (nothing is read from disk).
    """
    name = path.stem
    if not NAME_PATTERN.match(name):
        raise PolicyError(f"{path}: the file name {name!r} is not a valid portal name (lower-case "
                          "letters, digits, - and _, at most 40 characters)")
    if not isinstance(raw, dict):
        raise PolicyError(f"{path}: expected a mapping of settings")
    if missing := [key for key in _REQUIRED if key not in raw]:
        raise PolicyError(f"{path}: missing settings: {', '.join(missing)}")
    if unknown := sorted(set(map(str, raw)) - set(_REQUIRED) - set(_OPTIONAL)):
        raise PolicyError(f"{path}: unknown settings: {', '.join(unknown)}")

    def fail(key: str, message: str) -> PolicyError:
        return PolicyError(f"{path}: {key}: {message}")

    def text(key: str) -> str:
        value = raw[key]
        if not isinstance(value, str) or not value.strip():
            raise fail(key, "must be a non-empty text")
        return value.strip()

    def flag(key: str, default: bool) -> bool:
        value = raw.get(key, default)
        if not isinstance(value, bool):
            raise fail(key, "must be true or false")
        return value

    def attribute_list(key: str) -> tuple[str, ...]:
        value = raw.get(key, [])
        if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
            raise fail(key, "must be a list of attribute names")
        if unknown_names := [item for item in value if item not in BUNDID_ATTRIBUTES]:
            raise fail(key, f"unknown attribute(s) {', '.join(unknown_names)}; known are "
                            f"{', '.join(BUNDID_ATTRIBUTES)}")
        if len(set(value)) != len(value):
            raise fail(key, "lists an attribute twice")
        return tuple(value)

    display_name = text("display_name")
    entity_id = text("entity_id")
    metadata = text("metadata")
    folder = path.parent
    if not is_url(metadata):
        if "://" in metadata:
            raise fail("metadata", "must be a file path or an http(s) URL")
        if stored is None:
            metadata = str((folder / metadata).resolve())
        elif stored.metadata_document is None:
            raise fail("metadata", "the stored portal has no metadata document")

    certificate: Path | None = None
    certificate_pem: bytes | None = None
    if raw.get("metadata_certificate") is not None:
        named = text("metadata_certificate")
        if stored is None:
            certificate = (folder / named).resolve()
            if not certificate.is_file():
                raise fail("metadata_certificate", f"file {certificate} does not exist")
        elif stored.certificate_pem is None:
            raise fail("metadata_certificate", "the stored portal has no certificate")
        else:
            certificate_pem = stored.certificate_pem

    refresh = raw.get("metadata_refresh_minutes", DEFAULT_REFRESH_MINUTES)
    if not isinstance(refresh, int) or isinstance(refresh, bool) or refresh < 1:
        raise fail("metadata_refresh_minutes", "must be a whole number of minutes ≥ 1")
    if "metadata_refresh_minutes" in raw and not is_url(metadata):
        raise fail("metadata_refresh_minutes", "only applies to metadata from a URL")

    attributes = attribute_list("attributes")
    required = attribute_list("required_attributes")
    if extra := [item for item in required if item not in attributes]:
        raise fail("required_attributes", f"{', '.join(extra)} not in attributes")

    level = raw.get("minimum_trust_level", "STORK-QAA-Level-1")
    if level not in TRUST_LEVELS:
        raise fail("minimum_trust_level", f"must be one of {', '.join(TRUST_LEVELS)}")

    name_id_format = raw.get("name_id_format", "transient")
    if name_id_format not in NAME_ID_FORMATS:
        raise fail("name_id_format", "must be transient or persistent")

    flags = {key: flag(key, default) for key, default in _FLAGS.items()}
    return PortalPolicy(
        name=name, display_name=display_name, entity_id=entity_id, metadata=metadata,
        metadata_certificate=certificate, metadata_refresh_minutes=refresh,
        attributes=attributes, required_attributes=required,
        minimum_trust_level=TRUST_LEVELS[level], name_id_format=name_id_format,
        source=str(path) if stored is None else stored.source, **flags,
        metadata_document=None if stored is None or is_url(metadata)
        else stored.metadata_document,
        metadata_certificate_pem=certificate_pem)


def load_portal_policies(policy_dir: Path) -> list[PortalPolicy]:
    """All portal files under ``policy_dir/portals``, sorted by name (as :func:`load_portal_files`).
    """
    return load_portal_files(portal_folder(policy_dir))


def load_portal_files(folder: Path) -> list[PortalPolicy]:
    """All portal files (``*.yaml``) in ``folder``, sorted by name.

    Raises :class:`PolicyError` for a broken file, and for two files with the same entity id
    (which of them would answer a request would be a coin toss).
    """
    if not folder.is_dir():
        return []
    if strays := sorted(folder.glob("*.yml")):
        # Only *.yaml is read; a portal silently missing would be worse than this error.
        raise PolicyError(f"{strays[0]}: portal files must end in .yaml")
    # Names are file names, unique by construction; entity ids must be unique too.
    policies = [load_portal_policy(path) for path in sorted(folder.glob("*.yaml"))]
    seen: dict[str, PortalPolicy] = {}
    for policy in policies:
        if other := seen.get(policy.entity_id):
            raise PolicyError(f"{policy.source}: entity_id {policy.entity_id!r} is also used by "
                              f"{other.source}")
        seen[policy.entity_id] = policy
    return policies
