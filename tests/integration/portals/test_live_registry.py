"""A running IdP serves a portal added, changed or removed by command without a restart."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from flask import Flask

from idp.cli import main
from idp.portals import live
from tests.conftest import Browser, app_with
from tests.flows.conftest import SP_ACS, SP_ENTITY, Portal, connect_portal, logged_in
from tests.saml_support import key_pair, metadata_of, sp_config


@pytest.fixture
def portal_keys(tmp_path: Path) -> tuple[Path, Path]:
    return key_pair(tmp_path / "sp", "sp")


@pytest.fixture
def metadata_file(tmp_path: Path, portal_keys: tuple[Path, Path]) -> Path:
    path = tmp_path / "sp-metadata.xml"
    path.write_text(metadata_of(sp_config(SP_ENTITY, SP_ACS, *portal_keys)), encoding="utf-8")
    return path


@pytest.fixture
def running(settings: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> Any:
    # The check interval is what an operator waits at most; here the next request looks.
    monkeypatch.setattr(live, "CHECK_EVERY", 0.0)
    with app_with(settings) as application:
        yield application


@pytest.fixture
def command(settings: dict[str, Any]) -> Callable[..., Result]:
    """``servicekonto portal …`` in another process's place: the same database and folder."""
    def invoke(*args: str) -> Result:
        result = CliRunner().invoke(main, ["portal", *args], env={
            "IDP_ENV": "development", "IDP_POLICY_DIR": str(settings["policy_dir"]),
            "IDP_INSTANCE_PATH": str(settings["instance_path"]),
            "IDP_DATABASE_URL": settings["database_url"]})
        assert result.exit_code == 0, result.output
        return result
    return invoke


def _start_login(app: Flask, portal: Portal) -> Any:
    path, _ = portal.login_url()
    return app.test_client().get(path)


def test_a_portal_added_and_removed_by_command_is_served_and_refused_without_a_restart(
        running: Flask, command: Callable[..., Result], metadata_file: Path,
        portal_keys: tuple[Path, Path]) -> None:
    portal = connect_portal(running, SP_ENTITY, SP_ACS, portal_keys)
    assert _start_login(running, portal).status_code == 400

    command("add", "--name", "musterstadt", "--metadata", str(metadata_file))
    added = _start_login(running, portal)
    assert added.status_code == 302 and "/anmelden" in added.headers["Location"]

    command("remove", "musterstadt")
    assert _start_login(running, portal).status_code == 400


def test_a_changed_portal_file_is_served_after_portal_import_without_a_restart(
        running: Flask, command: Callable[..., Result], metadata_file: Path,
        portal_keys: tuple[Path, Path], settings: dict[str, Any]) -> None:
    policy = settings["policy_dir"] / "portals" / "musterstadt.yaml"
    text = (f"display_name: Bürgerportal Musterstadt\nentity_id: {SP_ENTITY}\n"
            f"metadata: {metadata_file}\nattributes: [givenName, surname]\n")
    policy.write_text(text, encoding="utf-8")
    command("import")
    portal = connect_portal(running, SP_ENTITY, SP_ACS, portal_keys)
    visitor = logged_in(running, Browser(running.test_client()))
    path, _ = portal.login_url()
    assert "Bürgerportal Musterstadt" in visitor.get(path, follow_redirects=True).get_data(
        as_text=True)

    policy.write_text(text.replace("Musterstadt", "Neustadt"), encoding="utf-8")
    command("import")
    path, _ = portal.login_url()
    page = visitor.get(path, follow_redirects=True).get_data(as_text=True)
    assert "Bürgerportal Neustadt" in page and "Musterstadt" not in page


def test_a_database_that_cannot_be_reached_keeps_the_portals_in_use_without_an_error(
        running: Flask) -> None:
    """The version read runs before every request (at most once a second): with the database
    away it must let the request go on to its own German 503, not fail with a 500 itself."""
    from sqlalchemy import create_engine

    from idp.container import app_parts

    registry = app_parts(running).saml._live
    # A database nobody answers at (port 1 on loopback: refused at once).
    away = create_engine("postgresql+psycopg://idp@127.0.0.1:1/idp")
    monkey = registry._engine
    registry._engine = away
    try:
        registry._next_check = 0.0
        assert registry.check(datetime.now(UTC)) is False
    finally:
        registry._engine = monkey
        away.dispose()
