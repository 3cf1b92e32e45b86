"""``servicekonto upstream add|list|show|remove`` as an operator uses them: the upstreams are files
in the policy folder, checked before they are written, read by the IdP at its next start."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from idp.broker.runtime import broker
from idp.broker.upstreams import Upstream, default_mapping, load_upstreams
from idp.cli import main
from tests.conftest import app_with
from tests.integration.portals.conftest import MetadataServer
from tests.integration.portals.conftest import metadata_server as metadata_server  # a fixture
from tests.saml_support import key_pair
from tests.unit.portals.support import really_signed

ENTITY_ID = "https://musterland.example/saml/metadata"
REDIRECT = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect"
POST = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST"
GIVEN_NAME = "urn:oid:2.5.4.42"
AFTER_RESTART = "nach einem Neustart wirksam"
COMPLETE = ("--display-name", "Servicekonto Musterland", "--entity-id", ENTITY_ID,
            "--maximum-trust-level", "STORK-QAA-Level-3", "--bpk2-prefix", "MU:")


def idp_metadata_xml(entity_id: str = ENTITY_ID, binding: str = REDIRECT) -> str:
    """The metadata of an upstream IdP with one SSO endpoint on ``binding``."""
    return (f'<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" '
            f'entityID="{entity_id}"><md:IDPSSODescriptor protocolSupportEnumeration='
            '"urn:oasis:names:tc:SAML:2.0:protocol">'
            f'<md:SingleSignOnService Binding="{binding}" '
            'Location="https://musterland.example/saml/sso"/>'
            "</md:IDPSSODescriptor></md:EntityDescriptor>")


@pytest.fixture
def policies(tmp_path: Path) -> Path:
    folder = tmp_path / "policies"
    folder.mkdir()
    return folder


@pytest.fixture
def metadata_file(tmp_path: Path) -> Path:
    path = tmp_path / "download" / "musterland-metadata.xml"
    path.parent.mkdir()
    path.write_text(idp_metadata_xml(), encoding="utf-8")
    return path


def invoke(policies: Path, *args: str, **env: str) -> Result:
    """``servicekonto upstream …`` on the policy folder ``policies``; no database needed."""
    return CliRunner().invoke(main, ["upstream", *args], env={
        # A development instance, chosen explicitly (production, the default, needs a secret).
        "IDP_ENV": "development", "IDP_POLICY_DIR": str(policies),
        "IDP_INSTANCE_PATH": str(policies.parent / "instance")} | env)


@pytest.fixture
def run(policies: Path) -> Callable[..., Result]:
    def run(*args: str) -> Result:
        return invoke(policies, *args)
    return run


def upstreams_of(policies: Path) -> dict[str, Upstream]:
    """The upstreams as the IdP reads them at its start."""
    return {upstream.name: upstream for upstream in load_upstreams(policies)}


def contents(folder: Path) -> dict[str, bytes]:
    return {str(path.relative_to(folder)): path.read_bytes()
            for path in sorted(folder.rglob("*")) if path.is_file()}


def test_upstream_add_writes_an_entry_the_idp_reads_with_its_metadata_copied_beside_it(
        run: Callable[..., Result], policies: Path, metadata_file: Path) -> None:
    result = run("add", "musterland", *COMPLETE, "--metadata", str(metadata_file))
    assert result.exit_code == 0, result.output
    entry = policies / "upstreams" / "musterland.yaml"
    assert f"Upstream musterland eingetragen: {entry}" in result.output
    assert AFTER_RESTART in result.output
    upstream = upstreams_of(policies)["musterland"]
    assert upstream.display_name == "Servicekonto Musterland"
    assert upstream.entity_id == ENTITY_ID
    assert (upstream.maximum_trust_level, upstream.bpk2_prefix) == (3, "MU:")
    assert upstream.attributes == default_mapping()
    assert upstream.enabled and not upstream.encrypted_assertions
    # The folder holds everything its entry names: the copy, not the operator's download.
    copy = policies / "upstreams" / "metadata" / "musterland.xml"
    assert upstream.metadata == str(copy)
    assert copy.read_bytes() == metadata_file.read_bytes()
    assert "metadata: metadata/musterland.xml" in entry.read_text(encoding="utf-8")


def test_upstream_add_takes_a_mapping_encrypted_assertions_and_disabled(
        run: Callable[..., Result], policies: Path, metadata_file: Path) -> None:
    result = run("add", "musterland", *COMPLETE, "--metadata", str(metadata_file),
                 "--attribute", "urn:x:vorname=givenName", "--attribute", "urn:x:mail=mail",
                 "--encrypted-assertions", "--disabled")
    assert result.exit_code == 0, result.output
    upstream = upstreams_of(policies)["musterland"]
    assert upstream.attributes == {"urn:x:vorname": GIVEN_NAME,
                                   "urn:x:mail": "urn:oid:0.9.2342.19200300.100.1.3"}
    assert upstream.encrypted_assertions
    assert not upstream.enabled


def test_upstream_add_names_every_problem_and_writes_nothing(
        run: Callable[..., Result], policies: Path, metadata_file: Path) -> None:
    result = run("add", "musterland", "--entity-id", ENTITY_ID, "--metadata", str(metadata_file),
                 "--bpk2-prefix", ":MU", "--attribute", "urn:x:bpk=bPK2",
                 "--attribute", "urn:x:schuh=shoeSize", "--attribute", "vorname")
    assert result.exit_code == 1
    lines = result.output.splitlines()
    assert lines[0] == "Error: Upstream musterland nicht eingetragen, nichts geschrieben:"
    assert "--attribute 'vorname': erwartet THEIRS=OURS" in lines[1]
    for problem in ("musterland.yaml: display_name: missing",
                    "musterland.yaml: maximum_trust_level: missing",
                    "musterland.yaml: bpk2_prefix: 1 to 20 characters",
                    "musterland.yaml: attributes: urn:x:bpk: bPK2 is computed by us",
                    "musterland.yaml: attributes: urn:x:schuh: shoeSize is not one of our"):
        assert any(line.startswith(problem) for line in lines), (problem, result.output)
    assert not (policies / "upstreams").exists()


@pytest.mark.parametrize(("metadata", "problem"), [
    (idp_metadata_xml("https://nordland.example/saml/metadata"),
     f"sie beschreiben {ENTITY_ID} nicht"),
    (idp_metadata_xml(binding=POST), "kein IdP https://musterland.example/saml/metadata mit "
                                     "SSO-Endpunkt für das Redirect-Binding"),
    ("<md:EntityDescriptor", "unparsable XML"),
])
def test_upstream_add_refuses_metadata_it_could_not_send_a_citizen_to(
        run: Callable[..., Result], policies: Path, metadata_file: Path, metadata: str,
        problem: str) -> None:
    metadata_file.write_text(metadata, encoding="utf-8")
    result = run("add", "musterland", *COMPLETE, "--metadata", str(metadata_file))
    assert result.exit_code == 1
    assert f"Metadaten {metadata_file} unbrauchbar" in result.output
    assert problem in result.output
    assert not (policies / "upstreams").exists()


def test_upstream_add_says_when_the_metadata_file_is_missing(
        run: Callable[..., Result], tmp_path: Path) -> None:
    result = run("add", "musterland", *COMPLETE, "--metadata", str(tmp_path / "nirgends.xml"))
    assert result.exit_code == 1
    assert f"Metadaten {tmp_path / 'nirgends.xml'} nicht lesbar" in result.output


def test_upstream_add_refuses_an_existing_name_unless_told_to_replace_it(
        run: Callable[..., Result], policies: Path, metadata_file: Path) -> None:
    assert run("add", "musterland", *COMPLETE, "--metadata", str(metadata_file)).exit_code == 0
    again = run("add", "musterland", *COMPLETE, "--metadata", str(metadata_file),
                "--maximum-trust-level", "STORK-QAA-Level-2")
    assert again.exit_code == 1
    assert "gibt es schon" in again.output and "--replace" in again.output
    assert upstreams_of(policies)["musterland"].maximum_trust_level == 3

    replaced = run("add", "musterland", *COMPLETE, "--metadata", str(metadata_file),
                   "--maximum-trust-level", "STORK-QAA-Level-2", "--replace")
    assert replaced.exit_code == 0, replaced.output
    assert "Upstream musterland ersetzt" in replaced.output
    assert upstreams_of(policies)["musterland"].maximum_trust_level == 2


def test_upstream_add_refuses_an_entity_id_another_upstream_has(
        run: Callable[..., Result], policies: Path, metadata_file: Path) -> None:
    assert run("add", "musterland", *COMPLETE, "--metadata", str(metadata_file)).exit_code == 0
    result = run("add", "zweitland", *COMPLETE, "--metadata", str(metadata_file))
    assert result.exit_code == 1
    assert f"Die Entity-ID {ENTITY_ID} hat schon der Upstream musterland." in result.output
    assert list(upstreams_of(policies)) == ["musterland"]


@pytest.mark.parametrize("name", ["Musterland", "../musterland", "m" * 41])
def test_upstream_add_refuses_a_name_that_cannot_be_a_file_name(
        run: Callable[..., Result], policies: Path, metadata_file: Path, name: str) -> None:
    result = run("add", name, *COMPLETE, "--metadata", str(metadata_file))
    assert result.exit_code == 1
    assert f"Ungültiger Name {name!r}" in result.output
    assert contents(policies) == {}


@pytest.fixture
def pinned(tmp_path: Path, metadata_file: Path) -> Path:
    """The metadata file signed by the upstream; its certificate, which the operator pins."""
    key, certificate = key_pair(tmp_path / "musterland-keys", "musterland-metadata")
    metadata_file.write_bytes(really_signed(idp_metadata_xml(), key))
    return certificate


def test_upstream_add_with_a_pinned_certificate_checks_the_signature_and_copies_it(
        run: Callable[..., Result], policies: Path, metadata_file: Path,
        pinned: Path) -> None:
    result = run("add", "musterland", *COMPLETE, "--metadata", str(metadata_file),
                 "--metadata-certificate", str(pinned))
    assert result.exit_code == 0, result.output
    upstream = upstreams_of(policies)["musterland"]
    assert upstream.metadata_certificate == policies / "upstreams" / "certificates" / \
        "musterland.pem"
    assert upstream.metadata_certificate.read_bytes() == pinned.read_bytes()


def test_upstream_add_refuses_metadata_the_pinned_certificate_did_not_sign(
        run: Callable[..., Result], policies: Path, metadata_file: Path, pinned: Path,
        tmp_path: Path) -> None:
    _, stranger = key_pair(tmp_path / "stranger-keys", "stranger")
    result = run("add", "musterland", *COMPLETE, "--metadata", str(metadata_file),
                 "--metadata-certificate", str(stranger))
    assert result.exit_code == 1
    assert "the signature does not verify with the configured certificate" in result.output
    assert not (policies / "upstreams").exists()


def test_upstream_add_takes_url_metadata_and_a_replacement_drops_the_old_copy(
        run: Callable[..., Result], policies: Path, metadata_file: Path,
        metadata_server: MetadataServer) -> None:
    assert run("add", "musterland", *COMPLETE, "--metadata", str(metadata_file)).exit_code == 0
    url = metadata_server.serve(idp_metadata_xml())
    result = run("add", "musterland", *COMPLETE, "--metadata", url, "--refresh-minutes", "15",
                 "--replace")
    assert result.exit_code == 0, result.output
    upstream = upstreams_of(policies)["musterland"]
    assert (upstream.metadata, upstream.metadata_refresh_minutes) == (url, 15)
    assert list(contents(policies)) == ["upstreams/musterland.yaml"]


def test_upstream_add_says_when_url_metadata_cannot_be_fetched(
        run: Callable[..., Result], metadata_server: MetadataServer) -> None:
    result = run("add", "musterland", *COMPLETE, "--metadata", metadata_server.url("/fehlt"))
    assert result.exit_code == 1
    assert f"Metadaten {metadata_server.url('/fehlt')} nicht lesbar" in result.output


def test_refresh_minutes_apply_to_url_metadata_only(
        run: Callable[..., Result], metadata_file: Path) -> None:
    result = run("add", "musterland", *COMPLETE, "--metadata", str(metadata_file),
                 "--refresh-minutes", "15")
    assert result.exit_code == 1
    assert "--refresh-minutes gilt nur für Metadaten von einer URL." in result.output


PRODUCTION = {"IDP_ENV": "production", "IDP_SECRET_KEY": "s" * 40,
              "IDP_BASE_URL": "https://servicekonto.example", "IDP_MAIL_SERVER": "localhost"}


def test_in_production_metadata_over_plain_http_needs_a_pinned_certificate(
        policies: Path, metadata_server: MetadataServer, pinned: Path,
        metadata_file: Path) -> None:
    plain = invoke(policies, "add", "musterland", *COMPLETE, "--metadata",
                   metadata_server.serve(idp_metadata_xml()), **PRODUCTION)
    assert plain.exit_code == 1, plain.output
    assert "nur mit --metadata-certificate" in plain.output

    signed = invoke(policies, "add", "musterland", *COMPLETE, "--metadata",
                    metadata_server.serve(metadata_file.read_bytes()),
                    "--metadata-certificate", str(pinned), **PRODUCTION)
    assert signed.exit_code == 0, signed.output


@pytest.fixture
def read_only(policies: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The policy folder read-only, as compose mounts it. Root writes through mode bits, so for
    root the system's answer is that of a read-only mount."""
    policies.chmod(0o555)
    if os.geteuid() == 0:
        real = os.access

        def access(path: Any, mode: int, **options: Any) -> bool:
            if mode & os.W_OK and Path(path).is_relative_to(policies):
                return False
            return real(path, mode, **options)
        monkeypatch.setattr(os, "access", access)
    yield
    policies.chmod(0o755)


