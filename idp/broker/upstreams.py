"""The upstream identity providers the broker may send a citizen to ("Login mit externem
Servicekonto"): one ``policies/upstreams/<name>.yaml`` file each (docs/broker.md).

An upstream file says who the other Servicekonto is (display name, entity id, where its SAML
metadata lives), how its attributes map to ours, the highest trust level we believe of it, the
prefix of the bPK2 a portal gets for its citizens, and whether its assertions come encrypted. Its
assertions must always be signed: there is no setting to accept unsigned ones. A broken file
raises :class:`PolicyError` naming the file and every problem at once.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from idp.config import PolicyError
from idp.consent.attributes import CATALOGUE
from idp.portals.policy import DEFAULT_REFRESH_MINUTES, NAME_PATTERN, TRUST_LEVELS, is_url

# Our attributes by FriendlyName and by Name: an upstream's attribute maps to one of them.
OUR_ATTRIBUTES: dict[str, str] = {entry.friendly_name: entry.name for entry in CATALOGUE}
_OUR_NAMES = frozenset(OUR_ATTRIBUTES.values())
# What a login through the broker never takes from upstream: we compute these ourselves.
_COMPUTED = frozenset({"bPK2", "EID-CITIZEN-QAA-LEVEL", "AssertionProvedBy"})
_PREFIX = re.compile(r"^[A-Za-z0-9][A-Za-z0-9:_.-]{0,19}$")

_REQUIRED = ("display_name", "entity_id", "metadata", "maximum_trust_level", "bpk2_prefix")
_OPTIONAL = ("metadata_certificate", "metadata_refresh_minutes", "attributes",
             "encrypted_assertions", "enabled")


def upstream_folder(policy_dir: Path) -> Path:
    """Where the upstream files live (``IDP_POLICY_DIR/upstreams``)."""
    return policy_dir / "upstreams"


@dataclass(frozen=True)
class Upstream:
    """One other Servicekonto the citizen may log in with."""

    name: str
    display_name: str
    entity_id: str
    # An absolute file path or an http(s) URL.
    metadata: str
    metadata_certificate: Path | None
    metadata_refresh_minutes: int
    # The upstream's attribute Name → our attribute Name (urn:oid …). By default every BundID
    # attribute the upstream sends under our own Name, except those we compute (bPK2, the level,
    # AssertionProvedBy).
    attributes: dict[str, str]
    # The highest level we take from it (1 … 4): a higher AuthnContextClassRef is capped.
    maximum_trust_level: int
    # Put before the pairwise identifier a portal gets for a citizen of this upstream, so that
    # its citizens can never collide with ours.
    bpk2_prefix: str
    # Its assertions come encrypted to our key (a clear one is then refused).
    encrypted_assertions: bool
    enabled: bool
    source: str

    @property
    def metadata_is_url(self) -> bool:
        return is_url(self.metadata)


def default_mapping() -> dict[str, str]:
    """Our own attribute Names, each to itself (an upstream that speaks BundID)."""
    return {name: name for friendly, name in OUR_ATTRIBUTES.items() if friendly not in _COMPUTED}


def load_upstreams(policy_dir: Path) -> list[Upstream]:
    """Every upstream file of ``policy_dir/upstreams`` (none when the folder does not exist);
    every problem of every file in one :class:`PolicyError`."""
    folder = upstream_folder(policy_dir)
    if not folder.is_dir():
        return []
    upstreams, problems = [], []
    for path in sorted(folder.iterdir()):
        if path.name.startswith(".") or path.is_dir():
            continue
        if path.suffix != ".yaml":
            problems.append(f"{path}: upstream files must end in .yaml")
            continue
        try:
            upstreams.append(load_upstream(path))
        except PolicyError as error:
            problems.append(str(error))
    seen: dict[str, str] = {}
    for upstream in upstreams:
        if upstream.entity_id in seen:
            problems.append(f"{upstream.source}: entity_id: also used by "
                            f"{seen[upstream.entity_id]}")
        seen.setdefault(upstream.entity_id, upstream.source)
    if problems:
        raise PolicyError("\n".join(problems))
    return upstreams


def load_upstream(path: Path) -> Upstream:
    try:
        raw: Any = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise PolicyError(f"{path}: cannot read: {error.strerror}") from None
    except (yaml.YAMLError, UnicodeDecodeError) as error:
        raise PolicyError(f"{path}: not valid YAML: {error}") from None
    return parse_upstream(raw, path)


def parse_upstream(raw: Any, path: Path) -> Upstream:
    """Check the content of one upstream file (``path`` names it and gives its name)."""
    problems: list[str] = []

    def fail(key: str, message: str) -> None:
        problems.append(f"{path}: {key}: {message}")

    name = path.stem
    if not NAME_PATTERN.match(name):
        fail("(file name)", "not a valid upstream name (lower-case letters, digits, - and _, "
                            "at most 40 characters)")
    if not isinstance(raw, dict):
        raise PolicyError(f"{path}: expected a mapping of settings")
    for key in _REQUIRED:
        if key not in raw:
            fail(key, "missing")
    for key in sorted(set(map(str, raw)) - set(_REQUIRED) - set(_OPTIONAL)):
        fail(key, "unknown setting" + ("; unsigned assertions are always refused"
                                       if "unsigned" in key or "signed" in key else ""))

    def text(key: str) -> str:
        value = raw.get(key)
        if value is None:
            return ""
        if not isinstance(value, str) or not value.strip():
            fail(key, "must be a non-empty text")
            return ""
        return value.strip()

    def flag(key: str, default: bool) -> bool:
        value = raw.get(key, default)
        if not isinstance(value, bool):
            fail(key, "must be true or false")
            return default
        return value

    display_name, entity_id, metadata = text("display_name"), text("entity_id"), text("metadata")
    folder = path.parent
    if metadata and not is_url(metadata):
        if "://" in metadata:
            fail("metadata", "must be a file path or an http(s) URL")
        else:
            metadata = str((folder / metadata).resolve())
    certificate = None
    if raw.get("metadata_certificate") is not None and (named := text("metadata_certificate")):
        certificate = (folder / named).resolve()
        if not certificate.is_file():
            fail("metadata_certificate", f"file {certificate} does not exist")
    refresh = raw.get("metadata_refresh_minutes", DEFAULT_REFRESH_MINUTES)
    if not isinstance(refresh, int) or isinstance(refresh, bool) or refresh < 1:
        fail("metadata_refresh_minutes", "must be a whole number of minutes ≥ 1")
        refresh = DEFAULT_REFRESH_MINUTES
    level = raw.get("maximum_trust_level")
    if "maximum_trust_level" in raw and level not in TRUST_LEVELS:
        fail("maximum_trust_level", f"must be one of {', '.join(TRUST_LEVELS)}")
    prefix = text("bpk2_prefix")
    if prefix and not _PREFIX.match(prefix):
        fail("bpk2_prefix", "1 to 20 characters of A-Z a-z 0-9 : _ . - (not starting with "
                            "a separator)")
    attributes = _mapping(raw.get("attributes"), fail) if "attributes" in raw \
        else default_mapping()
    encrypted, enabled = flag("encrypted_assertions", False), flag("enabled", True)
    if problems:
        raise PolicyError("\n".join(problems))
    return Upstream(name=name, display_name=display_name, entity_id=entity_id,
                    metadata=metadata, metadata_certificate=certificate,
                    metadata_refresh_minutes=refresh, attributes=attributes,
                    maximum_trust_level=TRUST_LEVELS[str(level)], bpk2_prefix=prefix,
                    encrypted_assertions=encrypted, enabled=enabled, source=str(path))


def _mapping(value: Any, fail: Any) -> dict[str, str]:
    """``{upstream Name: our FriendlyName or Name}`` → upstream Name → our Name."""
    if not isinstance(value, dict) or not all(isinstance(key, str) and isinstance(item, str)
                                              for key, item in value.items()):
        fail("attributes", "must map the upstream's attribute names to ours")
        return {}
    mapping = {}
    for theirs, ours in value.items():
        name = OUR_ATTRIBUTES.get(ours, ours)
        friendly = next((f for f, n in OUR_ATTRIBUTES.items() if n == name), None)
        if name not in _OUR_NAMES:
            fail("attributes", f"{theirs}: {ours} is not one of our attributes; known are "
                               f"{', '.join(OUR_ATTRIBUTES)}")
        elif friendly in _COMPUTED:
            fail("attributes", f"{theirs}: {ours} is computed by us, never taken from upstream")
        else:
            mapping[theirs] = name
    if len(set(mapping.values())) != len(mapping):
        fail("attributes", "maps two upstream attributes to one of ours")
    return mapping
