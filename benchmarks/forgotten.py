"""The time of the "vergessen" answers for known and for unknown input, and their ratio.

"Passwort vergessen" and "Benutzernamen vergessen" must not tell who has an account: neither by
their page (tested in tests/integration/accounts) nor by how long the answer takes. This posts
each form many times through the Flask test client, known and unknown input in alternation (so
a noisy machine slows both alike), and prints the median time of each, their ratio (target:
between 0.9 and 1.1) and how often the best single threshold on one request's time guesses
right whether the input was known (50 % is a coin toss).

    python -m benchmarks.forgotten [--requests 400] [--accounts 200] [--postgres-url URL]

With ``--postgres-url`` (a server's admin URL) it runs on a database of its own there, dropped
afterwards; by default on a fresh SQLite file.

The known inputs cycle through ``--accounts`` active accounts, so that none reaches the hourly
mail limit per address (beyond it nothing is mailed, which would hide the cost of a mail).
"""

from __future__ import annotations

import argparse
import logging
import re
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

from flask import Flask
from flask.testing import FlaskClient

from idp import create_app, schema
from idp.config import PROJECT_ROOT, Argon2Parameters, FormLimits, RequestLimit
from idp.db import db
from tests.postgres import temporary_database

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
PASSWORD = "Kräftig-Grün 42"
# The two forms: path, field, the known input of account number i, an unknown input number i.
FORMS: dict[str, tuple[str, str, Callable[[int], str], Callable[[int], str]]] = {
    "Passwort vergessen": ("/passwort-vergessen", "username",
                           lambda i: f"Bench{i}", lambda i: f"Niemand{i}"),
    "Benutzernamen vergessen": ("/benutzername-vergessen", "email",
                                lambda i: f"bench{i}@example.org",
                                lambda i: f"niemand{i}@example.org"),
}
# Ratio of the medians within which the answers count as equally fast.
TARGET = (0.9, 1.1)


@contextmanager
def database(postgres_url: str, workdir: Path) -> Iterator[str]:
    """A database for this run: on the PostgreSQL server of ``postgres_url``, else SQLite."""
    if not postgres_url:
        yield f"sqlite:///{workdir / 'bench.sqlite3'}"
        return
    with temporary_database(postgres_url, "servicekonto_bench") as url:
        yield url


def make_app(url: str, workdir: Path, accounts: int) -> Flask:
    """A migrated development IdP with ``accounts`` active citizens Bench0, Bench1, …"""
    from idp.accounts.admin import create_active_citizen
    from idp.web.context import services

    schema.upgrade(url)
    # The password policy and no portals: a portal's metadata is no part of these answers.
    policies = workdir / "policies"
    (policies / "portals").mkdir(parents=True)
    (policies / "password.yaml").write_bytes((PROJECT_ROOT / "policies/password.yaml").read_bytes())
    # The hash cost plays no part in these answers: cheap, so that making accounts is quick.
    app = create_app(test_config={
        "environment": "development", "database_url": url, "instance_path": workdir,
        "policy_dir": policies, "base_url": "http://localhost",
        "secret_key": "benchmark-" + "x" * 40,
        "argon2": Argon2Parameters(time_cost=1, memory_cost_kib=1024, parallelism=1),
        # One client sends every request here: its limit must not end the measurement (the
        # counting itself still runs, the same for both kinds of input).
        "form_limits": FormLimits(mail_request=RequestLimit(10**9, 10**9, timedelta(hours=1))),
    }, env={})
    # One audit line per request would measure the terminal; the events are tested elsewhere.
    logging.getLogger("servicekonto.audit").setLevel(logging.WARNING)
    with app.app_context():
        for number in range(accounts):
            create_active_citizen(services().accounts(db.session), {
                "username": f"Bench{number}", "email": f"bench{number}@example.org",
                "given_name": "Bench", "surname": "Mark", "salutation": "keine_angabe",
                "password": PASSWORD, "password_confirm": PASSWORD, "privacy_accepted": "yes"})
    return app


def timed_post(client: FlaskClient, path: str, data: dict[str, str]) -> float:
    """Seconds one POST of the form takes, from the request to the complete answer."""
    start = time.perf_counter()
    response = client.post(path, data=data)
    response.get_data()
    elapsed = time.perf_counter() - start
    if response.status_code != 200:
        raise SystemExit(f"{path} answered {response.status_code}")
    return elapsed


def best_guess_rate(known: list[float], unknown: list[float]) -> float:
    """How often the best threshold on one request's time tells known from unknown input."""
    labelled = sorted([(t, True) for t in known] + [(t, False) for t in unknown])
    best, known_below, unknown_below = 0.5, 0, 0
    for _, is_known in labelled:
        known_below += is_known
        unknown_below += not is_known
        # Guess "unknown" at or below the threshold and "known" above it, or the other way.
        right = (unknown_below + len(known) - known_below) / len(labelled)
        best = max(best, right, 1 - right)
    return best


def measure(app: Flask, name: str, requests: int, accounts: int) -> tuple[float, float]:
    """Median seconds of the answer to known and to unknown input of form ``name``."""
    path, field, known_input, unknown_input = FORMS[name]
    client = app.test_client()
    token = CSRF.search(client.get(path).get_data(as_text=True)).group(1)  # type: ignore[union-attr]
    for number in range(10):  # warm up templates, connections and caches
        timed_post(client, path, {"csrf_token": token, field: unknown_input(10**6 + number)})
    known: list[float] = []
    unknown: list[float] = []
    for number in range(requests):
        known.append(timed_post(client, path, {"csrf_token": token,
                                               field: known_input(number % accounts)}))
        unknown.append(timed_post(client, path, {"csrf_token": token,
                                                 field: unknown_input(number)}))
    known_median, unknown_median = statistics.median(known), statistics.median(unknown)
    print(f"{name}: {requests} requests each; median known {known_median * 1000:.2f} ms, "
          f"unknown {unknown_median * 1000:.2f} ms, ratio {known_median / unknown_median:.2f}; "
          f"one request tells them apart {best_guess_rate(known, unknown):.0%} of the time")
    return known_median, unknown_median


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--requests", type=int, default=400,
                        help="requests per form and per kind of input")
    parser.add_argument("--accounts", type=int, default=200)
    parser.add_argument("--postgres-url", default="",
                        help="admin URL of a PostgreSQL server (default: a fresh SQLite file)")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="servicekonto-bench-"))
    failed = False
    with database(args.postgres_url, workdir) as url:
        app = make_app(url, workdir, args.accounts)
        print(f"database {url.split(':')[0]}")
        try:
            for name in FORMS:
                known, unknown = measure(app, name, args.requests, args.accounts)
                failed |= not TARGET[0] <= known / unknown <= TARGET[1]
        finally:
            db.bound(app).engine.dispose()  # the temporary database can be dropped then
    print(f"target: ratio between {TARGET[0]} and {TARGET[1]}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
