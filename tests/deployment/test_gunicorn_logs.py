"""gunicorn's own log lines in the app's format: JSON in production, every line, from the
master's start to its shutdown, a worker's timeout and kill included; plain text when the app
logs text. A real gunicorn with the project's settings (idp/gunicorn_conf.py) on SQLite."""

from __future__ import annotations

import os
import re
import signal
import socket
import time
from pathlib import Path

import pytest

from idp.gunicorn_conf import log_format
from idp.saml.configuration import METADATA_PATH
from tests.deployment.gunicorn_process import (
    CLIENT_ADDRESS,
    RunningIdp,
    json_lines,
    migrate,
    portal_policies,
    production_env,
    running_gunicorn,
)

# The keys of every line the app writes in JSON (idp.observability.logs.JsonFormatter).
LOG_KEYS = {"time", "level", "logger", "message", "pid", "request_id", "route"}
BOOTED = re.compile(r"Booting worker with pid: (\d+)")


def production(tmp_path: Path, signing_keys: tuple[Path, Path]) -> dict[str, str]:
    env = production_env(tmp_path, f"sqlite:///{tmp_path / 'db.sqlite3'}", signing_keys,
                         portal_policies(tmp_path))
    migrate(env)
    return env


def error_log_once(running: RunningIdp, pattern: str, count: int = 1,
                   seconds: float = 40.0) -> str:
    """The error log, as soon as ``pattern`` occurs ``count`` times in it."""
    deadline = time.monotonic() + seconds
    while True:
        text = running.error_log.read_text(encoding="utf-8")
        if len(re.findall(pattern, text)) >= count or time.monotonic() > deadline:
            return text
        time.sleep(0.1)


def send_raw(running: RunningIdp, data: bytes) -> None:
    """Bytes no HTTP client would send, and the answer read to the end."""
    with socket.create_connection(("127.0.0.1", running.port), timeout=10) as connection:
        connection.sendall(data)
        while connection.recv(4096):
            pass


def test_every_line_gunicorn_writes_in_production_is_a_json_object_as_the_apps_are(
        tmp_path: Path, signing_keys: tuple[Path, Path]) -> None:
    env = production(tmp_path, signing_keys)
    # A short timeout, so that a stopped worker is declared hung soon; boots take ~1 s.
    with running_gunicorn(env, tmp_path, "--timeout", "8", workers=1) as (running, _):
        answer = running.get(METADATA_PATH)
        # The worker writes its access line after the answer: wait for this request's line
        # (the readiness probe fetched the metadata too) before stopping the worker.
        access_log = running.access_log_once(answer.headers["X-Request-ID"])
        # gunicorn refuses a request line without a version, and logs it: query and all.
        send_raw(running, b"GET /saml/sso?SAMLRequest=geheim-4711\r\n\r\n")
        hung = int(BOOTED.findall(running.error_log.read_text(encoding="utf-8"))[0])
        os.kill(hung, signal.SIGSTOP)
        error_log_once(running, "Booting worker", count=2)
    error_log = running.error_log.read_text(encoding="utf-8")

    entries = json_lines(error_log)
    for entry in entries:
        assert set(entry) >= LOG_KEYS, entry
    said = {entry["message"]: entry for entry in entries}
    messages = "\n".join(said)
    assert "Starting gunicorn" in messages and "Using worker: gthread" in messages
    booted = [entry for entry in entries if BOOTED.match(entry["message"])]
    assert len(booted) == 2
    # The pid field names the worker that wrote the line.
    assert all(str(entry["pid"]) in entry["message"] for entry in booted)
    assert said[f"WORKER TIMEOUT (pid:{hung})"]["level"] == "CRITICAL"
    killed = next(entry for entry in entries if entry["message"].startswith(
        f"Worker (pid:{hung}) was sent SIGKILL"))
    assert killed["level"] == "ERROR" and killed["logger"] == "gunicorn.error"
    refused = next(entry for entry in entries if "Invalid request from ip=" in entry["message"])
    assert refused["level"] == "WARNING"
    assert "Shutting down: Master" in messages
    assert "geheim-4711" not in error_log

    # The request id of the response, which the app's lines of that request carry too.
    metadata = next(entry for entry in json_lines(access_log)
                    if entry["request_id"] == answer.headers["X-Request-ID"])
    assert set(metadata) >= LOG_KEYS and metadata["logger"] == "gunicorn.access"
    assert metadata["route"] == METADATA_PATH
    assert metadata["message"].startswith(CLIENT_ADDRESS + " ")


def test_gunicorn_writes_its_plain_text_when_the_app_logs_text(
        tmp_path: Path, signing_keys: tuple[Path, Path]) -> None:
    env = production(tmp_path, signing_keys) | {"IDP_LOG_FORMAT": "text"}
    with running_gunicorn(env, tmp_path, workers=1) as (running, _):
        running.get("/aktivieren/abc?x=1")
        access_log = running.access_log_once("/aktivieren/<token>")
    error_log = running.error_log.read_text(encoding="utf-8")

    assert "[INFO] Booting worker with pid: " in error_log
    assert not [line for line in error_log.splitlines() if line.startswith("{")]
    assert access_log.startswith(CLIENT_ADDRESS + " ")
    assert '"GET /aktivieren/<token> HTTP/1.1" 404' in access_log


@pytest.mark.parametrize(("changes", "expected"), [
    ({}, "json"),
    ({"IDP_LOG_FORMAT": "text"}, "text"),
    ({"IDP_ENV": "development"}, "text"),
    ({"IDP_SECRET_KEY_FILE": "/nonexistent"}, "text"),  # broken: on_starting stops the start
], ids=["production", "text asked for", "development", "broken configuration"])
def test_gunicorn_logs_in_the_format_the_app_does(
        tmp_path: Path, signing_keys: tuple[Path, Path], changes: dict[str, str],
        expected: str) -> None:
    env = production_env(tmp_path, "sqlite://", signing_keys, portal_policies(tmp_path))

    assert log_format(env | changes) == expected
