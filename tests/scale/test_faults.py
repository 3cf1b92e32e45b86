"""What citizens notice when a part of the production shape fails under the running IdP:
Redis gone, a worker killed mid-request, PostgreSQL stopped or crashing under load, the mail
server away while citizens register. Each test brings its own Redis or PostgreSQL server to
stop; the shared ones keep running. (The mail sender's retries in detail: tests/integration/mail.)
"""

from __future__ import annotations

import glob
import http.client
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from redis import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from sqlalchemy import create_engine, func, select
from sqlalchemy.exc import OperationalError

from idp.accounts.identity import username_key
from idp.accounts.models import AccountStatus, AccountToken, Citizen, TokenPurpose
from idp.mail.models import OutboxMail
from idp.security.models import LoginThrottle
from tests.deployment.gunicorn_process import (
    BIN,
    RunningIdp,
    free_port,
    migrate,
    running_gunicorn,
)
from tests.e2e.processes import eventually
from tests.integration.mail.smtp import Inbox, SmtpServer
from tests.saml_support import key_pair
from tests.scale.cluster import (
    ACCESS_LOG_WITH_PID,
    PASSWORD,
    ProxiedBrowser,
    activated_citizen,
    activation_path,
    connections_by_worker,
    log_in,
    portal_for,
    proxy_headers,
    register,
    unique_citizen,
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


PgCtl = Callable[..., None]


@pytest.fixture
def own_postgres() -> Iterator[tuple[str, PgCtl]]:
    """A PostgreSQL server of this test's own (the shared one must keep running): its URL and
    ``pg_ctl`` (as ``pg_ctl("stop")``, or ``pg_ctl("stop", "immediate")`` for a crash: in-flight
    transactions are cut off). As root, it runs as the ``postgres`` user."""
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

    def pg_ctl(action: str, mode: str = "fast") -> None:
        subprocess.run([*as_owner, str(binaries / "pg_ctl"), action, "-D", str(data), "-w",
                        "-m", mode, "-l", str(folder / "server.log"), "-o",
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


@contextmanager
def gunicorn_on(database_url: str, folder: Path,
                signing_keys: tuple[Path, Path]) -> Iterator[RunningIdp]:
    """Two workers on the given database, without Redis (the throttle counts in the database)."""
    portal_keys = key_pair(folder / "portal-keys", "portal")
    env = cluster_env(folder, database_url, signing_keys, portal_keys, redis_url="")
    migrate(env)
    with running_gunicorn(env, folder, "--access-logformat", ACCESS_LOG_WITH_PID) as (idp, _):
        yield idp


def test_while_postgresql_restarts_citizens_get_503_and_afterwards_stay_logged_in(
        tmp_path: Path, signing_keys: tuple[Path, Path],
        own_postgres: tuple[str, PgCtl]) -> None:
    database_url, pg_ctl = own_postgres
    with gunicorn_on(database_url, tmp_path, signing_keys) as idp:
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


# --- PostgreSQL crashing and coming back while citizens register, activate and log in --------

@dataclass
class Step:
    """One request of a citizen's journey and what the citizen got."""

    started: float
    name: str
    status: int
    expected: int
    german_503: bool  # the "Dienst nicht verfügbar" page with Retry-After

    @property
    def acceptable(self) -> bool:
        return self.status == self.expected or (self.status == 503 and self.german_503)


@dataclass
class Journeys:
    """What the load saw: every step, the citizens whose registration and activation the
    IdP confirmed, and the requests that did not even get an HTTP answer."""

    steps: list[Step] = field(default_factory=list)
    registered: list[str] = field(default_factory=list)  # e-mail addresses
    activated: list[str] = field(default_factory=list)
    broken: list[str] = field(default_factory=list)


def journeys_until(stop: threading.Event, idp: RunningIdp, database_url: str,
                   seen: Journeys) -> None:
    """Citizens one after another until ``stop``."""
    while not stop.is_set():
        journey(idp, database_url, seen)


def journey(idp: RunningIdp, database_url: str, seen: Journeys) -> None:
    """One citizen: register, open the activation link, log in, look at the account. The
    journey ends at its first answer that is not the expected one (a 503 while the database is
    gone)."""
    browser, citizen = ProxiedBrowser(idp), unique_citizen()

    def step(name: str, method: str, path: str, expected: int,
             fields: dict[str, str] | None = None) -> bool:
        started = time.monotonic()
        try:
            page = browser.get(path) if method == "GET" else browser.submit(path, fields)
        except (OSError, http.client.HTTPException) as error:
            seen.broken.append(f"{name}: {error!r}")
            return False
        german = "Dienst nicht verfügbar" in page.html and page.retry_after != ""
        seen.steps.append(Step(started, name, page.status, expected, german))
        return page.status == expected

    if not (step("Registrierung", "GET", "/registrieren/benutzername", 200)
            and step("Daten senden", "POST", "/registrieren/benutzername", 302, citizen)
            and step("Daten prüfen", "GET", "/registrieren/pruefen", 200)
            and step("Registrieren", "POST", "/registrieren/pruefen", 302)):
        return
    seen.registered.append(citizen["email"])
    try:
        link = activation_path(database_url, citizen["email"])
    except OperationalError:
        return  # the load reads the mail from the database, which is down just now
    if not (step("Aktivierungslink", "GET", link, 200) and step("Aktivieren", "POST", link, 200)):
        return
    seen.activated.append(citizen["email"])
    if step("Anmeldeseite", "GET", "/anmelden", 200) and step(
            "Anmelden", "POST", "/anmelden", 302,
            {"username": citizen["username"], "password": PASSWORD}):
        step("Mein Servicekonto", "GET", "/konto", 200)


def stored_accounts(database_url: str) -> list[tuple[str, str, bool, int, int]]:
    """Per stored account: address, status, whether an activation link was used, and how many
    activation links and mails to its address exist."""
    engine = create_engine(database_url)
    try:
        with engine.connect() as connection:
            rows = connection.execute(
                select(Citizen.email, Citizen.status,
                       select(func.count()).where(AccountToken.citizen_id == Citizen.id,
                                                  AccountToken.purpose == TokenPurpose.ACTIVATION,
                                                  AccountToken.used_at.is_not(None))
                       .scalar_subquery(),
                       select(func.count()).where(AccountToken.citizen_id == Citizen.id,
                                                  AccountToken.purpose == TokenPurpose.ACTIVATION)
                       .scalar_subquery(),
                       select(func.count()).where(OutboxMail.recipient == Citizen.email)
                       .scalar_subquery()))
            return [(email, status, used > 0, links, mails)
                    for email, status, used, links, mails in rows]
    finally:
        engine.dispose()


def test_postgresql_crashing_under_load_leaves_no_half_account_and_the_idp_recovers_by_itself(
        tmp_path: Path, signing_keys: tuple[Path, Path],
        own_postgres: tuple[str, PgCtl]) -> None:
    database_url, pg_ctl = own_postgres
    seen = Journeys()
    stop = threading.Event()
    with gunicorn_on(database_url, tmp_path, signing_keys) as idp:
        citizens = [threading.Thread(target=journeys_until, args=(stop, idp, database_url, seen))
                    for _ in range(4)]
        for thread in citizens:
            thread.start()
        try:
            time.sleep(3)
            crashed = time.monotonic()
            pg_ctl("stop", "immediate")  # cuts off the transactions in flight, as a crash does
            time.sleep(2)
            pg_ctl("start")
            back = time.monotonic()
            time.sleep(6)
        finally:
            stop.set()
            for thread in citizens:
                thread.join(timeout=60)
        # No restart of gunicorn: every worker serves a new citizen on the first try.
        afterwards = [activated_citizen(ProxiedBrowser(idp), database_url) for _ in range(2)]
        logins = [log_in(ProxiedBrowser(idp), citizen["username"], via=via)
                  for citizen in afterwards
                  for via in (pool[0] for pool in connections_by_worker(idp, 1).values())]

    assert not seen.broken, seen.broken  # every request got an HTTP answer
    wrong = [step for step in seen.steps if not step.acceptable]
    assert not wrong, wrong  # never a 500: the expected page or the German 503
    unavailable = [step for step in seen.steps if step.status == 503]
    assert unavailable and all(crashed - 1 <= step.started <= back + 2 for step in unavailable), \
        [(step.name, round(step.started - crashed, 2)) for step in unavailable]
    assert any(step.started > back and step.name == "Mein Servicekonto" and step.status == 200
               for step in seen.steps)  # the load's own citizens got through again
    assert [page.status for page in logins] == [302] * 4

    accounts = {email: (status, used, links, mails)
                for email, status, used, links, mails in stored_accounts(database_url)}
    # Whatever the crash cut off: an account exists with its activation link and its mail, or
    # not at all; it is active exactly when its link was used.
    half = {email: row for email, row in accounts.items()
            if row[2] < 1 or row[3] < 1 or (row[0] == AccountStatus.ACTIVE) != row[1]}
    assert not half, half
    assert set(seen.registered) <= set(accounts)  # a confirmed registration was not lost
    assert all(accounts[email][0] == AccountStatus.ACTIVE for email in seen.activated)
    assert len(seen.registered) >= 8, len(seen.registered)  # the load did run


# --- the mail server away while citizens register, two mail senders running ----------------

@contextmanager
def mail_senders(env: dict[str, str], folder: Path, count: int) -> Iterator[list[Path]]:
    """``servicekonto mail send --forever`` ``count`` times at once, as an operator who runs a
    second one by mistake (or on a second host); stopped with Ctrl-C. Yields their log files."""
    logs = [folder / f"mail-sender-{number}.log" for number in range(count)]
    senders = []
    for log in logs:
        with log.open("wb") as output:
            senders.append(subprocess.Popen(
                [str(BIN / "servicekonto"), "mail", "send", "--forever", "--interval", "0.2"],
                env=env, stdout=output, stderr=subprocess.STDOUT))
    try:
        yield logs
    finally:
        for sender in senders:
            sender.send_signal(signal.SIGINT)
        for sender in senders:
            sender.wait(timeout=30)


def outbox_of(database_url: str) -> list[tuple[str, str, int, bool, bool]]:
    """Every mail: recipient, Message-ID, attempts, sent, given up."""
    engine = create_engine(database_url)
    try:
        with engine.connect() as connection:
            return [(row.recipient, row.message_id, row.attempts, row.sent_at is not None,
                     row.failed_at is not None)
                    for row in connection.execute(select(OutboxMail))]
    finally:
        engine.dispose()


def test_mails_of_registrations_during_an_smtp_outage_all_arrive_later_and_none_twice(
        cluster: Cluster, tmp_path: Path) -> None:
    smtp = SmtpServer(Inbox(), free_port())
    smtp.start()
    env = cluster.env | {"IDP_MAIL_SERVER": "127.0.0.1", "IDP_MAIL_PORT": str(smtp.port),
                         "IDP_MAIL_RETRY_BASE_SECONDS": "0.5"}
    registered: list[str] = []
    stop = threading.Event()

    def citizens_registering() -> None:
        while not stop.is_set():
            citizen = unique_citizen()
            register(ProxiedBrowser(cluster.idp), citizen)
            registered.append(citizen["email"])

    try:
        with mail_senders(env, tmp_path, count=2) as logs:
            load = [threading.Thread(target=citizens_registering) for _ in range(3)]
            for thread in load:
                thread.start()
            # The senders are at work (a process takes seconds to start on a busy machine):
            # only then does the outage meet mails on their way.
            eventually(lambda: any(sent for *_, sent, _failed in outbox_of(cluster.database_url))
                       or None, seconds=30)
            smtp.stop()
            during_outage = len(registered)
            time.sleep(3)
            smtp.start()
            after_outage = len(registered)
            time.sleep(1.5)
            stop.set()
            for thread in load:
                thread.join(timeout=30)
            eventually(lambda: all(sent for *_, sent, _failed in outbox_of(cluster.database_url))
                       or None, seconds=30)
    finally:
        smtp.stop()

    outbox = outbox_of(cluster.database_url)
    assert after_outage - during_outage >= 3, "no one registered while the mail server was away"
    assert any(attempts > 1 for _, _, attempts, _, _ in outbox), "the outage delayed no mail"
    assert not [mail for mail in outbox if mail[4]], "a mail was given up"
    received = Counter(message["Message-ID"] for message in smtp.inbox.received)
    assert received == Counter(message_id for _, message_id, _, _, _ in outbox)  # each once
    per_recipient = smtp.inbox.per_recipient()
    assert all(per_recipient[email] == 1 for email in registered), per_recipient
    sent_by = [int(log.read_text(encoding="utf-8").split(" Mail(s) versendet")[0].split()[-1])
               for log in logs]
    assert sum(sent_by) == len(outbox) and all(sent_by), sent_by  # both senders took a share
