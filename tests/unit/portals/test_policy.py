"""Portal files (policies/portals/*.yaml): what they mean, and clear errors when they are wrong."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from idp.config import PROJECT_ROOT, ConfigError, PolicyError
from idp.portals.policy import BUNDID_ATTRIBUTES, load_portal_policies, load_portal_policy
from tests.unit.portals.support import write_policy


def test_a_portal_file_with_only_the_required_settings_gets_the_safe_defaults(
        tmp_path: Path) -> None:
    policy = load_portal_policy(write_policy(tmp_path, "musterstadt"))
    assert policy.name == "musterstadt"
    assert policy.display_name == "Bürgerportal Musterstadt"
    assert policy.metadata == str((tmp_path / "portals" / "portal.xml").resolve())
    assert policy.attributes == ("givenName", "surname", "mail")
    assert policy.required_attributes == ()
    assert policy.minimum_trust_level == 1
    assert policy.name_id_format == "transient"
    assert (policy.sign_response, policy.sign_assertion, policy.encrypt_assertion) == (
        True, True, False)
    assert policy.consent_required and policy.enabled
    assert not policy.idp_initiated_allowed
    assert policy.want_authn_requests_signed
    assert not policy.eidas_loa
    assert policy.metadata_certificate is None
    assert policy.metadata_refresh_minutes == 60


def test_attributes_are_released_under_their_bundid_names(tmp_path: Path) -> None:
    policy = load_portal_policy(write_policy(tmp_path, "musterstadt",
                                             attributes=["bPK2", "gender"]))
    assert policy.attribute_names == {"bPK2": "urn:oid:1.3.6.1.4.1.25484.494450.3",
                                      "gender": "urn:oid:1.3.6.1.4.1.33592.1.3.5"}


def test_every_setting_can_be_chosen(tmp_path: Path) -> None:
    (tmp_path / "portals").mkdir()
    (tmp_path / "portals" / "signer.pem").write_text("not checked here", encoding="utf-8")
    policy = load_portal_policy(write_policy(
        tmp_path, "amt-2", metadata="https://portal.example/md",
        metadata_certificate="signer.pem", metadata_refresh_minutes=15,
        attributes=list(BUNDID_ATTRIBUTES), required_attributes=["bPK2"],
        minimum_trust_level="STORK-QAA-Level-3", name_id_format="persistent",
        sign_response=False, sign_assertion=True, encrypt_assertion=True,
        consent_required=False, idp_initiated_allowed=True, want_authn_requests_signed=True,
        eidas_loa=True, enabled=False))
    assert policy.metadata == "https://portal.example/md" and policy.metadata_is_url
    assert policy.metadata_certificate == (tmp_path / "portals" / "signer.pem").resolve()
    assert policy.metadata_refresh_minutes == 15
    assert policy.minimum_trust_level == 3
    assert policy.minimum_trust_class_ref == "STORK-QAA-Level-3"
    assert policy.name_id_format == "persistent"
    assert not policy.sign_response and policy.encrypt_assertion
    assert policy.idp_initiated_allowed and policy.want_authn_requests_signed
    assert policy.eidas_loa and not policy.enabled


WRONG_SETTINGS: list[tuple[str, Any, str]] = [
    ("display_name", "", "must be a non-empty text"),
    ("display_name", 42, "must be a non-empty text"),
    ("entity_id", ["a"], "must be a non-empty text"),
    ("metadata", "ftp://portal.example/md", "file path or an http(s) URL"),
    ("metadata_certificate", "missing.pem", "does not exist"),
    ("metadata_refresh_minutes", 0, "≥ 1"),
    ("metadata_refresh_minutes", "hourly", "whole number"),
    ("attributes", "givenName", "must be a list"),
    ("attributes", ["givenName", "shoeSize"], "unknown attribute(s) shoeSize"),
    ("attributes", ["mail", "mail"], "lists an attribute twice"),
    ("required_attributes", ["bPK2"], "bPK2 not in attributes"),
    ("minimum_trust_level", "STORK-QAA-Level-5", "must be one of STORK-QAA-Level-1"),
    ("minimum_trust_level", 2, "must be one of"),
    ("name_id_format", "email", "transient or persistent"),
    ("sign_response", "yes", "true or false"),
    ("sign_assertion", 1, "true or false"),
    ("encrypt_assertion", None, "true or false"),
    ("consent_required", "false", "true or false"),
    ("idp_initiated_allowed", "no", "true or false"),
    ("want_authn_requests_signed", 0, "true or false"),
    ("eidas_loa", "low", "true or false"),
    ("enabled", "ja", "true or false"),
]


@pytest.mark.parametrize(("key", "value", "message"), WRONG_SETTINGS)
def test_a_wrong_setting_is_reported_with_the_file_and_the_key(
        tmp_path: Path, key: str, value: Any, message: str) -> None:
    path = write_policy(tmp_path, "musterstadt")
    raw = yaml.safe_load(path.read_text(encoding="utf-8")) | {key: value}
    path.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    with pytest.raises(PolicyError) as caught:
        load_portal_policy(path)
    assert str(caught.value).startswith(f"{path}: {key}: ")
    assert message in str(caught.value)


def test_refresh_minutes_for_file_metadata_is_refused_as_meaningless(tmp_path: Path) -> None:
    path = write_policy(tmp_path, "musterstadt", metadata_refresh_minutes=30)
    with pytest.raises(PolicyError, match="metadata_refresh_minutes: only applies to metadata "
                                          "from a URL"):
        load_portal_policy(path)


def test_missing_settings_are_all_named(tmp_path: Path) -> None:
    path = write_policy(tmp_path, "musterstadt", entity_id=None, attributes=None)
    with pytest.raises(PolicyError, match=r"missing settings: entity_id, attributes$"):
        load_portal_policy(path)


def test_a_misspelt_setting_is_named_rather_than_ignored(tmp_path: Path) -> None:
    path = write_policy(tmp_path, "musterstadt", consent_requird=False)
    with pytest.raises(PolicyError, match=r"unknown settings: consent_requird"):
        load_portal_policy(path)


def test_a_file_that_is_not_yaml_names_the_file(tmp_path: Path) -> None:
    path = write_policy(tmp_path, "musterstadt")
    path.write_text("display_name: [unclosed\n", encoding="utf-8")
    with pytest.raises(PolicyError, match=f"^{re.escape(str(path))}: not valid YAML"):
        load_portal_policy(path)


def test_a_file_that_is_a_list_instead_of_settings_is_refused(tmp_path: Path) -> None:
    path = write_policy(tmp_path, "musterstadt")
    path.write_text("- display_name\n", encoding="utf-8")
    with pytest.raises(PolicyError, match="expected a mapping of settings"):
        load_portal_policy(path)


def test_a_file_name_that_cannot_be_a_portal_name_is_refused(tmp_path: Path) -> None:
    path = write_policy(tmp_path, "Bürgerportal Düren")
    with pytest.raises(PolicyError, match="not a valid portal name"):
        load_portal_policy(path)


def test_two_files_for_the_same_entity_id_stop_the_start(tmp_path: Path) -> None:
    write_policy(tmp_path, "alpha")
    write_policy(tmp_path, "beta")
    with pytest.raises(PolicyError, match=r"beta.yaml: entity_id .* is also used by .*alpha"):
        load_portal_policies(tmp_path)


def test_a_yml_file_is_not_silently_skipped(tmp_path: Path) -> None:
    write_policy(tmp_path, "alpha").rename(tmp_path / "portals" / "alpha.yml")
    with pytest.raises(PolicyError, match=r"alpha.yml: portal files must end in .yaml"):
        load_portal_policies(tmp_path)


def test_no_portal_folder_means_no_portals(tmp_path: Path) -> None:
    assert load_portal_policies(tmp_path) == []


def test_a_broken_portal_file_is_a_configuration_error_that_stops_the_start(
        tmp_path: Path) -> None:
    write_policy(tmp_path, "alpha", attributes=["Vorname"])
    with pytest.raises(ConfigError, match=r"alpha\.yaml: attributes: unknown attribute"):
        load_portal_policies(tmp_path)


def test_the_shipped_demo_portals_dueren_and_mags_load() -> None:
    policies = {policy.name: policy for policy in load_portal_policies(PROJECT_ROOT / "policies")}
    dueren, mags = policies["dueren"], policies["mags"]
    assert dueren.display_name == "Bürgerportal der Stadt Düren"
    assert dueren.entity_id == dueren.metadata == "http://127.0.0.1:5001/saml/metadata"
    assert dueren.attributes == ("givenName", "surname", "mail", "gender", "bPK2")
    assert dueren.name_id_format == "persistent"
    assert dueren.minimum_trust_level == 1
    assert mags.display_name == "mags Bürgerportal"
    assert mags.entity_id == mags.metadata == "http://127.0.0.1:5002/saml/metadata"
    assert mags.attributes == ("givenName", "surname", "birthName", "mail", "bPK2")
    assert mags.name_id_format == "transient"
    assert mags.minimum_trust_level == 1
    assert mags.consent_required and dueren.consent_required
