"""What citizens notice when a part of the production shape fails under the running IdP:
Redis gone, a worker killed mid-request, PostgreSQL restarted. Each test brings its own Redis or
PostgreSQL server to stop; the shared ones keep running. (An SMTP outage is tested with the
mail sender: tests/integration/mail.)"""

from __future__ import annotations

import glob
import http.client
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from redis import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from sqlalchemy import create_engine, select

from idp.accounts.identity import username_key
from idp.security.models import LoginThrottle
from tests.deployment.gunicorn_process import free_port, migrate, running_gunicorn
from tests.e2e.processes import eventually
from tests.saml_support import key_pair
from tests.scale.cluster import (
    ACCESS_LOG_WITH_PID,
    ProxiedBrowser,
    activated_citizen,
    connections_by_worker,
    log_in,
    portal_for,
    proxy_headers,
)
from tests.scale.conftest import Cluster, cluster_env


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """A redis-server of this test's own (the shared one must keep running): URL and process."""
    server = shutil.which("redis-server")
    if server is None:
        pytest.skip("redis-server is not installed")
    port = free_port()
    process = subprocess.Popen(
        [server, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
         "--appendonly", "no", "--daemonize", "no", "--dir", str(tmp_path)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def answers() -> bool | None:
        try:
            return Redis(port=port).ping() or None
        except RedisConnectionError:
            return None

    try:
        eventually(answers)
        yield f"redis://127.0.0.1:{port}/0", process
    finally:
        if process.poll() is None:
            process.terminate()
            process.wait(timeout=10)


@pytest.fixture
def cluster_on_own_redis(tmp_path: Path, signing_keys: tuple[Path, Path], postgres_database: str,
                         own_redis: tuple[str, subprocess.Popen[bytes]]) -> Iterator[Cluster]:
    portal_keys = key_pair(tmp_path / "portal-keys", "portal")
    env = cluster_env(tmp_path, postgres_database, signing_keys, portal_keys, own_redis[0])
    migrate(env)
    with running_gunicorn(env, tmp_path, "--access-logformat", ACCESS_LOG_WITH_PID) as (idp, _):
        yield Cluster(idp, env, postgres_database, portal_for(idp, portal_keys))


def database_failures(database_url: str, username: str) -> int:
    """The failures the ``login_throttle`` table counts for an account."""
    engine = create_engine(database_url)
    try:
        with engine.connect() as connection:
            return int(connection.scalar(select(LoginThrottle.failures).where(
                LoginThrottle.scope == "account",
                LoginThrottle.key == username_key(username))) or 0)
    finally:
        engine.dispose()


def test_with_redis_gone_logins_go_on_and_the_throttle_counts_in_the_database(
        cluster_on_own_redis: Cluster, own_redis: tuple[str, subprocess.Popen[bytes]]) -> None:
    cluster = cluster_on_own_redis
    citizen = activated_citizen(ProxiedBrowser(cluster.idp), cluster.database_url)
    assert log_in(ProxiedBrowser(cluster.idp), citizen["username"]).status == 302

    own_redis[1].terminate()
    own_redis[1].wait(timeout=10)
    logged_in = log_in(ProxiedBrowser(cluster.idp), citizen["username"])
    attacker = ProxiedBrowser(cluster.idp)
    first, second = (pool[0] for pool in connections_by_worker(cluster.idp, 1).values())
    for via in (first, second, first, second, first):
        assert log_in(attacker, citizen["username"], "Falsch-Geraten 1", via=via).status == 401
    right_password = log_in(attacker, citizen["username"], via=second)

    assert logged_in.status == 302, logged_in.status  # not a 500, not a 503
    assert right_password.status == 401  # the five failures throttle across both workers
    assert database_failures(cluster.database_url, citizen["username"]) == 5


def test_a_worker_killed_mid_request_is_replaced_and_other_citizens_stay_logged_in(
        cluster: Cluster) -> None:
    pools = connections_by_worker(cluster.idp, per_worker=1)
    (victim, (doomed,)), (survivor, (kept,)) = pools.items()
    citizens = [ProxiedBrowser(cluster.idp) for _ in range(2)]
    for browser, via in zip(citizens, (doomed, kept), strict=True):
        citizen = activated_citizen(browser, cluster.database_url)
        assert log_in(browser, citizen["username"], via=via).status == 302  # on either worker
    # A login whose body is still on its way: the victim's thread is inside the request.
    doomed.putrequest("POST", "/anmelden")
    for name, value in proxy_headers("doomed-request").items():
        doomed.putheader(name, value)
    doomed.putheader("Content-Type", "application/x-www-form-urlencoded")
    doomed.putheader("Content-Length", "1000")
    doomed.endheaders(b"username=Erika")

    os.kill(victim, signal.SIGKILL)

    with pytest.raises((ConnectionError, http.client.HTTPException)):
        doomed.getresponse()  # that one request is lost (the proxy answers it with a 502)
    for browser in citizens:
        page = browser.get("/konto", kept)
        assert page.status == 200 and "Mustermann" in page.html
    fresh = eventually(lambda: _two_workers_answering(cluster))
    assert victim not in fresh and survivor in fresh and len(fresh) == 2
    for browser in citizens:
        assert browser.get("/konto", fresh[max(fresh)][0]).status == 200


def _two_workers_answering(cluster: Cluster) -> dict[int, list[http.client.HTTPConnection]] | None:
    """A connection to each of two workers, once two answer (a new worker loads the app
    first)."""
    try:
        return connections_by_worker(cluster.idp, per_worker=1)
    except AssertionError:
        return None


@pytest.fixture
def own_postgres() -> Iterator[tuple[str, Callable[[str], None]]]:
    """A PostgreSQL server of this test's own (the shared one must keep running): its URL and
    ``pg_ctl`` (as ``pg_ctl("restart")``). As root, it runs as the ``postgres`` user."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
    if not found:
        pytest.skip("no PostgreSQL server binaries in /usr/lib/postgresql")
    binaries = Path(found[-1]).parent
    folder = Path(tempfile.mkdtemp(prefix="servicekonto-pg-"))
    as_owner: list[str] = []
    if os.geteuid() == 0:  # initdb refuses to run as root
        try:
            owner = pwd.getpwnam("postgres")
        except KeyError:
            pytest.skip("running as root without a postgres user to run PostgreSQL as")
        os.chown(folder, owner.pw_uid, owner.pw_gid)
        as_owner = ["runuser", "-u", "postgres", "--"]
    port = free_port()
    data = folder / "data"

    def pg_ctl(action: str) -> None:
        subprocess.run([*as_owner, str(binaries / "pg_ctl"), action, "-D", str(data), "-w",
                        "-m", "fast", "-l", str(folder / "server.log"), "-o",
                        f"-p {port} -k {folder} -c listen_addresses=127.0.0.1 -c fsync=off"],
                       check=True, capture_output=True, timeout=60)

    subprocess.run([*as_owner, str(binaries / "initdb"), "-D", str(data), "-A", "trust",
                    "-U", "postgres", "--no-sync"], check=True, capture_output=True, timeout=60)
    pg_ctl("start")
    try:
        yield f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres", pg_ctl
    finally:
        subprocess.run([*as_owner, str(binaries / "pg_ctl"), "stop", "-D", str(data), "-m",
                        "immediate"], capture_output=True, timeout=60, check=False)
        shutil.rmtree(folder, ignore_errors=True)


def test_while_postgresql_restarts_citizens_get_503_and_afterwards_stay_logged_in(
        tmp_path: Path, signing_keys: tuple[Path, Path],
        own_postgres: tuple[str, Callable[[str], None]]) -> None:
    database_url, pg_ctl = own_postgres
    portal_keys = key_pair(tmp_path / "portal-keys", "portal")
    env = cluster_env(tmp_path, database_url, signing_keys, portal_keys, redis_url="")
    migrate(env)
    with running_gunicorn(env, tmp_path, "--access-logformat", ACCESS_LOG_WITH_PID) as (idp, _):
        pools = connections_by_worker(idp, per_worker=1)
        first, second = (pool[0] for pool in pools.values())
        browser = ProxiedBrowser(idp)
        citizen = activated_citizen(browser, database_url)
        assert log_in(browser, citizen["username"], via=first).status == 302

        pg_ctl("stop")
        while_down = [browser.get("/konto", second), ProxiedBrowser(idp).get("/anmelden", first)]
        pg_ctl("start")
        after = [browser.get("/konto", via) for via in (first, second)]
        new_login = [log_in(ProxiedBrowser(idp), citizen["username"], via=via)
                     for via in (first, second)]

    for page in while_down:
        assert page.status == 503 and "Dienst nicht verfügbar" in page.html, page.status
    assert [page.status for page in after] == [200, 200]
    assert [page.status for page in new_login] == [302, 302]
