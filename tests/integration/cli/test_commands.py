"""The ``servicekonto`` command line, as an operator uses it."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import create_engine

from idp import create_app
from idp.cli import main
from idp.config import ConfigError
from idp.schema import SchemaOutdated, check_current, upgrade
from tests.conftest import GOOD_PASSWORD, Browser, log_in, register


def _create(app: Flask, username: str = "Amtsleitung", email: str = "amt@example.org") -> Any:
    return app.test_cli_runner().invoke(main, args=[
        "user", "create", "--username", username, "--email", email, "--given-name", "Hanna",
        "--surname", "Amt", "--salutation", "frau", "--password", GOOD_PASSWORD])


def test_an_operator_creates_an_active_account_that_can_log_in(app: Flask) -> None:
    result = _create(app)
    assert result.exit_code == 0, result.output
    assert "angelegt und aktiviert" in result.output
    assert log_in(Browser(app.test_client()), "Amtsleitung").status_code == 302


def test_user_create_applies_the_password_policy(app: Flask) -> None:
    result = app.test_cli_runner().invoke(main, args=[
        "user", "create", "--username", "Amtsleitung", "--email", "amt@example.org",
        "--given-name", "Hanna", "--surname", "Amt", "--password", "kurz"])
    assert result.exit_code != 0
    assert "mindestens 8 Zeichen" in result.output


def test_user_list_shows_accounts_and_their_status(app: Flask, browser: Browser) -> None:
    _create(app)
    register(browser)
    output = app.test_cli_runner().invoke(main, args=["user", "list"]).output
    assert "Amtsleitung\tamt@example.org\tactive" in output
    assert "ErikaM\terika.mustermann@example.org\tpending" in output


def test_user_activate_activates_a_pending_registration(app: Flask, browser: Browser) -> None:
    register(browser)
    result = app.test_cli_runner().invoke(main, args=["user", "activate", "ErikaM"])
    assert result.exit_code == 0
    assert log_in(browser).status_code == 302


def test_user_unlock_lifts_the_login_delay(app: Flask, citizen: Browser) -> None:
    for _ in range(6):
        log_in(citizen, password="Falsch-123 x")
    assert log_in(citizen).status_code == 401
    assert app.test_cli_runner().invoke(main, args=["user", "unlock", "ErikaM"]).exit_code == 0
    assert log_in(citizen).status_code == 302


def test_user_delete_removes_the_account(app: Flask, citizen: Browser) -> None:
    result = app.test_cli_runner().invoke(main, args=["user", "delete", "ErikaM", "--yes"])
    assert result.exit_code == 0
    assert log_in(citizen).status_code == 401
    listing = app.test_cli_runner().invoke(main, args=["user", "list"]).output
    assert "ErikaM" not in listing


def test_commands_on_an_unknown_user_fail_clearly(app: Flask) -> None:
    result = app.test_cli_runner().invoke(main, args=["user", "unlock", "Niemand"])
    assert result.exit_code != 0
    assert "Kein Konto mit dem Benutzernamen 'Niemand'" in result.output


def test_the_app_refuses_to_start_on_a_schema_that_is_behind(settings: dict[str, Any],
                                                              tmp_path: Path) -> None:
    settings["database_url"] = f"sqlite:///{tmp_path / 'empty.sqlite3'}"
    with pytest.raises(SchemaOutdated, match="servicekonto db upgrade"):
        create_app(test_config=settings, env={})


def test_the_app_refuses_to_start_with_a_broken_password_policy(settings: dict[str, Any],
                                                                 policy_dir: Path) -> None:
    (policy_dir / "password.yaml").write_text("min_length: [8", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"password\.yaml: not valid YAML"):
        create_app(test_config=settings, env={})


def test_production_without_a_secret_key_is_refused() -> None:
    with pytest.raises(ConfigError, match="IDP_SECRET_KEY"):
        create_app(env={"IDP_ENV": "production", "IDP_BASE_URL": "https://konto.example.org",
                        "IDP_MAIL_SERVER": "mail.example.org"})


def test_the_database_url_may_come_from_a_file(tmp_path: Path) -> None:
    from idp.config import load_config

    url_file = tmp_path / "database_url"
    url_file.write_text(f"sqlite:///{tmp_path / 'from-file.sqlite3'}\n", encoding="utf-8")
    config = load_config({"IDP_ENV": "development", "IDP_DATABASE_URL_FILE": str(url_file),
                          "IDP_INSTANCE_PATH": str(tmp_path)})
    assert config.database_url == f"sqlite:///{tmp_path / 'from-file.sqlite3'}"
    with pytest.raises(ConfigError, match="IDP_DATABASE_URL_FILE: cannot read"):
        load_config({"IDP_DATABASE_URL_FILE": str(tmp_path / "nowhere")})


def test_a_moved_clock_is_refused_in_production() -> None:
    with pytest.raises(ConfigError, match="IDP_CLOCK_OFFSET_HOURS is for development only"):
        create_app(env={"IDP_ENV": "production", "IDP_BASE_URL": "https://konto.example.org",
                        "IDP_MAIL_SERVER": "mail.example.org", "IDP_SECRET_KEY": "s" * 40,
                        "IDP_CLOCK_OFFSET_HOURS": "25"})


def _servicekonto(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-c", "from idp.cli import main; main()", *args]
    return subprocess.run(command, env=os.environ | env, capture_output=True, text=True,
                          timeout=120, check=False)


def test_db_upgrade_creates_the_schema_and_then_the_app_starts(tmp_path: Path) -> None:
    env = {"IDP_ENV": "development", "IDP_INSTANCE_PATH": str(tmp_path / "instance"),
           "IDP_DATABASE_URL": f"sqlite:///{tmp_path / 'fresh.sqlite3'}"}
    before = _servicekonto("user", "list", env=env)
    assert before.returncode == 2
    assert "servicekonto db upgrade" in before.stderr
    assert "Traceback" not in before.stderr
    upgrade = _servicekonto("db", "upgrade", env=env)
    assert upgrade.returncode == 0, upgrade.stderr
    assert "Datenbankschema ist auf Stand" in upgrade.stdout
    assert _servicekonto("user", "list", env=env).returncode == 0


def test_the_start_up_check_of_the_schema_writes_no_log_line(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    url = f"sqlite:///{tmp_path / 'checked.sqlite3'}"
    upgrade(url)
    engine = create_engine(url)
    caplog.set_level(logging.INFO)
    caplog.clear()  # the migration above may log (when an earlier test set INFO); it is not checked

    check_current(engine)  # each worker does this when it starts

    assert [record.getMessage() for record in caplog.records] == []
    engine.dispose()
