"""An AuthnRequest from a real pysaml2 SP is parsed, and what pysaml2 does not check, we do."""

from __future__ import annotations

import base64
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from saml2 import BINDING_HTTP_POST, BINDING_HTTP_REDIRECT
from saml2.client import Saml2Client

from idp.clock import utcnow
from idp.saml.configuration import IdpEndpoints, idp_config
from idp.saml.incoming import read_authn_request
from idp.saml.messages import RequestRejected
from idp.saml.server import SamlIdp
from idp.saml.sp_metadata import SpMetadata, parse_sp_metadata
from idp.samlkit.bindings import decode_redirect
from idp.samlkit.untrusted_xml import parse_xml
from tests.saml_support import key_pair, metadata_of, sp_client, sp_config, sp_metadata

BASE = "https://konto.example.org"
SP_ID = "https://portal.example.org/saml/metadata"
ACS = "https://portal.example.org/saml/acs"


@dataclass
class Federation:
    idp: SamlIdp
    sp: Saml2Client
    # The portal's metadata as the registry checks it.
    metadata: SpMetadata

    def parse(self, xml: bytes, now: datetime, require_signature: bool = False) -> Any:
        """The SSO flow's reading of an AuthnRequest from this portal (raises RequestRejected)."""
        return read_authn_request(parse_xml(xml, RequestRejected), now, metadata=self.metadata,
                                  our_urls=self.idp.endpoints.all_urls, crypto=self.idp.crypto,
                                  require_signature=require_signature)


@pytest.fixture
def federation(tmp_path: Path) -> Federation:
    endpoints = IdpEndpoints(BASE)
    idp_key, idp_cert = key_pair(tmp_path / "idp", "idp")
    sp_key, sp_cert = key_pair(tmp_path / "sp", "sp")
    bare_sp = sp_config(SP_ID, ACS, sp_key, sp_cert, encryption=False)
    portal_metadata = sp_metadata(bare_sp)
    idp = SamlIdp(idp_config(endpoints, str(idp_key), str(idp_cert), [portal_metadata]),
                  endpoints)
    idp_metadata = metadata_of(idp.server.config)
    # Unsigned requests: the parser is tested here, the signature policy in tests/flows.
    return Federation(idp, sp_client(sp_config(SP_ID, ACS, sp_key, sp_cert, idp_metadata,
                                               sign_requests=False)),
                      parse_sp_metadata(portal_metadata.encode(), SP_ID, utcnow()))


def redirect_request(sp: Saml2Client, **kwargs: object) -> bytes:
    _, info = sp.prepare_for_authenticate(entityid=f"{BASE}/saml/metadata",
                                          binding=BINDING_HTTP_REDIRECT, **kwargs)
    location = dict(info["headers"])["Location"]
    return decode_redirect(urlsplit(location).query.encode()).xml


def test_pysaml2_signs_with_rsa_sha256_and_sha256_digests(federation: Federation) -> None:
    server = federation.idp.server
    assert server.signing_algorithm == "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"
    assert server.digest_algorithm == "http://www.w3.org/2001/04/xmlenc#sha256"


def test_a_redirect_request_of_a_known_portal_is_parsed(federation: Federation) -> None:
    parsed = federation.parse(redirect_request(federation.sp), utcnow())
    assert parsed.issuer == SP_ID
    assert parsed.acs_url == ACS and parsed.acs_binding == BINDING_HTTP_POST
    assert parsed.destination == f"{BASE}/saml/sso/redirect"
    assert not parsed.force_authn and not parsed.is_passive


def test_force_authn_and_is_passive_are_read(federation: Federation) -> None:
    xml = redirect_request(federation.sp, force_authn="true", is_passive="true")
    parsed = federation.parse(xml, utcnow())
    assert parsed.force_authn and parsed.is_passive


def _rewrite(xml: bytes, old: bytes, new: bytes) -> bytes:
    assert old in xml, xml
    return xml.replace(old, new)


def test_an_acs_url_not_in_metadata_is_refused(federation: Federation) -> None:
    xml = _rewrite(redirect_request(federation.sp), ACS.encode(),
                   b"https://evil.example/steal")
    with pytest.raises(RequestRejected, match="ACS not in metadata"):
        federation.parse(xml, utcnow())


