"""The portals in the database, the one registry every worker of every host serves.

Two ways in (docs/architecture.md, "The portal registry"):

- **files**: each ``policies/portals/*.yaml`` is imported at every start of the IdP and by
  ``servicekonto portal import``: added when absent, replaced when the file, its metadata or its
  certificate changed, removed when the file is gone. Such a portal belongs to its file; the
  commands do not remove it.
- **commands**: ``servicekonto portal add`` and ``portal remove`` write the database only, so they
  work where the policy folder is read-only (containers).

Every change raises the registry's version in the same transaction; each worker compares that
one number with the version it loaded (:mod:`idp.portals.live`).
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import yaml
from sqlalchemy import Connection, delete, select, update
from sqlalchemy.orm import Session

from idp.config import PolicyError
from idp.portals.models import FROM_COMMAND, FROM_FILE, PortalRegistryVersion, StoredPortal
from idp.portals.policy import (
    PortalPolicy,
    StoredFiles,
    load_portal_files,
    parse_portal_policy,
)

log = logging.getLogger(__name__)

_VERSION = select(PortalRegistryVersion.version).where(PortalRegistryVersion.id == 1)


def registry_version(connection: Connection | Session) -> int:
    """The registry's version (0 before the first change): one primary-key read."""
    return connection.execute(_VERSION).scalar() or 0


def _raise_version(session: Session, now: datetime) -> None:
    raised = session.execute(
        update(PortalRegistryVersion).where(PortalRegistryVersion.id == 1)
        .values(version=PortalRegistryVersion.version + 1, changed_at=now))
    if not raised.rowcount:  # type: ignore[attr-defined]
        session.add(PortalRegistryVersion(id=1, version=1, changed_at=now))
        session.flush()


def stored_policies(session: Session) -> list[PortalPolicy]:
    """Every stored portal's policy, sorted by name (PolicyError for a broken one)."""
    return [policy_of(row) for row in
            session.scalars(select(StoredPortal).order_by(StoredPortal.name))]


def stored_origins(session: Session) -> dict[str, str]:
    """Where each stored portal came from (FROM_FILE or FROM_COMMAND), by name."""
    return {name: origin for name, origin in
            session.execute(select(StoredPortal.name, StoredPortal.origin))}


def stored_portal(session: Session, name: str) -> StoredPortal | None:
    return session.get(StoredPortal, name)


def policy_of(row: StoredPortal) -> PortalPolicy:
    """The policy of a stored portal, with its metadata and certificate from the database."""
    try:
        raw = yaml.safe_load(row.policy)
    except yaml.YAMLError as error:
        raise PolicyError(f"stored portal {row.name}: not valid YAML: {error}") from None
    certificate = row.metadata_certificate
    return parse_portal_policy(raw, Path(f"{row.name}.yaml"), stored=StoredFiles(
        source=f"stored portal {row.name} ({row.origin})",
        metadata_document=row.metadata_document,
        certificate_pem=None if certificate is None else certificate.encode("ascii")))


@dataclass(frozen=True)
class PortalFile:
    """A portal file as it is stored: its text and the bytes of the files it names."""

    policy: PortalPolicy
    text: str
    metadata_document: bytes | None
    certificate_pem: bytes | None

    @property
    def fingerprint(self) -> str:
        digest = hashlib.sha256()
        for part in (self.text.encode("utf-8"), self.metadata_document or b"",
                     self.certificate_pem or b""):
            digest.update(hashlib.sha256(part).digest())
        return digest.hexdigest()


def read_portal_files(folder: Path) -> list[PortalFile]:
    """Every portal file in ``folder`` with what it names (PolicyError when one is broken or a
    file it names cannot be read)."""
    found = []
    for policy in load_portal_files(folder):
        try:
            document = None if policy.metadata_is_url else Path(policy.metadata).read_bytes()
            certificate = policy.certificate_pem()
        except OSError as error:
            raise PolicyError(f"{policy.source}: cannot read {error.filename}: "
                              f"{error.strerror}") from None
        found.append(PortalFile(policy, Path(policy.source).read_text(encoding="utf-8"),
                                document, certificate))
    return found


