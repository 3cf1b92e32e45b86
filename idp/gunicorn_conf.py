"""gunicorn settings for the IdP: ``gunicorn -c python:idp.gunicorn_conf 'idp:create_app()'``.

Part of the package rather than of ``docker/``, so that a host without containers (systemd, a
VM) runs the IdP with the same limits, and so that the limits are tested together with the code
they protect (tests/deployment: the bindings' size caps, the argon2 cost). Every value can be
overridden on the command line or in ``GUNICORN_CMD_ARGS``; ``WEB_CONCURRENCY`` sets the number
of workers.

- **Workers and threads** (gthread): each login, registration and password change hashes with
  argon2id and holds ``IDP_ARGON2_MEMORY_KIB`` (64 MiB by default) while it does, so at most
  workers × threads hashes, and that much memory, are in use at once. The defaults (a worker per
  CPU, at least two, four threads each) shrink until that peak fits in half of the memory the
  container may use (``SERVICEKONTO_ARGON2_BUDGET_MIB`` sets the budget instead); explicit values
  that do not fit stop the start. argon2 releases the GIL, so a worker's threads hash on several
  cores at once. The hashes run in threads of their own at a lower CPU priority
  (``IDP_ARGON2_NICE``, :class:`idp.accounts.passwords.HashingSlots`): an SSO round trip or a page
  gets a core ahead of them instead of sharing it with every running hash (issue 12).
- **No preloading**: every worker builds the app itself, with its own database pool, signing
  key, crypto backend and portal metadata; nothing is shared across ``fork``, and a ``HUP``
  (after a key rollover, a new portal file) makes new workers load everything anew.
- **Request line unlimited**: an HTTP-Redirect SAMLRequest may be 64 KiB of base64
  (``idp.samlkit.bindings.MAX_ENCODED_BYTES``), percent-encoded in the query string. gunicorn caps
  a set limit at 8190 bytes, so only "unlimited" (0) lets it through; the bindings refuse query
  strings over twice that cap, and the reverse proxy bounds the line (Caddy: ``max_header_size``).
- **Forwarded headers** are left to the app (``IDP_PROXY_COUNT``, werkzeug's ProxyFix), which
  counts proxies instead of trusting addresses; gunicorn interprets none of them.
- **Access log** without query strings, tokens or cookies: see :class:`RouteAccessLog`.
- **Log format**: gunicorn's own lines (start, workers booting, timing out, killed, its errors)
  and the access log follow the app's ``IDP_LOG_FORMAT``: one JSON object per line, with the
  app's formatter, in production; gunicorn's plain text in development.
- **Metrics** of all workers at ``/metrics``: each worker writes its counts to files in
  ``PROMETHEUS_MULTIPROC_DIR`` (a fresh folder on tmpfs unless set), emptied at start; see
  :func:`prepare_metrics_folder`. With ``IDP_METRICS_PORT`` each worker also listens there
  (the port shared), and only there: :mod:`idp.observability.management`.
"""

from __future__ import annotations

import math
import os
import re
import shutil
import sys
import tempfile
from collections.abc import Mapping, MutableMapping
from pathlib import Path
from typing import Any

from flask import Flask
from gunicorn.glogging import Logger  # type: ignore[import-untyped]
from werkzeug.exceptions import HTTPException
from werkzeug.routing import Map

from idp.config import Argon2Parameters, ConfigError, load_config
from idp.observability.logs import REQUEST_ID, ROUTE, JsonFormatter

BUDGET_VARIABLE = "SERVICEKONTO_ARGON2_BUDGET_MIB"
METRICS_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"
_made_metrics_folder: Path | None = None
DEFAULT_THREADS = 4
# The longest first path segment of an unknown URL that is logged (the rest becomes "…").
UNKNOWN_SEGMENT_CHARS = 64


# --- sizing ------------------------------------------------------------------------------------

def argon2_memory_mib(env: Mapping[str, str]) -> float:
    """The memory one argon2id hash holds, as the app will read it (its default if unset)."""
    raw = env.get("IDP_ARGON2_MEMORY_KIB", "")
    kib = int(raw) if raw.isdigit() else Argon2Parameters().memory_cost_kib
    return kib / 1024


