"""The registry of relying portals: each policy with its checked metadata.

A process builds it at start from the portals kept in the database (:mod:`idp.portals.live`,
which also keeps it in step when a portal is added, changed or removed); tests and tools may
build it from a policy folder with :meth:`PortalRegistry.load`:

- a broken portal file, or **file** metadata that is missing, broken, expired or for another
  entity id, stops the start with :class:`~idp.config.ConfigError` naming the portal;
- **URL** metadata is fetched (timeout and size cap) unless a fresh cached copy exists. When it
  cannot be fetched or is rejected, the last good copy from ``instance/metadata-cache`` is used.
  With no copy at all the portal is *unavailable* and a warning is logged, but the IdP starts:
  a portal that is down (the demo portals are started after the IdP, tests run without them) must
  not take the login of every other portal with it. An unavailable portal gets no answers
  (``portal_for`` gives None) until a refresh succeeds.

Refreshing: :class:`MetadataRefresher` has no thread. Call ``refresh_due(now)`` periodically in
each process that owns a pysaml2 ``Server`` (a ``before_request`` hook, at most once a minute, is
enough); when it returns names, give the server the new documents with
``server.metadata.reload(registry.metadata_spec())``.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509

from idp.config import ConfigError, PolicyError
from idp.portals.cache import MetadataCache
from idp.portals.policy import PortalPolicy, load_portal_policies
from idp.saml.sp_metadata import (
    Endpoint,
    SignatureVerifier,
    SpMetadata,
    check_signature,
    parse_sp_metadata,
)
from idp.samlkit.metadata import MetadataError, fetch_metadata

log = logging.getLogger(__name__)

CACHE_FOLDER = "metadata-cache"
# An unavailable portal is tried again this often (it may just have been started).
RETRY_UNAVAILABLE = timedelta(minutes=1)

Fetch = Callable[[str], bytes]


@dataclass(frozen=True)
class Portal:
    """A relying portal: its policy, and its metadata when we have a usable copy."""

    policy: PortalPolicy
    metadata: SpMetadata | None
    # When the metadata in use was fetched (URL) or read (file).
    metadata_read_at: datetime | None = None
    # Why the last fetch failed or the portal has no metadata (None when all is well).
    problem: str | None = None
    # The last attempt to fetch URL metadata (None for file metadata).
    checked_at: datetime | None = None

    @property
    def name(self) -> str:
        return self.policy.name

    @property
    def entity_id(self) -> str:
        return self.policy.entity_id

    @property
    def available(self) -> bool:
        """Whether SSO may answer this portal: enabled and with metadata."""
        return self.policy.enabled and self.metadata is not None

    def acs_endpoints(self) -> list[Endpoint]:
        """AssertionConsumerServices from metadata (the only places a Response may go)."""
        return list(self.metadata.acs) if self.metadata else []

    def slo_endpoints(self) -> list[Endpoint]:
        return list(self.metadata.slo) if self.metadata else []

    def signing_certificates(self) -> list[x509.Certificate]:
        return list(self.metadata.signing_certificates) if self.metadata else []

    def encryption_certificates(self) -> list[x509.Certificate]:
        return list(self.metadata.encryption_certificates) if self.metadata else []

    def refresh_due_at(self) -> datetime | None:
        """When URL metadata should be fetched again (None for file metadata)."""
        if not self.policy.metadata_is_url or self.checked_at is None:
            return None
        interval = timedelta(minutes=self.policy.metadata_refresh_minutes)
        return self.checked_at + (min(interval, RETRY_UNAVAILABLE) if self.metadata is None
                                  else interval)


class MetadataSources:
    """Reads file metadata, fetches URL metadata and keeps the cache; one set of checks."""

    def __init__(self, cache: MetadataCache, verifier: SignatureVerifier | None = None,
                 fetch: Fetch = fetch_metadata) -> None:
        self.cache = cache
        self.verifier = verifier
        self.fetch = fetch

    def accept(self, policy: PortalPolicy, document: bytes, now: datetime) -> SpMetadata:
        """The metadata if ``document`` passes every check for this portal, else MetadataError."""
        try:
            certificate = policy.certificate_pem()
        except OSError as error:
            raise MetadataError(f"cannot read metadata_certificate "
                                f"{policy.metadata_certificate}: {error.strerror}") from None
        if certificate is not None:
            check_signature(document, certificate, self.verifier)
        return parse_sp_metadata(document, policy.entity_id, now)

    def from_file(self, policy: PortalPolicy, now: datetime) -> Portal:
        """Read file metadata (or its stored copy); anything wrong is a ConfigError (the operator
        must fix it)."""
        path = Path(policy.metadata)
        try:
            document = (policy.metadata_document if policy.metadata_document is not None
                        else path.read_bytes())
            metadata = self.accept(policy, document, now)
        except OSError as error:
            raise ConfigError(f"portal {policy.name} ({policy.source}): cannot read metadata "
                              f"{path}: {error.strerror}") from None
        except MetadataError as error:
            raise ConfigError(f"portal {policy.name} ({policy.source}): metadata {path}: "
                              f"{error}") from None
        read_at = (now if policy.metadata_document is not None
                   else datetime.fromtimestamp(path.stat().st_mtime, UTC))
        return Portal(policy, metadata, metadata_read_at=read_at)

    def from_cache(self, policy: PortalPolicy, now: datetime) -> Portal | None:
        """The cached copy, still checked (the policy's certificate may have changed)."""
        cached = self.cache.read(policy.name, policy.metadata)
        if cached is None:
            return None
        try:
            metadata = self.accept(policy, cached.document, now)
        except MetadataError as error:
            log.warning("portal %s: cached metadata no longer usable: %s", policy.name, error)
            return None
        return Portal(policy, metadata, metadata_read_at=cached.fetched_at,
                      checked_at=cached.fetched_at)

    def from_url(self, policy: PortalPolicy, now: datetime, fallback: Portal | None) -> Portal:
        """Fetch and check URL metadata; on failure keep ``fallback`` (or the cached copy)."""
        try:
            document = self.fetch(policy.metadata)
            metadata = self.accept(policy, document, now)
        except MetadataError as error:
            kept = fallback if fallback and fallback.metadata else self.from_cache(policy, now)
            if kept is None:
                log.warning("portal %s unavailable: metadata %s: %s", policy.name,
                            policy.metadata, error)
                return Portal(policy, None, problem=str(error), checked_at=now)
            log.warning("portal %s: metadata %s rejected, keeping the copy of %s: %s",
                        policy.name, policy.metadata, kept.metadata_read_at, error)
            return replace(kept, policy=policy, problem=str(error), checked_at=now)
        self.cache.write(policy.name, policy.metadata, document, now)
        return Portal(policy, metadata, metadata_read_at=now, checked_at=now)

    def initial(self, policy: PortalPolicy, now: datetime, offline: bool = False) -> Portal:
        """The portal as the IdP starts with it (a fresh cached copy saves a download)."""
        if not policy.metadata_is_url:
            return self.from_file(policy, now)
        cached = self.from_cache(policy, now)
        if offline:
            return cached or Portal(policy, None, problem="no cached metadata")
        due = cached.refresh_due_at() if cached else None
        if cached is not None and due is not None and now < due:
            return cached
        return self.from_url(policy, now, cached)


class PortalRegistry:
    """All portals of this IdP, looked up by entity id (SSO) or name (command line)."""

    def __init__(self, portals: list[Portal], sources: MetadataSources) -> None:
        self.sources = sources
        self._portals = {portal.name: portal for portal in portals}
        self._lock = threading.Lock()
        # Display names by entity id ("Meine Zustimmungen", the logout page): one dict, kept up
        # to date in place, so that whoever holds it sees added and renamed portals.
        self.display_names: dict[str, str] = {}
        self._name_portals()

    @classmethod
    def load(cls, policy_dir: Path, instance_path: Path, *,
             verifier: SignatureVerifier | None = None, fetch: Fetch = fetch_metadata,
             now: datetime | None = None, offline: bool = False,
             plain_http_metadata: bool = True) -> PortalRegistry:
        """Read every portal file and its metadata; raise ConfigError for what must be fixed.

        ``offline`` uses cached URL metadata only (for ``portal list``). Without
        ``plain_http_metadata`` (production) metadata fetched over plain http must be signed
        with a pinned ``metadata_certificate``: anyone answering on the network could otherwise
        swap a portal's endpoints and keys (docs/security.md).
        """
        now = now or datetime.now(UTC)
        sources = MetadataSources(MetadataCache(instance_path / CACHE_FOLDER), verifier, fetch)
        policies = load_portal_policies(policy_dir)
        refuse_plain_http(policies, plain_http_metadata)
        return cls.of(policies, sources, now, offline=offline)

    @classmethod
    def of(cls, policies: list[PortalPolicy], sources: MetadataSources, now: datetime, *,
           offline: bool = False) -> PortalRegistry:
        """The registry of these policies, their metadata read, fetched or taken from cache."""
        return cls([sources.initial(policy, now, offline) for policy in policies], sources)

    def portals(self) -> list[Portal]:
        """Every portal, also disabled and unavailable ones, sorted by name."""
        return sorted(self._portals.values(), key=lambda portal: portal.name)

    def by_name(self, name: str) -> Portal | None:
        return self._portals.get(name)

    def portal(self, entity_id: str) -> Portal | None:
        """The available portal with this entity id; None if unknown, disabled or unavailable."""
        for portal in self._portals.values():
            if portal.entity_id == entity_id and portal.available:
                return portal
        return None

    def portal_for(self, entity_id: str) -> PortalPolicy | None:
        """The policy of the available portal with this entity id (None as :meth:`portal`)."""
        portal = self.portal(entity_id)
        return portal.policy if portal else None

    def metadata_xml(self) -> list[str]:
        """The metadata documents of all available portals, for pysaml2's "inline" metadata."""
        return [portal.metadata.xml for portal in self.portals()
                if portal.available and portal.metadata is not None]

    def metadata_spec(self) -> dict[str, list[str]]:
        """The pysaml2 config ``metadata`` section (also for ``MetadataStore.reload``)."""
        documents = self.metadata_xml()
        return {"inline": documents} if documents else {}

    def update(self, portal: Portal) -> None:
        """Take a refreshed copy of a portal, unless the portal was changed or removed since."""
        with self._lock:
            current = self._portals.get(portal.name)
            if current is None or current.policy != portal.policy:
                return
            self._portals = {**self._portals, portal.name: portal}
        self._name_portals()

    def replace(self, portals: list[Portal]) -> None:
        """Serve exactly these portals from now on (a request in flight keeps its lookups)."""
        with self._lock:
            self._portals = {portal.name: portal for portal in portals}
        self._name_portals()

    def _name_portals(self) -> None:
        names = {portal.entity_id: portal.policy.display_name
                 for portal in self._portals.values()}
        # New names first, stale ones after: a reader never finds a known portal missing.
        self.display_names.update(names)
        for gone in set(self.display_names) - set(names):
            self.display_names.pop(gone, None)


def refuse_plain_http(policies: list[PortalPolicy], plain_http_metadata: bool) -> None:
    """Without ``plain_http_metadata`` (production) metadata fetched over plain http must be
    signed with a pinned certificate (PolicyError otherwise): anyone answering on the network
    could swap a portal's endpoints and keys (docs/security.md)."""
    if plain_http_metadata:
        return
    for policy in policies:
        if policy.metadata.startswith("http://") and (
                policy.metadata_certificate is None and policy.metadata_certificate_pem is None):
            raise PolicyError(
                f"portal {policy.name}: metadata over plain http ({policy.metadata}) "
                "needs metadata_certificate in production (or an https URL or a file)")


class MetadataRefresher:
    """Fetches URL metadata again when it is due; call :meth:`refresh_due` periodically."""

    def __init__(self, registry: PortalRegistry) -> None:
        self.registry = registry
        self._running = threading.Lock()

    def refresh_due(self, now: datetime) -> list[str]:
        """Fetch every portal whose refresh is due; the names whose metadata changed.

        A failed fetch keeps the metadata in use. Concurrent calls do not fetch twice: a call
        while another is running returns at once with no names.
        """
        if not self._running.acquire(blocking=False):
            return []
        try:
            changed = []
            for portal in self.registry.portals():
                due = portal.refresh_due_at()
                if due is None or now < due:
                    continue
                fresh = self.registry.sources.from_url(portal.policy, now, portal)
                self.registry.update(fresh)
                before = portal.metadata.xml if portal.metadata else None
                after = fresh.metadata.xml if fresh.metadata else None
                if before != after:
                    changed.append(portal.name)
            return changed
        finally:
            self._running.release()
