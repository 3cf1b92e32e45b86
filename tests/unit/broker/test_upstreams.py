"""The upstream files (``policies/upstreams/<name>.yaml``): what an operator may write, and that
every mistake is named at once, before the IdP offers "Login mit externem Servicekonto"."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from idp.broker.upstreams import (
    OUR_ATTRIBUTES,
    default_mapping,
    load_upstream,
    load_upstreams,
    parse_upstream,
)
from idp.config import PolicyError

GIVEN_NAME, SURNAME = "urn:oid:2.5.4.42", "urn:oid:2.5.4.4"
MAIL = "urn:oid:0.9.2342.19200300.100.1.3"
BPK2 = "urn:oid:1.3.6.1.4.1.25484.494450.3"
COMPUTED = ("bPK2", "EID-CITIZEN-QAA-LEVEL", "AssertionProvedBy")


def entry(**changes: Any) -> dict[str, Any]:
    """A complete upstream entry, changed by ``changes`` (None leaves a key out)."""
    raw = {"display_name": "Servicekonto Musterland",
           "entity_id": "https://musterland.example/saml/metadata",
           "metadata": "https://musterland.example/saml/metadata",
           "maximum_trust_level": "STORK-QAA-Level-3", "bpk2_prefix": "MU:"} | changes
    return {key: value for key, value in raw.items() if value is not None}


def problems_of(raw: dict[str, Any], path: Path = Path("/policies/upstreams/musterland.yaml")
                ) -> list[str]:
    with pytest.raises(PolicyError) as refused:
        parse_upstream(raw, path)
    return str(refused.value).splitlines()


def write(folder: Path, name: str, raw: dict[str, Any]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    return path


def test_a_complete_entry_is_read_with_the_defaults_of_what_it_leaves_out() -> None:
    upstream = parse_upstream(entry(), Path("/policies/upstreams/musterland.yaml"))
    assert upstream.name == "musterland"
    assert upstream.display_name == "Servicekonto Musterland"
    assert upstream.metadata_is_url
    assert upstream.maximum_trust_level == 3
    assert upstream.bpk2_prefix == "MU:"
    assert upstream.metadata_refresh_minutes == 60
    assert upstream.attributes == default_mapping()
    assert upstream.enabled and not upstream.encrypted_assertions
    assert upstream.metadata_certificate is None


def test_every_problem_of_an_entry_is_named_at_once() -> None:
    raw = entry(display_name=None, bpk2_prefix=None, maximum_trust_level="STORK-QAA-Level-5",
                metadata_refresh_minutes=0, enabled="yes", colour="blue")
    problems = problems_of(raw)
    assert problems == [
        "/policies/upstreams/musterland.yaml: display_name: missing",
        "/policies/upstreams/musterland.yaml: bpk2_prefix: missing",
        "/policies/upstreams/musterland.yaml: colour: unknown setting",
        "/policies/upstreams/musterland.yaml: metadata_refresh_minutes: must be a whole number "
        "of minutes ≥ 1",
        "/policies/upstreams/musterland.yaml: maximum_trust_level: must be one of "
        "STORK-QAA-Level-1, STORK-QAA-Level-2, STORK-QAA-Level-3, STORK-QAA-Level-4",
        "/policies/upstreams/musterland.yaml: enabled: must be true or false",
    ]


@pytest.mark.parametrize("key", ["accept_unsigned_assertions", "want_assertions_signed",
                                 "allow_unsigned"])
def test_a_setting_about_signatures_is_refused_because_unsigned_assertions_never_pass(
        key: str) -> None:
    problems = problems_of(entry(**{key: True}))
    assert problems == [f"/policies/upstreams/musterland.yaml: {key}: unknown setting; "
                        "unsigned assertions are always refused"]


def test_an_unknown_setting_not_about_signatures_is_refused_without_that_reason() -> None:
    assert problems_of(entry(sign_requests=True)) == [
        "/policies/upstreams/musterland.yaml: sign_requests: unknown setting"]


@pytest.mark.parametrize("level", ["STORK-QAA-Level-5", "STORK-QAA-Level-0", 3, "high", None])
def test_a_trust_level_outside_the_four_stork_levels_is_refused(level: Any) -> None:
    raw = entry() | {"maximum_trust_level": level}
    assert any("maximum_trust_level: must be one of STORK-QAA-Level-1" in problem
               for problem in problems_of(raw))


@pytest.mark.parametrize("level", [1, 2, 3, 4])
def test_each_stork_level_is_the_highest_level_believed_of_the_upstream(level: int) -> None:
    raw = entry(maximum_trust_level=f"STORK-QAA-Level-{level}")
    assert parse_upstream(raw, Path("musterland.yaml")).maximum_trust_level == level


@pytest.mark.parametrize("prefix", [":MU", "-MU", "M U", "MU/", "Ü", "M" * 21, ""])
def test_a_bpk2_prefix_that_could_blur_into_the_identifier_is_refused(prefix: str) -> None:
    assert any(problem.startswith("/policies/upstreams/musterland.yaml: bpk2_prefix: ")
               for problem in problems_of(entry(bpk2_prefix=prefix)))


@pytest.mark.parametrize("prefix", ["MU:", "M", "de.musterland:", "M" * 20])
def test_a_bpk2_prefix_of_letters_digits_and_separators_is_kept(prefix: str) -> None:
    assert parse_upstream(entry(bpk2_prefix=prefix), Path("musterland.yaml")).bpk2_prefix == prefix


def test_the_default_mapping_takes_every_attribute_of_ours_except_those_we_compute() -> None:
    mapping = default_mapping()
    assert all(theirs == ours for theirs, ours in mapping.items())
    assert set(mapping) == {name for friendly, name in OUR_ATTRIBUTES.items()
                            if friendly not in COMPUTED}
    assert GIVEN_NAME in mapping and BPK2 not in mapping


def test_a_mapping_names_our_attributes_by_friendly_name_or_by_name() -> None:
    raw = entry(attributes={"urn:x:vorname": "givenName", "urn:x:nachname": SURNAME})
    upstream = parse_upstream(raw, Path("musterland.yaml"))
    assert upstream.attributes == {"urn:x:vorname": GIVEN_NAME, "urn:x:nachname": SURNAME}


def test_a_mapping_to_an_attribute_we_do_not_have_is_refused_naming_the_known_ones() -> None:
    problems = problems_of(entry(attributes={"urn:x:schuhgroesse": "shoeSize"}))
    assert len(problems) == 1
    assert problems[0].startswith("/policies/upstreams/musterland.yaml: attributes: "
                                  "urn:x:schuhgroesse: shoeSize is not one of our attributes; "
                                  "known are ")
    assert "givenName" in problems[0] and "postalAddress" in problems[0]


@pytest.mark.parametrize("ours", [*COMPUTED, BPK2])
def test_an_attribute_we_compute_is_never_taken_from_upstream(ours: str) -> None:
    assert problems_of(entry(attributes={"urn:x:theirs": ours})) == [
        f"/policies/upstreams/musterland.yaml: attributes: urn:x:theirs: {ours} is computed "
        "by us, never taken from upstream"]


def test_two_upstream_attributes_mapped_to_one_of_ours_are_refused() -> None:
    raw = entry(attributes={"urn:x:mail": "mail", "urn:x:email": MAIL})
    assert problems_of(raw) == ["/policies/upstreams/musterland.yaml: attributes: maps two "
                                "upstream attributes to one of ours"]


@pytest.mark.parametrize("attributes", [["givenName"], {"urn:x:vorname": 1}, "givenName"])
def test_attributes_that_are_no_mapping_of_names_are_refused(attributes: Any) -> None:
    assert problems_of(entry(attributes=attributes)) == [
        "/policies/upstreams/musterland.yaml: attributes: must map the upstream's attribute "
        "names to ours"]


def test_every_problem_of_every_mapping_is_named_at_once() -> None:
    raw = entry(bpk2_prefix="-", attributes={"urn:x:a": "shoeSize", "urn:x:b": "bPK2",
                                             "urn:x:c": "mail", "urn:x:d": "mail"})
    problems = problems_of(raw)
    assert [problem.split(": ")[1] for problem in problems] == ["bpk2_prefix", *["attributes"] * 3]


def test_a_metadata_file_is_found_relative_to_the_folder_of_its_entry(tmp_path: Path) -> None:
    folder = tmp_path / "upstreams"
    upstream = parse_upstream(entry(metadata="metadata/musterland.xml"),
                              folder / "musterland.yaml")
    assert not upstream.metadata_is_url
    assert upstream.metadata == str(folder / "metadata" / "musterland.xml")


def test_a_metadata_certificate_is_found_relative_to_the_folder_and_must_exist(
        tmp_path: Path) -> None:
    folder = tmp_path / "upstreams"
    (folder / "certificates").mkdir(parents=True)
    (folder / "certificates" / "musterland.pem").write_text("PEM", encoding="utf-8")
    upstream = parse_upstream(entry(metadata_certificate="certificates/musterland.pem"),
                              folder / "musterland.yaml")
    assert upstream.metadata_certificate == folder / "certificates" / "musterland.pem"

    missing = folder / "certificates" / "other.pem"
    assert problems_of(entry(metadata_certificate="certificates/other.pem"),
                       folder / "musterland.yaml") == [
        f"{folder}/musterland.yaml: metadata_certificate: file {missing} does not exist"]


@pytest.mark.parametrize("metadata", ["ftp://musterland.example/metadata.xml",
                                      "file:///etc/metadata.xml"])
def test_metadata_from_anything_but_a_file_or_http_is_refused(metadata: str) -> None:
    assert problems_of(entry(metadata=metadata)) == [
        "/policies/upstreams/musterland.yaml: metadata: must be a file path or an http(s) URL"]


@pytest.mark.parametrize("name", ["Musterland", "muster land", "-musterland", "m" * 41])
def test_a_file_name_that_is_no_upstream_name_is_refused(name: str) -> None:
    problems = problems_of(entry(), Path(f"/policies/upstreams/{name}.yaml"))
    assert problems == [f"/policies/upstreams/{name}.yaml: (file name): not a valid upstream "
                        "name (lower-case letters, digits, - and _, at most 40 characters)"]


def test_without_an_upstream_folder_there_are_no_upstreams(tmp_path: Path) -> None:
    assert load_upstreams(tmp_path) == []


def test_the_upstream_folder_is_read_in_name_order_skipping_hidden_files_and_folders(
        tmp_path: Path) -> None:
    folder = tmp_path / "upstreams"
    write(folder, "nordland.yaml", entry(entity_id="https://nordland.example/md"))
    write(folder, "musterland.yaml", entry())
    write(folder, ".musterland.yaml.tmp", {"half": "written"})
    (folder / "metadata").mkdir()
    (folder / "metadata" / "musterland.xml").write_text("<md/>", encoding="utf-8")
    assert [upstream.name for upstream in load_upstreams(tmp_path)] == ["musterland", "nordland"]


def test_a_file_in_the_upstream_folder_that_is_not_yaml_is_refused(tmp_path: Path) -> None:
    folder = tmp_path / "upstreams"
    write(folder, "musterland.yaml", entry())
    write(folder, "nordland.yml", entry(entity_id="https://nordland.example/md"))
    with pytest.raises(PolicyError) as refused:
        load_upstreams(tmp_path)
    assert str(refused.value) == f"{folder}/nordland.yml: upstream files must end in .yaml"


def test_two_files_with_one_entity_id_are_refused_naming_both(tmp_path: Path) -> None:
    folder = tmp_path / "upstreams"
    write(folder, "musterland.yaml", entry())
    write(folder, "zweitland.yaml", entry(display_name="Zweitland"))
    with pytest.raises(PolicyError) as refused:
        load_upstreams(tmp_path)
    assert str(refused.value) == (f"{folder}/zweitland.yaml: entity_id: also used by "
                                  f"{folder}/musterland.yaml")


def test_every_problem_of_every_file_is_named_at_once(tmp_path: Path) -> None:
    folder = tmp_path / "upstreams"
    write(folder, "musterland.yaml", entry(bpk2_prefix=None))
    write(folder, "nordland.yaml", entry(maximum_trust_level="STORK-QAA-Level-9",
                                         signed=False))
    (folder / "kaputt.yaml").write_text("display_name: [unclosed", encoding="utf-8")
    with pytest.raises(PolicyError) as refused:
        load_upstreams(tmp_path)
    problems = str(refused.value).splitlines()
    assert problems[0].startswith(f"{folder}/kaputt.yaml: not valid YAML")
    assert f"{folder}/musterland.yaml: bpk2_prefix: missing" in problems
    assert (f"{folder}/nordland.yaml: signed: unknown setting; unsigned assertions are always "
            "refused") in problems
    assert any(problem.startswith(f"{folder}/nordland.yaml: maximum_trust_level: ")
               for problem in problems)


def test_a_file_that_is_no_mapping_of_settings_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "musterland.yaml"
    path.write_text("- display_name\n- entity_id\n", encoding="utf-8")
    with pytest.raises(PolicyError, match="expected a mapping of settings"):
        load_upstream(path)
