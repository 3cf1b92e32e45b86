"""The management port (``IDP_METRICS_PORT``, like Keycloak's 9000): ``/metrics`` on a listener
of its own, so that the public port never answers it and the proxy needs no rule to keep it in.

Each process that serves the IdP opens the listener once: every gunicorn worker (after it has
built the app, :mod:`idp.gunicorn_conf`) and ``servicekonto run``. The workers share the port
(``SO_REUSEPORT``: the kernel hands each connection to one of them), and each answers with the
counts of all workers, which they write to ``PROMETHEUS_MULTIPROC_DIR``; so a scrape sees the
same numbers whichever worker takes it, as on the public port before.
"""

from __future__ import annotations

import logging
import socket
import threading
from collections.abc import Callable, Iterable
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from flask import Flask

from idp.config import Config
from idp.observability.web import METRICS_PATH

log = logging.getLogger(__name__)

# The key of app.extensions under which init_app leaves the app's exposition (all workers'
# metrics and the scrape-time gauges, as bytes in Prometheus' text format).
EXPOSITION = "servicekonto.metrics"


class _SharedPortServer(ThreadingMixIn, WSGIServer):
    """A threaded WSGI server whose port every worker may bind as well."""

    daemon_threads = True

    def server_bind(self) -> None:
        self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        super().server_bind()


class _SharedPortServer6(_SharedPortServer):
    address_family = socket.AF_INET6


class _Unlogged(WSGIRequestHandler):
    """No line per scrape on stderr (the scraper asks every few seconds)."""

    def log_message(self, format: str, *args: Any) -> None:
        pass


def metrics_app(exposition: Callable[[], bytes]) -> Callable[..., Iterable[bytes]]:
    """A WSGI app answering ``GET``/``HEAD /metrics`` and nothing else (404)."""
    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        method = environ.get("REQUEST_METHOD", "")
        if environ.get("PATH_INFO") != METRICS_PATH or method not in ("GET", "HEAD"):
            start_response("404 Not Found", [("Content-Type", "text/plain"),
                                             ("Content-Length", "9")])
            return [b"not found"]
        from idp.observability.metrics import CONTENT_TYPE

        body = exposition()
        start_response("200 OK", [("Content-Type", CONTENT_TYPE),
                                  ("Content-Length", str(len(body))),
                                  ("Cache-Control", "no-store")])
        return [b"" if method == "HEAD" else body]
    return app


def serve_metrics(app: Flask) -> WSGIServer | None:
    """Answer ``/metrics`` of ``app`` on ``IDP_METRICS_PORT`` from a thread of this process
    (None: no port set). An address in use stops the process with the reason."""
    config: Config = app.config["SERVICEKONTO"]
    if config.metrics_port is None:
        return None
    server_class = _SharedPortServer6 if ":" in config.metrics_host else _SharedPortServer
    try:
        server = make_server(config.metrics_host, config.metrics_port,
                             metrics_app(app.extensions[EXPOSITION]),
                             server_class=server_class, handler_class=_Unlogged)
    except OSError as error:
        log.error("IDP_METRICS_PORT: cannot listen on %s:%s: %s", config.metrics_host,
                  config.metrics_port, error.strerror)
        raise
    threading.Thread(target=server.serve_forever, name="servicekonto-metrics",
                     daemon=True).start()
    log.info("metrics at http://%s:%s%s", config.metrics_host, config.metrics_port, METRICS_PATH)
    return server
