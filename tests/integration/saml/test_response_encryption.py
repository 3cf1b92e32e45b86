"""An encrypted assertion is the clear one, built by the same builder, then signed and encrypted."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import xmlsec
from lxml import etree  # type: ignore[import-untyped]
from saml2 import BINDING_HTTP_REDIRECT

from idp.clock import utcnow
from idp.consent.attributes import AttributeTrust, ReleasedAttribute
from idp.saml.configuration import IdpEndpoints, idp_config
from idp.saml.incoming import read_authn_request
from idp.saml.messages import ParsedAuthnRequest, RequestRejected
from idp.saml.response import Authentication, Recipient, ResponseBuilder, Signing
from idp.saml.server import SamlIdp
from idp.saml.sp_metadata import parse_sp_metadata
from idp.samlkit.bindings import decode_redirect
from idp.samlkit.crypto import InProcessCryptoBackend
from idp.samlkit.untrusted_xml import parse_xml
from tests.saml_support import key_pair, metadata_of, sp_client, sp_config

BASE = "https://konto.example.org"
SP_ID = "https://portal.example.org/saml/metadata"
ACS = "https://portal.example.org/saml/acs"
SAML = "urn:oasis:names:tc:SAML:2.0:assertion"
XENC = "http://www.w3.org/2001/04/xmlenc#"
AKDB = "https://www.akdb.de/request/2018/09"
XSI_TYPE = "{http://www.w3.org/2001/XMLSchema-instance}type"
XS = "http://www.w3.org/2001/XMLSchema"
PERSISTENT = "urn:oasis:names:tc:SAML:2.0:nameid-format:persistent"
RELEASE = [
    ReleasedAttribute("urn:oid:2.5.4.42", "givenName", "Vorname", ("Erika",),
                      AttributeTrust.UNTERGEORDNET, ("Erika",)),
    ReleasedAttribute("urn:oid:0.9.2342.19200300.100.1.3", "mail", "E-Mail",
                      ("erika@example.org",), AttributeTrust.NORMAL, ("erika@example.org",)),
]
# Values that differ between any two responses (fresh IDs, the clock, signatures).
VOLATILE = {"ID", "IssueInstant", "NotBefore", "NotOnOrAfter", "AuthnInstant", "URI"}


@dataclass
class Federation:
    idp: SamlIdp
    request: ParsedAuthnRequest
    idp_cert: Path
    sp_key: Path
    sp_cert: Path

    def respond(self, signing: Signing, encrypt: bool = False) -> str:
        """The Response the IdP's SSO flow builds for the request (the assertion encrypted for
        the portal's key from metadata with ``encrypt``)."""
        now, request, server = utcnow(), self.request, self.idp.server
        builder = ResponseBuilder(self.idp.entity_id, self.idp.crypto, server.sec.key_file,
                                  server.sec.my_cert)
        return builder.build(
            Recipient(request.issuer, request.acs_url, request.request_id), "bpk2-value",
            PERSISTENT, RELEASE,
            Authentication("STORK-QAA-Level-1", now, "session-1", now + timedelta(hours=12)),
            signing, now, self.idp.encryption_key(request.issuer) if encrypt else None)


@pytest.fixture
def federation(tmp_path: Path) -> Federation:
    endpoints = IdpEndpoints(BASE)
    idp_key, idp_cert = key_pair(tmp_path / "idp", "idp")
    sp_key, sp_cert = key_pair(tmp_path / "sp", "sp")
    portal_metadata = metadata_of(sp_config(SP_ID, ACS, sp_key, sp_cert))
    idp = SamlIdp(idp_config(endpoints, str(idp_key), str(idp_cert), [portal_metadata]),
                  endpoints)
    sp = sp_client(sp_config(SP_ID, ACS, sp_key, sp_cert, metadata_of(idp.server.config),
                             sign_requests=False))
    _, info = sp.prepare_for_authenticate(entityid=f"{BASE}/saml/metadata",
                                          binding=BINDING_HTTP_REDIRECT)
    xml = decode_redirect(urlsplit(dict(info["headers"])["Location"]).query.encode()).xml
    request = read_authn_request(parse_xml(xml, RequestRejected), utcnow(),
                                 metadata=parse_sp_metadata(portal_metadata.encode(), SP_ID,
                                                            utcnow()),
                                 our_urls=endpoints.all_urls, crypto=idp.crypto)
    return Federation(idp, request, idp_cert, sp_key, sp_cert)


def standalone_assertion(response: str, sp_key: Path) -> etree._Element:
    """The EncryptedData taken out of the Response as a document of its own, decrypted: any
    namespace the assertion does not declare itself would fail to parse here."""
    encrypted = parse_xml(response).find(f"{{{SAML}}}EncryptedAssertion/{{{XENC}}}EncryptedData")
    assert encrypted is not None
    alone = parse_xml(etree.tostring(encrypted))
    manager = xmlsec.KeysManager()
    manager.add_key(xmlsec.Key.from_file(str(sp_key), xmlsec.constants.KeyDataFormatPem))
    decrypted = xmlsec.EncryptionContext(manager).decrypt(alone)
    return parse_xml(etree.tostring(decrypted))


