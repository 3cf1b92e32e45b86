"""``servicekonto keys generate`` and the key files it writes."""

from __future__ import annotations

import datetime
import stat
from pathlib import Path

import pytest
from click.testing import CliRunner
from cryptography.hazmat.primitives.asymmetric import rsa

from idp.cli import main
from idp.samlkit import keys
from idp.samlkit.crypto import InProcessCryptoBackend

ASSERTION = "urn:oasis:names:tc:SAML:2.0:assertion:Assertion"


def _generate(*args: str, env: dict[str, str] | None = None) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["keys", "generate", *args], env=env)
    return result.exit_code, result.output


def test_generate_writes_a_private_key_only_the_owner_can_read(tmp_path: Path) -> None:
    code, output = _generate("--out", str(tmp_path))
    assert code == 0, output
    key_file = tmp_path / keys.KEY_NAME
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    pair = keys.load_from_folder(tmp_path)
    assert str(key_file) in output and str(pair.cert_file) in output
    assert pair.fingerprint in output


def test_the_key_has_3072_bits_and_the_certificate_is_sha256_for_730_days(
        tmp_path: Path) -> None:
    _generate("--out", str(tmp_path), "--common-name", "Servicekonto Test")
    pair = keys.load_from_folder(tmp_path)
    public = pair.certificate.public_key()
    assert isinstance(public, rsa.RSAPublicKey) and public.key_size == 3072
    assert pair.certificate.signature_hash_algorithm is not None
    assert pair.certificate.signature_hash_algorithm.name == "sha256"
    lifetime = pair.not_after - datetime.datetime.now(datetime.UTC)
    assert datetime.timedelta(days=729) < lifetime <= datetime.timedelta(days=730)
    assert "Servicekonto Test" in pair.certificate.subject.rfc4514_string()


def test_the_expiry_date_is_printed_in_german(tmp_path: Path) -> None:
    _, output = _generate("--out", str(tmp_path), "--days", "10")
    expected = (datetime.datetime.now(datetime.UTC) + datetime.timedelta(days=10))
    assert f"gültig bis {expected:%d.%m.%Y}" in output


def test_existing_files_are_not_overwritten_without_force(tmp_path: Path) -> None:
    _generate("--out", str(tmp_path))
    before = (tmp_path / keys.KEY_NAME).read_bytes()
    code, output = _generate("--out", str(tmp_path))
    assert code != 0 and "existiert bereits" in output and "--force" in output
    assert (tmp_path / keys.KEY_NAME).read_bytes() == before
    code, _ = _generate("--out", str(tmp_path), "--force")
    assert code == 0
    assert (tmp_path / keys.KEY_NAME).read_bytes() != before
    assert stat.S_IMODE((tmp_path / keys.KEY_NAME).stat().st_mode) == 0o600


def test_keys_shorter_than_3072_bits_are_refused(tmp_path: Path) -> None:
    code, output = _generate("--out", str(tmp_path), "--bits", "2048")
    assert code != 0 and "mindestens 3072" in output
    assert not any(tmp_path.iterdir())


def test_without_out_the_keys_go_to_the_instance_folder(tmp_path: Path) -> None:
    code, output = _generate(env={"IDP_ENV": "development", "IDP_INSTANCE_PATH": str(tmp_path)})
    assert code == 0, output
    assert (tmp_path / "keys" / keys.KEY_NAME).exists()


def test_the_next_certificate_is_published_beside_the_current_one(tmp_path: Path) -> None:
    _generate("--out", str(tmp_path))
    assert keys.published_certificates(tmp_path) == [tmp_path / keys.CERT_NAME]
    code, _ = _generate("--out", str(tmp_path), "--next")
    assert code == 0
    assert keys.published_certificates(tmp_path) == [tmp_path / keys.CERT_NAME,
                                                     tmp_path / keys.NEXT_CERT_NAME]
    next_pair = keys.load_key_pair(tmp_path / keys.NEXT_KEY_NAME,
                                   tmp_path / keys.NEXT_CERT_NAME)
    assert next_pair.fingerprint != keys.load_from_folder(tmp_path).fingerprint


