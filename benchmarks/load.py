"""A mixed load against the production shape: gunicorn (idp/gunicorn_conf.py) on PostgreSQL,
driven from a second process over HTTP, as citizens behind the proxy would.

The mix: registrations (form, review, save: one argon2 hash), logins (form and POST: one argon2
verification) and SSO round trips of logged-in citizens who agreed already (AuthnRequest in,
signed Response with a signed Assertion out: two RSA signatures). First at saturation (every
client thread sends its next request as soon as the last is answered), then the same mix at half
of that throughput, started at a fixed rate (the SSO p95 there is the latency figure). Per
kind: throughput, p50/p95/p99 latency, errors.

The reference is measured in the same run, on the same cores: raw argon2 verifications per
second with the IdP's parameters, raw RSA signatures per second (RSA-2048 and the key size the
IdP signs with), each with as many processes as there are CPUs. From them, the throughput the
mix could reach if argon2 and RSA were all the IdP did; the figure to watch is how close the
measured throughput comes to it (target: within 20 %). The load generator shares the machine,
so on a small one that ratio is a floor.

Issue 12's two figures, for each variant and side by side at the end: the SSO round trip's p95
at half of saturation (target < 30 ms) and the logins per second at saturation. ``--compare`` runs
the behaviour before (argon2 in the request threads at their priority, ``IDP_ARGON2_NICE=0``) and
the defaults in one go, ``--rounds`` alternates them to even out a machine that gets busier;
``--variant name:KEY=VALUE,...`` adds any other settings (``IDP_*``, ``GUNICORN_CMD_ARGS``).

    python -m benchmarks.load --postgres-url postgresql+psycopg://postgres@127.0.0.1/postgres
        [--seconds 20] [--clients 16] [--mix 1:3:6] [--idp-key-bits 2048]
        [--compare] [--rounds 2] [--variant nice10:IDP_ARGON2_NICE=10]

(issue 12 measures ``--mix 1:4:5``: 10 % registrations, 40 % logins, 50 % SSO rounds).
"""

from __future__ import annotations

import argparse
import itertools
import multiprocessing
import os
import queue
import random
import secrets
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from argon2 import PasswordHasher, Type
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from sqlalchemy import create_engine, func, select

from idp import schema
from idp.accounts.models import Citizen as Account
from idp.config import Argon2Parameters
from idp.mail.models import OutboxMail
from idp.samlkit.keys import generate_key_pair
from tests.deployment.gunicorn_process import (
    PORTAL,
    PORTAL_ACS,
    RunningIdp,
    portal_policies,
    production_env,
    running_gunicorn,
)
from tests.flows.conftest import Portal, field_value
from tests.postgres import temporary_database
from tests.saml_support import key_pair, sp_config
from tests.scale.cluster import (
    PASSWORD,
    ProxiedBrowser,
    activation_path,
    authn_request_path,
    log_in,
    portal_for,
    register,
    unique_citizen,
)

KINDS = ("registration", "login", "sso")
# Expensive operations per kind: (argon2 hashes or verifications, RSA signatures).
COST = {"registration": (1, 0), "login": (1, 0), "sso": (0, 2)}
TARGET = 0.80


# --- the raw references, on every core ---------------------------------------------------------

def _argon2_count(parameters: Argon2Parameters, seconds: float) -> int:
    hasher = PasswordHasher(time_cost=parameters.time_cost,
                            memory_cost=parameters.memory_cost_kib,
                            parallelism=parameters.parallelism, type=Type.ID)
    stored = hasher.hash(PASSWORD)
    return _count(lambda: hasher.verify(stored, PASSWORD), seconds)


def _rsa_count(bits: int, seconds: float) -> int:
    key = rsa.generate_private_key(public_exponent=65537, key_size=bits)
    message = secrets.token_bytes(600)  # about a SignedInfo
    return _count(lambda: key.sign(message, padding.PKCS1v15(), hashes.SHA256()), seconds)


def _count(operation: Callable[[], object], seconds: float) -> int:
    count, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        operation()
        count += 1
    return count


def measure_reference(parameters: Argon2Parameters, idp_key_bits: int,
                      seconds: float) -> Reference:
    """The raw rates with one process per CPU, all at once."""
    processes = os.cpu_count() or 1
    with multiprocessing.get_context("spawn").Pool(processes) as pool:

        def rate(job: Callable[..., int], *args: Any) -> float:
            return sum(pool.starmap(job, [(*args, seconds)] * processes)) / seconds

        return Reference(rate(_argon2_count, parameters), rate(_rsa_count, 2048),
                         rate(_rsa_count, idp_key_bits))


