"""Shared fixtures: an IdP on SQLite and (when IDP_TEST_POSTGRES_URL is set) on PostgreSQL.

Every test that asks for ``app`` runs once per database. The schema is made by the real Alembic
migrations, once per test session and database; each test starts with empty tables.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from redis import Redis
from sqlalchemy import create_engine, select, text

from idp import create_app, schema
from idp.config import PROJECT_ROOT
from idp.db import Base, db
from idp.mail.models import OutboxMail
from idp.mail.sender import send_due
from idp.models import import_all_models
from tests.postgres import temporary_database

POSTGRES_URL = os.environ.get("IDP_TEST_POSTGRES_URL", "")
REDIS_URL = os.environ.get("IDP_TEST_REDIS_URL", "")
# Cheap argon2 in tests: the cost is a setting; its effect is measured in benchmarks/.
TEST_ARGON2 = {"time_cost": 1, "memory_cost_kib": 1024, "parallelism": 1}
BASE_URL = "http://localhost"

import_all_models()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated SQLite file, copied for each test (migrating each time would be slow)."""
    path = tmp_path_factory.mktemp("template") / "servicekonto.sqlite3"
    schema.upgrade(f"sqlite:///{path}")
    return path


@pytest.fixture(scope="session")
def postgres_database() -> Iterator[str]:
    """A fresh PostgreSQL database for this test run, migrated, dropped at the end."""
    if not POSTGRES_URL:
        pytest.skip("IDP_TEST_POSTGRES_URL is not set")
    with temporary_database(POSTGRES_URL, "servicekonto_test") as url:
        schema.upgrade(url)
        yield url


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        path = tmp_path / "servicekonto.sqlite3"
        shutil.copy(request.getfixturevalue("sqlite_template"), path)
        return f"sqlite:///{path}"
    url: str = request.getfixturevalue("postgres_database")
    engine = create_engine(url)
    with engine.begin() as connection:
        tables = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
        connection.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    engine.dispose()
    return url


