"""The persona files: the shipped set, the schema check that names every problem, and loading
them as accounts (idempotent) from the command line."""

from __future__ import annotations

from pathlib import Path

import pytest
from flask import Flask
from sqlalchemy import func, select

from idp.accounts.identity import username_key
from idp.accounts.models import AccountStatus, Citizen
from idp.accounts.passwords import PasswordPolicy
from idp.cli import main
from idp.config import PROJECT_ROOT
from idp.db import db
from idp.mail.transport import bounces
from idp.testing.models import EidTestCard
from idp.testing.personas import PersonaError, load_personas
from sp_client.demo import DEMO_PASSWORD
from tests.conftest import Browser, log_in

POLICIES = PROJECT_ROOT / "policies"


@pytest.fixture(scope="module")
def policy() -> PasswordPolicy:
    return PasswordPolicy.load(POLICIES / "password.yaml")


def test_the_shipped_personas_cover_what_qa_needs(policy: PasswordPolicy) -> None:
    personas = {persona.name: persona.spec for persona in load_personas(POLICIES, policy)}
    specs = list(personas.values())

    assert {spec.trust_level for spec in specs} == {1, 2, 3, 4}
    assert any(spec.birth_name for spec in specs)
    assert any(set("äöüß") & set(spec.surname) and "ß" in spec.username for spec in specs)
    assert [spec.username for spec in specs if not spec.activated] == ["LieschenM"]
    assert [spec.username for spec in specs if spec.locked] == ["OttoN"]
    assert [spec.username for spec in specs if bounces(spec.email)] == ["MartinaM"]
    cards = {spec.card.document_type for spec in specs if spec.card}
    assert cards == {"ID", "AR", "UB"}
    assert all(spec.card for spec in specs if spec.trust_level >= 3)
    # A Doktorgrad to release as personalTitle, and a PIN letter for every valid card.
    assert personas["erika"].card is not None and personas["erika"].card.doctoral_degree == "Dr."
    assert all(spec.card.puk for spec in specs if spec.card)
    # The demo's accounts keep the password the end-to-end tests and the README use.
    assert {personas[name].password for name in ("erika", "max", "juergen")} == {DEMO_PASSWORD}


def test_a_broken_persona_file_names_every_problem_with_file_and_key(
        tmp_path: Path, policy: PasswordPolicy) -> None:
    folder = tmp_path / "personas"
    folder.mkdir()
    (folder / "kaputt.yaml").write_text(
        "username: x\npassword: kurz\nsalutation: madame\ngiven_name: Erika\n"
        "email: keine-adresse\ntrust_level: STORK-QAA-Level-3\nactivated: nein\n"
        "hobby: Angeln\neid:\n  document_type: XX\n  date_of_birth: 2999-01-01\n"
        "  pin: 123456\n  puk: '12345'\n  address: {street: Musterweg 1, country: Deutschland}\n",
        encoding="utf-8")
    (folder / "zwilling.yaml").write_text(
        (POLICIES / "personas" / "max.yaml").read_text(encoding="utf-8"), encoding="utf-8")
    (folder / "max.yaml").write_text(
        (POLICIES / "personas" / "max.yaml").read_text(encoding="utf-8"), encoding="utf-8")
    (folder / "alt.yml").write_text("username: Alt\n", encoding="utf-8")

    with pytest.raises(PersonaError) as raised:
        load_personas(tmp_path, policy)

    lines = str(raised.value).splitlines()
    broken = f"{folder / 'kaputt.yaml'}: "
    for expected in ("surname: missing", "hobby: unknown key", "username: refused by the "
                     "registration form: Der Benutzername muss 3 bis 64 Zeichen lang sein.",
                     "password: refused by the password policy: ", "salutation: must be one of",
                     "email: refused by the registration form", "activated: must be true or false",
                     "eid.document_type: must be one of ID, AR, UB",
                     "eid.date_of_birth: must be a date in the past",
                     "eid.pin: must be six digits in quotes", "eid.place_of_birth: missing",
                     "eid.puk: must be ten digits in quotes",
                     "eid.pseudonym: missing", "eid.nationality: missing",
                     "eid.address.postal_code: missing", "eid.address.locality: missing",
                     "eid.address.country: must be an ISO 3166-1 alpha-2 code"):
        assert any(line.startswith(broken + expected) for line in lines), expected
    assert f"{folder / 'zwilling.yaml'}: username: also used by {folder / 'max.yaml'}" in lines
    assert f"{folder / 'zwilling.yaml'}: email: also used by {folder / 'max.yaml'}" in lines
    assert f"{folder / 'alt.yml'}: persona files must end in .yaml" in lines


