"""The portal as a pysaml2 service provider: configuration, metadata, the IdP it trusts.

pysaml2's ``Saml2Client`` needs the IdP's metadata when it is built; the portal reads that
metadata on first use instead of at start (the IdP may be started after the portal), refreshes it
now and then, and keeps the last good copy when a refresh fails. Signing, verification and
decryption run in-process through the project's one crypto backend (:mod:`idp.samlkit.crypto`),
never through the ``xmlsec1`` program.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography import x509
from saml2 import BINDING_HTTP_POST, BINDING_HTTP_REDIRECT
from saml2.client import Saml2Client
from saml2.config import SPConfig
from saml2.metadata import entity_descriptor, sign_entity_descriptor
from saml2.population import Population

from idp.samlkit.crypto import InProcessCryptoBackend, install_backend, security_context
from idp.samlkit.metadata import MAX_METADATA_BYTES, MetadataError, fetch_metadata
from idp.samlkit.sp_logout import idp_signing_certificates
from sp_client.settings import PortalSettings

log = logging.getLogger(__name__)

ACS_PATH = "/saml/acs"
SLO_REDIRECT_PATH = "/saml/slo/redirect"
SLO_POST_PATH = "/saml/slo/post"
METADATA_PATH = "/saml/metadata"
SIGN_ALG = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"
DIGEST_ALG = "http://www.w3.org/2001/04/xmlenc#sha256"
# How far the IdP's clock may be from ours.
CLOCK_SKEW = timedelta(minutes=1)
# The IdP's metadata is read again this often (a key rollover reaches us within this time).
METADATA_REFRESH = timedelta(minutes=10)
OUR_METADATA_VALID_HOURS = 24 * 7


class IdpUnavailable(Exception):
    """The IdP's metadata cannot be read (and no earlier copy exists); ``str()`` says why."""


@dataclass(frozen=True)
class Outgoing:
    """A message to the IdP: a redirect to ``url``, or a form POSTed to ``url``."""

    message_id: str
    binding: str
    url: str
    fields: dict[str, str]

    @property
    def is_redirect(self) -> bool:
        return bool(self.binding == BINDING_HTTP_REDIRECT)


class _NoPopulation(Population):  # type: ignore[misc]  # pysaml2 is untyped
    """pysaml2 keeps every login in process memory (``client.users``) for its own logout. Our
    sessions live in the database, so this store keeps nothing and memory stays flat."""

    def add_information_about_person(self, session_info: Any) -> Any:
        return session_info.get("name_id")


def sp_config(settings: PortalSettings, idp_metadata: str | None) -> SPConfig:
    """The pysaml2 configuration of the portal (a comment on every security choice)."""
    base = settings.base_url
    profile = settings.profile
    config = SPConfig()
    config.load({
        "entityid": settings.entity_id,
        "name": profile.display_name,
        "key_file": str(settings.signing.key_file),
        "cert_file": str(settings.signing.cert_file),
        # A key of its own for encryption: the IdP may encrypt assertions to it.
        "encryption_keypairs": [{"key_file": str(settings.encryption.key_file),
                                 "cert_file": str(settings.encryption.cert_file)}],
        # Not the xmlsec1 program: the in-process backend is installed on the client.
        "crypto_backend": "XMLSecurity",
        "metadata": {"inline": [idp_metadata]} if idp_metadata else {},
        # Signatures are checked with the keys in the IdP's metadata only, never with a
        # certificate the message brings along.
        "only_use_keys_in_metadata": True,
        "accepted_time_diff": int(CLOCK_SKEW.total_seconds()),
        # BundID attributes (urn:oid:…) are read by Name; pysaml2 need not know them.
        "allow_unknown_attributes": True,
        "signing_algorithm": SIGN_ALG,
        "digest_algorithm": DIGEST_ALG,
        "organization": {"name": [(profile.display_name, "de")],
                         "display_name": [(profile.display_name, "de")],
                         "url": [(base + "/", "de")]},
        "service": {"sp": {
            "name": profile.display_name,
            "endpoints": {
                "assertion_consumer_service": [(base + ACS_PATH, BINDING_HTTP_POST)],
                "single_logout_service": [(base + SLO_REDIRECT_PATH, BINDING_HTTP_REDIRECT),
                                          (base + SLO_POST_PATH, BINDING_HTTP_POST)],
            },
            "authn_requests_signed": True,
            "logout_requests_signed": True,
            "logout_responses_signed": True,
            # Both the Response and its Assertion must be signed by the IdP.
            "want_response_signed": True,
            "want_assertions_signed": True,
            # Only answers to requests we sent (and still wait for) are taken.
            "allow_unsolicited": False,
            "name_id_format": [profile.name_id_format],
            "name_id_format_allow_create": True,
        }},
    })
    return config


