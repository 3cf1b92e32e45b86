"""Operator logs: one JSON object per line (or plain text in development), each with the
request id and the route template of the request it belongs to.

The request id and route live in context variables set by the WSGI layer
(:mod:`idp.observability.web`), so services without Flask log them too. The route is the
template (``/aktivieren/<token>``), never the path: tokens are in paths.
"""

from __future__ import annotations

import json
import logging
import sys
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

REQUEST_ID: ContextVar[str] = ContextVar("servicekonto_request_id", default="-")
ROUTE: ContextVar[str] = ContextVar("servicekonto_route", default="-")
# The attribute of a log record that carries an audit event's structured fields.
AUDIT_FIELDS = "audit"
_OURS = "_servicekonto_handler"


class RequestContextFilter(logging.Filter):
    """Adds ``request_id`` and ``route`` of the current request (``-`` outside one)."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = REQUEST_ID.get()
        record.route = ROUTE.get()
        return True


class JsonFormatter(logging.Formatter):
    """``{"time", "level", "logger", "message", "pid", "request_id", "route", ...}`` on one
    line; gunicorn's own lines too (:mod:`idp.gunicorn_conf`). The pid tells the workers apart."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "pid": record.process,
            "request_id": getattr(record, "request_id", REQUEST_ID.get()),
            "route": getattr(record, "route", ROUTE.get()),
        }
        fields = getattr(record, AUDIT_FIELDS, None)
        if isinstance(fields, dict):
            entry.update({key: value for key, value in fields.items() if key not in entry})
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s [%(request_id)s %(route)s] %(message)s"


def handler(log_format: str) -> logging.Handler:
    """A stderr handler in ``log_format`` ("json" or "text"), with the request context."""
    stream = logging.StreamHandler(sys.stderr)
    stream.setFormatter(JsonFormatter() if log_format == "json" else
                        logging.Formatter(TEXT_FORMAT))
    stream.addFilter(RequestContextFilter())
    setattr(stream, _OURS, True)
    return stream


def configure(log_format: str, audit_logger: logging.Logger) -> None:
    """Install our handler on the root logger (application logs, level INFO) and a JSON one
    on ``audit_logger``, which does not propagate: the audit trail is always JSON, and stays
    out of the application log. Calling it again (another app in the process) replaces ours."""
    for logger, fmt in ((logging.getLogger(), log_format), (audit_logger, "json")):
        for old in [h for h in logger.handlers if getattr(h, _OURS, False)]:
            logger.removeHandler(old)
        logger.addHandler(handler(fmt))
        if logger.level == logging.NOTSET or logger.level > logging.INFO:
            logger.setLevel(logging.INFO)
    audit_logger.propagate = False
    # pysaml2 logs whole SAML messages at INFO and DEBUG: only its warnings reach our log.
    logging.getLogger("saml2").setLevel(logging.WARNING)
    # Alembic tells at INFO which plugins it set up, each time a worker checks the schema.
    logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)
