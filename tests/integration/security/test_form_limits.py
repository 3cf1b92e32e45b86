"""One client cannot flood the forms anyone may send: registration, the "vergessen" forms, the
reset form. Over a limit it gets "Zu viele Anfragen" (429) with Retry-After, and nothing is
written or sent; when every argon2 slot is taken, "zurzeit überlastet" (503)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

from flask import Flask
from redis import Redis
from sqlalchemy import func, select
from werkzeug.test import TestResponse

from idp.accounts.models import ForgottenRequest
from idp.accounts.registration import USERNAME_TAKEN
from idp.config import FormLimits, RequestLimit
from idp.container import app_parts
from idp.db import db
from idp.security.models import LoginThrottle
from tests.conftest import REDIS_URL, REGISTRATION, Browser, Clock, app_with, log_in, register
from tests.hashing_support import all_slots_taken
from tests.integration.security.conftest import (
    activation_path,
    assert_german_error,
    citizens,
)

HOUR = timedelta(hours=1)
DEFAULTS = FormLimits()
TOO_MANY_FROM_YOU = "Von Ihrem Internetanschluss kamen in kurzer Zeit zu viele"
TOO_MANY_OVERALL = "Das Servicekonto erhält gerade sehr viele"
OVERLOADED = "Das Servicekonto ist zurzeit überlastet"


def browser_at(app: Flask, address: str = "127.0.0.1") -> Browser:
    """A citizen's browser at its own client address."""
    client = app.test_client()
    client.environ_base["REMOTE_ADDR"] = address
    return Browser(client)


def register_as(browser: Browser, number: int) -> TestResponse:
    """Register citizen ``number`` (a username and address of its own); the save's answer."""
    response: TestResponse = register(browser, username=f"Buerger{number}",
                                      email=f"buerger{number}@example.org")
    return response


def assert_too_many(response: TestResponse, *phrases: str) -> int:
    """A German 429 page saying ``phrases``; returns its Retry-After in seconds."""
    assert_german_error(response, 429, "Zu viele Anfragen", *phrases)
    retry_after = int(response.headers["Retry-After"])
    assert retry_after >= 1
    return retry_after


def forgotten_requests(app: Flask) -> int:
    """How many "vergessen" requests wait for the mail sender."""
    with app.app_context():
        return int(db.session.scalar(select(func.count()).select_from(ForgottenRequest)) or 0)


def with_limits(settings: dict[str, Any], **limits: RequestLimit) -> dict[str, Any]:
    return settings | {"form_limits": FormLimits(**limits)}


# --- registration --------------------------------------------------------------------------


def test_one_registration_too_many_from_one_address_is_refused_and_nothing_is_saved(
        app: Flask, state: Callable[[], dict[str, Any]]) -> None:
    allowed = DEFAULTS.register.per_address
    for number in range(allowed):
        assert register_as(browser_at(app), number).status_code == 302
    before = state()

    refused = register_as(browser_at(app), allowed)

    retry_after = assert_too_many(refused, TOO_MANY_FROM_YOU, "Registrierungen",
                                  "Bitte versuchen Sie es in 60 Minuten erneut")
    assert 3500 < retry_after <= 3600
    assert state() == before  # no account, no activation mail


def test_another_address_can_register_while_one_is_refused(settings: dict[str, Any]) -> None:
    with app_with(with_limits(settings, register=RequestLimit(2, 1000, HOUR))) as app:
        for number in range(3):
            register_as(browser_at(app), number)
        assert register_as(browser_at(app, "198.51.100.7"), 3).status_code == 302
        assert [c.username for c in citizens(app)] == ["Buerger0", "Buerger1", "Buerger3"]


def test_addresses_of_one_ipv6_network_count_as_one_client(settings: dict[str, Any]) -> None:
    with app_with(with_limits(settings, register=RequestLimit(2, 1000, HOUR))) as app:
        for number in range(2):
            register_as(browser_at(app, f"2001:db8:1:2::{number + 1}"), number)
        refused = register_as(browser_at(app, "2001:db8:1:2:ffff::99"), 2)
        assert_too_many(refused, TOO_MANY_FROM_YOU)
        assert register_as(browser_at(app, "2001:db8:1:3::1"), 3).status_code == 302