def import_files(session: Session, files: list[PortalFile], now: datetime) -> list[str]:
    """Make the file portals in the database what ``files`` say; the names that changed.

    Commits nothing (the caller's transaction). A portal added by command whose name a file
    takes becomes the file's; an entity id used by another stored portal is a PolicyError.
    """
    # Serialises concurrent imports (workers starting together) on PostgreSQL.
    session.execute(select(PortalRegistryVersion.id).where(PortalRegistryVersion.id == 1)
                    .with_for_update())
    rows = {row.name: row for row in session.scalars(select(StoredPortal))}
    wanted = {file.policy.name: file for file in files}
    changed = sorted(name for name, row in rows.items()
                     if row.origin == FROM_FILE and name not in wanted)
    if changed:
        session.execute(delete(StoredPortal).where(StoredPortal.name.in_(changed)))
    for name, file in wanted.items():
        row = rows.get(name)
        if row is not None and row.origin == FROM_FILE and row.fingerprint == file.fingerprint:
            continue
        holder = next((other for other in rows.values() if other.name != name
                       and other.name not in changed
                       and other.entity_id == file.policy.entity_id), None)
        if holder is not None:
            raise PolicyError(f"{file.policy.source}: entity_id {file.policy.entity_id!r} is "
                              f"also used by the portal {holder.name}")
        if row is None:
            row = StoredPortal(name=name)
            session.add(row)
        elif row.origin == FROM_COMMAND:
            log.warning("portal %s: the file %s takes the place of the portal added by command",
                        name, file.policy.source)
        row.entity_id = file.policy.entity_id
        row.policy = file.text
        row.metadata_document = file.metadata_document
        row.metadata_certificate = (None if file.certificate_pem is None
                                    else file.certificate_pem.decode("ascii"))
        row.origin, row.fingerprint, row.changed_at = FROM_FILE, file.fingerprint, now
        changed.append(name)
    if changed:
        session.flush()
        _raise_version(session, now)
    return sorted(changed)


def import_as_commands(session: Session, files: list[PortalFile], now: datetime) -> list[str]:
    """Store ``files`` as portals of the commands (``portal import --from``): added, or replaced
    where a portal of the commands has the name and differs; the names that changed. A name or
    entity id that belongs to another portal, or to a file of the policy folder, is a
    PolicyError. Commits nothing."""
    session.execute(select(PortalRegistryVersion.id).where(PortalRegistryVersion.id == 1)
                    .with_for_update())
    rows = {row.name: row for row in session.scalars(select(StoredPortal))}
    changed = []
    for file in files:
        name, certificate = file.policy.name, file.certificate_pem
        row = rows.get(name)
        holder = next((other for other in rows.values() if other.name != name
                       and other.entity_id == file.policy.entity_id), None)
        if holder is not None:
            raise PolicyError(f"{file.policy.source}: entity_id {file.policy.entity_id!r} is "
                              f"also used by the portal {holder.name}")
        if row is not None and row.origin == FROM_FILE:
            raise PolicyError(f"{file.policy.source}: the portal {name} belongs to a file of "
                              "the policy folder")
        stored = (file.text, file.metadata_document,
                  None if certificate is None else certificate.decode("ascii"))
        if row is not None and (row.policy, row.metadata_document,
                                row.metadata_certificate) == stored:
            continue
        if row is None:
            row = StoredPortal(name=name, origin=FROM_COMMAND, fingerprint=None)
            session.add(row)
        row.entity_id = file.policy.entity_id
        row.policy, row.metadata_document, row.metadata_certificate = stored
        row.changed_at = now
        changed.append(name)
    if changed:
        session.flush()
        _raise_version(session, now)
    return changed


class PortalTaken(Exception):
    """The name or the entity id already belongs to a stored portal."""

    def __init__(self, name: str, by_entity_id: bool) -> None:
        super().__init__(name)
        self.name = name
        self.by_entity_id = by_entity_id


def add_portal(session: Session, policy: PortalPolicy, text: str, metadata_document: bytes | None,
               certificate_pem: bytes | None, now: datetime) -> None:
    """Store a portal of the commands and raise the version (PortalTaken when its name or
    entity id is in use). Commits nothing."""
    session.execute(select(PortalRegistryVersion.id).where(PortalRegistryVersion.id == 1)
                    .with_for_update())
    for row in session.scalars(select(StoredPortal).where(
            (StoredPortal.name == policy.name) | (StoredPortal.entity_id == policy.entity_id))):
        raise PortalTaken(row.name, by_entity_id=row.name != policy.name)
    session.add(StoredPortal(
        name=policy.name, entity_id=policy.entity_id, policy=text,
        metadata_document=metadata_document,
        metadata_certificate=None if certificate_pem is None else certificate_pem.decode("ascii"),
        origin=FROM_COMMAND, fingerprint=None, changed_at=now))
    session.flush()
    _raise_version(session, now)


def remove_portal(session: Session, row: StoredPortal, now: datetime) -> None:
    """Delete a stored portal and raise the version. Commits nothing."""
    session.delete(row)
    session.flush()
    _raise_version(session, now)
