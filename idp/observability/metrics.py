"""Prometheus metrics of the IdP, and their text exposition at ``/metrics``.

Under gunicorn every worker counts for itself; with ``PROMETHEUS_MULTIPROC_DIR`` set (see
:mod:`idp.gunicorn_conf`) the counts go to files there and a scrape adds up all workers. Labels
hold only bounded values: outcomes, SAML status names, registered portals' entity ids and route
templates, never a raw path (tokens are in paths) or anything a citizen typed.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable, Iterator

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

log = logging.getLogger(__name__)

CONTENT_TYPE = CONTENT_TYPE_LATEST
# This process's metrics; in multiprocess mode their values live in files, read at scrape.
REGISTRY = CollectorRegistry(auto_describe=True)

LOGINS = Counter("servicekonto_logins", "Login attempts by outcome (success, failed, throttled).",
                 ["outcome"], registry=REGISTRY)
REGISTRATIONS = Counter("servicekonto_registrations", "New accounts registered (not yet active).",
                        registry=REGISTRY)
ACTIVATIONS = Counter("servicekonto_activations", "Accounts activated through their link.",
                      registry=REGISTRY)
SSO_RESPONSES = Counter("servicekonto_sso_responses",
                        "SAML responses sent to portals, by portal and status "
                        "(Success, RequestDenied, NoPassive, AuthnFailed, ...).",
                        ["portal", "status"], registry=REGISTRY)
LOGOUT_CHAINS = Counter("servicekonto_logout_chains",
                        "Single logouts finished, by outcome (complete, partial).",
                        ["outcome"], registry=REGISTRY)
THROTTLE_EVENTS = Counter("servicekonto_throttle_events",
                          "Login throttle events: refused (an attempt while throttled), "
                          "account_throttled (an account newly throttled).",
                          ["event"], registry=REGISTRY)
REQUEST_SECONDS = Histogram("servicekonto_http_request_duration_seconds",
                            "Time to answer a request, by route template and method.",
                            ["route", "method"], registry=REGISTRY,
                            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
                                     10.0))


class ScrapeTimeGauge(Collector):
    """A gauge whose value is read when Prometheus scrapes (nothing is stored per worker)."""

    def __init__(self, name: str, documentation: str, read: Callable[[], int | None]) -> None:
        self._name = name
        self._documentation = documentation
        self._read = read

    def collect(self) -> Iterator[GaugeMetricFamily]:
        try:
            value = self._read()
        except Exception as error:  # a scrape must answer even when the database does not
            log.warning("metric %s not read: %s", self._name, type(error).__name__)
            return
        if value is not None:
            yield GaugeMetricFamily(self._name, self._documentation, value=value)


class _ThisProcess(Collector):
    def collect(self) -> Iterable[Metric]:
        return REGISTRY.collect()


def exposition(gauges: list[ScrapeTimeGauge]) -> bytes:
    """The text format of all workers' metrics plus the scrape-time gauges."""
    registry = CollectorRegistry(auto_describe=False)
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    else:
        registry.register(_ThisProcess())
    for gauge in gauges:
        registry.register(gauge)
    return generate_latest(registry)