def test_upstream_add_to_a_read_only_policy_folder_says_to_mount_a_writable_one(
        run: Callable[..., Result], policies: Path, metadata_file: Path,
        read_only: None) -> None:
    result = run("add", "musterland", *COMPLETE, "--metadata", str(metadata_file))
    assert result.exit_code == 1
    assert f"Der Ordner {policies / 'upstreams'} ist nicht beschreibbar" in result.output
    assert "einen beschreibbaren Ordner über" in result.output
    assert "docs/deployment.md" in result.output
    assert not (policies / "upstreams").exists()


def test_upstream_list_shows_what_the_idp_will_offer(
        run: Callable[..., Result], metadata_file: Path) -> None:
    assert run("add", "musterland", *COMPLETE, "--metadata", str(metadata_file)).exit_code == 0
    other = idp_metadata_xml("https://nordland.example/md")
    metadata_file.write_text(other, encoding="utf-8")
    assert run("add", "nordland", "--display-name", "Nordland", "--entity-id",
               "https://nordland.example/md", "--metadata", str(metadata_file),
               "--maximum-trust-level", "STORK-QAA-Level-2", "--bpk2-prefix", "NO:",
               "--attribute", "urn:x:vorname=givenName", "--disabled").exit_code == 0
    listed = run("list")
    assert listed.exit_code == 0, listed.output
    musterland, nordland = listed.output.split("\nnordland\t")
    assert musterland.startswith("musterland\tServicekonto Musterland\n")
    assert f"Entity-ID:        {ENTITY_ID}" in musterland
    assert "Höchstes Niveau:  STORK-QAA-Level-3" in musterland
    assert "bPK2-Präfix:      MU:" in musterland
    assert "Attribute:        BundID-Zuordnung" in musterland
    assert "Angeboten:        ja" in musterland
    assert nordland.startswith("Nordland\n")
    assert "Höchstes Niveau:  STORK-QAA-Level-2" in nordland
    assert "Attribute:        urn:x:vorname → givenName" in nordland
    assert "Angeboten:        nein" in nordland


