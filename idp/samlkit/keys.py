"""The IdP's signing key and certificate: made, loaded and rolled over.

Files, in the key folder (by default ``<instance>/keys/``):

- ``idp-signing.key``      the RSA private key (PEM, PKCS#8, file mode 0600);
- ``idp-signing.crt``      its self-signed X.509 certificate (PEM, SHA-256);
- ``idp-signing-next.crt`` optional: the certificate of the next key during a rollover. It is
  published in metadata beside the current one so portals trust it before we switch
  (its key is ``idp-signing-next.key``, kept until the switch).
- ``idp-signing-previous.key``/``.crt``: the pair replaced by the last switch
  (``servicekonto keys rollover``), kept so that a switch can be undone by hand.

``IDP_KEY_FILE``/``IDP_CERT_FILE`` point elsewhere when set (docs/configuration.md).
"""

from __future__ import annotations

import datetime
import functools
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes
from cryptography.x509.oid import NameOID

KEY_NAME = "idp-signing.key"
CERT_NAME = "idp-signing.crt"
NEXT_KEY_NAME = "idp-signing-next.key"
NEXT_CERT_NAME = "idp-signing-next.crt"
PREVIOUS_KEY_NAME = "idp-signing-previous.key"
PREVIOUS_CERT_NAME = "idp-signing-previous.crt"
MIN_BITS = 3072  # BSI TR-02102-1: RSA below 3000 bits is not suitable beyond 2023
DEFAULT_DAYS = 730
DEFAULT_COMMON_NAME = "Servicekonto IdP"


class KeyFileError(Exception):
    """A key cannot be made or loaded; the message says why (in German, for the operator)."""


@dataclass(frozen=True)
class KeyPair:
    """A private key file and its certificate file, with what an operator checks."""

    key_file: Path
    cert_file: Path
    certificate: x509.Certificate

    @property
    def fingerprint(self) -> str:
        """SHA-256 fingerprint as colon-separated hex, as portals' admins compare it."""
        return self.certificate.fingerprint(hashes.SHA256()).hex(":").upper()

    @property
    def not_after(self) -> datetime.datetime:
        return self.certificate.not_valid_after_utc


def generate_key_pair(folder: Path, *, bits: int = MIN_BITS, days: int = DEFAULT_DAYS,
                      common_name: str = DEFAULT_COMMON_NAME, force: bool = False,
                      key_name: str = KEY_NAME, cert_name: str = CERT_NAME,
                      now: datetime.datetime | None = None) -> KeyPair:
    """Write a new RSA key (0600) and a self-signed SHA-256 certificate into ``folder``.

    Refuses (:class:`KeyFileError`) fewer than MIN_BITS, a non-positive lifetime, and existing
    files unless ``force``.
    """
    if bits < MIN_BITS:
        raise KeyFileError(f"Schlüssel mit {bits} Bit sind zu kurz; mindestens {MIN_BITS} Bit.")
    if days < 1:
        raise KeyFileError("Die Gültigkeit muss mindestens einen Tag betragen.")
    key_file, cert_file = folder / key_name, folder / cert_name
    existing = [str(p) for p in (key_file, cert_file) if p.exists()]
    if existing and not force:
        raise KeyFileError("Datei existiert bereits: " + ", ".join(existing)
                        + " (mit --force überschreiben).")
    key = rsa.generate_private_key(public_exponent=65537, key_size=bits)
    issued = now or datetime.datetime.now(datetime.UTC)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    certificate = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        # A few minutes back, so portals with a slightly slow clock accept it at once.
        .not_valid_before(issued - datetime.timedelta(minutes=5))
        .not_valid_after(issued + datetime.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(key, hashes.SHA256()))
    folder.mkdir(parents=True, exist_ok=True)
    _write_private(key_file, key.private_bytes(serialization.Encoding.PEM,
                                               serialization.PrivateFormat.PKCS8,
                                               serialization.NoEncryption()))
    cert_file.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    return KeyPair(key_file, cert_file, certificate)


def _write_private(path: Path, data: bytes) -> None:
    """Write ``data`` so that it is never readable by others, not even for a moment."""
    if path.exists():
        path.unlink()
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(data)


def load_certificate(cert_file: Path) -> x509.Certificate:
    try:
        return x509.load_pem_x509_certificate(cert_file.read_bytes())
    except (OSError, ValueError) as error:
        raise KeyFileError(f"Zertifikat {cert_file} ist nicht lesbar: {error}") from None


def load_private_key(key_file: Path) -> PrivateKeyTypes:
    """The private key in ``key_file``, loaded once per process and file version.

    Loading checks the RSA key's consistency, which costs ~0.1 s; the key is read at every
    start, by our checks and by pysaml2's Redirect signer, so it is done once.
    """
    try:
        stat = key_file.stat()
    except OSError as error:
        raise KeyFileError(f"Schlüssel {key_file} ist nicht lesbar: {error.strerror}") from None
    return _load_private_key(str(key_file), stat.st_mtime_ns, stat.st_size)


@functools.lru_cache(maxsize=8)
def _load_private_key(path: str, _mtime_ns: int, _size: int) -> PrivateKeyTypes:
    try:
        return serialization.load_pem_private_key(Path(path).read_bytes(), password=None)
    except (OSError, ValueError, TypeError) as error:
        raise KeyFileError(f"Schlüssel {path} ist nicht lesbar: {error}") from None


def load_key_pair(key_file: Path, cert_file: Path) -> KeyPair:
    """The RSA pair at these paths, checked to belong together; :class:`KeyFileError` if not."""
    key = load_private_key(key_file)
    certificate = load_certificate(cert_file)
    public = certificate.public_key()
    if not isinstance(key, rsa.RSAPrivateKey) or not isinstance(public, rsa.RSAPublicKey):
        raise KeyFileError(f"Schlüssel {key_file} oder Zertifikat {cert_file} ist nicht RSA.")
    if public.public_numbers() != key.public_key().public_numbers():
        raise KeyFileError(f"Zertifikat {cert_file} gehört nicht zum Schlüssel {key_file}.")
    return KeyPair(key_file, cert_file, certificate)


def load_from_folder(folder: Path) -> KeyPair:
    """The current pair in a key folder (``idp-signing.key``/``.crt``)."""
    return load_key_pair(folder / KEY_NAME, folder / CERT_NAME)


def promote_next_key(folder: Path) -> KeyPair:
    """The key rollover's switch: the next pair becomes the current one.

    The replaced pair is kept as ``…-previous``; the next pair is checked first, so a broken
    one changes nothing. Each step is an atomic rename within the folder; workers pick the new
    key up when they restart.
    """
    following = load_key_pair(folder / NEXT_KEY_NAME, folder / NEXT_CERT_NAME)
    current = load_from_folder(folder)
    os.replace(current.key_file, folder / PREVIOUS_KEY_NAME)
    os.replace(current.cert_file, folder / PREVIOUS_CERT_NAME)
    os.replace(following.key_file, folder / KEY_NAME)
    os.replace(following.cert_file, folder / CERT_NAME)
    return load_from_folder(folder)


def published_certificates(folder: Path, current_cert: Path | None = None) -> list[Path]:
    """Certificates to publish in metadata: the current one, then the next one if present."""
    paths = [current_cert or folder / CERT_NAME]
    following = folder / NEXT_CERT_NAME
    if following.exists():
        load_certificate(following)  # a broken next certificate must stop the start
        paths.append(following)
    return paths
