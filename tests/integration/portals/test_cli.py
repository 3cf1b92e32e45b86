"""``servicekonto portal add|list|remove|import|export`` as an operator uses them: the portals
live in the database, the policy folder is only read (in containers it is read-only)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner, Result
from lxml import etree
from sqlalchemy import create_engine
from sqlalchemy.orm import Session

from idp.cli import main
from idp.portals.policy import PortalPolicy
from idp.portals.store import policy_of, stored_portal
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


@pytest.fixture
def run(folders: tuple[Path, Path], database_url: str) -> Callable[..., Result]:
    """``servicekonto portal …`` against a migrated database and the policy folder."""
    policies, instance = folders

    def invoke(*args: str) -> Result:
        # A development instance, chosen explicitly (production, the default, needs a secret).
        return CliRunner().invoke(main, ["portal", *args], env={
            "IDP_ENV": "development", "IDP_POLICY_DIR": str(policies),
            "IDP_INSTANCE_PATH": str(instance), "IDP_DATABASE_URL": database_url})
    return invoke


@pytest.fixture
def stored(database_url: str) -> Iterator[Callable[[str], PortalPolicy | None]]:
    """The policy of a portal as the database keeps it (None when there is none)."""
    engine = create_engine(database_url)

    def read(name: str) -> PortalPolicy | None:
        with Session(engine) as session:
            row = stored_portal(session, name)
            return None if row is None else policy_of(row)
    yield read
    engine.dispose()


def _folder_contents(folder: Path) -> dict[str, bytes]:
    return {str(path.relative_to(folder)): path.read_bytes()
            for path in sorted(folder.rglob("*")) if path.is_file()}


def test_portal_add_stores_the_portal_and_writes_nothing_into_the_policy_folder(
        run: Callable[..., Result], stored: Callable[[str], PortalPolicy | None],
        folders: tuple[Path, Path], metadata_file: Path) -> None:
    policies, _ = folders
    before = _folder_contents(policies)
    result = run("add", "--name", "musterstadt", "--metadata", str(metadata_file),
                 "--display-name", "Bürgerportal Musterstadt",
                 "--attributes", "givenName,surname,bPK2", "--required-attributes", "bPK2",
                 "--name-id-format", "persistent", "--no-consent",
                 "--trust-level", "STORK-QAA-Level-2")
    assert result.exit_code == 0, result.output
    assert "binnen einer Sekunde" in result.output
    policy = stored("musterstadt")
    assert policy is not None
    assert policy.entity_id == ENTITY_ID
    assert policy.display_name == "Bürgerportal Musterstadt"
    assert policy.attributes == ("givenName", "surname", "bPK2")
    assert policy.required_attributes == ("bPK2",)
    assert policy.name_id_format == "persistent"
    assert not policy.consent_required
    assert policy.minimum_trust_level == 2
    assert policy.want_authn_requests_signed, "signed AuthnRequests are the default"
    # The metadata is kept in the database: every host has it, none needs the file.
    assert policy.metadata_document == metadata_file.read_bytes()
    assert _folder_contents(policies) == before


@pytest.fixture
def metadata_without_keys(metadata_file: Path) -> Path:
    """Metadata of a portal that cannot sign: no KeyDescriptor at all."""
    document = etree.parse(str(metadata_file))
    for key in document.iter(f"{{{MD}}}KeyDescriptor"):
        key.getparent().remove(key)
    document.write(str(metadata_file))
    return metadata_file


def test_portal_add_refuses_a_portal_that_cannot_sign_unless_the_exception_is_asked_for(
        run: Callable[..., Result], stored: Callable[[str], PortalPolicy | None],
        metadata_without_keys: Path) -> None:
    result = run("add", "--name", "musterstadt", "--metadata", str(metadata_without_keys))
    assert result.exit_code != 0
    assert "kein Signaturzertifikat" in result.output and "--no-sign-requests" in result.output
    assert stored("musterstadt") is None


def test_portal_add_with_no_sign_requests_accepts_unsigned_requests_and_warns(
        run: Callable[..., Result], stored: Callable[[str], PortalPolicy | None],
        metadata_without_keys: Path) -> None:
    result = run("add", "--name", "musterstadt", "--metadata", str(metadata_without_keys),
                 "--no-sign-requests")
    assert result.exit_code == 0, result.output
    assert "unsignierte AuthnRequests werden angenommen" in result.output
    policy = stored("musterstadt")
    assert policy is not None and not policy.want_authn_requests_signed


def test_portal_add_takes_metadata_from_a_url_and_caches_it(
        run: Callable[..., Result], stored: Callable[[str], PortalPolicy | None],
        folders: tuple[Path, Path], tmp_path: Path, metadata_server: MetadataServer) -> None:
    url = metadata_server.serve(sp_metadata_xml(tmp_path, ENTITY_ID))
    result = run("add", "--name", "musterstadt", "--metadata", url, "--refresh-minutes", "15")
    assert result.exit_code == 0, result.output
    policy = stored("musterstadt")
    assert policy is not None
    assert (policy.metadata, policy.metadata_refresh_minutes) == (url, 15)
    assert policy.attributes == ("givenName", "surname", "mail")
    assert (folders[1] / "metadata-cache" / "musterstadt.xml").exists()

    metadata_server.stop()
    listed = run("list")
    assert listed.exit_code == 0, listed.output
    assert "musterstadt" in listed.output and "vor 0 min" in listed.output


def test_portal_add_refuses_to_overwrite_an_existing_portal(
        run: Callable[..., Result], stored: Callable[[str], PortalPolicy | None],
        metadata_file: Path) -> None:
    assert run("add", "--name", "musterstadt", "--metadata", str(metadata_file)).exit_code == 0
    result = run("add", "--name", "musterstadt", "--metadata", str(metadata_file),
                 "--no-consent")
    assert result.exit_code != 0
    assert "existiert bereits" in result.output
    policy = stored("musterstadt")
    assert policy is not None and policy.consent_required


def test_portal_add_refuses_a_second_portal_with_the_same_entity_id(
        run: Callable[..., Result], stored: Callable[[str], PortalPolicy | None],
        metadata_file: Path) -> None:
    assert run("add", "--name", "alpha", "--metadata", str(metadata_file)).exit_code == 0
    result = run("add", "--name", "beta", "--metadata", str(metadata_file))
    assert result.exit_code != 0
    assert "schon als Portal alpha eingetragen" in result.output
    assert stored("beta") is None


def test_portal_add_names_an_unknown_attribute_and_stores_nothing(
        run: Callable[..., Result], stored: Callable[[str], PortalPolicy | None],
        metadata_file: Path) -> None:
    result = run("add", "--name", "musterstadt", "--metadata", str(metadata_file),
                 "--attributes", "givenName,Kassenzeichen")
    assert result.exit_code != 0
    assert "attributes: unknown attribute(s) Kassenzeichen" in result.output
    assert stored("musterstadt") is None


def test_portal_add_rejects_unusable_metadata(run: Callable[..., Result],
                                              tmp_path: Path) -> None:
    broken = tmp_path / "broken.xml"
    broken.write_text("<html>Wartung</html>", encoding="utf-8")
    result = run("add", "--name", "musterstadt", "--metadata", str(broken))
    assert result.exit_code != 0
    assert "Metadaten" in result.output and "unbrauchbar" in result.output
    result = run("add", "--name", "musterstadt", "--metadata", "http://127.0.0.1:9/md")
    assert result.exit_code != 0 and "cannot fetch" in result.output


def test_portal_add_refuses_a_name_that_cannot_be_a_file_name(
        run: Callable[..., Result], metadata_file: Path) -> None:
    result = run("add", "--name", "../etc/passwd", "--metadata", str(metadata_file))
    assert result.exit_code != 0 and "Ungültiger Name" in result.output


def test_portal_add_before_the_database_is_migrated_says_what_to_run(
        folders: tuple[Path, Path], metadata_file: Path) -> None:
    policies, instance = folders
    result = CliRunner().invoke(main, [
        "portal", "add", "--name", "musterstadt", "--metadata", str(metadata_file)], env={
        "IDP_ENV": "development", "IDP_POLICY_DIR": str(policies),
        "IDP_INSTANCE_PATH": str(instance)})
    assert result.exit_code != 0 and "servicekonto db upgrade" in result.output


def test_portal_list_shows_what_each_portal_gets_where_it_comes_from_and_how_fresh_it_is(
        run: Callable[..., Result], folders: tuple[Path, Path], metadata_file: Path) -> None:
    run("add", "--name", "musterstadt", "--metadata", str(metadata_file),
        "--display-name", "Bürgerportal Musterstadt")
    write_policy(folders[0], "offline", entity_id="http://127.0.0.1:9/md",
                 metadata="http://127.0.0.1:9/md", enabled=False)
    result = run("list")
    assert result.exit_code == 0, result.output
    assert "musterstadt\tBürgerportal Musterstadt" in result.output
    assert f"Entity-ID:        {ENTITY_ID}" in result.output
    assert "Herkunft:         servicekonto portal add" in result.output
    assert "Attribute:        givenName, surname, mail" in result.output
    assert "Vertrauensniveau: STORK-QAA-Level-1" in result.output
    assert "offline\tBürgerportal Musterstadt (deaktiviert)" in result.output
    assert f"Herkunft:         Datei {folders[0] / 'portals' / 'offline.yaml'}" in result.output
    assert "nicht verfügbar" in result.output


def test_portal_remove_deletes_the_portal_and_its_cached_metadata(
        run: Callable[..., Result], stored: Callable[[str], PortalPolicy | None],
        folders: tuple[Path, Path], tmp_path: Path, metadata_file: Path,
        metadata_server: MetadataServer) -> None:
    url = metadata_server.serve(sp_metadata_xml(tmp_path / "other", "https://other.example/md"))
    run("add", "--name", "musterstadt", "--metadata", str(metadata_file))
    run("add", "--name", "fern", "--metadata", url)
    assert run("remove", "musterstadt").exit_code == 0
    assert run("remove", "fern").exit_code == 0
    assert stored("musterstadt") is None and stored("fern") is None
    assert not (folders[1] / "metadata-cache" / "fern.xml").exists()


def test_portal_remove_of_an_unknown_portal_says_so(run: Callable[..., Result]) -> None:
    result = run("remove", "nirgendwo")
    assert result.exit_code != 0 and "Kein Portal 'nirgendwo'" in result.output


def test_portal_remove_of_a_portal_from_a_file_names_the_file_to_remove_instead(
        run: Callable[..., Result], stored: Callable[[str], PortalPolicy | None],
        folders: tuple[Path, Path], metadata_file: Path) -> None:
    write_policy(folders[0], "musterstadt", metadata=str(metadata_file))
    result = run("remove", "musterstadt")
    assert result.exit_code != 0
    assert "musterstadt.yaml: die Datei entfernen" in result.output
    assert stored("musterstadt") is not None


def test_portal_import_takes_a_changed_file_and_removes_the_portal_of_a_removed_one(
        run: Callable[..., Result], stored: Callable[[str], PortalPolicy | None],
        folders: tuple[Path, Path], metadata_file: Path) -> None:
    path = write_policy(folders[0], "musterstadt", metadata=str(metadata_file))
    assert run("import").output.strip().endswith("musterstadt.")
    write_policy(folders[0], "musterstadt", metadata=str(metadata_file),
                 display_name="Bürgerportal Neustadt")
    assert run("import").exit_code == 0
    assert run("import").output.strip().endswith("keine Änderung.")
    policy = stored("musterstadt")
    assert policy is not None and policy.display_name == "Bürgerportal Neustadt"
    path.unlink()
    assert run("import").exit_code == 0
    assert stored("musterstadt") is None


def test_an_exported_portal_in_the_policy_folder_becomes_the_files_portal(
        run: Callable[..., Result], stored: Callable[[str], PortalPolicy | None],
        folders: tuple[Path, Path], metadata_file: Path) -> None:
    run("add", "--name", "musterstadt", "--metadata", str(metadata_file), "--no-consent")
    printed = run("export", "musterstadt")
    assert yaml.safe_load(printed.output)["entity_id"] == ENTITY_ID
    exported = run("export", "musterstadt", "--to", str(folders[0] / "portals"))
    assert exported.exit_code == 0, exported.output
    assert (folders[0] / "portals" / "metadata" / "musterstadt.xml").read_bytes() == \
        metadata_file.read_bytes()

    listed = run("list")
    assert "Herkunft:         Datei" in listed.output
    policy = stored("musterstadt")
    assert policy is not None and not policy.consent_required
    assert run("export", "musterstadt", "--to", str(folders[0] / "portals")).exit_code != 0


def test_portal_list_reports_a_broken_portal_file(run: Callable[..., Result],
                                                  folders: tuple[Path, Path]) -> None:
    write_policy(folders[0], "kaputt", name_id_format="email")
    result = run("list")
    assert result.exit_code != 0
    assert "kaputt.yaml: name_id_format: must be transient or persistent" in result.output


def test_portal_import_from_another_folder_registers_portals_the_commands_may_remove(
        run: Callable[..., Result], stored: Callable[[str], PortalPolicy | None],
        tmp_path: Path, metadata_file: Path) -> None:
    """As the demo profile of docker/compose.yaml registers the demo portals."""
    demo = tmp_path / "demo"
    write_policy(demo, "musterstadt", metadata=str(metadata_file))
    first = run("import", "--from", str(demo / "portals"))
    again = run("import", "--from", str(demo / "portals"))

    assert first.exit_code == 0, first.output
    assert first.output.strip().endswith("musterstadt.")
    assert again.output.strip().endswith("keine Änderung.")
    policy = stored("musterstadt")
    assert policy is not None and policy.metadata_document == metadata_file.read_bytes()
    assert run("remove", "musterstadt").exit_code == 0