def shape(element: etree._Element) -> list[tuple[str, dict[str, str], str]]:
    """Every element of the assertion in document order: tag, attributes (volatile values
    left out), text; signatures only by their place."""
    return [(str(e.tag), {str(k): ("…" if etree.QName(k).localname in VOLATILE else str(v))
                          for k, v in e.attrib.items()},
             "" if etree.QName(e).namespace == "http://www.w3.org/2000/09/xmldsig#"
             else (e.text or "").strip())
            for e in element.iter(etree.Element)]


def test_the_decrypted_assertion_is_the_one_the_same_request_gets_in_clear(
        federation: Federation) -> None:
    clear = parse_xml(federation.respond(Signing())).find(f"{{{SAML}}}Assertion")
    decrypted = standalone_assertion(federation.respond(Signing(), encrypt=True),
                                     federation.sp_key)
    assert decrypted.tag == f"{{{SAML}}}Assertion"
    assert shape(decrypted) == shape(clear)
    children = [etree.QName(child).localname for child in decrypted]
    assert children == ["Issuer", "Signature", "Subject", "Conditions", "AuthnStatement",
                        "AttributeStatement"]
    for attribute in decrypted.iterfind(f"{{{SAML}}}AttributeStatement/{{{SAML}}}Attribute"):
        assert attribute.get("NameFormat") == "urn:oasis:names:tc:SAML:2.0:attrname-format:uri"
        assert attribute.get("FriendlyName") in {"givenName", "mail"}
        assert attribute.get(f"{{{AKDB}}}TrustLevel") in {"UNTERGEORDNET", "NORMAL"}
        value = attribute.find(f"{{{SAML}}}AttributeValue")
        assert value is not None and value.get(XSI_TYPE) == "xs:string"
        assert value.nsmap["xs"] == XS


def test_a_portal_that_wants_signed_and_encrypted_assertions_can_verify_the_decrypted_one(
        federation: Federation) -> None:
    response = federation.respond(Signing(sign_assertion=True), encrypt=True)
    backend = InProcessCryptoBackend()
    # The Response signature covers the EncryptedAssertion …
    assert backend.validate_signature(response, str(federation.idp_cert), "pem",
                                      "urn:oasis:names:tc:SAML:2.0:protocol:Response", None)
    # … and the assertion, once decrypted and on its own, carries a signature of its own.
    assertion = standalone_assertion(response, federation.sp_key)
    assert backend.validate_signature(etree.tostring(assertion), str(federation.idp_cert),
                                      "pem", f"{SAML}:Assertion", assertion.get("ID"))


def test_an_unsigned_encrypted_assertion_has_no_signature_inside(
        federation: Federation) -> None:
    response = federation.respond(Signing(sign_assertion=False), encrypt=True)
    assertion = standalone_assertion(response, federation.sp_key)
    assert assertion.find("{http://www.w3.org/2000/09/xmldsig#}Signature") is None
    assert parse_xml(response).find("{http://www.w3.org/2000/09/xmldsig#}Signature") is not None


def test_the_assertion_is_encrypted_for_the_portals_certificate_from_metadata(
        federation: Federation) -> None:
    response = parse_xml(federation.respond(Signing(), encrypt=True))
    methods = [m.get("Algorithm") for m in response.iter(f"{{{XENC}}}EncryptionMethod")]
    assert methods == ["http://www.w3.org/2009/xmlenc11#aes256-gcm",
                       "http://www.w3.org/2001/04/xmlenc#rsa-oaep-mgf1p"]
    named = response.find(f".//{{{XENC}}}EncryptedKey//"
                          "{http://www.w3.org/2000/09/xmldsig#}X509Certificate")
    assert named is not None
    expected = "".join(federation.sp_cert.read_text().strip().splitlines()[1:-1])
    assert named.text == expected
    assert response.find(f".//{{{SAML}}}Assertion") is None
    assert b"Erika" not in etree.tostring(response)


def test_every_response_for_a_portal_gets_its_own_session_key(federation: Federation) -> None:
    """The receiver's key is set up once per process; each assertion still has a fresh key."""
    first, second = (federation.respond(Signing(), encrypt=True) for _ in range(2))
    for response in (first, second):
        assert standalone_assertion(response, federation.sp_key).tag == f"{{{SAML}}}Assertion"
    keys = [parse_xml(r).find(f".//{{{XENC}}}EncryptedKey/{{{XENC}}}CipherData/"
                              f"{{{XENC}}}CipherValue") for r in (first, second)]
    assert keys[0] is not None and keys[1] is not None and keys[0].text != keys[1].text
