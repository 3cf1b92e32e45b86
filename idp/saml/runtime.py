"""The SAML side of one IdP process: keys, crypto backend, portal registry, pysaml2 Server.

Built once per process in :func:`idp.create_app` (``idp.container.app_parts().saml``); a missing or
broken key, a broken portal file or unreadable file metadata stops the start with a clear
message. From requests, the portal registry follows the database (a portal added, changed or
removed by another process is served within a second) and URL metadata is refreshed, at most
once a minute.
"""

from __future__ import annotations

import fcntl
import logging
import threading
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from saml2.md import KeyDescriptor
from saml2.metadata import entity_descriptor, sign_entity_descriptor
from saml2.xmldsig import KeyInfo, X509Certificate, X509Data

from idp.config import Config, ConfigError
from idp.db import BoundDatabase
from idp.portals.live import LiveRegistry, load_registry
from idp.portals.registry import MetadataRefresher, PortalRegistry
from idp.saml.akdb import AuthnMethod
from idp.saml.configuration import IdpEndpoints, idp_config
from idp.saml.identifiers import METHOD_LEVELS, TrustLevel
from idp.saml.response import ResponseBuilder
from idp.saml.server import SamlIdp
from idp.saml.sp_metadata import verifier_from_backend
from idp.saml.workbench_hooks import FaultInjector, Tracer
from idp.samlkit.crypto import InProcessCryptoBackend, security_context
from idp.samlkit.keys import (
    KeyFileError,
    KeyPair,
    generate_key_pair,
    load_from_folder,
    load_key_pair,
    published_certificates,
)
from idp.security.lifetimes import Lifetime, session_lifetimes

log = logging.getLogger(__name__)

REFRESH_EVERY = timedelta(minutes=1)


def load_keys(config: Config) -> KeyPair:
    """IDP_KEY_FILE/IDP_CERT_FILE, else ``<instance>/keys``; in development made on first start."""
    try:
        if config.key_file or config.cert_file:
            if not (config.key_file and config.cert_file):
                raise ConfigError("IDP_KEY_FILE and IDP_CERT_FILE must be set together")
            return load_key_pair(config.key_file, config.cert_file)
        folder = config.instance_path / "keys"
        if not config.is_development:
            return load_from_folder(folder)
        # Several workers may start at once on a fresh instance: one makes the key, the others
        # wait for it and load that same key (never a second one with its own certificate).
        folder.mkdir(parents=True, exist_ok=True)
        with (folder / ".generate.lock").open("w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if not (folder / "idp-signing.key").exists():
                pair = generate_key_pair(folder)
                log.warning("generated a new signing key %s (fingerprint %s); portals must "
                            "fetch our metadata again", pair.key_file, pair.fingerprint)
                return pair
            return load_from_folder(folder)
    except KeyFileError as error:
        raise ConfigError(f"signing key: {error} Run: servicekonto keys generate") from None


@dataclass
class SamlRuntime:
    """What the SAML views use; one per process."""

    idp: SamlIdp
    registry: PortalRegistry
    # Our successful SSO Responses (lxml, no pysaml2 on the way).
    responses: ResponseBuilder
    keys: KeyPair
    crypto: InProcessCryptoBackend
    key_folder: Path
    _refresher: MetadataRefresher
    _live: LiveRegistry
    # How long a session lasts by the level of its login (IDP_SESSION_*): SessionNotOnOrAfter.
    session_lifetimes: dict[int, Lifetime]
    # The login methods this IdP offers (docs/architecture.md, "Trust levels"): username and
    # password always, the Online-Ausweisfunktion when its simulation is on.
    methods: tuple[AuthnMethod, ...] = (AuthnMethod.BENUTZERNAME,)
    # The level each of them reaches ("FINK": the highest any upstream may reach).
    method_levels: dict[AuthnMethod, TrustLevel] = field(
        default_factory=lambda: dict(METHOD_LEVELS))
    _next_refresh: datetime | None = None
    # The QA workbench's hooks (idp/testing, development only; None in production).
    trace: Tracer | None = None
    faults: FaultInjector | None = None
    _metadata: str | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @classmethod
    def build(cls, config: Config, database: BoundDatabase) -> SamlRuntime:
        keys = load_keys(config)
        crypto = InProcessCryptoBackend()
        live = load_registry(config, database.engine, database.sessionmaker,
                             verifier_from_backend(crypto))
        registry = live.registry
        endpoints = IdpEndpoints(config.base_url)
        pysaml2_config = idp_config(endpoints, str(keys.key_file), str(keys.cert_file),
                                    registry.metadata_xml())
        idp = SamlIdp(pysaml2_config, endpoints, crypto)
        responses = ResponseBuilder(endpoints.entity_id, crypto, str(keys.key_file),
                                    idp.server.sec.my_cert)
        return cls(idp=idp, registry=registry, responses=responses, keys=keys, crypto=crypto,
                   key_folder=keys.cert_file.parent, _refresher=MetadataRefresher(registry),
                   _live=live,
                   methods=(AuthnMethod.BENUTZERNAME, AuthnMethod.EID) if config.eid_simulation
                   else (AuthnMethod.BENUTZERNAME,),
                   session_lifetimes=session_lifetimes(config))

    def refresh(self, now: datetime) -> None:
        """Follow the registry in the database (at most one read a second), fetch due URL
        metadata (at most once a minute), and hand changes to pysaml2."""
        if self._live.check(now):
            with self._lock:
                self.idp.server.metadata.reload(self.registry.metadata_spec())
        if self._next_refresh is not None and now < self._next_refresh:
            return
        with self._lock:
            if self._next_refresh is not None and now < self._next_refresh:
                return
            self._next_refresh = now + REFRESH_EVERY
            if self._refresher.refresh_due(now):
                self.idp.server.metadata.reload(self.registry.metadata_spec())

    def metadata_xml(self) -> str:
        """Our metadata, signed, with the next certificate during a key rollover (cached)."""
        if self._metadata is None:
            config = self.idp.server.config
            descriptor = entity_descriptor(config)
            # What every portal must do unless its registration makes the documented exception
            # (want_authn_requests_signed: false). pysaml2's own setting stays off: it would
            # refuse unsigned requests from every portal alike, exceptions included.
            for role in _roles(descriptor):
                role.want_authn_requests_signed = "true"
            published = published_certificates(self.key_folder, self.keys.cert_file)
            for extra in published[1:]:
                _publish(descriptor, extra)
            context = security_context(config, self.crypto)
            _, signed = sign_entity_descriptor(descriptor, None, context)
            self._metadata = str(signed)
        return self._metadata


def _publish(descriptor: object, cert_file: Path) -> None:
    """Add a second signing certificate (rollover) to the IdP descriptor."""
    text = "".join(cert_file.read_text(encoding="ascii").strip().splitlines()[1:-1])
    key = KeyDescriptor(use="signing", key_info=KeyInfo(
        x509_data=[X509Data(x509_certificate=X509Certificate(text=text))]))
    for role in _roles(descriptor):
        role.key_descriptor.append(key)


def _roles(descriptor: object) -> list[Any]:
    """The IDPSSODescriptor(s) of our EntityDescriptor."""
    roles = getattr(descriptor, "idpsso_descriptor", None)
    return [role for role in (roles if isinstance(roles, list) else [roles]) if role is not None]

