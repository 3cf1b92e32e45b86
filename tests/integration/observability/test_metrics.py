"""/metrics: what happened, counted by outcome, in Prometheus' text format."""

from __future__ import annotations

from typing import Any

from flask import Flask
from flask.testing import FlaskClient

from idp import create_app
from idp.db import db
from tests.conftest import Browser, log_in, register
from tests.observability_support import grew, scrape


def test_logins_registrations_and_activations_are_counted(
        app: Flask, citizen: Browser) -> None:
    before = scrape(citizen.client)
    register(citizen, username="MaxM", email="max@example.org")
    log_in(citizen, password="falsch")
    log_in(citizen)
    after = scrape(citizen.client)
    assert grew(before, after, "servicekonto_registrations_total") == 1
    assert grew(before, after, "servicekonto_logins_total", outcome="failed") == 1
    assert grew(before, after, "servicekonto_logins_total", outcome="success") == 1
    assert grew(before, after, "servicekonto_activations_total") == 0


def test_the_outbox_backlog_is_read_at_scrape_time(app: Flask, browser: Browser) -> None:
    assert scrape(browser.client)[("servicekonto_outbox_pending_mails", ())] == 0
    register(browser)
    assert scrape(browser.client)[("servicekonto_outbox_pending_mails", ())] == 1


def test_latency_is_recorded_by_route_template_never_by_the_token_in_the_path(
        client: FlaskClient) -> None:
    client.get("/aktivieren/ein-geheimes-token-1234")
    text = client.get("/metrics").get_data(as_text=True)
    assert 'route="/aktivieren/<token>"' in text
    assert "ein-geheimes-token-1234" not in text


def test_a_made_up_method_does_not_become_a_label_of_its_own(client: FlaskClient) -> None:
    client.open("/anmelden", method="BREW")
    text = client.get("/metrics").get_data(as_text=True)
    assert 'method="other"' in text and "BREW" not in text


def test_metrics_can_be_switched_off(settings: dict[str, Any]) -> None:
    app = create_app(test_config=settings | {"metrics_enabled": False}, env={})
    try:
        assert app.test_client().get("/metrics").status_code == 404
    finally:
        db.bound(app).engine.dispose()
