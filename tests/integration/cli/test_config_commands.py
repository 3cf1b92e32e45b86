"""``servicekonto config check`` and ``config show``, ``--env-file``, ``--version``, ``db
current``/``history`` and ``metadata``: the commands an operator types to find out what the IdP
would do, none of them needing a running IdP."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner, Result
from flask import Flask

from idp import schema
from idp.cli import main
from idp.config import OTHER_TOOLS, PROJECT_ROOT
from idp.config_cli import with_reference
from idp.saml.configuration import METADATA_PATH

# A production IdP whose database is nowhere: the config commands never connect to it.
PRODUCTION = {"IDP_BASE_URL": "https://konto.example.org", "IDP_SECRET_KEY": "s" * 40,
              "IDP_MAIL_SERVER": "mail.example.org",
              "IDP_DATABASE_URL": "postgresql+psycopg://idp:Datenbank-Geheimnis@127.0.0.1:1/idp"}


def servicekonto(*args: str, env: dict[str, str]) -> Result:
    """The command line in this process, with ``env`` as the only IDP_* settings."""
    unset = {name: None for name in os.environ
             if name.startswith("IDP_") and name not in OTHER_TOOLS}
    return CliRunner().invoke(main, list(args), env=unset | env)


def in_a_process(*args: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    """The installed console script, as an operator starts it."""
    clean = {name: value for name, value in os.environ.items() if not name.startswith("IDP_")}
    return subprocess.run([str(Path(sys.executable).parent / "servicekonto"), *args],
                          env=clean | env, cwd=cwd, capture_output=True, text=True, timeout=120,
                          check=False)


def keys(tmp_path: Path, signing_keys: tuple[Path, Path]) -> dict[str, str]:
    """The signing key, and an operator's policy folder: the password rules and no portal
    (the shipped one names the demo portals, over plain http)."""
    policies = tmp_path / "policies"
    (policies / "portals").mkdir(parents=True, exist_ok=True)
    shutil.copy(PROJECT_ROOT / "policies" / "password.yaml", policies / "password.yaml")
    return {"IDP_KEY_FILE": str(signing_keys[0]), "IDP_CERT_FILE": str(signing_keys[1]),
            "IDP_INSTANCE_PATH": str(tmp_path), "IDP_POLICY_DIR": str(policies)}


def test_config_check_says_ok_without_reaching_the_database(
        tmp_path: Path, signing_keys: tuple[Path, Path]) -> None:
    result = servicekonto("config", "check", env=PRODUCTION | keys(tmp_path, signing_keys))

    assert result.exit_code == 0, result.output
    assert result.output == "OK: Konfiguration in Ordnung (Produktionsmodus).\n"


def test_config_check_lists_every_problem_and_exits_with_1(tmp_path: Path) -> None:
    result = servicekonto("config", "check", env={
        "IDP_INSTANCE_PATH": str(tmp_path), "IDP_MAIL_SERVRE": "mail.example.org",
        "IDP_PROXY_COUNT": "zwei"})

    assert result.exit_code == 1
    assert "- IDP_MAIL_SERVRE: no such setting (did you mean IDP_MAIL_SERVER?)" in result.output
    assert "- IDP_PROXY_COUNT: expected a whole number, got 'zwei'" in result.output
    assert "- IDP_SECRET_KEY (or IDP_SECRET_KEY_FILE) is required in production" \
        in result.output
    assert "OK" not in result.output


def test_config_check_names_portal_and_upstream_files_the_start_would_refuse(
        tmp_path: Path, signing_keys: tuple[Path, Path]) -> None:
    settings = keys(tmp_path, signing_keys)
    policies = Path(settings["IDP_POLICY_DIR"])
    shutil.copy(PROJECT_ROOT / "policies" / "portals" / "dueren.yaml",
                policies / "portals" / "dueren.yaml")
    (policies / "upstreams").mkdir()
    (policies / "upstreams" / "kaputt.yaml").write_text(
        "display_name: Servicekonto Kaputt\naccept_unsigned: true\n", encoding="utf-8")

    result = servicekonto("config", "check", env=PRODUCTION | settings)

    assert result.exit_code == 1
    assert "portal dueren: metadata over plain http" in result.output
    assert "kaputt.yaml: accept_unsigned: unknown setting; unsigned assertions are always " \
        "refused" in result.output
    assert "kaputt.yaml: bpk2_prefix: missing" in result.output


def test_config_check_finds_a_signing_key_that_is_missing(tmp_path: Path) -> None:
    result = servicekonto("config", "check", env=PRODUCTION | {
        "IDP_INSTANCE_PATH": str(tmp_path)})

    assert result.exit_code == 1
    assert "signing key:" in result.output


def test_config_show_says_where_each_value_came_from_and_masks_secrets(
        tmp_path: Path, signing_keys: tuple[Path, Path]) -> None:
    password_file = tmp_path / "mail_password"
    password_file.write_text("Post-Geheimnis", encoding="utf-8")
    env = PRODUCTION | keys(tmp_path, signing_keys) | {
        "IDP_MAIL_USERNAME": "servicekonto", "IDP_MAIL_USE_TLS": "true",
        "IDP_MAIL_PASSWORD_FILE": str(password_file)}

    result = servicekonto("config", "show", env=env)

    assert result.exit_code == 0, result.output
    shown = {line.split()[0]: line.split()[1:] for line in result.output.splitlines()}
    assert shown["IDP_MAIL_SERVER"] == ["mail.example.org", "environment"]
    assert shown["IDP_MAIL_PORT"] == ["25", "default"]
    assert shown["IDP_MAIL_PASSWORD"] == ["****", "file", str(password_file)]
    assert shown["IDP_SECRET_KEY"] == ["****", "environment"]
    assert shown["IDP_DATABASE_URL"] == [
        "postgresql+psycopg://idp:****@127.0.0.1:1/idp", "environment"]
    assert shown["IDP_LOG_FORMAT"] == ["json", "default"]  # the effective value
    for secret in ("Post-Geheimnis", "Datenbank-Geheimnis", "s" * 40):
        assert secret not in result.output


def test_the_env_file_is_read_and_named_as_the_source(tmp_path: Path) -> None:
    env_file = tmp_path / "servicekonto.env"
    env_file.write_text("IDP_ENV=development\nIDP_MAIL_SERVER=mail.aus-der-datei.example\n"
                        "IDP_MAIL_PORT=2525\n", encoding="utf-8")

    result = in_a_process("--env-file", str(env_file), "config", "show", cwd=tmp_path,
                          env={"IDP_INSTANCE_PATH": str(tmp_path), "IDP_MAIL_PORT": "587"})

    assert result.returncode == 0, result.stderr
    shown = {line.split()[0]: line.split()[1:] for line in result.stdout.splitlines()}
    assert shown["IDP_MAIL_SERVER"] == ["mail.aus-der-datei.example", "env-file"]
    assert shown["IDP_ENV"] == ["development", "env-file"]
    assert shown["IDP_MAIL_PORT"] == ["587", "environment"]  # the environment wins


def test_version_prints_the_installed_package_version(tmp_path: Path) -> None:
    from importlib.metadata import version

    result = in_a_process("--version", env={}, cwd=tmp_path)

    assert result.returncode == 0, result.stderr
    assert result.stdout == f"servicekonto {version('servicekonto')}\n"


def test_db_current_and_history_tell_the_schema_revision_and_the_migrations(
        tmp_path: Path) -> None:
    env = {"IDP_ENV": "development", "IDP_INSTANCE_PATH": str(tmp_path),
           "IDP_DATABASE_URL": f"sqlite:///{tmp_path / 'servicekonto.sqlite3'}"}
    head = schema.head_revision()
    migrations = sorted((PROJECT_ROOT / "idp" / "migrations" / "versions").glob("0*.py"))

    before = servicekonto("db", "current", env=env)
    schema.upgrade(env["IDP_DATABASE_URL"], "0001")
    behind = servicekonto("db", "current", env=env)
    schema.upgrade(env["IDP_DATABASE_URL"])
    current = servicekonto("db", "current", env=env)
    history = servicekonto("db", "history", env=env)

    assert before.output.startswith(f"kein Schema (neuester Stand: {head};")
    assert behind.output.startswith(f"0001 (neuester Stand: {head};")
    assert current.output == f"{head} (neuester Stand)\n"
    assert len(history.output.splitlines()) == len(migrations)
    assert history.output.startswith(f"{head}  ")
    assert history.output.splitlines()[-1].startswith("0001  ")


def test_metadata_prints_the_document_the_metadata_endpoint_serves(
        app: Flask, tmp_path: Path) -> None:
    served = app.test_client().get(METADATA_PATH).get_data(as_text=True)

    printed = app.test_cli_runner().invoke(main, ["metadata"])
    written = app.test_cli_runner().invoke(main, ["metadata", "--output",
                                                  str(tmp_path / "idp.xml")])

    assert printed.exit_code == 0, printed.output
    assert printed.output == served + "\n"
    assert "Signature" in served
    assert written.exit_code == 0
    assert (tmp_path / "idp.xml").read_text(encoding="utf-8") == served


def test_the_reference_in_the_docs_is_the_one_made_from_the_settings() -> None:
    document = (PROJECT_ROOT / "docs" / "configuration.md").read_text(encoding="utf-8")

    assert with_reference(document) == document, (
        "docs/configuration.md is out of step with the settings: run "
        "servicekonto config reference --update docs/configuration.md")
