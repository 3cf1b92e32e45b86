"""Operator logs: one JSON object per line with the request id, echoed to the client."""

from __future__ import annotations

import json
import logging
import os
from typing import Any

from flask import Flask
from flask.testing import FlaskClient

from idp import create_app
from idp.config import load_config
from idp.db import db
from idp.observability.logs import JsonFormatter, RequestContextFilter
from tests.conftest import Browser, log_in
from tests.observability_support import captured_logs


def test_every_response_carries_a_fresh_request_id(client: FlaskClient) -> None:
    first, second = client.get("/anmelden"), client.get("/healthz")
    assert len(first.headers["X-Request-ID"]) == 32
    assert first.headers["X-Request-ID"] != second.headers["X-Request-ID"]


def test_a_clients_request_id_is_ignored_without_a_proxy(client: FlaskClient) -> None:
    response = client.get("/anmelden", headers={"X-Request-ID": "chosen-by-client"})
    assert response.headers["X-Request-ID"] != "chosen-by-client"


def test_the_proxys_request_id_is_taken_and_echoed(settings: dict[str, Any]) -> None:
    app = create_app(test_config=settings | {"proxy_count": 1}, env={})
    try:
        client = app.test_client()
        taken = client.get("/anmelden", headers={"X-Request-ID": "caddy-4711"})
        assert taken.headers["X-Request-ID"] == "caddy-4711"
        forged = client.get("/anmelden", headers={"X-Request-ID": "a\" b;c"})
        assert forged.headers["X-Request-ID"] != "a\" b;c"
    finally:
        db.bound(app).engine.dispose()


def test_log_lines_name_the_request_id_and_the_route_template(
        app: Flask, citizen: Browser) -> None:
    with captured_logs() as logs:
        response = log_in(citizen, password="falsch")
    entry = next(e for e in logs.entries() if e.get("event") == "login_failed")
    assert entry["request_id"] == response.headers["X-Request-ID"]
    assert entry["route"] == "/anmelden"
    assert {"time", "level", "logger", "message"} <= set(entry)


def test_a_log_record_becomes_one_json_line() -> None:
    record = logging.LogRecord("idp.test", logging.WARNING, __file__, 1, "Zeile %s\nzwei",
                               ("eins",), None)
    RequestContextFilter().filter(record)
    line = JsonFormatter().format(record)
    assert "\n" not in line
    assert json.loads(line) | {"time": "-"} == {
        "time": "-", "level": "WARNING", "logger": "idp.test", "message": "Zeile eins\nzwei",
        "pid": os.getpid(), "request_id": "-", "route": "-"}


def test_logs_are_json_in_production_and_text_in_development() -> None:
    production = {"IDP_ENV": "production", "IDP_BASE_URL": "https://sk.example.org",
                  "IDP_SECRET_KEY": "s" * 40, "IDP_MAIL_SERVER": "smtp.example.org"}
    assert load_config(production).log_format == "json"
    assert load_config({"IDP_ENV": "development"}).log_format == "text"
    assert load_config({"IDP_ENV": "development", "IDP_LOG_FORMAT": "JSON"}).log_format == "json"
