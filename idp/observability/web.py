"""The IdP's operator endpoints and per-request bookkeeping, as WSGI middleware.

``/healthz``, ``/readyz`` and ``/metrics`` are answered here, before Flask: no session is
opened (no database read for a cookie, no cookie set), no CSRF token, no metadata refresh,
no Host check to fail a probe on a container's own address. Every other request gets a
request id (a trusted proxy's ``X-Request-ID``, else a new one), echoed in the response, and
its duration recorded under its route template.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from flask import Flask, request

from idp.observability import metrics
from idp.observability.health import Readiness
from idp.observability.logs import REQUEST_ID, ROUTE

HEALTH_PATH = "/healthz"
READY_PATH = "/readyz"
METRICS_PATH = "/metrics"
OPERATOR_PATHS = frozenset({HEALTH_PATH, READY_PATH, METRICS_PATH})
KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "OPTIONS"})
REQUEST_ID_HEADER = "X-Request-ID"
# What a proxy's request id may look like: short, and nothing that could split a log line.
_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
# The environ key the Flask side leaves the matched route template under.
ROUTE_KEY = "servicekonto.route"
UNMATCHED = "<unmatched>"

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def request_id_for(environ: dict[str, Any], trust_header: bool) -> str:
    """The proxy's request id when we sit behind one that sets it, else a fresh one.

    Without a proxy (``IDP_PROXY_COUNT=0``) the header comes from the client, who could pick
    ids to confuse the log, so it is ignored.
    """
    if trust_header:
        given = str(environ.get("HTTP_X_REQUEST_ID", ""))
        if _REQUEST_ID.fullmatch(given):
            return given
    return uuid.uuid4().hex


@dataclass
class OperatorMiddleware:
    """Wraps the app's WSGI callable (outside ProxyFix: it needs no forwarded values)."""

    app: WsgiApp
    readiness: Readiness
    gauges: list[metrics.ScrapeTimeGauge]
    trust_request_id: bool
    metrics_enabled: bool

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]
                 ) -> Iterable[bytes]:
        path, method = environ.get("PATH_INFO", ""), environ.get("REQUEST_METHOD", "")
        request_id = request_id_for(environ, self.trust_request_id)
        # The route for the log: ours, or "-" until Flask has matched one.
        id_token = REQUEST_ID.set(request_id)
        route_token = ROUTE.set(path if path in OPERATOR_PATHS else "-")
        try:
            if method in ("GET", "HEAD") and (answer := self._operator_answer(path)) is not None:
                status, content_type, body = answer
                start_response(status, [("Content-Type", content_type),
                                        ("Content-Length", str(len(body))),
                                        ("Cache-Control", "no-store"),
                                        (REQUEST_ID_HEADER, request_id)])
                return [b"" if method == "HEAD" else body]
            return self._timed(environ, start_response, request_id)
        finally:
            REQUEST_ID.reset(id_token)
            ROUTE.reset(route_token)

    def _timed(self, environ: dict[str, Any], start_response: Callable[..., Any],
               request_id: str) -> Iterable[bytes]:
        def start_with_id(status: str, headers: list[tuple[str, str]],
                          exc_info: Any = None) -> Any:
            headers = [(k, v) for k, v in headers if k.lower() != "x-request-id"]
            return start_response(status, [*headers, (REQUEST_ID_HEADER, request_id)], exc_info)

        started = time.perf_counter()
        try:
            return self.app(environ, start_with_id)
        finally:
            method = str(environ.get("REQUEST_METHOD", ""))
            # A client picks the method: any other than ours would be a new label value.
            method = method if method in KNOWN_METHODS else "other"
            metrics.REQUEST_SECONDS.labels(environ.get(ROUTE_KEY, UNMATCHED), method).observe(
                time.perf_counter() - started)

    def _operator_answer(self, path: str) -> tuple[str, str, bytes] | None:
        if path == HEALTH_PATH:
            return "200 OK", "application/json", b'{"status": "alive"}'
        if path == READY_PATH:
            ready, checks = self.readiness.run()
            body = json.dumps({"status": "ready" if ready else "not ready", "checks": checks})
            return ("200 OK" if ready else "503 Service Unavailable", "application/json",
                    body.encode())
        if path == METRICS_PATH and self.metrics_enabled:
            return "200 OK", metrics.CONTENT_TYPE, metrics.exposition(self.gauges)
        return None


def remember_route(app: Flask) -> None:
    """Let the log and the latency histogram know the matched route template."""
    @app.before_request
    def _route_for_log() -> None:
        if request.url_rule is not None:
            ROUTE.set(request.url_rule.rule)

    @app.teardown_request
    def _route_for_metrics(_error: BaseException | None) -> None:
        rule = request.url_rule
        request.environ[ROUTE_KEY] = rule.rule if rule is not None else UNMATCHED
