"""``servicekonto portal add|list|remove`` as an operator uses them, before any database exists."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from lxml import etree

from idp.cli import main
from idp.portals.policy import load_portal_policies, load_portal_policy
from tests.integration.portals.conftest import MetadataServer
from tests.unit.portals.support import sp_metadata_xml, write_policy

ENTITY_ID = "https://portal.example/saml/metadata"
MD = "urn:oasis:names:tc:SAML:2.0:metadata"


@pytest.fixture
def folders(tmp_path: Path) -> tuple[Path, Path]:
    policies, instance = tmp_path / "policies", tmp_path / "instance"
    policies.mkdir()
    return policies, instance


@pytest.fixture
def metadata_file(tmp_path: Path) -> Path:
    path = tmp_path / "download" / "sp-metadata.xml"
    path.parent.mkdir()
    path.write_text(sp_metadata_xml(tmp_path, ENTITY_ID), encoding="utf-8")
    return path


def _run(folders: tuple[Path, Path], *args: str) -> Result:
    policies, instance = folders
    # A development instance, chosen explicitly (production, the default, needs a secret).
    return CliRunner().invoke(main, ["portal", *args], env={
        "IDP_ENV": "development", "IDP_POLICY_DIR": str(policies),
        "IDP_INSTANCE_PATH": str(instance)})


def test_portal_add_writes_a_policy_with_the_entity_id_from_the_metadata(
        folders: tuple[Path, Path], metadata_file: Path) -> None:
    result = _run(folders, "add", "--name", "musterstadt", "--metadata", str(metadata_file),
                  "--display-name", "Bürgerportal Musterstadt",
                  "--attributes", "givenName,surname,bPK2", "--required-attributes", "bPK2",
                  "--name-id-format", "persistent", "--no-consent",
                  "--trust-level", "STORK-QAA-Level-2")
    assert result.exit_code == 0, result.output
    policies, instance = folders
    policy = load_portal_policy(policies / "portals" / "musterstadt.yaml")
    assert policy.entity_id == ENTITY_ID
    assert policy.display_name == "Bürgerportal Musterstadt"
    assert policy.attributes == ("givenName", "surname", "bPK2")
    assert policy.required_attributes == ("bPK2",)
    assert policy.name_id_format == "persistent"
    assert not policy.consent_required
    assert policy.minimum_trust_level == 2
    assert policy.want_authn_requests_signed, "signed AuthnRequests are the default"
    # The metadata is copied beside the policy, so the folder is complete on its own.
    copy = policies / "portals" / "metadata" / "musterstadt.xml"
    assert Path(policy.metadata) == copy.resolve()
    assert copy.read_bytes() == metadata_file.read_bytes()
    # No database was needed (nor made).
    assert not (instance / "servicekonto.sqlite3").exists()


@pytest.fixture
def metadata_without_keys(metadata_file: Path) -> Path:
    """Metadata of a portal that cannot sign: no KeyDescriptor at all."""
    document = etree.parse(str(metadata_file))
    for key in document.iter(f"{{{MD}}}KeyDescriptor"):
        key.getparent().remove(key)
    document.write(str(metadata_file))
    return metadata_file


def test_portal_add_refuses_a_portal_that_cannot_sign_unless_the_exception_is_asked_for(
        folders: tuple[Path, Path], metadata_without_keys: Path) -> None:
    result = _run(folders, "add", "--name", "musterstadt", "--metadata",
                  str(metadata_without_keys))
    assert result.exit_code != 0
    assert "kein Signaturzertifikat" in result.output and "--no-sign-requests" in result.output
    assert not (folders[0] / "portals" / "musterstadt.yaml").exists()


def test_portal_add_with_no_sign_requests_accepts_unsigned_requests_and_warns(
        folders: tuple[Path, Path], metadata_without_keys: Path) -> None:
    result = _run(folders, "add", "--name", "musterstadt", "--metadata",
                  str(metadata_without_keys), "--no-sign-requests")
    assert result.exit_code == 0, result.output
    assert "unsignierte AuthnRequests werden angenommen" in result.output
    policy = load_portal_policy(folders[0] / "portals" / "musterstadt.yaml")
    assert not policy.want_authn_requests_signed


def test_portal_add_takes_metadata_from_a_url_and_caches_it(
        folders: tuple[Path, Path], tmp_path: Path, metadata_server: MetadataServer) -> None:
    url = metadata_server.serve(sp_metadata_xml(tmp_path, ENTITY_ID))
    result = _run(folders, "add", "--name", "musterstadt", "--metadata", url,
                  "--refresh-minutes", "15")
    assert result.exit_code == 0, result.output
    policies, instance = folders
    policy = load_portal_policy(policies / "portals" / "musterstadt.yaml")
    assert (policy.metadata, policy.metadata_refresh_minutes) == (url, 15)
    assert policy.attributes == ("givenName", "surname", "mail")
    assert (instance / "metadata-cache" / "musterstadt.xml").exists()

    metadata_server.stop()
    listed = _run(folders, "list")
    assert listed.exit_code == 0, listed.output
    assert "musterstadt" in listed.output and "vor 0 min" in listed.output


def test_portal_add_refuses_to_overwrite_an_existing_portal(
        folders: tuple[Path, Path], metadata_file: Path) -> None:
    assert _run(folders, "add", "--name", "musterstadt", "--metadata",
                str(metadata_file)).exit_code == 0
    before = (folders[0] / "portals" / "musterstadt.yaml").read_text(encoding="utf-8")
    result = _run(folders, "add", "--name", "musterstadt", "--metadata", str(metadata_file),
                  "--no-consent")
    assert result.exit_code != 0
    assert "existiert bereits" in result.output
    assert (folders[0] / "portals" / "musterstadt.yaml").read_text(encoding="utf-8") == before


def test_portal_add_refuses_a_second_portal_with_the_same_entity_id(
        folders: tuple[Path, Path], metadata_file: Path) -> None:
    assert _run(folders, "add", "--name", "alpha", "--metadata", str(metadata_file)).exit_code == 0
    result = _run(folders, "add", "--name", "beta", "--metadata", str(metadata_file))
    assert result.exit_code != 0
    assert "schon als Portal alpha eingetragen" in result.output
    assert not (folders[0] / "portals" / "beta.yaml").exists()


def test_portal_add_names_an_unknown_attribute_and_writes_nothing(
        folders: tuple[Path, Path], metadata_file: Path) -> None:
    result = _run(folders, "add", "--name", "musterstadt", "--metadata", str(metadata_file),
                  "--attributes", "givenName,Kassenzeichen")
    assert result.exit_code != 0
    assert "attributes: unknown attribute(s) Kassenzeichen" in result.output
    assert not (folders[0] / "portals").exists() or not any((folders[0] / "portals").iterdir())


def test_portal_add_rejects_unusable_metadata(folders: tuple[Path, Path],
                                              tmp_path: Path) -> None:
    broken = tmp_path / "broken.xml"
    broken.write_text("<html>Wartung</html>", encoding="utf-8")
    result = _run(folders, "add", "--name", "musterstadt", "--metadata", str(broken))
    assert result.exit_code != 0
    assert "Metadaten" in result.output and "unbrauchbar" in result.output
    result = _run(folders, "add", "--name", "musterstadt", "--metadata", "http://127.0.0.1:9/md")
    assert result.exit_code != 0 and "cannot fetch" in result.output


def test_portal_add_refuses_a_name_that_cannot_be_a_file_name(
        folders: tuple[Path, Path], metadata_file: Path) -> None:
    result = _run(folders, "add", "--name", "../etc/passwd", "--metadata", str(metadata_file))
    assert result.exit_code != 0 and "Ungültiger Name" in result.output


def test_portal_list_shows_what_each_portal_gets_and_how_fresh_its_metadata_is(
        folders: tuple[Path, Path], metadata_file: Path) -> None:
    _run(folders, "add", "--name", "musterstadt", "--metadata", str(metadata_file),
         "--display-name", "Bürgerportal Musterstadt")
    write_policy(folders[0], "offline", entity_id="http://127.0.0.1:9/md",
                 metadata="http://127.0.0.1:9/md", enabled=False)
    result = _run(folders, "list")
    assert result.exit_code == 0, result.output
    assert "musterstadt\tBürgerportal Musterstadt" in result.output
    assert f"Entity-ID:        {ENTITY_ID}" in result.output
    assert "Attribute:        givenName, surname, mail" in result.output
    assert "Vertrauensniveau: STORK-QAA-Level-1" in result.output
    assert "offline\tBürgerportal Musterstadt (deaktiviert)" in result.output
    assert "nicht verfügbar" in result.output


def test_portal_remove_deletes_the_policy_its_metadata_copy_and_cache(
        folders: tuple[Path, Path], tmp_path: Path, metadata_file: Path,
        metadata_server: MetadataServer) -> None:
    url = metadata_server.serve(sp_metadata_xml(tmp_path / "other", "https://other.example/md"))
    _run(folders, "add", "--name", "musterstadt", "--metadata", str(metadata_file))
    _run(folders, "add", "--name", "fern", "--metadata", url)
    policies, instance = folders
    assert _run(folders, "remove", "musterstadt").exit_code == 0
    assert _run(folders, "remove", "fern").exit_code == 0
    assert load_portal_policies(policies) == []
    assert not (policies / "portals" / "metadata" / "musterstadt.xml").exists()
    assert not (instance / "metadata-cache" / "fern.xml").exists()


def test_portal_remove_of_an_unknown_portal_says_so(folders: tuple[Path, Path]) -> None:
    result = _run(folders, "remove", "nirgendwo")
    assert result.exit_code != 0 and "Kein Portal 'nirgendwo'" in result.output


def test_portal_list_reports_a_broken_portal_file(folders: tuple[Path, Path]) -> None:
    write_policy(folders[0], "kaputt", name_id_format="email")
    result = _run(folders, "list")
    assert result.exit_code != 0
    assert "kaputt.yaml: name_id_format: must be transient or persistent" in result.output
