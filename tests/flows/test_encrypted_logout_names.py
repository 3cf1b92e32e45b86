"""Single logout started by a portal that encrypts the citizen's NameID in its LogoutRequest
(``saml:EncryptedID``), as Shibboleth SP 3 does because our metadata offers an encryption key:
the logout runs through the other portal as with a plain NameID; what cannot be decrypted
safely ends on the IdP's error page with the citizen still logged in."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from lxml import etree  # type: ignore[import-untyped]
from saml2 import BINDING_HTTP_POST, BINDING_HTTP_REDIRECT

from idp.samlkit import keys
from tests.conftest import Browser
from tests.encrypted_id_support import (
    AES128_CBC,
    AES256_GCM,
    RSA_1_5,
    RSA_OAEP,
    SHA256,
    XENC,
    encrypted_id,
    replace_name_id,
    signed,
)
from tests.flows import test_single_logout as single_logout
from tests.flows.conftest import IDP_ENTITY, IDP_SLO, Portal, to_idp
from tests.flows.test_single_logout import (
    OTHER_SLO,
    SP_SLO,
    SUCCESS,
    assert_refused,
    go,
    hop_from,
    is_logged_in,
    status_of,
)
from tests.saml_support import key_pair

# The fixtures of tests/flows/test_single_logout.py: Erika logged in at Musterstadt (persistent
# NameID) and at Beispielstadt (transient).
policy_dir = single_logout.policy_dir
other_keys = single_logout.other_keys
other_changes = single_logout.other_changes
other_slo_bindings = single_logout.other_slo_bindings
other_portal = single_logout.other_portal
erika = single_logout.erika

Encrypt = Callable[[bytes], etree._Element]


def encrypted_logout(portal: Portal, encrypt: Encrypt, portal_keys: tuple[Path, Path],
                     binding: str = BINDING_HTTP_REDIRECT) -> tuple[str, dict[str, str] | None]:
    """The portal's LogoutRequest for the citizen it received last, her NameID replaced by
    ``encrypt``'s EncryptedID, signed over the query (Redirect) or embedded (POST)."""
    _, request = portal.client.create_logout_request(IDP_SLO[binding], IDP_ENTITY,
                                                     name_id=portal.name_id, sign=False)
    root = replace_name_id(str(request), encrypt)
    if binding == BINDING_HTTP_POST:
        xml = signed(root, *portal_keys).decode("utf-8")
    else:
        xml = etree.tostring(root, encoding="unicode")
    info = portal.client.apply_binding(binding, xml, IDP_SLO[binding], "",
                                       sign=binding == BINDING_HTTP_REDIRECT,
                                       sigalg=single_logout.SHA256)
    return to_idp(binding, info)


def for_key(certificate: Path, **form: Any) -> Encrypt:
    return lambda plaintext: encrypted_id(plaintext, certificate, **form)


def logs_out_everywhere(erika: Browser, portal: Portal, other_portal: Portal,
                        sent: tuple[str, dict[str, str] | None]) -> None:
    """The request ends Erika's session, Beispielstadt gets its LogoutRequest for her, and
    Musterstadt gets Success."""
    to_other = hop_from(go(erika, *sent))
    assert not is_logged_in(erika)
    assert to_other.endpoint == OTHER_SLO
    request = other_portal.logout_request(to_other)
    assert request.message.name_id == other_portal.name_id
    back = hop_from(go(erika, *other_portal.answer_logout(to_other)))
    assert back.endpoint == SP_SLO
    assert status_of(portal, back)[:2] == (SUCCESS, None)


@pytest.mark.parametrize("binding", [BINDING_HTTP_REDIRECT, BINDING_HTTP_POST])
@pytest.mark.parametrize("form", [
    {},  # Shibboleth SP 3: AES-256-CBC, RSA-OAEP-MGF1P, the key inside the data's KeyInfo
    {"data": AES256_GCM, "transport": RSA_OAEP, "digest": SHA256, "beside": True},
], ids=["as shibboleth", "gcm, key beside"])
def test_a_portal_that_encrypts_the_citizens_name_id_logs_her_out_at_the_other_portal_too(
        erika: Browser, portal: Portal, other_portal: Portal, signing_keys: tuple[Path, Path],
        portal_keys: tuple[Path, Path], binding: str, form: dict[str, Any]) -> None:
    sent = encrypted_logout(portal, for_key(signing_keys[1], **form), portal_keys, binding)

    logs_out_everywhere(erika, portal, other_portal, sent)


@pytest.fixture
def key_folder(tmp_path: Path, signing_keys: tuple[Path, Path]) -> Path:
    """The IdP's key as the current pair in a folder of this test's own, with the next pair
    of a key rollover beside it."""
    folder = tmp_path / "idp-keys"
    folder.mkdir()
    shutil.copy(signing_keys[0], folder / keys.KEY_NAME)
    shutil.copy(signing_keys[1], folder / keys.CERT_NAME)
    next_key, next_cert = key_pair(tmp_path / "next", "next")
    shutil.copy(next_key, folder / keys.NEXT_KEY_NAME)
    shutil.copy(next_cert, folder / keys.NEXT_CERT_NAME)
    return folder


def test_during_a_key_rollover_a_name_id_encrypted_for_the_next_key_logs_the_citizen_out(
        key_folder: Path, settings: dict[str, Any], request: pytest.FixtureRequest) -> None:
    settings.update(key_file=key_folder / keys.KEY_NAME, cert_file=key_folder / keys.CERT_NAME)
    erika_: Browser = request.getfixturevalue("erika")
    portal: Portal = request.getfixturevalue("portal")
    other: Portal = request.getfixturevalue("other_portal")
    portal_keys: tuple[Path, Path] = request.getfixturevalue("portal_keys")
    sent = encrypted_logout(portal, for_key(key_folder / keys.NEXT_CERT_NAME, data=AES128_CBC),
                            portal_keys)

    logs_out_everywhere(erika_, portal, other, sent)


def _tampered_gcm(certificate: Path) -> Encrypt:
    def encrypt(plaintext: bytes) -> etree._Element:
        element = encrypted_id(plaintext, certificate, data=AES256_GCM)
        value = element.find("xenc:EncryptedData/xenc:CipherData/xenc:CipherValue",
                             {"xenc": XENC})
        value.text = ("B" if value.text[0] == "A" else "A") + value.text[1:]
        return element

    return encrypt


@pytest.mark.parametrize("binding", [BINDING_HTTP_REDIRECT, BINDING_HTTP_POST])
@pytest.mark.parametrize("how", ["pkcs1 v1.5", "tampered", "wrong key"])
def test_an_encrypted_name_id_the_idp_cannot_decrypt_safely_ends_on_the_error_page(
        erika: Browser, portal: Portal, other_portal: Portal, signing_keys: tuple[Path, Path],
        portal_keys: tuple[Path, Path], binding: str, how: str) -> None:
    encrypt = {"pkcs1 v1.5": for_key(signing_keys[1], transport=RSA_1_5),
               "tampered": _tampered_gcm(signing_keys[1]),
               "wrong key": for_key(portal_keys[1])}[how]

    assert_refused(go(erika, *encrypted_logout(portal, encrypt, portal_keys, binding)))

    assert is_logged_in(erika)
