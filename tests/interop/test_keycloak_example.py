"""docs/examples/keycloak/identity-provider.json against the IdP, without a Keycloak.

No Keycloak runs here (none is in the package registries this project installs from: PyPI,
Debian, npm). What can be checked without it is checked against a running IdP app: the realm
import parses, its URLs are the endpoints our metadata publishes in the bindings it chooses, it
signs as our metadata demands and with the algorithm we use, its NameID format and requested
trust level are ones we answer with success, and its mappers read attributes we really release.
Whether Keycloak itself takes the file and completes a login is not tested.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient
from lxml import etree
from saml2 import BINDING_HTTP_POST, BINDING_HTTP_REDIRECT
from saml2.saml import NAME_FORMAT_URI, NAMEID_FORMAT_TRANSIENT

from idp.config import PROJECT_ROOT
from idp.portals.policy import BUNDID_ATTRIBUTES
from idp.saml.identifiers import TrustLevel, satisfiable
from idp.samlkit.bundid import BY_NAME
from idp.samlkit.signature_profile import SIGN_ALGORITHM
from tests.conftest import BASE_URL

EXAMPLE = PROJECT_ROOT / "docs" / "examples" / "keycloak" / "identity-provider.json"
NS = {"md": "urn:oasis:names:tc:SAML:2.0:metadata", "ds": "http://www.w3.org/2000/09/xmldsig#"}
# Keycloak's SignatureAlgorithm names for what the IdP accepts and uses.
KEYCLOAK_ALGORITHMS = {"RSA_SHA256": "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"}
# Keycloak's names of the attribute NameFormats (UserAttributeMapper.NAME_FORMATS).
KEYCLOAK_NAME_FORMATS = {"ATTRIBUTE_FORMAT_URI": NAME_FORMAT_URI}
MAPPER = "saml-user-attribute-idp-mapper"


def realm_import(base_url: str = BASE_URL) -> dict[str, Any]:
    """The example with the IdP's base URL filled in (the operator's one placeholder that
    matters here; the Keycloak URL and realm stay as they are)."""
    text = EXAMPLE.read_text(encoding="utf-8").replace("{{IDP_BASE_URL}}", base_url)
    parsed: dict[str, Any] = json.loads(text)
    return parsed


def provider_config() -> dict[str, str]:
    (provider,) = realm_import()["identityProviders"]
    config: dict[str, str] = provider["config"]
    return config


@pytest.fixture
def metadata(client: FlaskClient) -> etree._Element:
    """The IdP's metadata as Keycloak would fetch it from metadataDescriptorUrl."""
    answer = client.get(provider_config()["metadataDescriptorUrl"].removeprefix(BASE_URL))
    assert answer.status_code == 200
    root: etree._Element = etree.fromstring(answer.get_data())
    return root


def endpoint(metadata: etree._Element, service: str, binding: str) -> str:
    (location,) = metadata.xpath(f"md:IDPSSODescriptor/md:{service}[@Binding=$binding]/@Location",
                                 namespaces=NS, binding=binding)
    return str(location)


def test_the_example_is_a_realm_import_fragment_with_one_saml_provider_and_no_keys() -> None:
    raw = EXAMPLE.read_text(encoding="utf-8")
    data = realm_import()
    assert set(data) == {"identityProviders", "identityProviderMappers"}
    (provider,) = data["identityProviders"]
    assert provider["providerId"] == "saml" and provider["enabled"] is True
    # Keycloak keeps an identity provider's config as a map of strings.
    assert all(isinstance(value, str) for value in provider["config"].values())
    # No certificate or key in the file: Keycloak takes the IdP's keys from its metadata.
    assert "signingCertificate" not in provider["config"]
    assert provider["config"]["useMetadataDescriptorUrl"] == "true"
    assert "BEGIN" not in raw and "MII" not in raw


