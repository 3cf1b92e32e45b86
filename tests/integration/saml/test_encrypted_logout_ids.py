"""A portal's LogoutRequest naming the citizen by an EncryptedID (SAML core §3.7.1, §2.2.4), as
Shibboleth SP 3 sends it whenever our metadata offers an encryption key: decrypted with the
IdP's own keys after the signature held, then read like a plain NameID; everything else is
refused before or instead of decrypting."""

from __future__ import annotations

import base64
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import xmlsec
from lxml import etree  # type: ignore[import-untyped]
from saml2.client import Saml2Client
from saml2.saml import NameID

from idp.clock import utcnow
from idp.saml.configuration import SLO_REDIRECT_PATH, IdpEndpoints, idp_config
from idp.saml.messages import LogoutSubject, ParsedLogoutRequest, RequestRejected
from idp.saml.server import SamlIdp
from idp.samlkit import keys
from tests.encrypted_id_support import (
    AES128_CBC,
    AES256_CBC,
    AES256_GCM,
    DSIG,
    RSA_1_5,
    RSA_OAEP,
    RSA_OAEP_MGF1P,
    SAML,
    SHA256,
    TRANSIENT,
    TRIPLEDES_CBC,
    XENC,
    encrypted_id,
    name_id_xml,
    replace_name_id,
    signed,
)
from tests.saml_support import key_pair, metadata_of, sp_client, sp_config

BASE = "https://konto.example.org"
IDP_ENTITY = f"{BASE}/saml/metadata"
SP_ID = "https://portal.example.org/saml/metadata"
ACS = "https://portal.example.org/saml/acs"
CITIZEN = LogoutSubject("transient-7", TRANSIENT, None, SP_ID)


@dataclass
class Federation:
    idp: SamlIdp
    key_folder: Path
    sp: Saml2Client
    sp_key: Path
    sp_cert: Path

    @property
    def idp_cert(self) -> Path:
        return self.key_folder / keys.CERT_NAME

    def request(self, encrypt: Callable[[bytes], etree._Element], *,
                embedded_signature: bool = False) -> bytes:
        """The portal's LogoutRequest for the citizen, her NameID replaced by ``encrypt``'s
        EncryptedID; signed embedded, or unsigned XML as the Redirect binding carries it."""
        _, request = self.sp.create_logout_request(
            BASE + SLO_REDIRECT_PATH, IDP_ENTITY,
            name_id=NameID(text=CITIZEN.name_id, format=CITIZEN.name_id_format,
                           sp_name_qualifier=CITIZEN.sp_name_qualifier),
            session_indexes=["session-1"], sign=False)
        root = replace_name_id(str(request), encrypt)
        if embedded_signature:
            return signed(root, self.sp_key, self.sp_cert)
        return bytes(etree.tostring(root))

    def parse(self, xml: bytes, query_signed: bool = True) -> ParsedLogoutRequest:
        """As :func:`idp.saml.logout.receive_request` does once the query's signature held."""
        return self.idp.parse_logout_request(xml, utcnow(), query_signed=query_signed)


@pytest.fixture
def fed(tmp_path: Path) -> Federation:
    folder = tmp_path / "idp-keys"
    key, cert = key_pair(folder, "idp")
    key.rename(folder / keys.KEY_NAME)
    cert.rename(folder / keys.CERT_NAME)
    sp_key, sp_cert = key_pair(tmp_path / "sp", "sp")
    endpoints = IdpEndpoints(BASE)
    idp = SamlIdp(idp_config(endpoints, str(folder / keys.KEY_NAME),
                             str(folder / keys.CERT_NAME),
                             [metadata_of(sp_config(SP_ID, ACS, sp_key, sp_cert))]), endpoints)
    sp = sp_client(sp_config(SP_ID, ACS, sp_key, sp_cert, metadata_of(idp.server.config)))
    return Federation(idp, folder, sp, sp_key, sp_cert)


def for_key(certificate: Path, **form: Any) -> Callable[[bytes], etree._Element]:
    return lambda plaintext: encrypted_id(plaintext, certificate, **form)


def never_decrypted(fed: Federation, monkeypatch: pytest.MonkeyPatch) -> None:
    def decrypt(*_: Any) -> Any:
        raise AssertionError("decrypted before the signature was checked")

    monkeypatch.setattr(fed.idp.crypto, "decrypt_identifier", decrypt)