def test_upstream_list_without_upstreams_says_where_it_looked(
        run: Callable[..., Result], policies: Path) -> None:
    listed = run("list")
    assert listed.exit_code == 0
    assert listed.output == f"Keine Upstreams (in {policies / 'upstreams'}).\n"


def test_upstream_list_of_a_broken_file_says_the_idp_would_not_start(
        run: Callable[..., Result], policies: Path) -> None:
    (policies / "upstreams").mkdir()
    (policies / "upstreams" / "kaputt.yaml").write_text("unsigned_assertions: true\n",
                                                        encoding="utf-8")
    listed = run("list")
    assert listed.exit_code == 1
    assert "so startet der IdP nicht" in listed.output
    assert "unsigned assertions are always refused" in listed.output
    assert "kaputt.yaml: display_name: missing" in listed.output


def test_upstream_show_prints_the_file_and_an_unknown_name_is_refused(
        run: Callable[..., Result], policies: Path, metadata_file: Path) -> None:
    assert run("add", "musterland", *COMPLETE, "--metadata", str(metadata_file)).exit_code == 0
    shown = run("show", "musterland")
    assert shown.exit_code == 0
    assert shown.output == (policies / "upstreams" / "musterland.yaml").read_text(
        encoding="utf-8")
    unknown = run("show", "nordland")
    assert unknown.exit_code == 1
    assert "Kein Upstream 'nordland'" in unknown.output