def test_an_acs_index_not_in_metadata_is_refused(federation: Federation) -> None:
    xml = redirect_request(federation.sp)
    xml = _rewrite(xml, f'AssertionConsumerServiceURL="{ACS}"'.encode(),
                   b'AssertionConsumerServiceIndex="7"')
    with pytest.raises(RequestRejected, match="ACS not in metadata"):
        federation.parse(xml, utcnow())


def test_an_unknown_issuer_is_refused(federation: Federation) -> None:
    xml = _rewrite(redirect_request(federation.sp), SP_ID.encode(),
                   b"https://stranger.example/sp")
    with pytest.raises(RequestRejected, match="unknown issuer"):
        federation.parse(xml, utcnow())


def test_a_request_for_another_destination_is_refused(federation: Federation) -> None:
    xml = _rewrite(redirect_request(federation.sp), f"{BASE}/saml/sso/redirect".encode(),
                   b"https://other-idp.example/sso")
    with pytest.raises(RequestRejected):
        federation.parse(xml, utcnow())


@pytest.mark.parametrize("offset", [timedelta(minutes=-10), timedelta(minutes=10)])
def test_an_issue_instant_outside_a_few_minutes_is_refused(federation: Federation,
                                                            offset: timedelta) -> None:
    xml = redirect_request(federation.sp)
    with pytest.raises(RequestRejected, match="IssueInstant"):
        federation.parse(xml, utcnow() + offset)


def test_an_unsigned_request_is_refused_where_a_signature_is_required(
        federation: Federation) -> None:
    with pytest.raises(RequestRejected, match="signature is required"):
        federation.parse(redirect_request(federation.sp), utcnow(), require_signature=True)


def test_garbage_xml_is_refused_not_crashed_on(federation: Federation) -> None:
    for xml in (b"<not-saml/>", b"<samlp:AuthnRequest", "<x>\u00e4</x>".encode("latin-1")):
        with pytest.raises(RequestRejected):
            federation.parse(xml, utcnow())


def test_the_redirect_encoding_round_trips_with_pysaml2(federation: Federation) -> None:
    _, info = federation.sp.prepare_for_authenticate(entityid=f"{BASE}/saml/metadata",
                                                     binding=BINDING_HTTP_REDIRECT,
                                                     relay_state="/formulare/42")
    location = dict(info["headers"])["Location"]
    query = urlsplit(location).query
    raw = base64.b64decode(parse_qs(query)["SAMLRequest"][0])
    assert zlib.decompress(raw, -15) == decode_redirect(query.encode()).xml
    assert decode_redirect(query.encode()).relay_state == "/formulare/42"


def test_an_unsigned_response_carries_exactly_the_released_attributes(
        federation: Federation) -> None:
    from idp.consent.attributes import AttributeTrust, ReleasedAttribute
    from idp.saml.response import Authentication, Recipient, ResponseBuilder, Signing

    parsed = federation.parse(redirect_request(federation.sp), utcnow())
    now, server = utcnow(), federation.idp.server
    builder = ResponseBuilder(federation.idp.entity_id, federation.idp.crypto,
                              server.sec.key_file, server.sec.my_cert)
    xml = builder.build(
        Recipient(parsed.issuer, parsed.acs_url, parsed.request_id), "bpk2-value",
        "urn:oasis:names:tc:SAML:2.0:nameid-format:persistent",
        [ReleasedAttribute("urn:oid:2.5.4.42", "givenName", "Vorname", ("Erika",),
                           AttributeTrust.UNTERGEORDNET, ("Erika",))],
        Authentication("STORK-QAA-Level-1", now, "session-1", now + timedelta(hours=12)),
        Signing(sign_response=False, sign_assertion=False), now)
    assert 'Name="urn:oid:2.5.4.42"' in xml
    assert "TrustLevel=\"UNTERGEORDNET\"" in xml
    assert "bpk2-value" in xml and 'SessionIndex="session-1"' in xml
    assert f'InResponseTo="{parsed.request_id}"' in xml
    assert f'Recipient="{ACS}"' in xml


def test_a_portal_without_an_encryption_key_never_gets_a_clear_text_assertion_by_mistake(
        federation: Federation) -> None:
    parsed = federation.parse(redirect_request(federation.sp), utcnow())
    with pytest.raises(RequestRejected, match="encryption required"):
        federation.idp.encryption_key(parsed.issuer)