# Shibboleth SP 3's form first (as captured from Debian's shibd 3.4.1, tests/interop).
FORMS = {
    "shibboleth": {"data": AES256_CBC, "transport": RSA_OAEP_MGF1P},
    "aes128-cbc": {"data": AES128_CBC},
    "aes256-gcm, key beside the data": {"data": AES256_GCM, "beside": True},
    "aes256-gcm, rsa-oaep with sha256": {"data": AES256_GCM, "transport": RSA_OAEP,
                                         "digest": SHA256},
    "rsa-oaep with sha256, key beside the data": {"transport": RSA_OAEP, "digest": SHA256,
                                                  "beside": True},
    "rsa-oaep-mgf1p with sha256 digest": {"digest": SHA256},
}


@pytest.mark.parametrize("form", FORMS.values(), ids=FORMS.keys())
def test_a_portal_that_encrypts_the_citizens_name_id_is_understood_as_if_it_sent_it_plain(
        fed: Federation, form: dict[str, Any]) -> None:
    xml = fed.request(for_key(fed.idp_cert, **form))
    assert b"EncryptedID" in xml and CITIZEN.name_id.encode() not in xml

    request = fed.parse(xml)

    assert request.subject == CITIZEN
    assert request.session_indexes == ("session-1",)
    assert request.issuer == SP_ID


def test_an_encrypted_name_id_in_a_request_with_an_embedded_signature_is_understood(
        fed: Federation) -> None:
    xml = fed.request(for_key(fed.idp_cert), embedded_signature=True)

    request = fed.parse(xml, query_signed=False)

    assert request.signed and request.subject == CITIZEN


@pytest.mark.parametrize("rollover_key", [keys.NEXT_KEY_NAME, keys.PREVIOUS_KEY_NAME])
def test_during_a_key_rollover_a_name_id_encrypted_for_our_other_key_is_understood(
        fed: Federation, tmp_path: Path, rollover_key: str) -> None:
    other_key, other_cert = key_pair(tmp_path / "other", "other")
    other_key.rename(fed.key_folder / rollover_key)
    xml = fed.request(for_key(other_cert))

    assert fed.parse(xml).subject == CITIZEN


def test_a_name_id_encrypted_for_the_current_and_the_next_key_is_understood(
        fed: Federation, tmp_path: Path) -> None:
    next_key, next_cert = key_pair(tmp_path / "next", "next")
    next_key.rename(fed.key_folder / keys.NEXT_KEY_NAME)
    xml = fed.request(for_key(next_cert, more_keys=(fed.idp_cert,), beside=True))

    assert fed.parse(xml).subject == CITIZEN


def test_an_unsigned_request_with_an_encrypted_name_id_is_refused_without_decrypting(
        fed: Federation, monkeypatch: pytest.MonkeyPatch) -> None:
    never_decrypted(fed, monkeypatch)
    xml = fed.request(for_key(fed.idp_cert))

    with pytest.raises(RequestRejected, match="unsigned"):
        fed.parse(xml, query_signed=False)


def test_a_request_whose_signature_fails_is_refused_before_its_name_id_is_decrypted(
        fed: Federation, monkeypatch: pytest.MonkeyPatch) -> None:
    never_decrypted(fed, monkeypatch)
    xml = fed.request(for_key(fed.idp_cert), embedded_signature=True)
    tampered = xml.replace(b"session-1", b"session-2")

    with pytest.raises(RequestRejected, match="signature"):
        fed.parse(tampered, query_signed=False)


def _flip_last_byte(value: str) -> str:
    data = bytearray(base64.b64decode(value))
    data[-1] ^= 0x01
    return base64.b64encode(bytes(data)).decode("ascii")


def _tampered(fed: Federation, form: dict[str, Any], path: str) -> bytes:
    def encrypt(plaintext: bytes) -> etree._Element:
        element = encrypted_id(plaintext, fed.idp_cert, **form)
        value = element.find(path, {"xenc": XENC, "ds": DSIG})
        value.text = _flip_last_byte(value.text)
        return element

    return fed.request(encrypt)


DATA_CIPHER = "xenc:EncryptedData/xenc:CipherData/xenc:CipherValue"
KEY_CIPHER = "xenc:EncryptedData/ds:KeyInfo/xenc:EncryptedKey/xenc:CipherData/xenc:CipherValue"


@pytest.mark.parametrize(("form", "path"), [
    ({"data": AES256_GCM}, DATA_CIPHER),  # the GCM tag no longer fits
    ({}, KEY_CIPHER),  # RSA-OAEP's check fails
    ({}, DATA_CIPHER),  # CBC: the padding or the XML breaks
], ids=["gcm data", "encrypted key", "cbc data"])
def test_a_tampered_encrypted_name_id_is_refused(fed: Federation, form: dict[str, Any],
                                                 path: str) -> None:
    with pytest.raises(RequestRejected, match="EncryptedID"):
        fed.parse(_tampered(fed, form, path))