@pytest.fixture(scope="session")
def signing_keys(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """One IdP key pair for the whole run (making a 3072-bit key takes a while)."""
    from idp.samlkit.keys import generate_key_pair

    pair = generate_key_pair(tmp_path_factory.mktemp("keys"))
    return pair.key_file, pair.cert_file


@pytest.fixture
def policy_dir(tmp_path: Path) -> Path:
    """The shipped password policy and no portals (a test adds the portals it needs)."""
    folder = tmp_path / "policies"
    (folder / "portals").mkdir(parents=True)
    shutil.copy(PROJECT_ROOT / "policies" / "password.yaml", folder / "password.yaml")
    return folder


@pytest.fixture
def settings(database_url: str, tmp_path: Path, signing_keys: tuple[Path, Path],
             policy_dir: Path) -> dict[str, Any]:
    """The settings of the test IdP; a test may change them before asking for ``app``."""
    from idp.config import Argon2Parameters

    # A development IdP, said explicitly (production is the default): http, no SMTP server,
    # the development mailbox. Tests of production set environment="production".
    return {"environment": "development", "database_url": database_url,
            "instance_path": tmp_path / "instance", "base_url": BASE_URL,
            "secret_key": "test-" + "x" * 40,
            "argon2": Argon2Parameters(**TEST_ARGON2), "policy_dir": policy_dir,
            "key_file": signing_keys[0], "cert_file": signing_keys[1]}


@contextmanager
def app_with(settings: dict[str, Any], **changes: Any) -> Iterator[Flask]:
    """The test IdP with some settings changed; its database connections closed afterwards."""
    application = create_app(test_config=settings | changes, env={})
    application.config["TESTING"] = True
    try:
        yield application
    finally:
        db.bound(application).engine.dispose()


@pytest.fixture
def app(settings: dict[str, Any]) -> Iterator[Flask]:
    with app_with(settings) as application:
        yield application


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


# --- helpers a test reads like a citizen's steps -----------------------------------------

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
LINK = re.compile(r"https?://\S+")


def csrf_from(html: str) -> str:
    match = CSRF.search(html)
    assert match, "the page has no form with a CSRF token"
    return match.group(1)


@dataclass
class Browser:
    """A citizen's browser: remembers cookies and the last page's CSRF token."""

    client: FlaskClient
    last_html: str = ""

    def get(self, url: str, **kwargs: Any) -> Any:
        response = self.client.get(url, **kwargs)
        self.last_html = response.get_data(as_text=True)
        return response

    def submit(self, url: str, data: dict[str, Any] | None = None, **kwargs: Any) -> Any:
        """POST a form with the CSRF token of the page last seen (load the form first)."""
        fields = {"csrf_token": csrf_from(self.last_html), **(data or {})}
        response = self.client.post(url, data=fields, **kwargs)
        self.last_html = response.get_data(as_text=True)
        return response


@pytest.fixture
def browser(client: FlaskClient) -> Browser:
    return Browser(client)


def outbox(app: Flask) -> list[OutboxMail]:
    """All mails in the outbox, oldest first."""
    with app.app_context():
        return list(db.session.scalars(select(OutboxMail).order_by(OutboxMail.id)))


def run_mail_sender(app: Flask) -> None:
    """One run of the outbox's sender, as `servicekonto mail send` does it: it answers the
    "vergessen" requests and delivers due mails (the test IdP has no SMTP server: into the
    development mailbox)."""
    send_due(app)


def link_in(mail: OutboxMail) -> str:
    """The first link of a mail's plain-text body."""
    match = LINK.search(mail.body_text)
    assert match, f"no link in mail {mail.subject!r}"
    return match.group(0)


def path_of(url: str) -> str:
    assert url.startswith(BASE_URL), f"link does not use IDP_BASE_URL: {url}"
    return url[len(BASE_URL):]


GOOD_PASSWORD = "Kräftig-Grün 42"

REGISTRATION = {
    "salutation": "frau", "given_name": "Erika", "surname": "Mustermann",
    "birth_name": "Gabler", "email": "erika.mustermann@example.org", "username": "ErikaM",
    "password": GOOD_PASSWORD, "password_confirm": GOOD_PASSWORD, "privacy_accepted": "yes",
}


def register(browser: Browser, **changes: str) -> Any:
    """Fill in the registration form, then "Daten speichern" on the review page."""
    browser.get("/registrieren/benutzername")
    response = browser.submit("/registrieren/benutzername", REGISTRATION | changes)
    assert response.status_code == 302, browser.last_html
    browser.get("/registrieren/pruefen")
    return browser.submit("/registrieren/pruefen")


def activate(browser: Browser, app: Flask, recipient: str | None = None) -> Any:
    """Open the newest activation mail's link and press the button."""
    recipient = recipient or REGISTRATION["email"]
    mail = [m for m in outbox(app) if m.recipient == recipient][-1]
    path = path_of(link_in(mail))
    browser.get(path)
    return browser.submit(path)


def log_in(browser: Browser, username: str = "ErikaM", password: str = GOOD_PASSWORD) -> Any:
    browser.get("/anmelden")
    return browser.submit("/anmelden", {"username": username, "password": password})


@pytest.fixture
def citizen(app: Flask, browser: Browser) -> Browser:
    """A browser whose citizen registered and activated (Erika, not logged in)."""
    register(browser)
    activate(browser, app)
    return browser


class Clock:
    """Moves the IdP's clock (idp.clock.utcnow) forward, e.g. past a link's expiry."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self._monkeypatch = monkeypatch
        self.offset = timedelta(0)

    def advance(self, **kwargs: float) -> None:
        self.offset += timedelta(**kwargs)
        self._monkeypatch.setattr("idp.clock.clock_offset", self.offset)


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    return Clock(monkeypatch)


@pytest.fixture
def redis_client() -> Iterator[Redis]:
    """The test Redis (``IDP_TEST_REDIS_URL``), emptied before and after; skipped without it."""
    if not REDIS_URL:
        pytest.skip("IDP_TEST_REDIS_URL is not set")
    client = Redis.from_url(REDIS_URL)
    client.flushdb()
    yield client
    client.flushdb()
    client.close()