# --- read with lxml from the one parsed tree (issue 12): what pysaml2's schema check refused,
# and the embedded signature verified with the keys from metadata ---

def _signed(xml: bytes, key: Path) -> bytes:
    from tests.unit.saml import forgery

    root = forgery.parse(xml)
    return forgery.text(forgery.raw_sign(root, forgery.private_key(key))).encode("utf-8")


def test_an_embedded_signature_by_the_portal_is_verified_with_its_metadata_key(
        federation: Federation, tmp_path: Path) -> None:
    xml = _signed(redirect_request(federation.sp), tmp_path / "sp" / "sp.key")
    parsed = federation.parse(xml, utcnow(), require_signature=True)
    assert parsed.signed and parsed.issuer == SP_ID


def test_an_embedded_signature_by_another_key_is_refused(federation: Federation,
                                                         tmp_path: Path) -> None:
    stranger_key, _ = key_pair(tmp_path / "stranger", "stranger")
    xml = _signed(redirect_request(federation.sp), stranger_key)
    with pytest.raises(RequestRejected, match="bad signature"):
        federation.parse(xml, utcnow())


def _changed(xml: bytes, change: Callable[[Any], None]) -> bytes:
    from tests.unit.saml import forgery

    root = forgery.parse(xml)
    change(root)
    return forgery.text(root).encode("utf-8")


def test_a_request_changed_after_signing_is_refused(federation: Federation,
                                                    tmp_path: Path) -> None:
    xml = _signed(redirect_request(federation.sp), tmp_path / "sp" / "sp.key")
    with pytest.raises(RequestRejected, match="bad signature"):
        federation.parse(
            _changed(xml, lambda root: root.set("IsPassive", "true")), utcnow())


@pytest.mark.parametrize("value", ["yes", "TRUE", "False"])
@pytest.mark.parametrize("attribute", ["ForceAuthn", "IsPassive"])
def test_a_boolean_that_is_not_xs_boolean_is_refused(federation: Federation,
                                                     attribute: str, value: str) -> None:
    """xs:boolean has four literals, case included: "TRUE" must not pass as false."""
    xml = _changed(redirect_request(federation.sp), lambda root: root.set(attribute, value))
    with pytest.raises(RequestRejected, match="not a boolean"):
        federation.parse(xml, utcnow())


def test_two_name_id_policies_are_refused(federation: Federation) -> None:
    from lxml import etree

    def twice(root: Any) -> None:
        for _ in range(2):
            etree.SubElement(root, "{urn:oasis:names:tc:SAML:2.0:protocol}NameIDPolicy",
                             AllowCreate="true")

    with pytest.raises(RequestRejected, match="more than one NameIDPolicy"):
        federation.parse(_changed(redirect_request(federation.sp), twice), utcnow())


def test_a_request_without_id_is_refused(federation: Federation) -> None:
    xml = redirect_request(federation.sp)
    start = xml.index(b' ID="')
    end = xml.index(b'"', start + 5)
    with pytest.raises(RequestRejected, match="no ID"):
        federation.parse(xml[:start] + xml[end + 1:], utcnow())


def test_the_acs_index_and_the_default_acs_come_from_metadata(federation: Federation) -> None:
    xml = redirect_request(federation.sp)
    by_index = _rewrite(xml, f'AssertionConsumerServiceURL="{ACS}"'.encode(),
                        b'AssertionConsumerServiceIndex="1"')
    assert federation.parse(by_index, utcnow()).acs_url == ACS
    default = _rewrite(xml, f'AssertionConsumerServiceURL="{ACS}"'.encode(), b"")
    assert federation.parse(default, utcnow()).acs_url == ACS


def test_the_request_is_read_from_the_tree_it_is_given(federation: Federation) -> None:
    from idp.saml.incoming import read_envelope

    xml = redirect_request(federation.sp)
    envelope = read_envelope(xml, ("AuthnRequest",))
    assert envelope.root is not None
    parsed = read_authn_request(envelope.root, utcnow(), metadata=federation.metadata,
                                our_urls=federation.idp.endpoints.all_urls,
                                crypto=federation.idp.crypto)
    assert parsed.issuer == SP_ID and parsed.request_id == envelope.message_id
