"""The password policy of policies/password.yaml, as the registration form applies it."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from idp.accounts.passwords import PasswordHasher, PasswordPolicy
from idp.config import PROJECT_ROOT, Argon2Parameters, PolicyError

POLICY = PasswordPolicy.load(PROJECT_ROOT / "policies" / "password.yaml")


def test_a_password_meeting_every_rule_is_accepted() -> None:
    assert POLICY.problems("Kräftig-Grün 42") == []


@pytest.mark.parametrize(("password", "rule"), [
    ("Ab1-xyz", "mindestens 8 Zeichen"),
    ("12345678-A", "mindestens 2 Buchstaben"),
    ("kleinbuchstaben1-", "Großbuchstaben"),
    ("GROSSBUCHSTABEN1-", "Kleinbuchstaben"),
    ("OhneZiffern-hier", "Ziffer"),
    ("OhneSonderzeichen1", "Sonderzeichen"),
])
def test_each_unmet_rule_is_named(password: str, rule: str) -> None:
    problems = POLICY.problems(password)
    assert any(rule in problem for problem in problems), problems


def test_every_unmet_rule_is_named_at_once() -> None:
    assert len(POLICY.problems("abc")) >= 4


def test_an_empty_password_is_asked_for_once() -> None:
    assert POLICY.problems("") == ["Bitte geben Sie ein Passwort an."]


def test_a_single_required_character_is_named_in_words() -> None:
    problems = POLICY.problems("abcdefgh")
    assert "Das Passwort muss mindestens einen Großbuchstaben enthalten." in problems
    assert "Das Passwort muss mindestens eine Ziffer enthalten." in problems
    assert "Das Passwort muss mindestens ein Sonderzeichen enthalten." in problems
    assert not any("(n)" in problem for problem in problems)


def test_several_required_characters_are_named_in_the_plural() -> None:
    strict = replace(POLICY, min_letters=1, min_digits=2, min_special=3, min_uppercase=2)
    problems = strict.problems("Abcdefgh1-")
    assert "Das Passwort muss mindestens 2 Ziffern enthalten." in problems
    assert "Das Passwort muss mindestens 3 Sonderzeichen enthalten." in problems
    assert "Das Passwort muss mindestens 2 Großbuchstaben enthalten." in problems


@pytest.mark.parametrize("special", list("-+_[]()$§!?%&/*,.;:<>|@ "))
def test_each_special_character_of_the_original_counts(special: str) -> None:
    assert POLICY.problems(f"Sicher9{special}Wort") == []


def test_characters_outside_the_allowed_set_are_refused() -> None:
    assert any("nicht erlaubte" in p for p in POLICY.problems("Sicher9-Wort#"))


@pytest.mark.parametrize("password", ["Password1!", "Qwerty123!", "Passw0rd-", "Dragon99!!"])
def test_common_passwords_are_refused_even_when_dressed_up(password: str) -> None:
    assert any("zu bekannt" in p for p in POLICY.problems(password))


def test_a_password_containing_the_username_is_refused() -> None:
    problems = POLICY.problems("xErikaM-2026", username="ErikaM")
    assert any("Benutzernamen" in p for p in problems)


def test_long_passwords_are_accepted_and_never_truncated() -> None:
    long_password = "Ein langer Satz als Passwort, 128 Zeichen lang! " * 3
    assert len(long_password) > 128
    assert POLICY.problems(long_password) == []
    hasher = PasswordHasher(Argon2Parameters(time_cost=1, memory_cost_kib=1024, parallelism=1))
    stored = hasher.hash(long_password)
    assert hasher.verify(stored, long_password)
    assert not hasher.verify(stored, long_password[:-1])


def test_the_same_password_in_another_unicode_form_still_matches() -> None:
    hasher = PasswordHasher(Argon2Parameters(time_cost=1, memory_cost_kib=1024, parallelism=1))
    composed, decomposed = "Grün-Tür 12", "Gru\u0308n-Tu\u0308r 12"
    assert hasher.verify(hasher.hash(composed), decomposed)


def test_an_unknown_user_is_never_verified() -> None:
    hasher = PasswordHasher(Argon2Parameters(time_cost=1, memory_cost_kib=1024, parallelism=1))
    assert not hasher.verify(None, "no account has this password")


def test_the_rules_are_listed_as_on_the_original_form() -> None:
    rules = POLICY.rules()
    assert rules[0] == "mindestens 8 Zeichen"
    assert "davon mindestens 1 Großbuchstabe(n)" in rules
    assert any(rule.endswith("und Leerzeichen)") for rule in rules)


def test_the_list_names_every_rule_a_password_can_break() -> None:
    rules = POLICY.rules()
    assert "darf den Benutzernamen nicht enthalten" in rules
    assert any("leicht zu erratendes Passwort" in rule for rule in rules)


def test_rules_switched_off_in_the_policy_are_not_listed() -> None:
    lenient = replace(POLICY, reject_common=False, reject_username=False)
    assert not any(rule.startswith("darf") for rule in lenient.rules())


@pytest.mark.parametrize(("content", "message"), [
    ("min_length: [1", "not valid YAML"),
    ("- a\n- b", "mapping"),
    ("min_length: 8", "missing rules"),
])
def test_a_broken_policy_file_is_reported_clearly(tmp_path: Path, content: str,
                                                  message: str) -> None:
    path = tmp_path / "password.yaml"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(PolicyError, match=message):
        PasswordPolicy.load(path)
