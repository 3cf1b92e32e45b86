"""Single logout in a real browser: which hop travels as an HTTP redirect, which as a page.

The IdP answers every single-logout hop reached by a GET with a 302 (SAML bindings §3.4), and
the first hop after a form's POST with a page of its own that goes on by meta refresh
(idp/saml/logout_views.py explains why). The first test shows the browser behaviour that design
rests on, with two tiny local sites; the others follow every navigation of a logout through
``servicekonto demo`` (the IdP and both portals), started once for the module.

The hops, as Chromium makes them (checked below):

- "Abmelden" at Düren (HTTP-Redirect binding both ways): Düren's form POSTs ``/abmelden``; Düren
  answers with its own page ``saml_redirect.html`` (meta refresh, for the same reason as the IdP:
  its CSP form-action names only Düren). From there on every hop is a GET in one redirect chain:
  the IdP's ``/saml/slo/redirect?SAMLRequest`` → 302 to mags' ``/saml/slo/redirect?SAMLRequest``
  → 303 to the IdP's ``/saml/slo/redirect?SAMLResponse`` → 302 to Düren's
  ``/saml/slo/redirect?SAMLResponse``, which shows "Sie sind abgemeldet".
- "Abmelden" at the IdP: the form POSTs the IdP's ``/abmelden``; the IdP answers with its page
  ``logout_redirect.html`` (meta refresh) to the first portal; then GETs only: portal 303 → IdP
  302 → other portal 303 → the IdP's "Sie sind abgemeldet".
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import expect

from tests.e2e.browser import Journey
from tests.e2e.processes import Demo, eventually
from tests.e2e.test_browser_demo import DUEREN, MAGS, agree, log_in, to_the_servicekonto

pytestmark = pytest.mark.slow

SLO = "/saml/slo/redirect"
NOT_LOGGED_IN_AT_THE_PORTAL = "Servicekonto.NRW erforderlich!"
IDP_LOGIN = "Anmelden mit Benutzername und Passwort"


# --- 1. the browser constraint ------------------------------------------------------------------

@dataclass
class TwoSites:
    """Two local HTTP servers on different ports, so of different origins: ``ours``, whose
    pages allow only ``form-action 'self'``, and ``other``; each notes what it served."""

    ours: str = ""
    other: str = ""
    served_here: list[str] = field(default_factory=list)  # "POST /mit-umleitung", …
    served_there: list[str] = field(default_factory=list)


def _page(title: str, head: str = "", body: str = "") -> bytes:
    return (f'<!doctype html><html lang="de"><head><meta charset="utf-8"><title>{title}</title>'
            f"{head}</head><body><main><h1>{title}</h1>{body}</main></body></html>").encode()


@pytest.fixture
def two_sites() -> Iterator[TwoSites]:
    sites = TwoSites()

    class Site(BaseHTTPRequestHandler):
        served: list[str]

        def answer(self, status: int, body: bytes = b"", location: str | None = None) -> None:
            if self.path != "/favicon.ico":
                self.served.append(f"{self.command} {self.path}")
            self.send_response(status)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Security-Policy", "form-action 'self'")
            if location:
                self.send_header("Location", location)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    class Ours(Site):
        served = sites.served_here

        def do_GET(self) -> None:
            if self.path.startswith("/formular/"):  # a form that POSTs to the rest of the path
                action = self.path.removeprefix("/formular")
                self.answer(200, _page("Formular", body=f'<form method="post" action="{action}">'
                                       '<button type="submit">Absenden</button></form>'))
            elif self.path == "/weiter":  # a GET of our own, on to the other site
                self.answer(302, location=sites.other + "/angekommen")
            else:
                self.answer(404)

        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length", "0")))
            if self.path == "/mit-umleitung":  # as the IdP would with a redirect after a POST
                self.answer(303, location="/weiter")
            elif self.path == "/mit-seite":  # as the IdP does: a page that goes on by itself
                self.answer(200, _page("Weiter", head='<meta http-equiv="refresh" content="0; '
                                       f'url={sites.other}/angekommen">'))
            else:
                self.answer(404)

    class Other(Site):
        served = sites.served_there

        def do_GET(self) -> None:
            if self.path == "/angekommen":
                self.answer(200, _page("Angekommen"))
            else:
                self.answer(404)

    servers = [ThreadingHTTPServer(("127.0.0.1", 0), site) for site in (Ours, Other)]
    sites.ours, sites.other = (f"http://127.0.0.1:{server.server_port}" for server in servers)
    threads = [threading.Thread(target=server.serve_forever, daemon=True) for server in servers]
    for thread in threads:
        thread.start()
    try:
        yield sites
    finally:
        for server, thread in zip(servers, threads, strict=True):
            server.shutdown()
            server.server_close()
            thread.join()


def test_chromium_blocks_a_redirect_to_another_site_after_a_form_even_via_a_get_of_its_own(
        journey: Journey, two_sites: TwoSites) -> None:
    """Why the IdP answers a POST that starts a logout chain ("Abmelden", a portal's HTTP-POST
    message) with a page that goes on by meta refresh, and only a GET with a 302.

    After a form's POST, Chromium checks every redirect against the CSP form-action of the page
    the form was on, also after a 303 to a GET of the same site: the 302 from there to another
    site is blocked. A page with a meta refresh starts a new navigation, no form's, and gets
    there. If this test ever fails, browsers have dropped that check, and the IdP could answer
    POSTs with redirects too (``_send`` in idp/saml/logout_views.py).
    """
    page, sites = journey.page, two_sites
    errors: list[str] = []
    page.on("console", lambda message: errors.append(message.text))

    def settled() -> bool | None:
        page.wait_for_timeout(50)  # Playwright's events (the console's) are handled meanwhile
        return bool(sites.served_there or any("form-action" in error for error in errors)) or None

    page.goto(sites.ours + "/formular/mit-umleitung")
    page.get_by_role("button", name="Absenden").click()
    eventually(settled, seconds=10)
    page.wait_for_timeout(200)  # time enough to get to the other site, were it allowed
    assert sites.served_there == [], "Chromium followed the redirect: see the docstring"
    assert sites.served_here == ["GET /formular/mit-umleitung", "POST /mit-umleitung",
                                 "GET /weiter"]  # the 303 was followed, the 302 was not
    assert any(f"Sending form data to '{sites.ours}/mit-umleitung' violates the following "
               "Content Security Policy directive: \"form-action 'self'\"" in error
               for error in errors), errors
    assert page.url == sites.ours + "/formular/mit-umleitung"

    # The same 302, reached by a navigation that is no form's (as the IdP's GET hops): allowed.
    page.goto(sites.ours + "/weiter")
    expect(page.get_by_role("heading", name="Angekommen")).to_be_visible()
    assert sites.served_there == ["GET /angekommen"]

    # After the form, a page of our own with a meta refresh: allowed.
    page.goto(sites.ours + "/formular/mit-seite")
    page.get_by_role("button", name="Absenden").click()
    page.wait_for_url(sites.other + "/angekommen")
    expect(page.get_by_role("heading", name="Angekommen")).to_be_visible()
    assert sites.served_there == ["GET /angekommen", "GET /angekommen"]


# --- the navigations of a logout, as the browser makes them -------------------------------------

@dataclass(frozen=True)
class Hop:
    """One main-frame document request and its answer."""

    method: str
    url: str
    status: int
    location: str
    meta_refresh: bool  # an HTML page that goes on by itself

    @property
    def where(self) -> str:
        """Origin and path, without the query (the SAML message)."""
        parts = urlsplit(self.url)
        return f"{parts.scheme}://{parts.netloc}{parts.path}"

    def __str__(self) -> str:
        answer = f"→ {self.location[:90]}" if self.location else \
            ("(meta refresh)" if self.meta_refresh else "")
        return f"{self.method} {self.url[:90]} {self.status} {answer}"


class Navigations:
    """Every response to a main-frame document request from now on, redirects included
    (Playwright reports those as responses too; ``redirected_from`` chains fill in any gap),
    and which navigations a page's meta refresh started (Chromium says so over the DevTools
    protocol; the body of a page that went on at once is gone by the time one could read it)."""

    def __init__(self, page: Any) -> None:
        self.page = page
        self.responses: list[Any] = []
        self.refreshed_to: list[str] = []
        page.on("response", self._noted)
        self.devtools = page.context.new_cdp_session(page)
        self.devtools.on("Page.frameRequestedNavigation", self._requested)
        self.devtools.send("Page.enable")

    def _noted(self, response: Any) -> None:
        request = response.request
        if request.resource_type == "document" and request.frame == self.page.main_frame:
            self.responses.append(response)

    def _requested(self, navigation: dict[str, Any]) -> None:
        if navigation["reason"] == "metaTagRefresh":
            self.refreshed_to.append(navigation["url"])

    def stop(self) -> list[Hop]:
        self.page.remove_listener("response", self._noted)
        self.devtools.detach()
        requests: list[Any] = []
        for response in self.responses:
            chain, request = [], response.request
            while request is not None and all(request is not seen for seen in requests):
                chain.append(request)
                request = request.redirected_from
            requests.extend(reversed(chain))
        hops = []
        for request, following in zip(requests, [*requests[1:], None], strict=True):
            response = request.response()
            assert response is not None, f"{request.method} {request.url} got no answer"
            refreshed = following is not None and following.redirected_from is None and \
                following.url in self.refreshed_to
            hops.append(Hop(request.method, request.url, response.status,
                            response.headers.get("location", ""), refreshed))
        return hops


def logged_in_at_both_portals(journey: Journey, demo: Demo, username: str) -> Any:
    """Log in at Düren (with the password) and at mags (single sign-on); returns the page."""
    to_the_servicekonto(journey, demo.dueren, "Düren")
    log_in(journey, username)
    agree(journey, demo.dueren, DUEREN)
    to_the_servicekonto(journey, demo.mags, "mags")
    return agree(journey, demo.mags, MAGS)


def assert_logged_out_everywhere(journey: Journey, demo: Demo) -> None:
    page = journey.page
    for portal in (demo.dueren, demo.mags):
        page.goto(portal + "/uebersicht")
        expect(page.get_by_role("heading", name=NOT_LOGGED_IN_AT_THE_PORTAL)).to_be_visible()
    page.goto(demo.idp + "/konto")
    expect(page.get_by_role("heading", name=IDP_LOGIN)).to_be_visible()


def described(hops: list[Hop]) -> str:
    return "\n".join(f"  {hop}" for hop in hops)


# --- 2. "Abmelden" at a portal: the IdP redirects --------------------------------------------

def test_logging_out_at_dueren_goes_through_the_idp_and_mags_by_redirects_without_an_idp_page(
        journey: Journey, demo: Demo) -> None:
    page = logged_in_at_both_portals(journey, demo, "ErikaM")
    page.goto(demo.dueren + "/uebersicht")
    journey.step("Angemeldet bei Düren und mags")

    navigations = Navigations(page)
    page.locator("main").get_by_role("button", name="Abmelden").click()
    page.wait_for_url(demo.dueren + SLO + "?SAMLResponse=**")
    expect(page.get_by_role("heading", name="Sie sind abgemeldet")).to_be_visible()
    hops = navigations.stop()
    journey.step("Abgemeldet bei Düren, mags und beim Servicekonto.NRW")
    expect(page.get_by_role("status")).to_have_text(
        f"Sie haben sich beim {DUEREN} und beim Servicekonto.NRW abgemeldet.")

    route = [(hop.method, hop.where, hop.status, hop.meta_refresh) for hop in hops]
    assert route == [
        ("POST", demo.dueren + "/abmelden", 200, True),  # Düren's page after its own form
        ("GET", demo.idp + SLO, 302, False),  # the LogoutRequest from Düren
        ("GET", demo.mags + SLO, 303, False),  # mags answers the IdP's LogoutRequest
        ("GET", demo.idp + SLO, 302, False),  # mags' LogoutResponse
        ("GET", demo.dueren + SLO, 200, False),  # the IdP's answer: "Sie sind abgemeldet"
    ], "\n" + described(hops)
    at_the_idp = [hop for hop in hops if hop.url.startswith(demo.idp)]
    assert all(hop.method == "GET" and hop.status in (302, 303) for hop in at_the_idp)
    assert at_the_idp[0].location.startswith(demo.mags + SLO + "?SAMLRequest=")
    assert at_the_idp[1].location.startswith(demo.dueren + SLO + "?SAMLResponse=")
    assert "SAMLRequest=" in at_the_idp[0].url and "SAMLResponse=" in at_the_idp[1].url

    assert_logged_out_everywhere(journey, demo)


# --- 3. "Abmelden" at the IdP: one page of ours after the form, then redirects ---------------

def test_abmelden_at_the_servicekonto_shows_one_page_after_the_form_then_only_redirects(
        journey: Journey, demo: Demo) -> None:
    page = logged_in_at_both_portals(journey, demo, "MaxM")
    page.goto(demo.idp + "/konto")
    expect(page.get_by_role("heading", name="Mein Servicekonto")).to_be_visible()
    journey.step("Mein Servicekonto")

    navigations = Navigations(page)
    page.get_by_role("navigation", name="Konto").get_by_role("button", name="Abmelden").click()
    page.wait_for_url(demo.idp + SLO + "?SAMLResponse=**")
    expect(page.get_by_role("heading", name="Sie sind abgemeldet")).to_be_visible()
    hops = navigations.stop()
    journey.step("Sie sind abgemeldet (Servicekonto.NRW)")
    assert sorted(page.locator("#abgemeldet-bei li").all_inner_texts()) == [DUEREN, MAGS]
    expect(page.locator("#nicht-abgemeldet-bei")).to_have_count(0)

    first = demo.dueren if hops[1:] and hops[1].url.startswith(demo.dueren) else demo.mags
    second = demo.mags if first == demo.dueren else demo.dueren
    route = [(hop.method, hop.where, hop.status, hop.meta_refresh) for hop in hops]
    assert route == [
        ("POST", demo.idp + "/abmelden", 200, True),  # the one page: on to the first portal
        ("GET", first + SLO, 303, False),  # its LogoutResponse
        ("GET", demo.idp + SLO, 302, False),  # on to the second portal
        ("GET", second + SLO, 303, False),  # its LogoutResponse
        ("GET", demo.idp + SLO, 200, False),  # "Sie sind abgemeldet"
    ], "\n" + described(hops)
    assert hops[1].url.startswith(first + SLO + "?SAMLRequest=")
    assert hops[2].location.startswith(second + SLO + "?SAMLRequest=")

    assert_logged_out_everywhere(journey, demo)
