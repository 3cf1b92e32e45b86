"""Observability: health and readiness probes, Prometheus metrics, structured logs and the
audit trail of security events.

:func:`init_app` wires it into the IdP; services report what happened through
:mod:`idp.observability.events`, one line at each place.

The metrics (and the modules that count them) are imported only when the app is built: the
gunicorn master imports :mod:`idp.observability.logs` for its own log lines before it sets
``PROMETHEUS_MULTIPROC_DIR``, and prometheus-client picks its storage at import.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from flask import Flask
from sqlalchemy import Engine, func, select

from idp.config import Config
from idp.observability import logs
from idp.observability.health import Check, Readiness, SigningKeyCheck, database_check, redis_check

if TYPE_CHECKING:
    from idp.observability.metrics import ScrapeTimeGauge
    from idp.samlkit.keys import KeyPair


def start_logging(config: Config) -> None:
    """Logs in ``config.log_format`` and the audit trail; first thing at start, so that the
    start's own messages (a portal's metadata unreachable) are in the format too."""
    from idp.observability import events

    logs.configure(config.log_format, events.AUDIT)
    events.use_pseudonym_secret(config.secret_key)


def init_app(app: Flask, config: Config, engine: Engine, keys: KeyPair) -> None:
    """The operator endpoints and request ids in front of the app's WSGI callable (call it
    last, after ProxyFix)."""
    from idp.observability.web import OperatorMiddleware, remember_route

    checks: dict[str, Check] = {"database": database_check(engine)}
    if config.redis_url:
        checks["redis"] = redis_check(config.redis_url)
    checks["signing_key"] = SigningKeyCheck(keys.key_file, keys.certificate)
    from idp.observability.management import EXPOSITION
    from idp.observability.metrics import exposition

    remember_route(app)
    gauges = [outbox_backlog(engine)]
    # With a management port (IDP_METRICS_PORT) /metrics is answered there only, see
    # idp.observability.management; the public port gives it the 404 of any unknown page.
    app.extensions[EXPOSITION] = lambda: exposition(gauges)
    app.wsgi_app = OperatorMiddleware(  # type: ignore[method-assign]
        app.wsgi_app, Readiness(checks), gauges, trust_request_id=config.proxy_count > 0,
        metrics_enabled=config.metrics_enabled and config.metrics_port is None)


def outbox_backlog(engine: Engine) -> ScrapeTimeGauge:
    """Mails waiting to be sent (neither sent nor given up), counted at each scrape."""
    from idp.mail.models import OutboxMail
    from idp.observability.metrics import ScrapeTimeGauge

    query = select(func.count()).select_from(OutboxMail).where(
        OutboxMail.sent_at.is_(None), OutboxMail.failed_at.is_(None))

    def read() -> int | None:
        with engine.connect() as connection:
            return connection.scalar(query)

    return ScrapeTimeGauge("servicekonto_outbox_pending_mails",
                           "Mails in the outbox not yet sent nor given up.", read)