def test_registration_works_again_from_the_address_when_the_hour_is_over(
        settings: dict[str, Any], clock: Clock) -> None:
    with app_with(with_limits(settings, register=RequestLimit(2, 1000, HOUR))) as app:
        for number in range(3):
            register_as(browser_at(app), number)
        clock.advance(hours=1)
        assert register_as(browser_at(app), 3).status_code == 302


def test_all_addresses_together_are_refused_over_the_overall_limit(
        settings: dict[str, Any], clock: Clock) -> None:
    limits = with_limits(settings, register=RequestLimit(10, 3, HOUR))
    with app_with(limits) as app:
        for number in range(3):
            assert register_as(browser_at(app, f"192.0.2.{number}"), number).status_code == 302
        clock.advance(minutes=20)
        refused = register_as(browser_at(app, "198.51.100.7"), 3)
        retry_after = assert_too_many(refused, TOO_MANY_OVERALL, "Registrierungen",
                                      "Bitte versuchen Sie es in 40 Minuten erneut")
        assert 2300 < retry_after <= 2400
        assert len(citizens(app)) == 3


def test_probing_for_taken_usernames_is_limited(app: Flask) -> None:
    register_as(browser_at(app), 0)
    prober = browser_at(app)
    prober.get("/registrieren/benutzername")
    for _ in range(DEFAULTS.register_form.per_address - 1):
        answer = prober.submit("/registrieren/benutzername", REGISTRATION | {
            "username": "Buerger0"})
        assert answer.status_code == 422
        assert USERNAME_TAKEN in prober.last_html

    refused = prober.submit("/registrieren/benutzername", REGISTRATION | {
        "username": "Buerger0"})

    assert_too_many(refused, TOO_MANY_FROM_YOU)
    assert USERNAME_TAKEN not in prober.last_html


# --- the forms that send mail, and the reset form ------------------------------------------


