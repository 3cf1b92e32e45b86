"""One gunicorn with two workers on PostgreSQL and Redis for the scale tests of a module."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.deployment.gunicorn_process import (
    PORTAL,
    PORTAL_ACS,
    RunningIdp,
    migrate,
    portal_policies,
    production_env,
    running_gunicorn,
)
from tests.flows.conftest import Portal
from tests.saml_support import key_pair, sp_config
from tests.scale.cluster import ACCESS_LOG_WITH_PID, CHEAP_ARGON2, portal_for

REDIS_URL = os.environ.get("IDP_TEST_REDIS_URL", "")


@dataclass
class Cluster:
    """The running IdP, its environment and database, and the portal that sends citizens."""

    idp: RunningIdp
    env: dict[str, str]
    database_url: str
    portal: Portal


def cluster_env(folder: Path, database_url: str, signing_keys: tuple[Path, Path],
                portal_keys: tuple[Path, Path], redis_url: str) -> dict[str, str]:
    policies = portal_policies(folder, sp_config(PORTAL, PORTAL_ACS, *portal_keys))
    env = production_env(folder, database_url, signing_keys, policies) | CHEAP_ARGON2
    # Plain-text access lines: cluster.workers_of reads each worker's pid from them.
    env["IDP_LOG_FORMAT"] = "text"
    # Load and fault tests register hundreds of citizens a minute: the form limits (tested in
    # tests/integration/security/test_form_limits.py) must not be what they meet, also not
    # through Redis counters that earlier runs left within the hour.
    env["IDP_LIMIT_REGISTER"] = env["IDP_LIMIT_REGISTER_FORM"] = "1000000/1000000/60"
    if redis_url:
        env["IDP_REDIS_URL"] = redis_url
    return env


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory, signing_keys: tuple[Path, Path],
            postgres_database: str) -> Iterator[Cluster]:
    if not REDIS_URL:
        pytest.skip("IDP_TEST_REDIS_URL is not set")
    folder = tmp_path_factory.mktemp("cluster")
    portal_keys = key_pair(folder / "portal-keys", "portal")
    env = cluster_env(folder, postgres_database, signing_keys, portal_keys, REDIS_URL)
    migrate(env)
    with running_gunicorn(env, folder, "--access-logformat", ACCESS_LOG_WITH_PID) as (idp, _):
        yield Cluster(idp, env, postgres_database, portal_for(idp, portal_keys))
