"""Audit events of the account's own pages: throttling, password reset, deletion."""

from __future__ import annotations

from flask import Flask

from tests.conftest import Browser, log_in
from tests.integration.accounts.test_selfservice_account import delete_account
from tests.integration.accounts.test_selfservice_email_change import (
    NEW_EMAIL,
    ask_for_change,
    confirm,
    confirmation_path,
)
from tests.integration.accounts.test_selfservice_password_reset import (
    NEW_PASSWORD,
    request_reset,
    reset_path,
    set_password,
)
from tests.observability_support import captured_logs, grew, scrape


def test_a_guessed_password_series_is_audited_and_counted_as_throttled(
        app: Flask, citizen: Browser) -> None:
    before = scrape(citizen.client)
    with captured_logs() as logs:
        for attempt in range(8):
            log_in(citizen, password=f"Geraten-{attempt}")
    events = logs.events()
    assert "account_throttled" in events and "login_throttled" in events
    hashes = {entry["username_hash"] for entry in logs.audit()}
    assert len(hashes) == 1  # one account, one pseudonym
    after = scrape(citizen.client)
    assert grew(before, after, "servicekonto_logins_total", outcome="throttled") >= 1
    assert grew(before, after, "servicekonto_throttle_events_total",
                event="account_throttled") == 1
    assert not any("Geraten-" in line or "ErikaM" in line for line in logs.lines)


def test_a_password_reset_and_a_deletion_are_audited(app: Flask, citizen: Browser) -> None:
    with captured_logs() as logs:
        request_reset(citizen)
        path = reset_path(app)
        set_password(citizen, path)
        log_in(citizen, password=NEW_PASSWORD)
        delete_account(citizen, password=NEW_PASSWORD)
    assert [e for e in logs.events() if e in ("password_reset", "account_deleted")] == [
        "password_reset", "account_deleted"]
    token = path.rsplit("/", 1)[-1]
    assert not any(token in line or NEW_PASSWORD in line for line in logs.lines)


def test_an_e_mail_change_is_audited_without_either_address(app: Flask, citizen: Browser) -> None:
    log_in(citizen)
    with captured_logs() as logs:
        ask_for_change(citizen)
        path = confirmation_path(app)
        confirm(citizen, path)
    assert "email_changed" in logs.events()
    for secret in (NEW_EMAIL, "erika.mustermann@example.org", path.rsplit("/", 1)[-1]):
        assert not any(secret in line for line in logs.lines), secret