@dataclass(frozen=True)
class Reference:
    argon2: float
    rsa2048: float
    rsa_idp: float

    def mix_limit(self, mix: dict[str, float]) -> float:
        """Operations per second of ``mix`` if argon2 and RSA took all the machine's time."""
        seconds = sum(share * (COST[kind][0] / self.argon2 + COST[kind][1] / self.rsa_idp)
                      for kind, share in mix.items())
        return 1 / seconds


# --- the citizens' side (a second process) -----------------------------------------------------

@dataclass
class Results:
    latencies: dict[str, list[float]] = field(default_factory=lambda: {k: [] for k in KINDS})
    errors: dict[str, int] = field(default_factory=lambda: dict.fromkeys(KINDS, 0))
    seconds: float = 0.0


@dataclass
class Citizen:
    """A load client: a logged-in, consented citizen, and AuthnRequests made ahead (the
    portal's work is not the IdP's; one more is made if they run out)."""

    browser: ProxiedBrowser
    username: str
    portal: Portal
    requests: list[str]

    def next_request(self) -> str:
        return self.requests.pop() if self.requests else authn_request_path(self.portal)


def _registration(idp: RunningIdp, _citizen: Citizen) -> bool:
    browser = ProxiedBrowser(idp)
    register(browser, unique_citizen())
    return True


def _login(idp: RunningIdp, citizen: Citizen) -> bool:
    return log_in(ProxiedBrowser(idp), citizen.username).status == 302


def _sso(_idp: RunningIdp, citizen: Citizen) -> bool:
    return "SAMLResponse" in citizen.browser.get(citizen.next_request()).html


ROUNDS: dict[str, Callable[[RunningIdp, Citizen], bool]] = {
    "registration": _registration, "login": _login, "sso": _sso}


