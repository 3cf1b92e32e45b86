"""``servicekonto run`` is the development server: without IDP_ENV it runs in development mode
(production is the default everywhere else), with its mailbox for this machine."""

from __future__ import annotations

import os
from contextlib import closing
from pathlib import Path

import pytest

from idp import schema
from tests.e2e.conftest import CHEAP_ARGON2
from tests.e2e.processes import free_ports, start_idp

pytestmark = pytest.mark.slow


def test_servicekonto_run_without_idp_env_serves_development_with_its_mailbox(
        tmp_path: Path) -> None:
    [port] = free_ports(1)
    env = {name: value for name, value in os.environ.items() if not name.startswith("IDP_")}
    env |= {"IDP_BASE_URL": f"http://127.0.0.1:{port}", "PYTHONUNBUFFERED": "1",
            "IDP_INSTANCE_PATH": str(tmp_path / "instance"),
            "IDP_DATABASE_URL": f"sqlite:///{tmp_path / 'servicekonto.sqlite3'}", **CHEAP_ARGON2}
    schema.upgrade(env["IDP_DATABASE_URL"])  # `db upgrade` is production without IDP_ENV
    log = tmp_path / "idp.log"

    with closing(start_idp(env, log, migrate=False)) as running:
        browser = next(running)
        assert browser.get("/entwicklung/postfach/").status == 200

    printed = log.read_text(encoding="utf-8")
    assert f"Servicekonto läuft auf http://127.0.0.1:{port} (Entwicklungsmodus)" in printed
    assert "Entwicklungs-Postfach: " in printed and "nur von diesem Rechner aus" in printed
