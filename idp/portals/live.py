"""A process's portal registry, kept in step with the database without a restart.

At start, :func:`load_registry` imports the policy folder and loads every stored portal. Then
:meth:`LiveRegistry.check`, called on every request, reads the registry's version (one
primary-key read, at most once per :data:`CHECK_EVERY` per process) and reloads the portals when
another process added, changed or removed one. Unchanged portals keep their metadata and its
refresh schedule; a new or changed one is read as at start.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime

from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError, OperationalError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from idp.config import Config, ConfigError, PolicyError
from idp.portals.cache import MetadataCache
from idp.portals.policy import PortalPolicy, portal_folder
from idp.portals.registry import (
    CACHE_FOLDER,
    MetadataSources,
    Portal,
    PortalRegistry,
    refuse_plain_http,
)
from idp.portals.store import import_files, read_portal_files, registry_version, stored_policies
from idp.saml.sp_metadata import SignatureVerifier

log = logging.getLogger(__name__)

# How long a worker may serve a registry that another process has changed. One read of one row
# per second and process costs nothing measurable on the SSO path (docs/deployment.md).
CHECK_EVERY = 1.0
VERSION_QUERY = "SELECT version FROM portal_registry_version WHERE id = 1"
# Workers starting together import the same files; the one that loses a race reads again.
IMPORT_ATTEMPTS = 3


class LiveRegistry:
    """The registry of one process and the version of the database it shows."""

    def __init__(self, registry: PortalRegistry, engine: Engine,
                 sessions: sessionmaker[Session], version: int, *,
                 plain_http_metadata: bool = True, check_every: float = CHECK_EVERY,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.registry = registry
        self.version = version
        self.check_every = check_every
        self._engine = engine
        self._sessions = sessions
        self._plain_http_metadata = plain_http_metadata
        self._clock = clock
        self._next_check = clock() + check_every
        self._lock = threading.Lock()

    def check(self, now: datetime) -> bool:
        """Reload the portals when the registry's version changed; True when they were.

        Another thread reloading is not waited for (this request uses the portals as they
        are), and a database that cannot be reached keeps the portals in use.
        """
        moment = self._clock()
        if moment < self._next_check or not self._lock.acquire(blocking=False):
            return False
        try:
            if moment < self._next_check:
                return False
            self._next_check = moment + self.check_every
            if self._read_version() == self.version:
                return False
            with self._sessions() as session:
                # The version first: a change committed in between is seen at the next check.
                version = registry_version(session)
                policies = stored_policies(session)
            self.registry.replace(self._portals(policies, now))
            self.version = version
            log.info("portal registry reloaded (version %d): %s", version,
                     ", ".join(policy.name for policy in policies) or "no portals")
            return True
        except (SQLAlchemyError, PolicyError, self._engine.dialect.loaded_dbapi.Error) as error:
            # The raw read raises the driver's own errors (psycopg's, sqlite3's), not
            # SQLAlchemy's: PostgreSQL down must give the request its German 503 from the view's
            # own query, never a 500 from here (tests/scale/test_faults.py).
            log.warning("portal registry not reloaded, keeping the portals in use: %s", error)
            return False
        finally:
            self._lock.release()

    def _read_version(self) -> int:
        """The version, read on a pooled DBAPI connection: the cheapest read there is, and one
        that stays out of the statements the app's instrumentation sees (their number and order
        must not depend on when a second began)."""
        connection = self._engine.raw_connection()
        try:
            cursor = connection.cursor()
            try:
                cursor.execute(VERSION_QUERY)
                row = cursor.fetchone()
            finally:
                cursor.close()
        finally:
            connection.close()  # back to the pool, which rolls the read's transaction back
        return int(row[0]) if row else 0

    def _portals(self, policies: list[PortalPolicy], now: datetime) -> list[Portal]:
        current = {portal.name: portal for portal in self.registry.portals()}
        portals = []
        for policy in policies:
            kept = current.get(policy.name)
            if kept is not None and kept.policy == policy:
                portals.append(kept)
                continue
            try:
                refuse_plain_http([policy], self._plain_http_metadata)
                portals.append(self.registry.sources.initial(policy, now))
            except ConfigError as error:
                # Checked when it was stored; a portal that fails now (expired metadata, a
                # production rule) is unavailable here rather than taking the others with it.
                log.error("portal %s unavailable: %s", policy.name, error)
                portals.append(Portal(policy, None, problem=str(error)))
        return portals


def load_registry(config: Config, engine: Engine, sessions: sessionmaker[Session],
                  verifier: SignatureVerifier | None = None) -> LiveRegistry:
    """Import the policy folder (``IDP_POLICY_DIR``) and load every stored portal.

    A broken portal file, or file metadata that is missing, broken or expired, raises
    ConfigError before anything is stored.
    """
    now = datetime.now(UTC)
    sources = MetadataSources(MetadataCache(config.instance_path / CACHE_FOLDER), verifier)
    plain_http = config.is_development
    import_folder(config, sessions, sources, now)
    with sessions() as session:
        version = registry_version(session)
        policies = stored_policies(session)
    refuse_plain_http(policies, plain_http)
    return LiveRegistry(PortalRegistry.of(policies, sources, now), engine, sessions, version,
                        plain_http_metadata=plain_http, check_every=CHECK_EVERY)


def import_folder(config: Config, sessions: sessionmaker[Session], sources: MetadataSources,
                  now: datetime) -> list[str]:
    """Store the portal files of ``IDP_POLICY_DIR`` (checked first); the names that changed."""
    files = read_portal_files(portal_folder(config.policy_dir))
    refuse_plain_http([file.policy for file in files], config.is_development)
    for file in files:
        if not file.policy.metadata_is_url:
            sources.from_file(file.policy, now)  # ConfigError names the portal and the problem
    for attempt in range(1, IMPORT_ATTEMPTS + 1):
        try:
            with sessions() as session, session.begin():
                return import_files(session, files, now)
        except (IntegrityError, OperationalError):
            if attempt == IMPORT_ATTEMPTS:
                raise
    return []
