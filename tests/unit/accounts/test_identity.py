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
    assert normalise_name("  Jose\u0301   Müller ", "given_name") == "José Müller"


@pytest.mark.parametrize("bad", ["Erika\r\nBcc: x@evil.example", "Eri\x00ka", "\ufffd", "12345"])
def test_names_with_control_characters_or_without_letters_are_refused(bad: str) -> None:
    with pytest.raises(InvalidInput):
        normalise_name(bad, "given_name")


def test_a_missing_required_name_is_asked_for_in_good_german() -> None:
    with pytest.raises(InvalidInput) as refused:
        normalise_name("   ", "surname")
    assert str(refused.value) == "Bitte geben Sie Ihren Nachnamen an."


@pytest.mark.parametrize(("field", "value", "message"), [
    ("given_name", "", "Bitte geben Sie Ihren Vornamen an."),
    ("surname", "", "Bitte geben Sie Ihren Nachnamen an."),
    ("given_name", "Eri\x00ka", "Der Vorname enthält ungültige Zeichen."),
    ("surname", "12345", "Der Nachname muss Buchstaben enthalten."),
    ("birth_name", "x" * 101, "Der Geburtsname darf höchstens 100 Zeichen lang sein."),
    ("birth_name", "Gab\x00ler", "Der Geburtsname enthält ungültige Zeichen."),
])
def test_each_name_field_is_named_with_its_article(field: str, value: str, message: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        normalise_name(value, field)
    assert str(refused.value) == message


def test_the_birth_name_may_stay_empty() -> None:
    assert normalise_name("  ", "birth_name") == ""


def test_e_mail_addresses_are_validated_and_their_domain_lower_cased() -> None:
    assert normalise_email(" Erika@Example.ORG ") == "Erika@example.org"
    assert email_key("Erika@example.org") == email_key("erika@EXAMPLE.org")


@pytest.mark.parametrize("bad", ["kein-at-zeichen", "a@b", "x@example.org\r\nBcc: y@evil.example",
                                 "a b@example.org", ""])
def test_invalid_e_mail_addresses_are_refused(bad: str) -> None:
    with pytest.raises(InvalidInput):
        normalise_email(bad)