def test_the_vergessen_forms_and_resending_share_one_limit(
        app: Flask, state: Callable[[], dict[str, Any]]) -> None:
    client = browser_at(app)
    for number in range(DEFAULTS.mail_request.per_address // 2):
        client.get("/passwort-vergessen")
        assert client.submit("/passwort-vergessen", {"username": f"Jemand{number}"}) \
            .status_code == 200
        client.get("/benutzername-vergessen")
        assert client.submit("/benutzername-vergessen", {
            "email": f"jemand{number}@example.org"}).status_code == 200
    before, asked = state(), forgotten_requests(app)

    client.get("/passwort-vergessen")
    refused_password = client.submit("/passwort-vergessen", {"username": "ErikaM"})
    client.get("/passwort-vergessen")
    refused_resend = client.submit("/aktivieren/irgendein-link/erneut-senden")

    assert assert_too_many(refused_password, "E-Mail-Anforderungen") <= 15 * 60
    assert_too_many(refused_resend, "E-Mail-Anforderungen")
    assert state() == before
    assert forgotten_requests(app) == asked  # nothing left for the mail sender to answer
    assert browser_at(app, "198.51.100.7").get("/passwort-vergessen").status_code == 200


def test_resending_to_one_registration_too_often_says_when_to_try_again(
        app: Flask, clock: Clock) -> None:
    browser = browser_at(app)
    register_as(browser, 0)
    path = activation_path(app)
    clock.advance(hours=24, seconds=1)
    for _ in range(5):
        browser.get(path)
        assert browser.submit(path + "/erneut-senden").status_code == 200
    browser.get(path)
    refused = browser.submit(path + "/erneut-senden")
    assert_german_error(refused, 429, "bereits mehrere Aktivierungslinks")
    assert refused.headers["Retry-After"] == "3600"


def test_new_passwords_through_reset_links_are_limited(app: Flask) -> None:
    client = browser_at(app)
    new_password = {"password": "Wolken-Meer 731", "password_confirm": "Wolken-Meer 731"}
    for _ in range(DEFAULTS.password_reset.per_address):
        client.get("/passwort-vergessen")
        answer = client.submit("/passwort-vergessen/kein-gueltiger-link", new_password)
        assert answer.status_code == 404
    client.get("/passwort-vergessen")
    refused = client.submit("/passwort-vergessen/kein-gueltiger-link", new_password)
    assert_too_many(refused, "neue Passwörter")


def test_showing_the_forms_is_not_counted(app: Flask) -> None:
    client = browser_at(app)
    for _ in range(DEFAULTS.register_form.per_address + 1):
        assert client.get("/registrieren/benutzername").status_code == 200
        assert client.get("/passwort-vergessen").status_code == 200
    assert register_as(client, 0).status_code == 302


# --- where the counters live ---------------------------------------------------------------



def counter_rows(app: Flask) -> list[tuple[str, str, int]]:
    with app.app_context():
        return sorted((row.scope, row.key, row.failures)
                      for row in db.session.scalars(select(LoginThrottle)))


def test_registrations_are_counted_in_the_database_without_redis(app: Flask) -> None:
    for number in range(2):
        register_as(browser_at(app), number)
    assert counter_rows(app) == [("register", "address:127.0.0.1", 2),
                                 ("register", "overall", 2),
                                 ("register_form", "address:127.0.0.1", 2),
                                 ("register_form", "overall", 2)]


def test_registrations_are_limited_through_redis_when_it_is_configured(
        settings: dict[str, Any], redis_client: Redis) -> None:
    limits = with_limits(settings, register=RequestLimit(2, 1000, HOUR))
    with app_with(limits, redis_url=REDIS_URL) as app:
        for number in range(2):
            assert register_as(browser_at(app), number).status_code == 302
        assert_too_many(register_as(browser_at(app), 2), TOO_MANY_FROM_YOU)
        assert register_as(browser_at(app, "198.51.100.7"), 3).status_code == 302
        assert counter_rows(app) == []
    assert redis_client.hget("servicekonto:limit:register:address:127.0.0.1", "requests") == b"3"
    assert redis_client.hget("servicekonto:limit:register:overall", "requests") == b"3"
    # The key expires with its window (EXPIREAT rounds up to the next whole second).
    assert 3500 < redis_client.ttl("servicekonto:limit:register:overall") <= 3601


def test_registrations_stay_limited_in_the_database_while_redis_does_not_answer(
        settings: dict[str, Any]) -> None:
    limits = with_limits(settings, register=RequestLimit(2, 1000, HOUR))
    with app_with(limits, redis_url="redis://127.0.0.1:1/0") as app:
        for number in range(2):
            assert register_as(browser_at(app), number).status_code == 302
        assert_too_many(register_as(browser_at(app), 2), TOO_MANY_FROM_YOU)
        assert ("register", "address:127.0.0.1", 3) in counter_rows(app)


# --- an overloaded IdP ---------------------------------------------------------------------


def test_registration_while_every_hashing_slot_is_taken_gets_503_and_keeps_nothing(
        settings: dict[str, Any]) -> None:
    with app_with(settings, argon2_concurrency=1, argon2_wait_seconds=0.05) as app:
        browser = browser_at(app)
        browser.get("/registrieren/benutzername")
        slots = app_parts(app).services.hasher.slots
        with all_slots_taken(slots):
            response = browser.submit("/registrieren/benutzername", REGISTRATION)
        assert_german_error(response, 503, OVERLOADED)
        assert response.headers["Retry-After"] == "10"
        # No draft was kept: the review page has nothing to save.
        assert browser.get("/registrieren/pruefen").status_code == 409


def test_login_while_every_hashing_slot_is_taken_gets_503_not_a_failed_login(
        settings: dict[str, Any]) -> None:
    with app_with(settings, argon2_concurrency=1, argon2_wait_seconds=0.05) as app:
        browser = browser_at(app)
        slots = app_parts(app).services.hasher.slots
        with all_slots_taken(slots):
            response = log_in(browser)
        assert_german_error(response, 503, OVERLOADED)
        assert int(response.headers["Retry-After"]) > 0
