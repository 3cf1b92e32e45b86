"""``servicekonto demo`` as a real process: three servers, metadata exchanged over HTTP, a seeded
citizen logs in at the Düren portal, and Ctrl-C stops everything cleanly."""

from __future__ import annotations

import html
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from http.cookiejar import CookieJar
from pathlib import Path

import pytest

from idp.demo import DEMO_PASSWORD

pytestmark = pytest.mark.slow

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
LINK = re.compile(r'id="saml-weiter-link"[^>]* href="([^"]+)"')
FORM = re.compile(r'<form id="saml-weiter" method="post" action="([^"]+)"')
HIDDEN = re.compile(r'<input type="hidden" name="([^"]+)" value="([^"]*)">')


def free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    for sock in sockets:
        sock.bind(("127.0.0.1", 0))
    ports = [sock.getsockname()[1] for sock in sockets]
    for sock in sockets:
        sock.close()
    return ports


class Demo:
    def __init__(self, process: subprocess.Popen[str], ports: list[int]) -> None:
        self.process = process
        self.idp, self.dueren, self.mags = (f"http://127.0.0.1:{port}" for port in ports)
        self.output: list[str] = []

    def wait_until_running(self, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        assert self.process.stdout is not None
        while time.monotonic() < deadline:
            line = self.process.stdout.readline()
            if not line:
                break
            self.output.append(line)
            if "Demo läuft" in line:
                return
        raise AssertionError("the demo did not start:\n" + "".join(self.output))


@pytest.fixture
def demo(tmp_path: Path) -> Iterator[Demo]:
    ports = free_ports(3)
    command = [str(Path(sys.executable).parent / "servicekonto"), "demo",
               "--instance", str(tmp_path / "demo"), "--idp-port", str(ports[0]),
               "--dueren-port", str(ports[1]), "--mags-port", str(ports[2]), "--seed"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               text=True, bufsize=1)
    running = Demo(process, ports)
    try:
        running.wait_until_running()
        yield running
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


class Browser:
    """urllib with cookies: follows redirects; auto-links and auto-POST forms by hand."""

    def __init__(self) -> None:
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(CookieJar()))
        self.url, self.page = "", ""

    def open(self, url: str, data: dict[str, str] | None = None) -> str:
        body = urllib.parse.urlencode(data).encode() if data is not None else None
        with self.opener.open(urllib.parse.urljoin(self.url, url), body, timeout=30) as answer:
            self.url, self.page = answer.geturl(), answer.read().decode()
        return self.page

    def submit(self, url: str, data: dict[str, str] | None = None) -> str:
        token = CSRF.search(self.page)
        assert token, self.page[:1500]
        return self.open(url, {"csrf_token": token.group(1), **(data or {})})

    def go_on(self) -> str:
        """Follow the page's auto-link or auto-POST form, as its script would."""
        if link := LINK.search(self.page):
            return self.open(html.unescape(link.group(1)))
        form = FORM.search(self.page)
        assert form, self.page[:1500]
        fields = {name: html.unescape(value) for name, value in HIDDEN.findall(self.page)}
        return self.open(html.unescape(form.group(1)), fields)


def test_the_demo_serves_idp_and_both_portals_and_prints_their_urls(demo: Demo) -> None:
    printed = "".join(demo.output)
    for url in (demo.idp, demo.dueren, demo.mags):
        assert f"{url}/" in printed
    assert "Entwicklungs-Postfach" in printed and "ErikaM" in printed
    pages = {url: Browser().open(url + "/") for url in (demo.idp, demo.dueren, demo.mags)}
    assert "Servicekonto" in pages[demo.idp]
    assert "Bürgerportal der Stadt Düren" in pages[demo.dueren]
    assert "mags Bürgerportal" in pages[demo.mags]


def test_a_seeded_citizen_logs_in_at_dueren_through_the_running_idp(demo: Demo) -> None:
    browser = Browser()
    browser.open(demo.dueren + "/anmelden")
    browser.submit(demo.dueren + "/anmelden")
    browser.go_on()
    assert browser.url.startswith(demo.idp + "/anmelden")
    browser.submit(browser.url, {"username": "ErikaM", "password": DEMO_PASSWORD})
    assert "Zustimmung zur Weitergabe an ein Fachverfahren" in browser.page
    transaction = re.search(r'name="transaction" value="([^"]+)"', browser.page)
    assert transaction
    browser.submit(demo.idp + "/saml/zustimmung", {"transaction": transaction.group(1),
                                                   "decision": "agree"})
    browser.go_on()
    assert browser.url == demo.dueren + "/uebersicht"
    assert "Sie sind angemeldet" in browser.page and "Mustermann" in browser.page


def test_ctrl_c_stops_the_demo_cleanly(demo: Demo) -> None:
    demo.process.send_signal(signal.SIGINT)
    output, _ = demo.process.communicate(timeout=30)
    assert demo.process.returncode == 0
    assert "Demo beendet." in output
    with pytest.raises(OSError):
        urllib.request.urlopen(demo.dueren + "/", timeout=2)  # noqa: S310 (loopback http)