def available_cpus() -> int:
    """CPUs this process may use: its affinity, lowered by a cgroup v2 CPU quota."""
    cpus = len(os.sched_getaffinity(0))
    try:
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text(encoding="ascii").split()
    except (OSError, ValueError):
        return cpus
    if quota == "max":
        return cpus
    return max(1, min(cpus, math.ceil(int(quota) / int(period))))


def memory_limit_mib() -> float:
    """The memory this container may use (cgroup v2 or v1 limit), else the machine's."""
    for limit_file in ("/sys/fs/cgroup/memory.max",
                       "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        try:
            raw = Path(limit_file).read_text(encoding="ascii").strip()
        except OSError:
            continue
        # cgroup v1 writes a huge number for "no limit".
        if raw.isdigit() and int(raw) < 2**60:
            return int(raw) / 2**20
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**20


def argon2_budget_mib(env: Mapping[str, str]) -> float:
    """Memory all concurrent argon2 hashes may use together: the setting, else half the limit.

    The other half is left for the workers themselves (the app, pysaml2, lxml: ~150 MiB each).
    """
    raw = env.get(BUDGET_VARIABLE, "")
    if raw:
        if not raw.isdigit():
            raise ConfigError(f"{BUDGET_VARIABLE}: expected a whole number of MiB, got {raw!r}")
        return float(raw)
    return memory_limit_mib() / 2


def default_size(cpus: int, budget_mib: float, hash_mib: float,
                 threads: int = DEFAULT_THREADS) -> tuple[int, int]:
    """Workers and threads per worker: a worker per CPU (at least two, so that a restarting
    worker never leaves the IdP without one), then fewer threads and fewer workers until
    workers × threads concurrent hashes fit the budget."""
    count = max(2, cpus)
    while count * threads * hash_mib > budget_mib and threads > 1:
        threads -= 1
    while count * threads * hash_mib > budget_mib and count > 1:
        count -= 1
    return count, threads


def check_argon2_budget(count: int, threads: int, hash_mib: float, budget_mib: float) -> str:
    """A line for the log describing the peak; :class:`ConfigError` if it exceeds the budget."""
    peak = count * threads * hash_mib
    if peak > budget_mib:
        raise ConfigError(
            f"{count} Worker × {threads} Threads × {hash_mib:g} MiB argon2id = {peak:g} MiB "
            f"gleichzeitig bei Anmeldungen, mehr als die {budget_mib:g} MiB dafür "
            f"({BUDGET_VARIABLE}, sonst die Hälfte des Arbeitsspeichers). Weniger Worker "
            f"oder Threads wählen, IDP_ARGON2_MEMORY_KIB senken oder mehr Speicher geben.")
    return (f"{count} workers x {threads} threads; argon2id {hash_mib:g} MiB per hash, "
            f"at most {peak:g} MiB for concurrent logins (budget {budget_mib:.0f} MiB)")


# --- gunicorn's logs ---------------------------------------------------------------------------

def log_format(env: Mapping[str, str]) -> str:
    """The app's log format ("json" or "text"), for gunicorn's lines too; "text" while the
    configuration is broken, which :func:`on_starting` then reports before anything starts."""
    try:
        return load_config(env).log_format
    except ConfigError:
        return "text"


# Atoms that would write a query string (SAMLRequest, SAMLResponse, RelayState), a token in a
# path, a session cookie or a Redirect-binding Location into the log. The environment atoms
# (``%({name}e)s``) hold the raw URI, the query string and the cookies: all of them go.
_SECRET_HEADER_ATOMS = frozenset({"{cookie}i", "{authorization}i", "{referer}i",
                                  "{set-cookie}o", "{location}o"})
_QUERY = re.compile(r"\?[^\s'\"]*")


class RouteAccessLog(Logger):  # type: ignore[misc]
    """gunicorn's logger, writing the route (``/aktivieren/<token>``) instead of the URL.

    Activation, reset and e-mail links carry their token in the path and SAML messages travel
    in the query string; neither belongs in a log. A URL no route matches is logged down to
    its first segment. Error messages that quote a request target lose its query string.
    """

    url_map: Map | None = None

    def setup(self, cfg: Any) -> None:
        super().setup(cfg)
        # The handlers gunicorn made (stderr, --error-logfile, --access-logfile, syslog) stay;
        # in JSON they write the app's objects, so that a log collector reads every line.
        if log_format(os.environ) == "json":
            for handler in (*self.error_log.handlers, *self.access_log.handlers):
                handler.setFormatter(JsonFormatter())

    def use_routes_of(self, app: object) -> None:
        """Match paths against this app's routes (the Flask app of the worker)."""
        url_map = getattr(app, "url_map", None)
        self.url_map = url_map if isinstance(url_map, Map) else None

    def route_of(self, path: str, method: str) -> str:
        """What the log shows for a request to ``path``: its route, never its values."""
        if self.url_map is not None:
            adapter = self.url_map.bind("servicekonto.invalid")
            try:
                rule, _ = adapter.match(path, method=method, return_rule=True)
            except HTTPException:  # no route, wrong method, or a redirect to the slashed URL
                pass
            else:
                return str(rule.rule)
        first, _, rest = path.lstrip("/").partition("/")
        shown = "/" + first[:UNKNOWN_SEGMENT_CHARS]
        return shown + "/…" if rest or len(first) > UNKNOWN_SEGMENT_CHARS else shown

    def atoms(self, resp: Any, req: Any, environ: dict[str, Any],
              request_time: Any) -> dict[str, Any]:
        atoms: dict[str, Any] = super().atoms(resp, req, environ, request_time)
        method = str(environ.get("REQUEST_METHOD", "-"))
        route = ROUTE.get()  # matched once per request, by access() below
        atoms.update(U=route, q="-", f="-",
                     r=f"{method} {route} {environ.get('SERVER_PROTOCOL', '-')}")
        return {key: value for key, value in atoms.items()
                if not key.endswith("}e") and key not in _SECRET_HEADER_ATOMS}

    def access(self, resp: Any, req: Any, environ: dict[str, Any], request_time: Any) -> None:
        # The app has reset its request id and route by now: the JSON line takes the id the
        # response carries (X-Request-ID), so that it matches the app's lines of the request;
        # the route, matched here once, serves both the JSON field and the line (atoms()).
        request_id = next((str(value) for name, value in resp.headers
                           if name.lower() == "x-request-id"), "-")
        route = self.route_of(str(environ.get("PATH_INFO") or "/"),
                              str(environ.get("REQUEST_METHOD", "-")))
        id_token, route_token = REQUEST_ID.set(request_id), ROUTE.set(route)
        try:
            super().access(resp, req, environ, request_time)
        finally:
            REQUEST_ID.reset(id_token)
            ROUTE.reset(route_token)

    def exception(self, msg: str, *args: Any, **kwargs: Any) -> None:
        # gunicorn: "Error handling request %s %s" with the method and the raw request target.
        if len(args) == 2 and isinstance(args[1], str) and args[1].startswith("/"):
            args = (args[0], self.route_of(args[1].partition("?")[0], str(args[0])))
        super().exception(msg, *args, **kwargs)

    def warning(self, msg: str, *args: Any, **kwargs: Any) -> None:
        # gunicorn: "Invalid request from ip=…: Invalid Request Line '…'" quotes the line.
        super().warning(_QUERY.sub("?…", msg), *args, **kwargs)


# --- the settings gunicorn reads ---------------------------------------------------------------

def _default_size_here() -> tuple[int, int]:
    try:
        budget = argon2_budget_mib(os.environ)
    except ConfigError:  # on_starting reports it; the defaults only need a number
        budget = memory_limit_mib() / 2
    return default_size(available_cpus(), budget, argon2_memory_mib(os.environ))


_SIZE = _default_size_here()

wsgi_app = "idp:create_app()"
worker_class = "gthread"
workers = int(os.environ.get("WEB_CONCURRENCY", _SIZE[0]))
threads = _SIZE[1]
preload_app = False

# gthread answers the master's heartbeat from its main thread, so `timeout` only catches a
# worker that hangs as a whole. A graceful stop lets running logins finish (compose waits
# longer: stop_grace_period). keepalive is longer than the proxy's idle timeout for upstream
# connections (Caddy: 60 s in docker/Caddyfile), so the proxy, not gunicorn, closes an idle
# connection, and never reuses one that gunicorn is just closing.
timeout = 30
graceful_timeout = 20
keepalive = 75

limit_request_line = 0  # see the module docstring: 8190 is gunicorn's maximum otherwise
limit_request_fields = 64  # a browser sends ~20, the proxy adds X-Forwarded-*
limit_request_field_size = 8190  # our cookies hold a session id; nothing needs longer lines

forwarded_allow_ips = ""
secure_scheme_headers: dict[str, str] = {}
forwarder_headers = ""

accesslog = "-"
errorlog = "-"
logger_class = RouteAccessLog
# Address, time, request (route only), status, bytes, duration in ms, user agent.
access_log_format = '%(h)s %(t)s "%(r)s" %(s)s %(b)s %(M)sms "%(a)s"'

# The heartbeat file on tmpfs: on a disk, its fchmod can block (gunicorn's FAQ). gunicorn makes
# the file with mkstemp, so a shared folder is safe.
_TMPFS = "/dev/shm"  # noqa: S108
worker_tmp_dir = _TMPFS if os.path.isdir(_TMPFS) else None
# gunicorn's runtime control socket is not needed and would want a writable $HOME.
control_socket_disable = True


def on_starting(server: Any) -> None:
    """Stop before forking when a setting is wrong: exit code 2 and the reason, as the CLI."""
    try:
        config = load_config()
        summary = check_argon2_budget(server.cfg.workers, server.cfg.threads,
                                      config.argon2.memory_cost_kib / 1024,
                                      argon2_budget_mib(os.environ))
    except ConfigError as error:
        print(f"Servicekonto kann nicht starten: {error}", file=sys.stderr, flush=True)
        raise SystemExit(2) from None
    server.log.info("servicekonto: %s", summary)
    prepare_metrics_folder(os.environ)


def prepare_metrics_folder(env: MutableMapping[str, str]) -> Path:
    """The folder where workers write their metrics (``PROMETHEUS_MULTIPROC_DIR``, else a new
    one on tmpfs), emptied of an earlier run's files, whose counts would be added otherwise.

    Set in the master before any worker is forked, so that every worker inherits it; the
    master itself never imports the metrics (prometheus-client picks its storage at import).
    """
    global _made_metrics_folder
    if not env.get(METRICS_VARIABLE):
        _made_metrics_folder = Path(tempfile.mkdtemp(prefix="servicekonto-metrics-",
                                                     dir=worker_tmp_dir))
    folder = Path(env.get(METRICS_VARIABLE) or str(_made_metrics_folder))
    folder.mkdir(parents=True, exist_ok=True)
    for stale in folder.glob("*.db"):
        stale.unlink()
    env[METRICS_VARIABLE] = str(folder)
    return folder


def on_exit(server: Any) -> None:
    """Remove the metrics folder made at start (one given by the operator stays)."""
    if _made_metrics_folder is not None:
        shutil.rmtree(_made_metrics_folder, ignore_errors=True)


def child_exit(server: Any, worker: Any) -> None:
    """A worker ended: its metric files stay (its counts still count), marked as dead."""
    if os.environ.get(METRICS_VARIABLE):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)  # type: ignore[no-untyped-call]


def post_worker_init(worker: Any) -> None:
    """Give this worker's access log the routes of the app it has just built, and open the
    management port (``IDP_METRICS_PORT``) in this worker, shared with the others."""
    if isinstance(worker.log, RouteAccessLog):
        worker.log.use_routes_of(worker.wsgi)
    if isinstance(worker.wsgi, Flask):
        # Here, not at the top: the master must not import the metrics (module docstring).
        from idp.observability.management import serve_metrics

        serve_metrics(worker.wsgi)
