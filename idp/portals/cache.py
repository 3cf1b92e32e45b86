"""The last good copy of each portal's URL metadata, kept in the instance folder.

With it the IdP starts and keeps serving a portal while the portal's metadata URL is down. Only
documents that passed every check are written; each is stored with its URL, time and SHA-256, so a
copy for another URL or a half-written file is never used.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path


@dataclass(frozen=True)
class CachedMetadata:
    """A cached document and when it was fetched."""

    document: bytes
    url: str
    fetched_at: datetime


class MetadataCache:
    """``<folder>/<portal name>.xml`` with a ``.json`` beside it (URL, time, SHA-256)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def read(self, name: str, url: str) -> CachedMetadata | None:
        """The cached copy for this portal and URL, None if there is none or it is damaged."""
        try:
            info = json.loads((self.folder / f"{name}.json").read_text(encoding="utf-8"))
            document = (self.folder / f"{name}.xml").read_bytes()
            fetched_at = datetime.fromisoformat(info["fetched_at"])
        except (OSError, ValueError, KeyError, TypeError):
            return None
        if info.get("url") != url or info.get("sha256") != hashlib.sha256(document).hexdigest():
            return None
        return CachedMetadata(document=document, url=url, fetched_at=fetched_at)

    def write(self, name: str, url: str, document: bytes, fetched_at: datetime) -> None:
        """Keep ``document`` as the last good copy (each file replaced atomically)."""
        self.folder.mkdir(parents=True, exist_ok=True)
        info = {"url": url, "fetched_at": fetched_at.isoformat(),
                "sha256": hashlib.sha256(document).hexdigest()}
        # The document first: a crash between the two leaves a mismatching hash, never a
        # document that is taken for another one.
        self._replace(self.folder / f"{name}.xml", document)
        self._replace(self.folder / f"{name}.json", json.dumps(info).encode("utf-8"))

    def remove(self, name: str) -> None:
        for suffix in (".xml", ".json"):
            (self.folder / f"{name}{suffix}").unlink(missing_ok=True)

    def _replace(self, path: Path, content: bytes) -> None:
        fd, temporary = tempfile.mkstemp(dir=self.folder, prefix=f".{path.name}.")
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(content)
            os.replace(temporary, path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
