"""The portals as the database keeps them, and the registry's version every worker watches."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Integer, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from idp.db import Base, UtcDateTime

# Where a stored portal came from: a file of the policy folder (imported at start, managed by
# that file) or `servicekonto portal add` (managed by the commands).
FROM_FILE = "file"
FROM_COMMAND = "command"


class StoredPortal(Base):
    """One relying portal: its policy as YAML, and the bytes of the files that policy names."""

    __tablename__ = "portal"

    name: Mapped[str] = mapped_column(String(40), primary_key=True)
    entity_id: Mapped[str] = mapped_column(String(1024), unique=True)
    # The YAML of a portal file (docs/portal-integration.md); what `portal export` prints.
    policy: Mapped[str] = mapped_column(Text)
    # File metadata and the metadata certificate: every host reads the same bytes, none needs
    # the file it was added from.
    metadata_document: Mapped[bytes | None] = mapped_column(LargeBinary)
    metadata_certificate: Mapped[str | None] = mapped_column(Text)
    origin: Mapped[str] = mapped_column(String(16))
    # SHA-256 of the file, its metadata and certificate as last imported (file portals only):
    # the import writes only what changed.
    fingerprint: Mapped[str | None] = mapped_column(String(64))
    changed_at: Mapped[datetime] = mapped_column(UtcDateTime())


class PortalRegistryVersion(Base):
    """One row: raised in the same transaction as every change of a portal. Each worker
    compares it with the version it loaded and reloads the registry when it differs."""

    __tablename__ = "portal_registry_version"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    version: Mapped[int] = mapped_column(Integer)
    changed_at: Mapped[datetime] = mapped_column(UtcDateTime())
