"""``servicekonto testing …``: the same services as the API, from the command line, and never
in production."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask

from idp.cli import main
from sp_client.demo import DEMO_PASSWORD
from tests.conftest import Browser, app_with, log_in
from tests.integration.consent.conftest import DUEREN, agree, citizen_id
from tests.integration.testing.test_api_access import PRODUCTION


def run(app: Flask, *args: str) -> Any:
    return app.test_cli_runner().invoke(main, args=list(args))


def test_a_citizen_is_created_and_deleted_from_the_command_line(app: Flask,
                                                                browser: Browser) -> None:
    created = run(app, "testing", "citizen", "create", "--given-name", "Max",
                  "--trust-level", "STORK-QAA-Level-2")
    values = dict(line.split(": ", 1) for line in created.output.splitlines())

    assert created.exit_code == 0, created.output
    assert values["trust_level"] == "STORK-QAA-Level-2"
    assert log_in(browser, values["username"], values["password"]).status_code == 302
    deleted = run(app, "testing", "citizen", "delete", values["username"])
    assert deleted.exit_code == 0 and "gelöscht" in deleted.output
    assert log_in(browser, values["username"], values["password"]).status_code == 401


def test_refusals_of_the_command_line_are_messages_with_exit_code_one(app: Flask) -> None:
    run(app, "testing", "citizen", "create", "--persona", "max")

    taken = run(app, "testing", "citizen", "create", "--persona", "max")
    refused = run(app, "testing", "citizen", "create", "--password", "kurz")
    unknown = run(app, "testing", "citizen", "delete", "Niemand")

    assert taken.exit_code == refused.exit_code == unknown.exit_code == 1
    assert "Den Benutzernamen MaxM gibt es schon." in taken.output
    assert "password: Das Passwort muss mindestens 8 Zeichen lang sein." in refused.output
    assert "Es gibt kein Konto mit dem Benutzernamen Niemand." in unknown.output


def test_the_mails_of_an_address_are_listed_with_their_links(app: Flask) -> None:
    run(app, "testing", "citizen", "create", "--persona", "lieschen")

    listed = run(app, "testing", "mails", "lieschen.mueller@example.org")
    as_json = run(app, "testing", "mails", "lieschen.mueller@example.org", "--json")

    assert "wait" in listed.output and "Bitte aktivieren Sie Ihr Konto" in listed.output
    assert "    http://localhost/aktivieren/" in listed.output
    assert '"status": "waiting"' in as_json.output


def test_the_clock_is_set_forward_and_back_read_and_reset(app: Flask) -> None:
    forward = run(app, "testing", "clock", "set", "3600")
    back = run(app, "testing", "clock", "set", "-7200")
    read = run(app, "testing", "clock", "get")
    reset = run(app, "testing", "clock", "reset")
    refused = run(app, "testing", "clock", "set", "999999999999")

    assert forward.output.startswith("Verschiebung: 3600 s; Zeit des IdP: ")
    assert back.exit_code == 0 and read.output.startswith("Verschiebung: -7200 s")
    assert reset.output.startswith("Verschiebung: 0 s")
    assert refused.exit_code == 1 and "zehn Jahre" in refused.output


def test_consents_unlock_and_sessions_from_the_command_line(app: Flask, browser: Browser) -> None:
    run(app, "persona", "load", "otto")
    assert log_in(browser, "OttoN", DEMO_PASSWORD).status_code == 401

    unlocked = run(app, "testing", "unlock", "OttoN")
    assert log_in(browser, "OttoN", DEMO_PASSWORD).status_code == 302
    agree(app, citizen_id(app, "otton"), DUEREN)
    revoked = run(app, "testing", "consents", "reset", "OttoN")
    ended = run(app, "testing", "sessions", "end", "OttoN")

    assert "Anmeldeverzögerung für OttoN aufgehoben." in unlocked.output
    assert "1 Zustimmung(en) von OttoN widerrufen." in revoked.output
    assert "1 Sitzung(en) von OttoN beendet." in ended.output
    assert browser.get("/konto").status_code == 302


@pytest.mark.parametrize("command", [["testing", "clock", "get"], ["persona", "list"],
                                     ["persona", "load"], ["testing", "unlock", "ErikaM"]])
def test_the_workbench_commands_refuse_a_production_idp(settings: dict[str, Any],
                                                        command: list[str]) -> None:
    with app_with(settings, **PRODUCTION) as production:
        result = run(production, *command)
    assert result.exit_code == 1
    assert "nur im Entwicklungsmodus (IDP_ENV=development)" in result.output