def test_a_name_id_encrypted_for_someone_elses_key_is_refused(fed: Federation) -> None:
    xml = fed.request(for_key(fed.sp_cert))

    with pytest.raises(RequestRejected, match="no EncryptedKey opens"):
        fed.parse(xml)


@pytest.mark.parametrize("form", [
    {"transport": RSA_1_5},  # open to Bleichenbacher's padding oracle
    {"data": TRIPLEDES_CBC},
    {"transport": RSA_OAEP, "digest": XENC + "sha512"},
], ids=["rsa pkcs#1 v1.5", "3des", "oaep with sha512"])
def test_an_algorithm_outside_the_allow_list_is_refused_and_logged_without_decrypting(
        fed: Federation, form: dict[str, Any], caplog: pytest.LogCaptureFixture,
        monkeypatch: pytest.MonkeyPatch) -> None:
    xml = fed.request(for_key(fed.idp_cert, **form))
    decrypted: list[Any] = []
    monkeypatch.setattr(xmlsec, "EncryptionContext", lambda *args: decrypted.append(args))

    with caplog.at_level(logging.WARNING, logger="idp.saml.server"), \
            pytest.raises(RequestRejected, match="not allowed"):
        fed.parse(xml)

    assert decrypted == []
    warnings = [record.getMessage() for record in caplog.records
                if record.name == "idp.saml.server" and record.levelno == logging.WARNING]
    assert len(warnings) == 1, warnings
    assert warnings[0].startswith(f"EncryptedID from {SP_ID} refused: ")
    assert "not allowed" in warnings[0]


def test_a_cipher_reference_is_refused_and_never_fetched(fed: Federation,
                                                         tmp_path: Path) -> None:
    secret = tmp_path / "secret"
    secret.write_bytes(b"not for portals")

    def encrypt(plaintext: bytes) -> etree._Element:
        element = encrypted_id(plaintext, fed.idp_cert)
        cipher_data = element.find("xenc:EncryptedData/xenc:CipherData", {"xenc": XENC})
        cipher_data.remove(cipher_data[0])
        etree.SubElement(cipher_data, f"{{{XENC}}}CipherReference", URI=secret.as_uri())
        return element

    with pytest.raises(RequestRejected, match="CipherValue"):
        fed.parse(fed.request(encrypt))


@pytest.mark.parametrize("plaintext", [
    b'<saml:BaseID xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion"/>',
    b'<saml:NameID xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion">erika<!---->.evil'
    b"</saml:NameID>",
    name_id_xml("transient-7") + b"<x/>",
    b"transient-7",
    b"   ",
], ids=["base id", "comment inside", "two elements", "text only", "blank"])
def test_an_encrypted_id_holding_anything_but_one_plain_name_id_is_refused(
        fed: Federation, plaintext: bytes) -> None:
    xml = fed.request(lambda _: encrypted_id(plaintext, fed.idp_cert))

    with pytest.raises(RequestRejected):
        fed.parse(xml)


def test_a_request_with_a_name_id_and_an_encrypted_id_is_refused(fed: Federation) -> None:
    def both(plaintext: bytes) -> etree._Element:
        return encrypted_id(plaintext, fed.idp_cert)

    root = etree.fromstring(fed.request(both))
    root.find(f"{{{SAML}}}EncryptedID").addprevious(etree.fromstring(name_id_xml("someone")))

    with pytest.raises(RequestRejected, match="more than one identifier"):
        fed.parse(etree.tostring(root))


def test_too_many_encrypted_keys_or_an_oversized_ciphertext_are_refused(
        fed: Federation, tmp_path: Path) -> None:
    certificates = tuple(key_pair(tmp_path / f"k{n}", f"k{n}")[1] for n in range(4))
    many = fed.request(for_key(fed.idp_cert, more_keys=certificates))
    with pytest.raises(RequestRejected, match="more than 4 EncryptedKeys"):
        fed.parse(many)

    long_name = name_id_xml("x" * 7000)
    large = fed.request(lambda _: encrypted_id(long_name, fed.idp_cert))
    with pytest.raises(RequestRejected, match="longer than"):
        fed.parse(large)


@pytest.mark.parametrize("value", ["!!! not base64 !!!", "AAAA"],
                         ids=["not base64", "shorter than an iv"])
def test_a_malformed_ciphertext_is_refused_not_an_internal_error(fed: Federation,
                                                                 value: str) -> None:
    def encrypt(plaintext: bytes) -> etree._Element:
        element = encrypted_id(plaintext, fed.idp_cert)
        element.find(DATA_CIPHER, {"xenc": XENC}).text = value
        return element

    with pytest.raises(RequestRejected):
        fed.parse(fed.request(encrypt))
