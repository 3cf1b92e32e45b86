"""Our side towards the upstreams: a SAML service provider with its own entity id and metadata.

One pysaml2 ``Saml2Client`` per upstream, built from that upstream's metadata on first use and
rebuilt when its refresh is due (the last good copy stays when a refresh fails). It signs with
the IdP's key; signatures are checked with the keys in the upstream's metadata only.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from saml2 import BINDING_HTTP_POST, BINDING_HTTP_REDIRECT
from saml2.client import Saml2Client
from saml2.config import SPConfig
from saml2.metadata import entity_descriptor, sign_entity_descriptor
from saml2.saml import NAMEID_FORMAT_PERSISTENT, AuthnContextClassRef
from saml2.samlp import RequestedAuthnContext

from idp.broker.upstreams import Upstream
from idp.saml.sp_metadata import check_signature, verifier_from_backend
from idp.samlkit.crypto import InProcessCryptoBackend, install_backend, security_context
from idp.samlkit.metadata import MAX_METADATA_BYTES, MetadataError, fetch_metadata
from idp.samlkit.sp_response import CLOCK_SKEW

log = logging.getLogger(__name__)

METADATA_PATH = "/extern/metadata"
ACS_PATH = "/extern/acs"
SLO_PATH = "/extern/slo"
SIGN_ALG = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"
DIGEST_ALG = "http://www.w3.org/2001/04/xmlenc#sha256"
OUR_METADATA_VALID_HOURS = 24 * 7


class UpstreamUnavailable(Exception):
    """The upstream's metadata cannot be read (and no earlier copy exists)."""


@dataclass(frozen=True)
class Redirect:
    """The signed AuthnRequest on the Redirect binding: its ID and the URL to send the browser."""

    request_id: str
    url: str


@dataclass(frozen=True)
class BrokerEndpoints:
    base_url: str

    @property
    def entity_id(self) -> str:
        return self.base_url + METADATA_PATH

    @property
    def acs_url(self) -> str:
        return self.base_url + ACS_PATH

    @property
    def slo_url(self) -> str:
        """Both bindings at one URL: the upstream's logout messages, requests and answers."""
        return self.base_url + SLO_PATH


def _config(endpoints: BrokerEndpoints, key_file: Path, cert_file: Path,
            metadata: str | None, display_name: str) -> SPConfig:
    config = SPConfig()
    config.load({
        "entityid": endpoints.entity_id,
        "name": display_name,
        "key_file": str(key_file),
        "cert_file": str(cert_file),
        # An upstream may encrypt its assertions to our key.
        "encryption_keypairs": [{"key_file": str(key_file), "cert_file": str(cert_file)}],
        "crypto_backend": "XMLSecurity",
        "metadata": {"inline": [metadata]} if metadata else {},
        # Signatures are checked with the keys of the upstream's metadata only.
        "only_use_keys_in_metadata": True,
        "accepted_time_diff": int(CLOCK_SKEW.total_seconds()),
        "allow_unknown_attributes": True,
        "signing_algorithm": SIGN_ALG,
        "digest_algorithm": DIGEST_ALG,
        "service": {"sp": {
            "name": display_name,
            "endpoints": {
                "assertion_consumer_service": [(endpoints.acs_url, BINDING_HTTP_POST)],
                "single_logout_service": [(endpoints.slo_url, BINDING_HTTP_REDIRECT),
                                          (endpoints.slo_url, BINDING_HTTP_POST)]},
            "logout_requests_signed": True,
            "logout_responses_signed": True,
            "authn_requests_signed": True,
            # Both the Response and its Assertion must be signed: always, for every upstream.
            "want_response_signed": True,
            "want_assertions_signed": True,
            "allow_unsolicited": False,
            # A stable identifier: the link to our account is kept by it.
            "name_id_format": [NAMEID_FORMAT_PERSISTENT],
            "name_id_format_allow_create": True,
        }},
    })
    return config


@dataclass
class _Loaded:
    client: Saml2Client
    loaded_at: datetime


