"""End to end: ``servicekonto run`` as a real process, its background sender, a real SMTP server.

A citizen registers over HTTP; the activation mail reaches the SMTP server without anyone
running ``mail send``, and its link activates the account. Without a mail server the mail lands
in the development mailbox instead.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from email.message import EmailMessage
from http.cookiejar import CookieJar
from pathlib import Path
from typing import TypeVar

import pytest

from tests.conftest import CSRF, LINK, REGISTRATION
from tests.integration.mail.smtp import SmtpServer, free_port

PROJECT_ROOT = Path(__file__).resolve().parents[2]
SERVICEKONTO = Path(sys.executable).with_name("servicekonto")
T = TypeVar("T")


@dataclass
class Page:
    status: int
    url: str
    html: str


class HttpBrowser:
    """A citizen's browser over real HTTP: keeps cookies, follows redirects, fills in CSRF."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self._opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(CookieJar()))
        self.last_html = ""

    def _open(self, request: urllib.request.Request) -> Page:
        try:
            with self._opener.open(request, timeout=30) as response:
                page = Page(response.status, response.url, response.read().decode("utf-8"))
        except urllib.error.HTTPError as error:
            page = Page(error.code, error.url or "", error.read().decode("utf-8"))
        self.last_html = page.html
        return page

    def get(self, path: str) -> Page:
        return self._open(urllib.request.Request(self.base_url + path))  # noqa: S310 (our http URL)

    def submit(self, path: str, fields: dict[str, str] | None = None) -> Page:
        match = CSRF.search(self.last_html)
        assert match, "the page has no form with a CSRF token"
        data = urllib.parse.urlencode({"csrf_token": match.group(1), **(fields or {})})
        request = urllib.request.Request(self.base_url + path, data=data.encode(),  # noqa: S310
                                         method="POST")
        return self._open(request)


def eventually(probe: Callable[[], T | None], seconds: float = 20.0) -> T:
    """Ask ``probe`` until it answers (the background sender works every few seconds)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if (answer := probe()) is not None:
            return answer
        time.sleep(0.1)
    raise AssertionError(f"nothing after {seconds} s")


@pytest.fixture
def idp_env(tmp_path: Path) -> dict[str, str]:
    port = free_port()
    return {**os.environ, "IDP_ENV": "development", "IDP_BASE_URL": f"http://127.0.0.1:{port}",
            "IDP_INSTANCE_PATH": str(tmp_path / "instance"),
            "IDP_DATABASE_URL": f"sqlite:///{tmp_path / 'servicekonto.sqlite3'}",
            "IDP_SECRET_KEY": "e2e-" + "x" * 40, "IDP_ARGON2_TIME_COST": "1",
            "IDP_ARGON2_MEMORY_KIB": "1024", "IDP_ARGON2_PARALLELISM": "1"}


def start_idp(env: dict[str, str], log: Path) -> Iterator[HttpBrowser]:
    """Migrate the database, start ``servicekonto run``, and stop it afterwards."""
    upgrade = subprocess.run([str(SERVICEKONTO), "db", "upgrade"], env=env,
                             capture_output=True, text=True, timeout=60, check=False)
    assert upgrade.returncode == 0, upgrade.stderr
    base_url = env["IDP_BASE_URL"]
    port = base_url.rpartition(":")[2]
    with log.open("wb") as output:
        process = subprocess.Popen([str(SERVICEKONTO), "run", "--port", port], env=env,
                                   stdout=output, stderr=subprocess.STDOUT)
    try:
        browser = HttpBrowser(base_url)

        def up() -> bool | None:
            assert process.poll() is None, log.read_text(errors="replace")
            try:
                return browser.get("/").status == 200 or None
            except OSError:
                return None

        eventually(up)
        yield browser
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture
def idp_with_smtp(idp_env: dict[str, str], smtp_server: SmtpServer,
                  tmp_path: Path) -> Iterator[HttpBrowser]:
    env = idp_env | {"IDP_MAIL_SERVER": "127.0.0.1", "IDP_MAIL_PORT": str(smtp_server.port)}
    yield from start_idp(env, tmp_path / "idp.log")


@pytest.fixture
def idp_with_mailbox(idp_env: dict[str, str], tmp_path: Path) -> Iterator[HttpBrowser]:
    yield from start_idp(idp_env, tmp_path / "idp.log")


def register(browser: HttpBrowser) -> None:
    browser.get("/registrieren/benutzername")
    review = browser.submit("/registrieren/benutzername", REGISTRATION)
    assert review.url.endswith("/registrieren/pruefen"), review.html
    sent = browser.submit("/registrieren/pruefen")
    assert "Sie erhalten eine Mail" in sent.html


def test_the_running_idp_sends_the_activation_mail_by_itself_and_its_link_works(
        idp_with_smtp: HttpBrowser, smtp_server: SmtpServer) -> None:
    browser = idp_with_smtp
    register(browser)

    def delivered() -> EmailMessage | None:
        return smtp_server.inbox.received[0] if smtp_server.inbox.received else None

    message = eventually(delivered)
    body = message.get_body(preferencelist=("plain",))
    assert body is not None
    link = LINK.search(body.get_content())
    assert link is not None and link.group(0).startswith(browser.base_url + "/aktivieren/")
    path = link.group(0).removeprefix(browser.base_url)

    assert "Servicekonto aktivieren" in browser.get(path).html
    assert "Sie sind erfolgreich registriert" in browser.submit(path).html
    assert smtp_server.inbox.per_recipient() == {REGISTRATION["email"]: 1}
    assert browser.get("/entwicklung/postfach/").status == 404


def test_without_a_mail_server_the_mail_arrives_in_the_development_mailbox(
        idp_with_mailbox: HttpBrowser) -> None:
    browser = idp_with_mailbox
    register(browser)

    def sent() -> str | None:
        page = browser.get("/entwicklung/postfach/").html
        return page if "versendet" in page else None

    assert REGISTRATION["email"] in eventually(sent)
    mail_path = re.search(r'href="(/entwicklung/postfach/\d+)"', browser.last_html)
    assert mail_path is not None
    opened = browser.get(mail_path.group(1))
    link = re.search(r'<a href="([^"]+/aktivieren/[^"]+)"', opened.html)
    assert link is not None
    path = link.group(1).removeprefix(browser.base_url)
    assert "Servicekonto aktivieren" in browser.get(path).html
    assert "Sie sind erfolgreich registriert" in browser.submit(path).html