class ServiceProvider:
    """One per portal process: our metadata, and a pysaml2 client for the IdP we trust."""

    def __init__(self, settings: PortalSettings) -> None:
        self.settings = settings
        self.crypto = InProcessCryptoBackend()
        self._lock = threading.Lock()
        self._client: Saml2Client | None = None
        self._idp_entity_id = ""
        self._loaded_at: datetime | None = None
        self._metadata: str | None = None

    # -- our side --

    @property
    def entity_id(self) -> str:
        return self.settings.entity_id

    @property
    def acs_url(self) -> str:
        return self.settings.base_url + ACS_PATH

    def slo_url(self, binding: str) -> str:
        path = SLO_REDIRECT_PATH if binding == BINDING_HTTP_REDIRECT else SLO_POST_PATH
        return self.settings.base_url + path

    def metadata_xml(self) -> str:
        """Our metadata, signed with our key (made once, it depends on nothing else)."""
        if self._metadata is None:
            config = sp_config(self.settings, None)
            config.valid_for = OUR_METADATA_VALID_HOURS
            descriptor = entity_descriptor(config)
            _, signed = sign_entity_descriptor(descriptor, None,
                                               security_context(config, self.crypto))
            self._metadata = str(signed)
        return self._metadata

    # -- the IdP --

    def client(self, now: datetime) -> Saml2Client:
        """The pysaml2 client with the IdP's metadata; :class:`IdpUnavailable` without it."""
        with self._lock:
            due = self._loaded_at is None or now >= self._loaded_at + METADATA_REFRESH
            if due:
                try:
                    self._load(now)
                except (MetadataError, ValueError) as error:
                    if self._client is None:
                        raise IdpUnavailable(str(error)) from None
                    # A failed refresh keeps the copy in use; try again at the next interval.
                    log.warning("IdP metadata not refreshed, keeping the last copy: %s", error)
                    self._loaded_at = now
            assert self._client is not None
            return self._client

    def idp_entity_id(self, now: datetime) -> str:
        self.client(now)
        return self._idp_entity_id

    def _load(self, now: datetime) -> None:
        document = self._read_idp_metadata()
        client = Saml2Client(config=sp_config(self.settings, document.decode("utf-8")))
        install_backend(client, self.crypto)
        client.users = _NoPopulation()
        idps = [entity for entity, data in client.metadata.items()
                if data.get("idpsso_descriptor")]
        if len(idps) != 1:
            raise MetadataError(f"expected one IdP in the metadata, found {len(idps)}")
        self._client, self._idp_entity_id, self._loaded_at = client, idps[0], now

    def _read_idp_metadata(self) -> bytes:
        settings = self.settings
        if settings.metadata_loader is not None:
            document = settings.metadata_loader()
        elif settings.idp_metadata.startswith(("http://", "https://")):
            document = fetch_metadata(settings.idp_metadata)
        else:
            try:
                document = Path(settings.idp_metadata).read_bytes()
            except OSError as error:
                raise MetadataError(f"cannot read {settings.idp_metadata}: "
                                    f"{error.strerror}") from None
        if len(document) > MAX_METADATA_BYTES or b"<!DOCTYPE" in document.upper():
            raise MetadataError("the IdP metadata is too large or has a DOCTYPE")
        return document

    def idp_certificates(self, now: datetime) -> list[x509.Certificate]:
        """The IdP's signing certificates from its metadata (for Redirect signatures)."""
        return idp_signing_certificates(self.client(now), self._idp_entity_id)

    def idp_endpoint(self, now: datetime, service: str, binding: str) -> str:
        """The IdP's SSO or SLO location for ``binding``; :class:`IdpUnavailable` if none."""
        client = self.client(now)
        if service == "sso":
            found = client.metadata.single_sign_on_service(self._idp_entity_id, binding)
        else:
            found = client.metadata.single_logout_service(self._idp_entity_id, binding,
                                                          "idpsso")
        if not found:
            raise IdpUnavailable(f"the IdP has no {service} endpoint for {binding}")
        return str(found[0]["location"])
