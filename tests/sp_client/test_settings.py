"""Starting a portal: keys made on the first start and kept, wrong settings refused in German."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from idp.saml.sp_metadata import check_signature, default_verifier
from idp.samlkit.metadata import MetadataError
from sp_client import create_app
from sp_client.__main__ import main
from sp_client.extensions import portal_db
from sp_client.profiles import trust_level_of
from sp_client.settings import PortalConfigError, build_settings


def test_the_first_start_makes_keys_and_a_secret_and_the_next_start_keeps_them(
        tmp_path: Path) -> None:
    first = build_settings("mags", idp_metadata="http://127.0.0.1:5000/saml/metadata",
                           instance_path=tmp_path)
    assert first.entity_id == "http://127.0.0.1:5002/saml/metadata"
    assert first.database_url == f"sqlite:///{tmp_path.resolve() / 'portal.sqlite3'}"
    for private in (first.signing.key_file, first.encryption.key_file, tmp_path / "secret_key"):
        assert stat.S_IMODE(private.stat().st_mode) == 0o600
    assert first.signing.fingerprint != first.encryption.fingerprint
    again = build_settings("mags", idp_metadata="x.xml", instance_path=tmp_path)
    assert again.signing.fingerprint == first.signing.fingerprint
    assert again.secret_key == first.secret_key


@pytest.mark.parametrize("changes, message", [
    ({"profile": "koeln"}, "Unbekanntes Portal"),
    ({"base_url": "ftp://127.0.0.1:5001"}, "Basis-URL"),
    ({"base_url": "http://127.0.0.1:5001/portal"}, "Basis-URL"),
    ({"idp_metadata": ""}, "Metadaten des Servicekontos"),
    ({"minimum_trust_level": 5}, "Vertrauensniveau"),
    ({"secret_key": "kurz"}, "mindestens 32 Zeichen"),
])
def test_wrong_settings_stop_the_start_with_a_german_message(
        tmp_path: Path, changes: dict[str, object], message: str) -> None:
    arguments: dict[str, object] = {"profile": "dueren", "idp_metadata": "idp.xml",
                                    "instance_path": tmp_path, **changes}
    profile = arguments.pop("profile")
    assert isinstance(profile, str)
    with pytest.raises(PortalConfigError, match=message):
        build_settings(profile, **arguments)  # type: ignore[arg-type]


def test_the_command_refuses_a_wrong_base_url_without_starting(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["--profile", "dueren", "--base-url", "ftp://x", "--instance", str(tmp_path)])
    assert code == 2
    assert "Das Portal kann nicht starten: Die Basis-URL" in capsys.readouterr().err


def test_the_exported_certificate_verifies_the_portals_metadata_and_nothing_changed(
        tmp_path: Path) -> None:
    """What compose pins at the IdP: metadata fetched over plain HTTP counts only with the
    portal's signature, checked with this certificate."""
    exported = tmp_path / "dueren.crt"
    code = main(["--profile", "dueren", "--instance", str(tmp_path / "portal"),
                 "--export-certificate", str(exported)])
    assert code == 0
    portal = create_app("dueren", idp_metadata="http://127.0.0.1:5000/saml/metadata",
                        instance_path=tmp_path / "portal")
    metadata = portal.test_client().get("/saml/metadata", base_url="http://127.0.0.1:5001").data
    portal_db.bound(portal).engine.dispose()

    check_signature(metadata, exported.read_bytes(), default_verifier())
    with pytest.raises(MetadataError, match="does not verify"):
        check_signature(metadata.replace(b"/saml/acs", b"/evil/acs"), exported.read_bytes(),
                        default_verifier())


def test_the_command_knows_only_the_two_portals(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["--profile", "koeln"])
    assert "dueren" in capsys.readouterr().err


@pytest.mark.parametrize("class_ref, level", [
    ("STORK-QAA-Level-1", 1), ("STORK-QAA-Level-4", 4), ("STORK-QAA-Level-5", None),
    ("STORK-QAA-Level-12", None), ("urn:oasis:names:tc:SAML:2.0:ac:classes:Password", None),
    ("", None), (None, None)])
def test_trust_levels_are_read_only_from_stork_class_refs(class_ref: str | None,
                                                          level: int | None) -> None:
    assert trust_level_of(class_ref) == level