def test_its_urls_are_the_endpoints_our_metadata_publishes_for_the_chosen_bindings(
        metadata: etree._Element) -> None:
    config = provider_config()
    assert config["idpEntityId"] == metadata.get("entityID") == BASE_URL + "/saml/metadata"
    assert config["metadataDescriptorUrl"] == metadata.get("entityID")
    sso_binding = BINDING_HTTP_POST if config["postBindingAuthnRequest"] == "true" \
        else BINDING_HTTP_REDIRECT
    assert config["singleSignOnServiceUrl"] == endpoint(metadata, "SingleSignOnService",
                                                        sso_binding)
    # Keycloak sends its LogoutRequest (postBindingLogout) and its LogoutResponse
    # (postBindingResponse) to the one singleLogoutServiceUrl; each of our SLO endpoints takes
    # one binding, so the two must agree and the URL must be that binding's endpoint.
    assert config["postBindingLogout"] == config["postBindingResponse"]
    slo_binding = BINDING_HTTP_POST if config["postBindingLogout"] == "true" \
        else BINDING_HTTP_REDIRECT
    assert config["singleLogoutServiceUrl"] == endpoint(metadata, "SingleLogoutService",
                                                        slo_binding)
    # postBindingResponse also makes Keycloak's AuthnRequest say ProtocolBinding HTTP-POST:
    # the only binding the IdP answers with.
    assert config["postBindingResponse"] == "true"
    # No SOAP endpoint in our metadata: logout runs through the browser only.
    bindings = set(metadata.xpath("md:IDPSSODescriptor/md:SingleLogoutService/@Binding",
                                  namespaces=NS))
    assert bindings == {BINDING_HTTP_REDIRECT, BINDING_HTTP_POST}
    assert config["backchannelSupported"] == "false"


def test_it_signs_its_requests_as_our_metadata_demands_with_the_algorithm_we_use(
        metadata: etree._Element) -> None:
    config = provider_config()
    (descriptor,) = metadata.xpath("md:IDPSSODescriptor", namespaces=NS)
    assert descriptor.get("WantAuthnRequestsSigned") == "true"
    assert config["wantAuthnRequestsSigned"] == "true"
    (signed_with,) = metadata.xpath("ds:Signature/ds:SignedInfo/ds:SignatureMethod/@Algorithm",
                                    namespaces=NS)
    assert KEYCLOAK_ALGORITHMS[config["signatureAlgorithm"]] == signed_with == SIGN_ALGORITHM
    # Our responses and assertions are signed (sign_response, sign_assertion): check both.
    assert config["validateSignature"] == "true" and config["wantAssertionsSigned"] == "true"
    assert int(config["allowedClockSkew"]) >= 0


def test_its_name_id_format_and_trust_level_are_answered_with_success(
        metadata: etree._Element) -> None:
    config = provider_config()
    formats = metadata.xpath("md:IDPSSODescriptor/md:NameIDFormat/text()", namespaces=NS)
    assert config["nameIDPolicyFormat"] in formats
    # Keycloak refuses SUBJECT with transient NameIDs (a new identity at every login).
    assert config["principalType"] == "SUBJECT"
    assert config["nameIDPolicyFormat"] != NAMEID_FORMAT_TRANSIENT
    requested = tuple(json.loads(config["authnContextClassRefs"]))
    assert all(TrustLevel.from_class_ref(ref) is not None for ref in requested)
    # A password login (level 1) meets it: no NoAuthnContext.
    assert satisfiable(requested, config["authnContextComparisonType"], TrustLevel.LEVEL_1)


def test_its_mappers_read_attributes_the_idp_releases_by_their_names() -> None:
    data = realm_import()
    (provider,) = data["identityProviders"]
    mappers = data["identityProviderMappers"]
    assert mappers
    for mapper in mappers:
        config = mapper["config"]
        assert mapper["identityProviderAlias"] == provider["alias"]
        assert mapper["identityProviderMapper"] == MAPPER
        released = BY_NAME[config["attribute.name"]]  # KeyError: a name we never release
        assert config["attribute.friendly.name"] == released.friendly_name
        assert BUNDID_ATTRIBUTES[released.friendly_name] == config["attribute.name"]
        assert KEYCLOAK_NAME_FORMATS[config["attribute.name.format"]] == NAME_FORMAT_URI
        assert config["user.attribute"]
    # Each attribute is read once.
    names = [mapper["config"]["attribute.name"] for mapper in mappers]
    assert len(names) == len(set(names))


def test_the_example_folder_explains_its_placeholders() -> None:
    readme = (Path(EXAMPLE).parent / "README.md").read_text(encoding="utf-8")
    for placeholder in ("{{IDP_BASE_URL}}", "{{KEYCLOAK_URL}}", "{{REALM}}"):
        assert placeholder in readme
        assert placeholder in EXAMPLE.read_text(encoding="utf-8")
