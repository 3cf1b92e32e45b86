"""Logins per second through the app against raw argon2 verifications per second.

Both are measured in the same run, in alternating rounds, with the same argon2 parameters, so a
noisy machine slows both alike. The ratio says how much of a login is the hash: target ≥ 0.85
(everything but the hash costs less than 15 %).

    python benchmarks/login.py [--seconds 2] [--rounds 5] [--database-url URL]
    python benchmarks/login.py --memory    # RSS after 100 and after 10 000 logins

The memory run uses a trivial argon2 cost (the hash keeps no memory) and reports how much the
process grew between the 100th and the 10 000th login: anything kept per login shows there.
"""

from __future__ import annotations

import argparse
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

from argon2 import PasswordHasher, Type
from flask import Flask

from idp import create_app, schema
from idp.cli import main as servicekonto
from idp.config import Argon2Parameters

PASSWORD = "Kräftig-Grün 42"
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
TARGET = 0.85
MEMORY_TARGET_KIB = 10 * 1024


def login_once(app: Flask) -> None:
    """A complete login: a new browser loads the form (new session) and posts it."""
    client = app.test_client()
    page = client.get("/anmelden").get_data(as_text=True)
    token = CSRF.search(page).group(1)  # type: ignore[union-attr]
    response = client.post("/anmelden", data={
        "csrf_token": token, "username": "Benchmark", "password": PASSWORD})
    if response.status_code != 302:
        raise SystemExit(f"login failed with status {response.status_code}")


def app_rate(app: Flask, seconds: float) -> float:
    count, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        login_once(app)
        count += 1
    return count / (time.perf_counter() - start)


def raw_rate(hasher: PasswordHasher, stored: str, seconds: float) -> float:
    count, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        hasher.verify(stored, PASSWORD)
        count += 1
    return count / (time.perf_counter() - start)


def rss_kib() -> int:
    """Resident set size of this process (Linux)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS in /proc/self/status")


def make_app(database_url: str, parameters: Argon2Parameters) -> Flask:
    """A migrated IdP with one active citizen, "Benchmark"."""
    workdir = Path(tempfile.mkdtemp(prefix="servicekonto-bench-"))
    url = database_url or f"sqlite:///{workdir / 'bench.sqlite3'}"
    schema.upgrade(url)
    app = create_app(test_config={"environment": "development", "database_url": url,
                                  "instance_path": workdir,
                                  "base_url": "http://localhost", "argon2": parameters,
                                  "secret_key": "benchmark-" + "x" * 40}, env={})
    # A database given by URL may hold the citizen of an earlier run: start afresh.
    app.test_cli_runner().invoke(servicekonto, args=["user", "delete", "Benchmark", "--yes"])
    result = app.test_cli_runner().invoke(servicekonto, args=[
        "user", "create", "--username", "Benchmark", "--email",
        f"bench-{time.time_ns()}@example.org", "--given-name", "Bench", "--surname", "Mark",
        "--password", PASSWORD])
    if result.exit_code != 0:
        raise SystemExit(result.output)
    return app


def measure_ratio(app: Flask, parameters: Argon2Parameters, seconds: float,
                  rounds: int) -> int:
    raw = PasswordHasher(time_cost=parameters.time_cost, memory_cost=parameters.memory_cost_kib,
                         parallelism=parameters.parallelism, type=Type.ID)
    stored = raw.hash(PASSWORD)
    app_rate(app, 0.5)  # warm up caches, connections, templates
    raw_rate(raw, stored, 0.5)
    raws, apps = [], []
    for _ in range(rounds):
        raws.append(raw_rate(raw, stored, seconds))
        apps.append(app_rate(app, seconds))
    raw_median, app_median = statistics.median(raws), statistics.median(apps)
    ratio = app_median / raw_median
    database = app.config["SERVICEKONTO"].database_url.split(":")[0]
    print(f"argon2id t={parameters.time_cost} m={parameters.memory_cost_kib} KiB "
          f"p={parameters.parallelism}, database {database}")
    print(f"raw argon2 verifications/s: {raw_median:.2f}  (rounds: "
          f"{', '.join(f'{r:.2f}' for r in raws)})")
    print(f"logins through the app/s:   {app_median:.2f}  (rounds: "
          f"{', '.join(f'{a:.2f}' for a in apps)})")
    print(f"ratio: {ratio:.3f} (target >= {TARGET})")
    return 0 if ratio >= TARGET else 1


def measure_memory(app: Flask) -> int:
    for _ in range(100):
        login_once(app)
    after_100 = rss_kib()
    start = time.perf_counter()
    for _ in range(10_000 - 100):
        login_once(app)
    after_10000 = rss_kib()
    growth = after_10000 - after_100
    print(f"RSS after 100 logins: {after_100} KiB, after 10 000: {after_10000} KiB, "
          f"growth {growth} KiB (target < {MEMORY_TARGET_KIB} KiB); "
          f"{9_900 / (time.perf_counter() - start):.0f} logins/s with a trivial hash")
    return 0 if growth < MEMORY_TARGET_KIB else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=2.0, help="length of each round")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--database-url", default="", help="default: a fresh SQLite file")
    parser.add_argument("--memory", action="store_true",
                        help="measure memory growth over 10 000 logins instead")
    args = parser.parse_args()
    if args.memory:
        cheap = Argon2Parameters(time_cost=1, memory_cost_kib=8, parallelism=1)
        return measure_memory(make_app(args.database_url, cheap))
    parameters = Argon2Parameters()  # the production defaults
    return measure_ratio(make_app(args.database_url, parameters), parameters, args.seconds,
                         args.rounds)


if __name__ == "__main__":
    sys.exit(main())