class UpstreamClients:
    """One per process: our SP metadata, and a pysaml2 client per upstream."""

    def __init__(self, endpoints: BrokerEndpoints, key_file: Path, cert_file: Path,
                 crypto: InProcessCryptoBackend, display_name: str = "Servicekonto") -> None:
        self.endpoints = endpoints
        self._key_file, self._cert_file = key_file, cert_file
        self._crypto = crypto
        self._display_name = display_name
        self._lock = threading.Lock()
        self._clients: dict[str, _Loaded] = {}
        self._metadata: str | None = None

    def metadata_xml(self) -> str:
        """Our SP metadata, signed with the IdP's key (made once)."""
        if self._metadata is None:
            config = _config(self.endpoints, self._key_file, self._cert_file, None,
                             self._display_name)
            config.valid_for = OUR_METADATA_VALID_HOURS
            _, signed = sign_entity_descriptor(entity_descriptor(config), None,
                                               security_context(config, self._crypto))
            self._metadata = str(signed)
        return self._metadata

    def client(self, upstream: Upstream, now: datetime) -> Saml2Client:
        """The client for ``upstream``; :class:`UpstreamUnavailable` without its metadata."""
        with self._lock:
            loaded = self._clients.get(upstream.name)
            refresh = timedelta(minutes=upstream.metadata_refresh_minutes)
            if loaded is None or (upstream.metadata_is_url and now >= loaded.loaded_at + refresh):
                try:
                    loaded = _Loaded(self._load(upstream), now)
                except (MetadataError, ValueError) as error:
                    if loaded is None:
                        raise UpstreamUnavailable(str(error)) from None
                    log.warning("metadata of upstream %s not refreshed, keeping the last "
                                "copy: %s", upstream.name, error)
                    loaded = _Loaded(loaded.client, now)
                self._clients[upstream.name] = loaded
            return loaded.client

    def _load(self, upstream: Upstream) -> Saml2Client:
        document = self._read(upstream)
        client = Saml2Client(config=_config(self.endpoints, self._key_file, self._cert_file,
                                            document.decode("utf-8"), self._display_name))
        install_backend(client, self._crypto)
        if not client.metadata.single_sign_on_service(upstream.entity_id,
                                                      BINDING_HTTP_REDIRECT):
            raise MetadataError(f"the metadata has no IdP {upstream.entity_id} with an SSO "
                                "endpoint for the Redirect binding")
        return client

    def _read(self, upstream: Upstream) -> bytes:
        """The upstream's metadata; signed with its ``metadata_certificate`` when one is set
        (the same checks as a portal's, :func:`idp.saml.sp_metadata.check_signature`)."""
        if upstream.metadata_is_url:
            document = fetch_metadata(upstream.metadata)
        else:
            try:
                document = Path(upstream.metadata).read_bytes()
            except OSError as error:
                raise MetadataError(f"cannot read {upstream.metadata}: "
                                    f"{error.strerror}") from None
        if len(document) > MAX_METADATA_BYTES or b"<!DOCTYPE" in document.upper():
            raise MetadataError("the metadata is too large or has a DOCTYPE")
        if upstream.metadata_certificate is not None:
            try:
                certificate = upstream.metadata_certificate.read_bytes()
            except OSError as error:
                raise MetadataError(f"cannot read {upstream.metadata_certificate}: "
                                    f"{error.strerror}") from None
            check_signature(document, certificate, verifier_from_backend(self._crypto))
        return document

    def authn_request(self, upstream: Upstream, now: datetime, level: int) -> Redirect:
        """A signed AuthnRequest asking for ``level`` at least (never above what we believe of
        the upstream), on the Redirect binding."""
        client = self.client(upstream, now)
        destination = client.metadata.single_sign_on_service(
            upstream.entity_id, BINDING_HTTP_REDIRECT)[0]["location"]
        context = RequestedAuthnContext(authn_context_class_ref=[AuthnContextClassRef(
            text=f"STORK-QAA-Level-{min(level, upstream.maximum_trust_level)}")],
            comparison="minimum")
        request_id, request = client.create_authn_request(
            destination=destination, nameid_format=NAMEID_FORMAT_PERSISTENT,
            requested_authn_context=context, sign=False)
        info = client.apply_binding(BINDING_HTTP_REDIRECT, str(request), destination, "",
                                    sign=True, sigalg=SIGN_ALG)
        return Redirect(request_id, dict(info["headers"])["Location"])