def run_load(idp: RunningIdp, citizens: list[Citizen], mix: dict[str, float],
             seconds: float, rate: float | None = None) -> Results:
    """One thread per citizen, kinds drawn by ``mix``: as fast as answered, or started at a
    fixed ``rate`` per second overall."""
    results, lock = Results(), threading.Lock()
    kinds, weights = list(mix), list(mix.values())
    ticket = itertools.count()
    start = time.perf_counter()
    deadline = start + seconds

    def client(citizen: Citizen, seed: int) -> None:
        draw = random.Random(seed)  # a load mix, not a secret
        while True:
            if rate is not None:
                due = start + next(ticket) / rate
                time.sleep(max(0.0, due - time.perf_counter()))
            if time.perf_counter() >= deadline:
                return
            kind = draw.choices(kinds, weights)[0]
            began = time.perf_counter()
            try:
                good = ROUNDS[kind](idp, citizen)
            except (AssertionError, OSError):
                good = False
            took = time.perf_counter() - began
            with lock:
                results.latencies[kind].append(took)
                results.errors[kind] += not good

    threads = [threading.Thread(target=client, args=(citizen, n))
               for n, citizen in enumerate(citizens)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    results.seconds = time.perf_counter() - start
    return results


def prepare_citizens(idp: RunningIdp, database_url: str, portal: Portal,
                     count: int, requests_each: int) -> list[Citizen]:
    """Registered, activated, logged in, agreed once to the portal; AuthnRequests made."""
    citizens = []
    for _ in range(count):
        browser, registration = ProxiedBrowser(idp), unique_citizen()
        register(browser, registration)
        link = activation_path(database_url, registration["email"])
        browser.get(link)
        browser.submit(link)
        to_login = browser.get(authn_request_path(portal))
        back = log_in(browser, registration["username"], path=to_login.location)
        consent = browser.get(back.location)
        browser.submit("/saml/zustimmung", {
            "transaction": field_value(consent.html, "transaction"), "decision": "agree"})
        requests = [authn_request_path(portal) for _ in range(requests_each)]
        citizens.append(Citizen(browser, registration["username"], portal, requests))
    return citizens


def load_process(port: int, folder: str, database_url: str, portal_keys: tuple[Path, Path],
                 clients: int, mix: dict[str, float], seconds: float,
                 answers: multiprocessing.Queue[Any]) -> None:
    """The second process: prepares its citizens, then saturation, then half of it."""
    idp = RunningIdp(port, Path(folder) / "access.log", Path(folder) / "error.log", Path(folder))
    portal = portal_for(idp, portal_keys)
    citizens = prepare_citizens(idp, database_url, portal, clients,
                                 requests_each=min(2000, int(seconds * 60) + 20))
    saturated = run_load(idp, citizens, mix, seconds)
    throughput = sum(map(len, saturated.latencies.values())) / saturated.seconds
    half = run_load(idp, citizens, mix, seconds / 2, rate=throughput * 0.5)
    answers.put((saturated, half, throughput))


# --- the run -----------------------------------------------------------------------------------

@contextmanager
def fresh_database(admin_url: str) -> Iterator[str]:
    """A new, migrated PostgreSQL database, dropped afterwards."""
    with temporary_database(admin_url, "servicekonto_load") as url:
        schema.upgrade(url)
        yield url


def stored_accounts_and_mails(database_url: str) -> tuple[int, int]:
    engine = create_engine(database_url)
    try:
        with engine.connect() as connection:
            return (int(connection.scalar(select(func.count()).select_from(Account)) or 0),
                    int(connection.scalar(select(func.count()).select_from(OutboxMail)) or 0))
    finally:
        engine.dispose()


def percentiles(values: list[float]) -> str:
    if len(values) < 2:
        return "p50 -, p95 -, p99 -" if not values else f"p50 {values[0] * 1000:.0f} ms"
    cuts = statistics.quantiles(values, n=100, method="inclusive")
    return f"p50 {cuts[49] * 1000:.0f} ms, p95 {cuts[94] * 1000:.0f} ms, " \
           f"p99 {cuts[98] * 1000:.0f} ms"


@dataclass
class Measured:
    """One variant's run: its name, the settings it changed, what the load generator saw."""

    name: str
    settings: dict[str, str]
    saturated: Results
    half: Results
    throughput: float
    accounts: int
    mails: int
    load: float

    def per_second(self, kind: str) -> float:
        return len(self.saturated.latencies[kind]) / self.saturated.seconds

    def sso_p95_half_ms(self) -> float:
        values = self.half.latencies["sso"]
        if len(values) < 2:
            return float("nan")
        return statistics.quantiles(values, n=100, method="inclusive")[94] * 1000


def report(measured: Measured, reference: Reference, mix: dict[str, float]) -> float:
    """Print one variant's figures; the share of the argon2/RSA limit reached."""
    saturated, half, throughput = measured.saturated, measured.half, measured.throughput
    done = {kind: len(values) for kind, values in saturated.latencies.items()}
    measured_mix = {kind: count / max(1, sum(done.values())) for kind, count in done.items()}
    limit = reference.mix_limit(measured_mix)
    changed = " ".join(f"{k}={v}" for k, v in measured.settings.items()) or "as configured"
    print(f"[{measured.name}] ({changed}; load average {measured.load:.2f} at its start) mix "
          f"{mix_label(mix)} (registration:login:sso), {saturated.seconds:.1f} s at saturation:")
    for kind in KINDS:
        values = saturated.latencies[kind]
        print(f"  {kind:<12} {len(values) / saturated.seconds:7.2f}/s  {percentiles(values)}  "
              f"errors {saturated.errors[kind]}")
    ratio = throughput / limit
    print(f"  throughput {throughput:.2f}/s of {limit:.2f}/s that argon2 and RSA allow for "
          f"this mix: {ratio:.2f} (target >= {TARGET}, within 20 %)")
    done_half = sum(map(len, half.latencies.values())) / half.seconds
    print(f"  at half of saturation ({throughput * 0.5:.2f}/s asked, {done_half:.2f}/s done):")
    for kind in KINDS:
        print(f"  {kind:<12} {percentiles(half.latencies[kind])}  errors {half.errors[kind]}")
    # Every registration wrote its account and its activation mail in one transaction.
    print(f"  accounts stored: {measured.accounts}, mails in the outbox: {measured.mails}",
          flush=True)
    return ratio


def summary(runs: list[Measured], mix: dict[str, float]) -> None:
    """The two figures of issue 12 per variant, its rounds pooled, side by side (throughput
    also as a multiple of the first variant's)."""
    print(f"summary, mix {mix_label(mix)} (registration:login:sso), all in this run:")
    names = list(dict.fromkeys(run.name for run in runs))
    pooled = {name: [run for run in runs if run.name == name] for name in names}

    def login_rate(name: str) -> float:
        rounds = pooled[name]
        return sum(len(run.saturated.latencies["login"]) for run in rounds) / \
            sum(run.saturated.seconds for run in rounds)

    for name in names:
        rounds = pooled[name]
        half = [value for run in rounds for value in run.half.latencies["sso"]]
        p95 = statistics.quantiles(half, n=100, method="inclusive")[94] * 1000 \
            if len(half) >= 2 else float("nan")
        against = "" if name == names[0] else \
            f" ({login_rate(name) / max(login_rate(names[0]), 1e-9):.2f} x {names[0]})"
        each = ", ".join(f"{run.sso_p95_half_ms():.0f}" for run in rounds)
        print(f"  {name:<8} SSO p95 at half saturation {p95:6.1f} ms (target < "
              f"{SSO_P95_TARGET_MS} ms; rounds: {each}); login throughput at saturation "
              f"{login_rate(name):.2f}/s{against}")


def mix_label(mix: dict[str, float]) -> str:
    return ":".join(f"{mix.get(kind, 0):g}" for kind in KINDS)


def measure(name: str, settings: dict[str, str], args: argparse.Namespace, folder: Path,
            keys: tuple[Path, Path], portal_keys: tuple[Path, Path],
            mix: dict[str, float]) -> Measured:
    """Start gunicorn with ``settings`` added to the production environment on a fresh
    database, let the second process load it, stop it."""
    policies, load = folder / "policies", os.getloadavg()[0]
    with fresh_database(args.postgres_url) as database_url:
        env = production_env(folder, database_url, keys, policies) | settings
        with running_gunicorn(env, folder) as (idp, _):
            answers: multiprocessing.Queue[Any] = multiprocessing.get_context("spawn").Queue()
            generator = multiprocessing.get_context("spawn").Process(
                target=load_process, args=(idp.port, str(folder), database_url, portal_keys,
                                           args.clients, mix, args.seconds, answers))
            generator.start()
            while True:  # the generator's own traceback says why it stopped
                try:
                    saturated, half, throughput = answers.get(timeout=1)
                    break
                except queue.Empty:
                    if not generator.is_alive():
                        raise SystemExit(f"[{name}] the load generator stopped "
                                         f"(exit code {generator.exitcode})") from None
            generator.join()
        accounts, mails = stored_accounts_and_mails(database_url)
    return Measured(name, settings, saturated, half, throughput, accounts, mails, load)


def variants(args: argparse.Namespace) -> list[tuple[str, dict[str, str]]]:
    """``--compare``: before (hashes in the request threads at full priority) and after (the
    defaults); ``--variant name:KEY=VALUE,...`` for any other settings; else the defaults."""
    chosen = [("before", dict(BEFORE)), ("after", {})] if args.compare else []
    for text in args.variant:
        name, _, assignments = text.partition(":")
        settings = dict(item.split("=", 1) for item in assignments.split(",") if item)
        chosen.append((name, settings))
    return chosen or [("as-is", {})]


# The behaviour before issue 12's fix: argon2 in the request's own thread, at its priority.
BEFORE = {"IDP_ARGON2_NICE": "0"}
SSO_P95_TARGET_MS = 30


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--postgres-url", default=os.environ.get("IDP_TEST_POSTGRES_URL", ""),
                        help="an admin URL; a fresh database is made and dropped")
    parser.add_argument("--seconds", type=float, default=20.0, help="length of the load")
    parser.add_argument("--clients", type=int, default=16, help="concurrent citizens")
    parser.add_argument("--mix", default="1:3:6",
                        help="registration:login:sso (issue 12's figures: 1:4:5)")
    parser.add_argument("--reference-seconds", type=float, default=2.0)
    parser.add_argument("--idp-key-bits", type=int, default=3072,
                        help="the IdP's signing key (3072 in production)")
    parser.add_argument("--compare", action="store_true",
                        help=f"run twice in one go: before ({BEFORE}) and after (the defaults)")
    parser.add_argument("--variant", action="append", default=[], metavar="NAME:KEY=VALUE,...",
                        help="one more run with these settings (IDP_*, GUNICORN_CMD_ARGS)")
    parser.add_argument("--rounds", type=int, default=1,
                        help="run the variants this many times, alternating")
    args = parser.parse_args()
    if not args.postgres_url:
        print("--postgres-url (or IDP_TEST_POSTGRES_URL) is required", file=sys.stderr)
        return 2
    mix = dict(zip(KINDS, map(float, args.mix.split(":")), strict=True))
    reference_load = os.getloadavg()[0]
    reference = measure_reference(Argon2Parameters(), args.idp_key_bits, args.reference_seconds)
    folder = Path(tempfile.mkdtemp(prefix="servicekonto-load-"))
    signing = (generate_key_pair(folder / "signing-keys", bits=args.idp_key_bits)
               if args.idp_key_bits >= 3072 else None)
    keys = (signing.key_file, signing.cert_file) if signing \
        else key_pair(folder / "signing-keys", "idp", bits=args.idp_key_bits)
    portal_keys = key_pair(folder / "portal-keys", "portal")
    portal_policies(folder, sp_config(PORTAL, PORTAL_ACS, *portal_keys))
    print(f"machine: {os.cpu_count()} CPUs, load average {reference_load:.2f} before the "
          f"run; raw argon2id verifications/s: {reference.argon2:.1f}"
          f"; raw RSA-2048 signatures/s: {reference.rsa2048:.0f}; raw RSA-{args.idp_key_bits} "
          f"(the IdP's key) signatures/s: {reference.rsa_idp:.0f}", flush=True)
    # Variants alternate round by round, so that a machine getting busier hits all alike; each
    # is reported as soon as it is done.
    runs = []
    for _ in range(args.rounds):
        for name, settings in variants(args):
            runs.append(measure(name, settings, args, folder, keys, portal_keys, mix))
            report(runs[-1], reference, mix)
    summary(runs, mix)
    return 0 if all(run.accounts == run.mails for run in runs) else 1


if __name__ == "__main__":
    sys.exit(main())