def test_rollover_makes_the_next_key_the_current_one_and_keeps_the_old_one(
        tmp_path: Path) -> None:
    _generate("--out", str(tmp_path))
    _generate("--out", str(tmp_path), "--next")
    old = keys.load_from_folder(tmp_path).fingerprint
    following = keys.load_key_pair(tmp_path / keys.NEXT_KEY_NAME,
                                   tmp_path / keys.NEXT_CERT_NAME).fingerprint
    result = CliRunner().invoke(main, ["keys", "rollover", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert following in result.output
    assert keys.load_from_folder(tmp_path).fingerprint == following
    assert keys.load_key_pair(tmp_path / keys.PREVIOUS_KEY_NAME,
                              tmp_path / keys.PREVIOUS_CERT_NAME).fingerprint == old
    assert keys.published_certificates(tmp_path) == [tmp_path / keys.CERT_NAME]
    assert stat.S_IMODE((tmp_path / keys.KEY_NAME).stat().st_mode) == 0o600


def test_rollover_without_a_next_key_changes_nothing(tmp_path: Path) -> None:
    _generate("--out", str(tmp_path))
    before = keys.load_from_folder(tmp_path).fingerprint
    result = CliRunner().invoke(main, ["keys", "rollover", "--out", str(tmp_path)])
    assert result.exit_code != 0 and "nicht lesbar" in result.output
    assert keys.load_from_folder(tmp_path).fingerprint == before
    assert sorted(p.name for p in tmp_path.iterdir()) == [keys.CERT_NAME, keys.KEY_NAME]


def test_a_certificate_of_another_key_is_refused_on_loading(tmp_path: Path) -> None:
    _generate("--out", str(tmp_path / "a"))
    _generate("--out", str(tmp_path / "b"))
    with pytest.raises(keys.KeyFileError, match="gehört nicht"):
        keys.load_key_pair(tmp_path / "a" / keys.KEY_NAME, tmp_path / "b" / keys.CERT_NAME)


def test_a_generated_key_signs_what_the_in_process_backend_verifies(tmp_path: Path) -> None:
    pair = keys.generate_key_pair(tmp_path)
    assertion_id = "id-keys-1"
    template = (
        f'<saml:Assertion xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" '
        f'xmlns:ds="http://www.w3.org/2000/09/xmldsig#" ID="{assertion_id}" Version="2.0">'
        '<saml:Issuer>idp</saml:Issuer><ds:Signature><ds:SignedInfo>'
        '<ds:CanonicalizationMethod Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#"/>'
        '<ds:SignatureMethod Algorithm="http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"/>'
        f'<ds:Reference URI="#{assertion_id}"><ds:Transforms>'
        '<ds:Transform Algorithm="http://www.w3.org/2000/09/xmldsig#enveloped-signature"/>'
        '<ds:Transform Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#"/></ds:Transforms>'
        '<ds:DigestMethod Algorithm="http://www.w3.org/2001/04/xmlenc#sha256"/>'
        '<ds:DigestValue/></ds:Reference></ds:SignedInfo><ds:SignatureValue/></ds:Signature>'
        '</saml:Assertion>')
    backend = InProcessCryptoBackend()
    signed = backend.sign_statement(template, ASSERTION, str(pair.key_file), assertion_id)
    assert backend.validate_signature(signed, str(pair.cert_file), "pem", ASSERTION,
                                      assertion_id)


def _fingerprint_of_a_starting_worker(instance: str) -> str:
    from idp.config import load_config
    from idp.saml.runtime import load_keys

    return load_keys(load_config({"IDP_ENV": "development",
                                  "IDP_INSTANCE_PATH": instance})).fingerprint


def test_workers_starting_together_on_a_fresh_instance_share_one_generated_key(
        tmp_path: Path) -> None:
    import multiprocessing

    with multiprocessing.get_context("fork").Pool(3) as pool:
        fingerprints = pool.map(_fingerprint_of_a_starting_worker, [str(tmp_path)] * 3)
    assert len(set(fingerprints)) == 1
    assert keys.load_from_folder(tmp_path / "keys").fingerprint == fingerprints[0]
