"""The clock moved and a fault set through one gunicorn worker hold for the other: both live in
the database, and each worker reads them when it needs them (no sticky sessions needed)."""

from __future__ import annotations

import http.client
import json
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from idp.config import PROJECT_ROOT
from tests.deployment.gunicorn_process import production_env, running_gunicorn
from tests.flows.conftest import SP_ACS, SP_ENTITY, portal_policy
from tests.integration.testing.conftest import TOKEN
from tests.saml_support import key_pair, metadata_of, sp_config
from tests.scale.cluster import (
    ACCESS_LOG_WITH_PID,
    CHEAP_ARGON2,
    connections_by_worker,
    new_marker,
    proxy_headers,
    workers_of,
)

pytestmark = pytest.mark.slow


def development_env(folder: Path, database_url: str,
                    signing_keys: tuple[Path, Path]) -> dict[str, str]:
    """gunicorn as in production, but a development IdP with the test-control API."""
    policy_dir = folder / "policies"
    policy_dir.mkdir()
    shutil.copy(PROJECT_ROOT / "policies" / "password.yaml", policy_dir / "password.yaml")
    env = production_env(folder, database_url, signing_keys, policy_dir) | CHEAP_ARGON2
    env |= {"IDP_ENV": "development", "IDP_TESTING_API_TOKEN": TOKEN, "IDP_LOG_FORMAT": "text"}
    return env


def call(connection: http.client.HTTPConnection, method: str, path: str,
         body: dict[str, Any] | None = None) -> tuple[str, int, dict[str, Any]]:
    """A call of the API over ``connection``: its marker (to find the worker), status, JSON."""
    marker = new_marker("api")
    headers = proxy_headers(marker) | {"Authorization": f"Bearer {TOKEN}",
                                       "Content-Type": "application/json"}
    connection.request(method, f"/testing/api{path}", headers=headers,
                       body=None if body is None else json.dumps(body))
    response = connection.getresponse()
    body = response.read()
    return marker, response.status, json.loads(body) if body else {}


def test_the_clock_moved_through_one_worker_is_moved_for_the_other(
        tmp_path: Path, database_url: str, signing_keys: tuple[Path, Path]) -> None:
    env = development_env(tmp_path, database_url, signing_keys)
    with running_gunicorn(env, tmp_path, "--access-logformat", ACCESS_LOG_WITH_PID) as (idp, _):
        first, second = (pool[0] for pool in connections_by_worker(idp, 1).values())

        moved = call(first, "PUT", "/clock", {"offset_seconds": 2 * 24 * 3600})
        seen = call(second, "GET", "/clock")
        reset = call(second, "DELETE", "/clock")
        seen_again = call(first, "GET", "/clock")
        served_by = workers_of(idp, [moved[0], seen[0], reset[0], seen_again[0]])

    assert moved[1] == seen[1] == 200
    assert seen[2]["offset_seconds"] == 2 * 24 * 3600
    # The other worker's own clock (utcnow) runs two days ahead, not only the stored number.
    ahead = datetime.fromisoformat(seen[2]["now"]) - datetime.now(UTC)
    assert timedelta(days=2) - timedelta(minutes=1) < ahead < timedelta(days=2, minutes=1)
    assert abs(datetime.fromisoformat(seen_again[2]["now"]) - datetime.now(UTC)) < timedelta(
        minutes=1)
    assert seen_again[2]["offset_seconds"] == 0
    assert served_by[moved[0]] == served_by[seen_again[0]] != served_by[seen[0]]
    assert served_by[seen[0]] == served_by[reset[0]]


def test_a_fault_set_through_one_worker_waits_in_the_other(
        tmp_path: Path, database_url: str, signing_keys: tuple[Path, Path]) -> None:
    """Faults live in the database too: whichever worker answers the portal's next login
    takes the fault (counted down in one UPDATE, so two workers never both take the last)."""
    env = development_env(tmp_path, database_url, signing_keys)
    portal_keys = key_pair(tmp_path / "portal", "portal")
    metadata = tmp_path / "portal-metadata.xml"
    metadata.write_text(metadata_of(sp_config(SP_ENTITY, SP_ACS, *portal_keys)), encoding="utf-8")
    (Path(env["IDP_POLICY_DIR"]) / "portals").mkdir()
    portal_policy(Path(env["IDP_POLICY_DIR"]), metadata)
    with running_gunicorn(env, tmp_path, "--access-logformat", ACCESS_LOG_WITH_PID) as (idp, _):
        first, second = (pool[0] for pool in connections_by_worker(idp, 1).values())

        set_there = call(first, "PUT", "/portals/musterstadt/fault",
                         {"fault": "wrong-audience", "count": 2})
        seen = call(second, "GET", "/faults")
        cleared = call(second, "DELETE", "/portals/musterstadt/fault")
        seen_again = call(first, "GET", "/faults")
        served_by = workers_of(idp, [set_there[0], seen[0], seen_again[0]])

    assert set_there[1] == seen[1] == 200 and cleared[1] == 204
    assert seen[2]["waiting"] == [{"portal": "musterstadt", "fault": "wrong-audience",
                                   "remaining": 2}]
    assert seen_again[2]["waiting"] == []
    assert served_by[set_there[0]] == served_by[seen_again[0]] != served_by[seen[0]]
