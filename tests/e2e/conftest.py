"""End-to-end fixtures: a real SMTP server, the IdP's environment, the demo, headless Chromium."""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.browser import AXE, CHROMIUM, CHROMIUM_FLAGS, SCREENSHOTS, Journey
from tests.e2e.processes import Demo, HttpBrowser, run_demo, start_idp
from tests.integration.mail.smtp import SmtpServer, free_port, running_smtp_server


@pytest.fixture
def smtp_server() -> Iterator[SmtpServer]:
    yield from running_smtp_server()


# Cheap password hashes: the cost is a setting; its effect is measured in benchmarks/.
CHEAP_ARGON2 = {"IDP_ARGON2_TIME_COST": "1", "IDP_ARGON2_MEMORY_KIB": "1024",
                "IDP_ARGON2_PARALLELISM": "1"}


@pytest.fixture
def idp_env(tmp_path: Path) -> dict[str, str]:
    port = free_port()
    return {**os.environ, "IDP_ENV": "development", "IDP_BASE_URL": f"http://127.0.0.1:{port}",
            "IDP_INSTANCE_PATH": str(tmp_path / "instance"),
            "IDP_DATABASE_URL": f"sqlite:///{tmp_path / 'servicekonto.sqlite3'}",
            "IDP_SECRET_KEY": "e2e-" + "x" * 40, **CHEAP_ARGON2}


@pytest.fixture
def idp_with_smtp(idp_env: dict[str, str], smtp_server: SmtpServer,
                  tmp_path: Path) -> Iterator[HttpBrowser]:
    env = idp_env | {"IDP_MAIL_SERVER": "127.0.0.1", "IDP_MAIL_PORT": str(smtp_server.port)}
    yield from start_idp(env, tmp_path / "idp.log")


@pytest.fixture
def idp_with_mailbox(idp_env: dict[str, str], tmp_path: Path) -> Iterator[HttpBrowser]:
    yield from start_idp(idp_env, tmp_path / "idp.log")


@pytest.fixture(scope="module")
def demo_smtp_server() -> Iterator[SmtpServer]:
    """The SMTP server the module's demo sends its mails to."""
    yield from running_smtp_server()


@pytest.fixture(scope="module")
def demo(demo_smtp_server: SmtpServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    """``servicekonto demo --seed`` once per module, mailing over real SMTP."""
    folder = tmp_path_factory.mktemp("demo")
    env = {**os.environ, **CHEAP_ARGON2, "IDP_MAIL_SERVER": "127.0.0.1",
           "IDP_MAIL_PORT": str(demo_smtp_server.port)}
    yield from run_demo(folder / "instance", folder / "demo.log", env)


@pytest.fixture(scope="session")
def chromium() -> Iterator[Any]:
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is missing: apt-get install chromium (CI installs it)")
    if not AXE.exists():
        pytest.skip("axe-core is missing: npm ci --prefix tests/e2e (CI installs it)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM),
                                             args=CHROMIUM_FLAGS, headless=True)
        yield browser
        browser.close()


LAPTOP = {"width": 1280, "height": 900}
PHONE = {"width": 320, "height": 640}  # WCAG 1.4.10: content reflows at 320 CSS pixels


def new_context(chromium: Any, viewport: dict[str, int] = LAPTOP, **options: Any) -> Any:
    """A fresh browser (no cookies), German, a laptop's window unless told otherwise."""
    context = chromium.new_context(locale="de-DE", viewport=viewport, **options)
    context.set_default_timeout(15_000)
    return context


def screenshot_folder(request: pytest.FixtureRequest) -> Path:
    """The test's screenshot folder, emptied (an earlier run's pages would mislead)."""
    folder = SCREENSHOTS / re.sub(r"[^A-Za-z0-9_.-]+", "-", request.node.name)
    shutil.rmtree(folder, ignore_errors=True)
    return folder


@pytest.fixture
def journey(chromium: Any, request: pytest.FixtureRequest) -> Iterator[Journey]:
    """A fresh browser; screenshots per test."""
    context = new_context(chromium)
    try:
        yield Journey(context.new_page(), screenshot_folder(request))
    finally:
        context.close()


@pytest.fixture
def journey_on_a_phone(chromium: Any, request: pytest.FixtureRequest) -> Iterator[Journey]:
    """A fresh browser on a small phone's screen: every page must fit its width."""
    context = new_context(chromium, viewport=PHONE, is_mobile=True, has_touch=True)
    try:
        yield Journey(context.new_page(), screenshot_folder(request), phone=True)
    finally:
        context.close()


@pytest.fixture
def journey_without_javascript(chromium: Any,
                               request: pytest.FixtureRequest) -> Iterator[Journey]:
    """A fresh browser with JavaScript switched off; axe checks copies of its pages in a
    second browser (axe needs JavaScript)."""
    context = new_context(chromium, java_script_enabled=False)
    checker = new_context(chromium)
    try:
        yield Journey(context.new_page(), screenshot_folder(request),
                      checker=checker.new_page())
    finally:
        context.close()
        checker.close()
