"""/healthz and /readyz: cheap, without a session, and 503 naming the failed check."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import create_engine

from idp.observability.health import database_check
from tests.conftest import app_with


def test_healthz_answers_alive_without_a_cookie_or_a_database(client: FlaskClient) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.get_json() == {"status": "alive"}
    assert "Set-Cookie" not in response.headers


def test_readyz_reports_database_and_signing_key_ready(client: FlaskClient) -> None:
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ready",
                                   "checks": {"database": "ok", "signing_key": "ok"}}
    assert "Set-Cookie" not in response.headers


def test_readyz_answers_503_naming_the_database_when_it_is_gone(
        app: Flask, client: FlaskClient, tmp_path: Path, monkeypatch: Any) -> None:
    broken = create_engine(f"sqlite:///{tmp_path / 'missing' / 'db.sqlite3'}")
    readiness = app.wsgi_app.readiness  # type: ignore[attr-defined]
    monkeypatch.setitem(readiness.checks, "database", database_check(broken))
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.get_json() == {"status": "not ready",
                                   "checks": {"database": "failed", "signing_key": "ok"}}
    assert "sqlite" not in response.get_data(as_text=True)


def test_readyz_fails_when_the_signing_key_does_not_match_the_certificate(
        app: Flask, client: FlaskClient, tmp_path: Path) -> None:
    from idp.samlkit.keys import generate_key_pair

    other = generate_key_pair(tmp_path / "other")
    readiness = app.wsgi_app.readiness  # type: ignore[attr-defined]
    readiness.checks["signing_key"].key_file = other.key_file
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.get_json()["checks"]["signing_key"] == "failed"


def test_readyz_checks_redis_when_it_is_configured(settings: dict[str, Any]) -> None:
    with app_with(settings, redis_url="redis://127.0.0.1:1/0") as app:
        response = app.test_client().get("/readyz")
    assert response.status_code == 503
    assert response.get_json()["checks"]["redis"] == "failed"


def test_readyz_reports_redis_ready_when_it_answers(settings: dict[str, Any]) -> None:
    redis_url = os.environ.get("IDP_TEST_REDIS_URL", "")
    if not redis_url:
        pytest.skip("IDP_TEST_REDIS_URL is not set")
    with app_with(settings, redis_url=redis_url) as app:
        response = app.test_client().get("/readyz")
    assert response.status_code == 200
    assert response.get_json()["checks"]["redis"] == "ok"
