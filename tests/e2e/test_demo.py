"""``servicekonto demo`` as a real process: four servers, metadata exchanged over HTTP, a seeded
citizen logs in at the Düren portal, so does Musterland's through the broker, and Ctrl-C stops
everything cleanly."""

from __future__ import annotations

import html
import re
import signal
import urllib.parse
import urllib.request
from collections.abc import Iterator
from http.cookiejar import CookieJar
from pathlib import Path

import pytest

from sp_client.demo import DEMO_PASSWORD, MUSTERLAND_NAME, MUSTERLAND_USERNAME
from tests.e2e.processes import Demo, run_demo

pytestmark = pytest.mark.slow

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
LINK = re.compile(r'id="saml-weiter-link"[^>]* href="([^"]+)"')
FORM = re.compile(r'<form id="saml-weiter" method="post" action="([^"]+)"')
HIDDEN = re.compile(r'<input type="hidden" name="([^"]+)" value="([^"]*)">')


@pytest.fixture
def demo(tmp_path: Path) -> Iterator[Demo]:
    yield from run_demo(tmp_path / "demo", tmp_path / "demo.log")


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


def test_the_demo_serves_idp_both_portals_and_musterland_and_prints_their_urls(
        demo: Demo) -> None:
    printed = demo.output
    for url in (demo.idp, demo.dueren, demo.mags, demo.musterland):
        assert f"{url}/" in printed
    assert "Entwicklungs-Postfach" in printed and "ErikaM" in printed
    assert f"{MUSTERLAND_NAME}:" in printed
    assert f"{MUSTERLAND_USERNAME} / {DEMO_PASSWORD}" in printed
    urls = (demo.idp, demo.dueren, demo.mags, demo.musterland)
    pages = {url: Browser().open(url + "/") for url in urls}
    assert "Servicekonto" in pages[demo.idp] and "Servicekonto" in pages[demo.musterland]
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


def agree_at(browser: Browser, idp: str) -> str:
    """On ``idp``'s consent page: ZUSTIMMEN, and on to where its answer goes."""
    transaction = re.search(r'name="transaction" value="([^"]+)"', browser.page)
    assert transaction, browser.page[:1500]
    browser.submit(idp + "/saml/zustimmung", {"transaction": transaction.group(1),
                                              "decision": "agree"})
    return browser.go_on()


def test_musterlands_citizen_logs_in_at_dueren_through_the_running_broker(demo: Demo) -> None:
    browser = Browser()
    browser.open(demo.dueren + "/anmelden")
    browser.submit(demo.dueren + "/anmelden")
    browser.go_on()
    reference = urllib.parse.parse_qs(urllib.parse.urlsplit(browser.url).query)["anfrage"][0]
    browser.open(f"{demo.idp}/extern?anfrage={reference}")
    assert MUSTERLAND_NAME in browser.page
    browser.submit(f"{demo.idp}/extern/musterland?anfrage={reference}")
    # Our broker fetched Musterland's metadata on this first use; its page sends the browser
    # there (a meta refresh, or the link "Weiter").
    browser.go_on()
    assert browser.url.startswith(demo.musterland + "/anmelden"), browser.page[:1500]
    browser.submit(browser.url, {"username": MUSTERLAND_USERNAME, "password": DEMO_PASSWORD})
    assert "Servicekonto.NRW" in browser.page  # Musterland asks to pass the data on to us
    agree_at(browser, demo.musterland)
    # Both sessions live on: each instance has a cookie of its own on the shared host.
    assert browser.url == demo.idp + "/extern/erste-anmeldung", browser.page[:1500]
    browser.submit(browser.url, {"aktion": "neu"})
    assert f"Die Daten stammen aus Ihrem {MUSTERLAND_NAME}" in browser.page
    agree_at(browser, demo.idp)
    assert browser.url == demo.dueren + "/uebersicht"
    assert "Sie sind angemeldet" in browser.page and ">MU:" in browser.page


def test_ctrl_c_stops_the_demo_cleanly(demo: Demo) -> None:
    demo.process.send_signal(signal.SIGINT)
    assert demo.process.wait(timeout=30) == 0
    assert "Demo beendet." in demo.output
    with pytest.raises(OSError):
        urllib.request.urlopen(demo.dueren + "/", timeout=2)  # noqa: S310 (loopback http)
