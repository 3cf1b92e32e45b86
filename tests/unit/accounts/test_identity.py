"""What citizens type is normalised before it is checked or stored."""

from __future__ import annotations

import pytest

from idp.accounts.identity import (
    InvalidInput,
    email_key,
    normalise_email,
    normalise_name,
    normalise_username,
    username_key,
)


def test_usernames_differing_only_by_case_or_width_share_one_key() -> None:
    keys = {username_key(normalise_username(name)) for name in ("Max", "max", "ＭＡＸ", "Ｍａｘ")}
    assert keys == {"max"}


def test_a_full_width_username_is_stored_in_its_plain_form() -> None:
    assert normalise_username("Ｍａｘ") == "Max"


@pytest.mark.parametrize("bad", ["ab", "x" * 65, "mit leerzeichen", "evil\nname", "nul\x00",
                                 "zero\u200bwidth", "semi;colon"])
def test_unusable_usernames_are_refused(bad: str) -> None:
    with pytest.raises(InvalidInput):
        normalise_username(bad)


def test_names_are_composed_and_trimmed() -> None:
    assert normalise_name("  Jose\u0301   Müller ", "Vorname") == "José Müller"


@pytest.mark.parametrize("bad", ["Erika\r\nBcc: x@evil.example", "Eri\x00ka", "\ufffd", "12345"])
def test_names_with_control_characters_or_without_letters_are_refused(bad: str) -> None:
    with pytest.raises(InvalidInput):
        normalise_name(bad, "Vorname")


def test_a_missing_required_name_is_named_in_the_message() -> None:
    with pytest.raises(InvalidInput, match="Nachname"):
        normalise_name("   ", "Nachname")


def test_e_mail_addresses_are_validated_and_their_domain_lower_cased() -> None:
    assert normalise_email(" Erika@Example.ORG ") == "Erika@example.org"
    assert email_key("Erika@example.org") == email_key("erika@EXAMPLE.org")


@pytest.mark.parametrize("bad", ["kein-at-zeichen", "a@b", "x@example.org\r\nBcc: y@evil.example",
                                 "a b@example.org", ""])
def test_invalid_e_mail_addresses_are_refused(bad: str) -> None:
    with pytest.raises(InvalidInput):
        normalise_email(bad)
