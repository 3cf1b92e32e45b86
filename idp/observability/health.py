"""Liveness and readiness: is the process up, and can it serve a login right now?

Readiness asks each dependency the cheapest question that proves it works: ``SELECT 1`` on the
database, ``PING`` on Redis (when configured), and a signature with the signing key over a
fixed byte string, verified with our published certificate. A failed check is reported by name
only: an exception's text may hold a database URL or a host name, which a probe must not show.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from redis import Redis
from sqlalchemy import Engine, text

log = logging.getLogger(__name__)

PROBE_BYTES = b"servicekonto readiness probe"
# A probe must answer before the orchestrator gives up on it (Docker: 5 s).
REDIS_TIMEOUT_SECONDS = 2.0

Check = Callable[[], None]


def database_check(engine: Engine) -> Check:
    """Raises unless the database answers ``SELECT 1``."""
    def check() -> None:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    return check


def redis_check(url: str) -> Check:
    """Raises unless Redis answers ``PING`` within :data:`REDIS_TIMEOUT_SECONDS`."""
    client = Redis.from_url(url, socket_timeout=REDIS_TIMEOUT_SECONDS,
                            socket_connect_timeout=REDIS_TIMEOUT_SECONDS)

    def check() -> None:
        if not client.ping():
            raise ConnectionError("no PONG")
    return check


@dataclass
class SigningKeyCheck:
    """Signs :data:`PROBE_BYTES` with the key file and verifies with the certificate.

    The key is read once, at the first probe, and kept: a probe should not read a file each
    time, and what matters is that the key this worker signs with still works.
    """

    key_file: Path
    certificate: x509.Certificate
    _key: object = field(default=None, repr=False)

    def __call__(self) -> None:
        if self._key is None:
            self._key = serialization.load_pem_private_key(self.key_file.read_bytes(), None)
        key, public = self._key, self.certificate.public_key()
        if isinstance(key, rsa.RSAPrivateKey) and isinstance(public, rsa.RSAPublicKey):
            signature = key.sign(PROBE_BYTES, padding.PKCS1v15(), hashes.SHA256())
            public.verify(signature, PROBE_BYTES, padding.PKCS1v15(), hashes.SHA256())
        elif isinstance(key, ec.EllipticCurvePrivateKey) and \
                isinstance(public, ec.EllipticCurvePublicKey):
            signature = key.sign(PROBE_BYTES, ec.ECDSA(hashes.SHA256()))
            public.verify(signature, PROBE_BYTES, ec.ECDSA(hashes.SHA256()))
        else:
            raise TypeError("key and certificate do not belong together")


@dataclass(frozen=True)
class Readiness:
    """The named checks of one process."""

    checks: dict[str, Check]

    def run(self) -> tuple[bool, dict[str, str]]:
        """(all passed, check name -> "ok" or "failed"); never raises."""
        results: dict[str, str] = {}
        for name, check in self.checks.items():
            try:
                check()
            except Exception as error:  # any failure means "not ready", never a 500
                log.warning("readiness check %s failed: %s", name, type(error).__name__)
                results[name] = "failed"
            else:
                results[name] = "ok"
        return all(result == "ok" for result in results.values()), results