def test_eid_data_belong_to_levels_three_and_four_only(tmp_path: Path,
                                                       policy: PasswordPolicy) -> None:
    folder = tmp_path / "personas"
    folder.mkdir()
    erika = (POLICIES / "personas" / "erika.yaml").read_text(encoding="utf-8")
    (folder / "erika.yaml").write_text(erika.replace("STORK-QAA-Level-4", "STORK-QAA-Level-1"),
                                       encoding="utf-8")
    (folder / "max.yaml").write_text(
        (POLICIES / "personas" / "max.yaml").read_text(encoding="utf-8")
        .replace("STORK-QAA-Level-1", "STORK-QAA-Level-3"), encoding="utf-8")

    with pytest.raises(PersonaError) as raised:
        load_personas(tmp_path, policy)

    assert str(raised.value).splitlines() == [
        f"{folder / 'erika.yaml'}: eid: only for STORK-QAA-Level-3 and STORK-QAA-Level-4",
        f"{folder / 'max.yaml'}: eid: missing: STORK-QAA-Level-3 needs the data of an eID card"]


def test_asking_for_a_persona_that_does_not_exist_names_the_known_ones(
        policy: PasswordPolicy) -> None:
    with pytest.raises(PersonaError, match="no persona named niemand; known are erika, "):
        load_personas(POLICIES, policy, ["erika", "niemand"])


def counts(app: Flask) -> tuple[int, int, int]:
    with app.app_context():
        return (db.session.scalar(select(func.count()).select_from(Citizen)) or 0,
                db.session.scalar(select(func.count()).select_from(EidTestCard)) or 0,
                db.session.scalar(select(func.count()).select_from(Citizen).where(
                    Citizen.status == AccountStatus.ACTIVE)) or 0)


def test_persona_load_makes_every_persona_an_account_and_loading_again_changes_nothing(
        app: Flask) -> None:
    runner = app.test_cli_runner()

    first = runner.invoke(main, args=["persona", "load"])
    after_first = counts(app)
    second = runner.invoke(main, args=["persona", "load"])

    assert first.exit_code == 0, first.output
    assert "erika: ErikaM / Servicekonto-Demo 2026! (STORK-QAA-Level-4): angelegt" in first.output
    assert "nicht aktiviert" in first.output and "gesperrt" in first.output
    assert after_first == (10, 4, 9) == counts(app)
    assert second.exit_code == 0
    assert second.output.count("schon vorhanden, unverändert") == 10


def test_persona_load_replace_makes_a_changed_account_as_its_file_says_again(
        app: Flask, browser: Browser) -> None:
    runner = app.test_cli_runner()
    runner.invoke(main, args=["persona", "load", "max"])
    with app.app_context():
        max_ = db.session.scalar(select(Citizen).where(Citizen.username_key == "maxm"))
        assert max_ is not None
        max_.surname = "Geändert"
        db.session.commit()

    again = runner.invoke(main, args=["persona", "load", "max", "--replace"])

    assert "max: MaxM" in again.output and "gelöscht und neu angelegt" in again.output
    assert log_in(browser, "MaxM", DEMO_PASSWORD).status_code == 302
    assert "Geändert" not in browser.get("/konto").get_data(as_text=True)


def test_the_persona_with_umlauts_logs_in_with_its_username_as_written(
        app: Flask, browser: Browser) -> None:
    app.test_cli_runner().invoke(main, args=["persona", "load", "joerg"])
    with app.app_context():
        joerg = db.session.scalar(select(Citizen).where(
            Citizen.username_key == username_key("Jörg.Größmann")))
        assert joerg is not None and joerg.username_key == "jörg.grössmann"

    assert log_in(browser, "Jörg.Größmann", DEMO_PASSWORD).status_code == 302
    assert "Größmann-Weiß" in browser.get("/konto").get_data(as_text=True)


def test_a_persona_whose_address_another_account_holds_fails_alone(app: Flask) -> None:
    runner = app.test_cli_runner()
    runner.invoke(main, args=["testing", "citizen", "create", "--username", "Fremd",
                        "--email", "max.mustermann@example.org"])

    result = runner.invoke(main, args=["persona", "load", "max", "erika"])

    assert result.exit_code == 1
    assert "max: MaxM" in result.output and "nicht angelegt" in result.output
    assert "(Fremd)" in result.output
    assert "erika: ErikaM / Servicekonto-Demo 2026! (STORK-QAA-Level-4): angelegt" in result.output


def test_persona_list_shows_name_username_level_and_purpose(app: Flask) -> None:
    result = app.test_cli_runner().invoke(main, args=["persona", "list"])
    assert result.exit_code == 0
    assert "otto\tOttoN\tSTORK-QAA-Level-1\tdurch die Anmeldeverzögerung gesperrt" in result.output
