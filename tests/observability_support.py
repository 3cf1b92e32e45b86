"""What an operator sees of the IdP in a test: every log line (JSON) and the metrics."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from flask.testing import FlaskClient
from prometheus_client.parser import text_string_to_metric_families

from idp.observability.events import AUDIT
from idp.observability.logs import JsonFormatter, RequestContextFilter


@dataclass
class CapturedLogs(logging.Handler):
    """Lines of the application log and of the audit trail, formatted as in production."""

    lines: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        super().__init__()
        self.setFormatter(JsonFormatter())
        self.addFilter(RequestContextFilter())

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))

    def entries(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.lines]

    def audit(self) -> list[dict[str, Any]]:
        return [entry for entry in self.entries() if entry["logger"] == AUDIT.name]

    def events(self) -> list[str]:
        return [entry["event"] for entry in self.audit()]

    def __hash__(self) -> int:
        return id(self)


@contextmanager
def captured_logs() -> Iterator[CapturedLogs]:
    """Capture at the levels the app configured (INFO; pysaml2 only warnings)."""
    capture = CapturedLogs()
    loggers = (logging.getLogger(), AUDIT)
    for logger in loggers:
        logger.addHandler(capture)
    try:
        yield capture
    finally:
        for logger in loggers:
            logger.removeHandler(capture)


Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(client: FlaskClient) -> Samples:
    """Every sample of a scrape of /metrics, by name and labels."""
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.mimetype == "text/plain"
    return {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(response.get_data(as_text=True))
            for sample in family.samples}


def grew(before: Samples, after: Samples, name: str, **labels: str) -> float:
    """How much a sample grew between two scrapes."""
    key = (name, tuple(sorted(labels.items())))
    return after.get(key, 0.0) - before.get(key, 0.0)
