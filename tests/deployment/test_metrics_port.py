"""``IDP_METRICS_PORT``: /metrics on a management port of its own, under a real gunicorn with
two workers; the public port then answers /metrics as any unknown page (404)."""

from __future__ import annotations

import http.client
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.deployment.gunicorn_process import (
    RunningIdp,
    free_port,
    migrate,
    portal_policies,
    production_env,
    running_gunicorn,
)

SAMPLE = 'servicekonto_http_request_duration_seconds_count{method="GET",route="<unmatched>"}'


@pytest.fixture(scope="module")
def idp_with_metrics_port(tmp_path_factory: pytest.TempPathFactory,
                          signing_keys: tuple[Path, Path]) -> Iterator[tuple[RunningIdp, int]]:
    folder = tmp_path_factory.mktemp("metrics-port")
    env = production_env(folder, f"sqlite:///{folder / 'servicekonto.sqlite3'}", signing_keys,
                         portal_policies(folder))
    port = free_port()
    env |= {"IDP_METRICS_PORT": str(port), "IDP_METRICS_HOST": "127.0.0.1"}
    migrate(env)
    with running_gunicorn(env, folder) as (running, _):
        # The second worker may still be building its app when the first answers.
        deadline = time.monotonic() + 40
        while listeners(running, port) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        yield running, port


def listeners(running: RunningIdp, port: int) -> int:
    """How many workers said they listen on the management port."""
    return running.error_log.read_text(encoding="utf-8").count(
        f"metrics at http://127.0.0.1:{port}/metrics")


def scrape(port: int, path: str = "/metrics") -> tuple[int, str]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    connection.request("GET", path)
    response = connection.getresponse()
    text = response.read().decode()
    connection.close()
    return response.status, text


def test_the_public_port_no_longer_answers_metrics(
        idp_with_metrics_port: tuple[RunningIdp, int]) -> None:
    running, _ = idp_with_metrics_port

    assert running.get("/metrics").status == 404
    assert running.get("/healthz").status == 200  # the probes stay where they were


def test_the_management_port_adds_up_the_requests_of_both_workers_at_every_scrape(
        idp_with_metrics_port: tuple[RunningIdp, int]) -> None:
    running, port = idp_with_metrics_port
    assert listeners(running, port) == 2  # every worker listens, the port shared
    for _ in range(12):
        running.get("/hilfe-zaehlen")

    def counted() -> float:
        status, text = scrape(port)
        assert status == 200
        return float(next(line.split()[-1] for line in text.splitlines()
                          if line.startswith(SAMPLE)))

    # Each scrape may reach either worker's listener; each must see all requests of both.
    counts = {counted() for _ in range(8)}
    assert len(counts) == 1 and counts.pop() >= 12
    assert "servicekonto_outbox_pending_mails" in scrape(port)[1]


def test_the_management_port_answers_nothing_but_metrics(
        idp_with_metrics_port: tuple[RunningIdp, int]) -> None:
    _, port = idp_with_metrics_port

    assert scrape(port, "/anmelden")[0] == 404
    assert scrape(port, "/readyz")[0] == 404