def test_upstream_remove_deletes_the_entry_and_its_copies(
        run: Callable[..., Result], policies: Path, metadata_file: Path, pinned: Path) -> None:
    assert run("add", "musterland", *COMPLETE, "--metadata", str(metadata_file),
               "--metadata-certificate", str(pinned)).exit_code == 0
    removed = run("remove", "musterland")
    assert removed.exit_code == 0, removed.output
    assert "Upstream musterland entfernt" in removed.output and AFTER_RESTART in removed.output
    assert contents(policies) == {}
    assert upstreams_of(policies) == {}
    again = run("remove", "musterland")
    assert again.exit_code == 1 and "Kein Upstream 'musterland'" in again.output


def test_upstream_remove_takes_away_a_broken_file_that_stops_the_start(
        run: Callable[..., Result], policies: Path) -> None:
    (policies / "upstreams").mkdir()
    (policies / "upstreams" / "kaputt.yaml").write_text("display_name: [", encoding="utf-8")
    assert run("remove", "kaputt").exit_code == 0
    assert run("list").exit_code == 0


def test_upstream_remove_in_a_read_only_policy_folder_says_to_mount_a_writable_one(
        run: Callable[..., Result], policies: Path, metadata_file: Path,
        request: pytest.FixtureRequest) -> None:
    assert run("add", "musterland", *COMPLETE, "--metadata", str(metadata_file)).exit_code == 0
    request.getfixturevalue("read_only")
    result = run("remove", "musterland")
    assert result.exit_code == 1
    assert "ist nicht beschreibbar" in result.output and "docs/deployment.md" in result.output
    assert "musterland" in upstreams_of(policies)


def test_the_idp_offers_an_added_upstream_when_it_starts(
        settings: dict[str, Any], metadata_file: Path) -> None:
    result = invoke(settings["policy_dir"], "add", "musterland", *COMPLETE, "--metadata",
                    str(metadata_file))
    assert result.exit_code == 0, result.output
    with app_with(settings) as app:
        upstream = broker(app).upstream("musterland")
        assert upstream is not None and upstream.display_name == "Servicekonto Musterland"
