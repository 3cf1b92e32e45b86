"""Peak memory of the IdP while 50 citizens send the registration form at the same moment.

The IdP runs in a child process under a threaded WSGI server (werkzeug, a thread per request)
on loopback, with the production argon2id cost (64 MiB, t=3, p=4). Each client thread loads the
registration form, then all post it together ("nächster Schritt": one argon2id hash each), each
from an address of its own behind the simulated proxy, so that the per-address form limits do
not refuse them. The child's peak resident set (VmHWM) is printed before and after the flood.

Without a bound every request thread holds its 64 MiB at once; with the per-process hashing
slots (``IDP_ARGON2_CONCURRENCY``, default 4) at most that many do, and the others wait their
turn (or get 503 "zurzeit überlastet" after ``IDP_ARGON2_WAIT_SECONDS``).

    python -m benchmarks.registration_memory [--clients 50] [--argon2-concurrency N]
        [--postgres-url postgresql+psycopg://postgres@127.0.0.1/postgres]

SQLite (the default) lets one request write at a time, which spreads the flood out; PostgreSQL
lets the requests reach the hash together, as in production.

``--argon2-concurrency`` equal to the number of clients is what the IdP did before the bound.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import multiprocessing
import os
import re
import secrets
import socket
import sys
import tempfile
import threading
import time
from multiprocessing.process import BaseProcess
from pathlib import Path

import requests

from tests.postgres import temporary_database

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
PASSWORD = "Kräftig-Grün 42"
FORM_PATH = "/registrieren/benutzername"


def serve(port: int, env: dict[str, str]) -> None:
    """The child: the IdP configured by ``env``, on a threaded werkzeug server."""
    from werkzeug.serving import make_server

    from idp import create_app, schema
    from idp.config import load_config

    os.environ.update(env)
    # Quiet: a log line per request would be all the benchmark prints.
    quiet = os.open(os.devnull, os.O_WRONLY)
    os.dup2(quiet, 1)
    os.dup2(quiet, 2)
    schema.upgrade(load_config().database_url)
    make_server("127.0.0.1", port, create_app(), threaded=True).serve_forever()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def peak_rss_mib(pid: int) -> float:
    """The highest resident set size the process has had so far (Linux VmHWM)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmHWM for process {pid}")


class Citizen:
    """One client: its own cookies and address; loads the form, posts it on the signal."""

    def __init__(self, base_url: str, number: int) -> None:
        self.base_url = base_url
        self.number = number
        self.http = requests.Session()
        # The proxy in front of the IdP (IDP_PROXY_COUNT=1) names the client's address.
        self.http.headers["X-Forwarded-For"] = f"10.0.{number // 250}.{number % 250 + 1}"
        self.token = ""

    def load_form(self) -> None:
        page = self.http.get(self.base_url + FORM_PATH, timeout=60)
        match = CSRF.search(page.text)
        if page.status_code != 200 or match is None:
            raise SystemExit(f"the registration form did not load: {page.status_code}")
        self.token = match.group(1)

    def post_form(self) -> int:
        suffix = f"{self.number}{secrets.token_hex(3)}"
        answer = self.http.post(self.base_url + FORM_PATH, allow_redirects=False, timeout=120,
                                data={"csrf_token": self.token, "salutation": "frau",
                                      "given_name": "Erika", "surname": "Mustermann",
                                      "birth_name": "", "email": f"erika{suffix}@example.org",
                                      "username": f"Erika{suffix}", "password": PASSWORD,
                                      "password_confirm": PASSWORD, "privacy_accepted": "yes"})
        return answer.status_code


def flood(base_url: str, clients: int) -> tuple[collections.Counter[int], float]:
    """All clients post the form together; their answers' statuses and the seconds taken."""
    citizens = [Citizen(base_url, number) for number in range(clients)]
    for citizen in citizens:
        citizen.load_form()
    start = threading.Barrier(clients + 1)
    statuses: collections.Counter[int] = collections.Counter()
    lock = threading.Lock()

    def run(citizen: Citizen) -> None:
        start.wait()
        status = citizen.post_form()
        with lock:
            statuses[status] += 1

    threads = [threading.Thread(target=run, args=(citizen,)) for citizen in citizens]
    for thread in threads:
        thread.start()
    began = time.perf_counter()
    start.wait()
    for thread in threads:
        thread.join()
    return statuses, time.perf_counter() - began


def wait_until_up(base_url: str, child: BaseProcess) -> None:
    for _ in range(600):
        if not child.is_alive():
            raise SystemExit(f"the IdP stopped with {child.exitcode}")
        try:
            if requests.get(base_url + "/healthz", timeout=1).status_code == 200:
                return
        except requests.ConnectionError:
            pass
        time.sleep(0.1)
    raise SystemExit("the IdP did not start within a minute")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--argon2-concurrency", type=int, default=0,
                        help="hashing slots per process (default: the IdP's own default)")
    parser.add_argument("--postgres-url", default="",
                        help="a server to make a scratch database on (default: SQLite)")
    args = parser.parse_args()
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    with contextlib.ExitStack() as stack:
        workdir = stack.enter_context(tempfile.TemporaryDirectory(prefix="servicekonto-flood-"))
        database_url = stack.enter_context(temporary_database(
            args.postgres_url, "servicekonto_flood")) if args.postgres_url \
            else f"sqlite:///{workdir}/flood.sqlite3"
        env = {
            "IDP_ENV": "development", "IDP_BASE_URL": base_url, "IDP_INSTANCE_PATH": workdir,
            "IDP_DATABASE_URL": database_url, "IDP_PROXY_COUNT": "1",
            "IDP_SECRET_KEY": secrets.token_urlsafe(48), "IDP_LOG_FORMAT": "text"}
        for name in ("IDP_ARGON2_TIME_COST", "IDP_ARGON2_MEMORY_KIB", "IDP_ARGON2_PARALLELISM",
                     "IDP_REDIS_URL"):
            os.environ.pop(name, None)  # the production argon2 cost, counters in the database
        if args.argon2_concurrency:
            env["IDP_ARGON2_CONCURRENCY"] = str(args.argon2_concurrency)
        # A fresh interpreter (spawn): the child's memory is the IdP's alone.
        child = multiprocessing.get_context("spawn").Process(target=serve, args=(port, env))
        child.start()
        assert child.pid is not None
        try:
            wait_until_up(base_url, child)
            flood(base_url, 1)  # warm up: templates, connections, one hash
            before = peak_rss_mib(child.pid)
            statuses, seconds = flood(base_url, args.clients)
            after = peak_rss_mib(child.pid)
        finally:
            child.terminate()
            child.join()
    slots = args.argon2_concurrency or "default"
    answers = ", ".join(f"{count}× {status}" for status, count in sorted(statuses.items()))
    database = "PostgreSQL" if args.postgres_url else "SQLite"
    print(f"{args.clients} registration forms at once, argon2id 64 MiB t=3 p=4, "
          f"hashing slots per process: {slots}, {database}")
    print(f"answers: {answers} in {seconds:.1f} s")
    print(f"peak RSS before the flood: {before:.0f} MiB")
    print(f"peak RSS during the flood: {after:.0f} MiB (+{after - before:.0f} MiB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
