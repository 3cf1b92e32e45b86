"""Our IdP as pysaml2 sees it: the endpoints (all derived from IDP_BASE_URL) and its config."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from functools import cached_property

from saml2 import BINDING_HTTP_POST, BINDING_HTTP_REDIRECT
from saml2.config import IdPConfig
from saml2.saml import NAMEID_FORMAT_PERSISTENT, NAMEID_FORMAT_TRANSIENT

from idp.saml.response import ASSERTION_LIFETIME

# How far an AuthnRequest's IssueInstant may lie from our clock (either way).
ISSUE_INSTANT_WINDOW = timedelta(minutes=3)

SSO_REDIRECT_PATH = "/saml/sso/redirect"
SSO_POST_PATH = "/saml/sso/post"
SLO_REDIRECT_PATH = "/saml/slo/redirect"
SLO_POST_PATH = "/saml/slo/post"
METADATA_PATH = "/saml/metadata"


@dataclass(frozen=True)
class IdpEndpoints:
    """Our own URLs, all derived from IDP_BASE_URL."""

    base_url: str

    # Computed once: every request reads them.
    @cached_property
    def entity_id(self) -> str:
        return self.base_url + METADATA_PATH

    @property
    def sso(self) -> list[tuple[str, str]]:
        return [(self.base_url + SSO_REDIRECT_PATH, BINDING_HTTP_REDIRECT),
                (self.base_url + SSO_POST_PATH, BINDING_HTTP_POST)]

    @property
    def slo(self) -> list[tuple[str, str]]:
        return [(self.base_url + SLO_REDIRECT_PATH, BINDING_HTTP_REDIRECT),
                (self.base_url + SLO_POST_PATH, BINDING_HTTP_POST)]

    @cached_property
    def all_urls(self) -> frozenset[str]:
        return frozenset(url for url, _ in self.sso + self.slo)


def idp_config(endpoints: IdpEndpoints, key_file: str, cert_file: str,
               metadata_xml: list[str], *, organization: str = "Servicekonto") -> IdPConfig:
    """The pysaml2 configuration of our IdP (signing choices per portal are made per response)."""
    config = IdPConfig()
    config.load({
        "entityid": endpoints.entity_id,
        "key_file": key_file,
        "cert_file": cert_file,
        "encryption_keypairs": [{"key_file": key_file, "cert_file": cert_file}],
        # Not the xmlsec1 program: SamlIdp installs the in-process backend on its Server.
        "crypto_backend": "XMLSecurity",
        "metadata": {"inline": metadata_xml} if metadata_xml else {},
        "accepted_time_diff": int(ISSUE_INSTANT_WINDOW.total_seconds()),
        "service": {"idp": {
            "name": organization,
            "endpoints": {"single_sign_on_service": endpoints.sso,
                          "single_logout_service": endpoints.slo},
            "name_id_format": [NAMEID_FORMAT_TRANSIENT, NAMEID_FORMAT_PERSISTENT],
            # Signed requests are demanded per portal by our own checks (the metadata says
            # WantAuthnRequestsSigned="true": idp/saml/runtime.py), not by pysaml2 for all.
            "want_authn_requests_signed": False,
            "policy": {"default": {
                # docs/architecture.md, pysaml2 trap 6: never release everything when a required
                # attribute is missing; attributes are filtered by us before the response is built.
                "fail_on_missing_requested": False,
                "lifetime": {"minutes": int(ASSERTION_LIFETIME.total_seconds() // 60)},
                "sign_response": True,
                "sign_assertion": True,
                "sign_alg": "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256",
                "digest_alg": "http://www.w3.org/2001/04/xmlenc#sha256",
            }},
            # docs/architecture.md, pysaml2 trap 8: SHA-256, never SHA-1. pysaml2 reads these per
            # service (at the top level they are ignored and Server.signing_algorithm stays
            # RSA-SHA1).
            "signing_algorithm": "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256",
            "digest_algorithm": "http://www.w3.org/2001/04/xmlenc#sha256",
        }},
    })
    return config
