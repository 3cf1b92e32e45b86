"""A citizen's browser without a screen, for the portal checker (idp/testing/checker.py) and the
interop tests, with two ways to reach sites:

- :class:`InProcessSites`: each URL goes, by its origin, to the test client of the WSGI app
  serving it (an in-process IdP and portals);
- :func:`fetch`: real HTTP (a running IdP and portal, SimpleSAMLphp, Shibboleth).

:class:`WebBrowser` follows what needs no person: redirects (302/303/307), ``<meta
http-equiv="refresh">`` pages and pages that submit a form at once by script (ours, SimpleSAMLphp's,
Shibboleth's, python3-saml's). It stops at a page that waits for the citizen (a login form, a
consent page, the portal's own page) and records every request as a :class:`Hop`, so that a test
can say how each site answered.

Cookies are kept per host, as browsers do (not per port: give sites on one machine different
host names), with ``SameSite`` as Chromium has it: a ``Lax`` cookie goes with a cross-site
top-level GET, not with a cross-site POST (the reason the IdP hands a portal's POST back once in a
form of its own); a ``Strict`` one only within its site; one without the attribute counts as
``Lax``, except that it still goes with a cross-site POST within two minutes of being set
("Lax+POST"). A site is scheme and host; a redirect chain that left the site once is cross-site.
``Secure`` cookies go over https and to ``http://localhost``, as in browsers.
"""

from __future__ import annotations

import http.client
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from html.parser import HTMLParser
from urllib.parse import parse_qs, urlencode, urljoin, urlsplit

from flask import Flask

REDIRECTS = (301, 302, 303, 307, 308)
MAX_HOPS = 30
LAX_POST_SECONDS = 120
SAML_MESSAGES = ("SAMLRequest", "SAMLResponse")


# --- the transports ---------------------------------------------------------------------------

@dataclass
class Response:
    status: int
    headers: list[tuple[str, str]]
    body: str

    def header(self, name: str) -> str | None:
        return next(iter(self.all(name)), None)

    def all(self, name: str) -> list[str]:
        return [value for key, value in self.headers if key.lower() == name.lower()]


# How a request reaches a site: (url, method, body, headers) -> its answer, nothing followed.
Send = Callable[[str, str, bytes | None, dict[str, str]], Response]


def fetch(url: str, method: str = "GET", body: bytes | None = None,
          headers: dict[str, str] | None = None) -> Response:
    """One request over real HTTP, nothing followed (the raw query is sent byte for byte)."""
    parts = urlsplit(url)
    assert parts.scheme == "http", url
    connection = http.client.HTTPConnection(parts.hostname or "", parts.port or 80, timeout=30)
    try:
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        connection.request(method, target, body=body, headers=headers or {})
        answer = connection.getresponse()
        return Response(answer.status, answer.getheaders(),
                        answer.read().decode("utf-8", errors="replace"))
    finally:
        connection.close()


class InProcessSites:
    """Sites served in this process: ``{origin: app}`` (origin: scheme://host[:port])."""

    def __init__(self, apps: Mapping[str, Flask]) -> None:
        self._clients = {origin.rstrip("/"): app.test_client(use_cookies=False)
                         for origin, app in apps.items()}

    def send(self, url: str, method: str, body: bytes | None,
             headers: dict[str, str]) -> Response:
        parts = urlsplit(url)
        client = self._clients.get(f"{parts.scheme}://{parts.netloc}")
        assert client is not None, f"no site serves {url}"
        # The raw URL keeps the query exactly as sent (a Redirect signature covers its bytes).
        answer = client.open(url, method=method, data=body, headers=headers)
        return Response(answer.status_code, list(answer.headers.items()),
                        answer.get_data(as_text=True))


# --- pages ------------------------------------------------------------------------------------

@dataclass
class Form:
    """A form of a page: where it goes and the values it would send as it stands."""

    action: str
    method: str
    id: str | None
    fields: dict[str, str] = field(default_factory=dict)
    # (name, value) of each submit button of this form (buttons belonging to another form by
    # their ``form`` attribute are left out).
    buttons: list[tuple[str, str]] = field(default_factory=list)


class _PageParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.forms: list[Form] = []
        self.refresh: str | None = None
        self.scripts: list[str] = []
        self.onload = ""
        self._form: Form | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = {name: value or "" for name, value in attrs}
        if tag == "form":
            self._form = Form(attributes.get("action", ""),
                              attributes.get("method", "get").lower(), attributes.get("id"))
            self.forms.append(self._form)
        elif tag == "meta" and attributes.get("http-equiv", "").lower() == "refresh":
            found = re.search(r"url\s*=\s*['\"]?([^'\"]+)", attributes.get("content", ""),
                              re.IGNORECASE)
            self.refresh = found.group(1).strip() if found else None
        elif tag == "script" and "src" in attributes:
            self.scripts.append(urlsplit(attributes["src"]).path)
        elif tag == "body":
            self.onload = attributes.get("onload", "")
        elif self._form is not None and "form" not in attributes:
            kind = attributes.get("type", "text" if tag == "input" else "submit").lower()
            if tag == "input" and "name" in attributes and kind not in ("submit", "button"):
                self._form.fields[attributes["name"]] = attributes.get("value", "")
            elif tag in ("button", "input") and kind == "submit":
                self._form.buttons.append((attributes.get("name", ""),
                                           attributes.get("value", "")))

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._form = None


@dataclass
class Page:
    """What the browser shows after following everything that needs no person."""

    url: str
    status: int
    text: str

    def __post_init__(self) -> None:
        parser = _PageParser()
        parser.feed(self.text)
        self.forms = parser.forms
        self.refresh = urljoin(self.url, parser.refresh) if parser.refresh else None
        self._scripts, self._onload = parser.scripts, parser.onload

    @property
    def auto_post(self) -> Form | None:
        """The form the page's script submits at once: ours (autopost.js submits the form
        ``saml-weiter``), SimpleSAMLphp's (post.js clicks the button of its one form), or a
        ``<body onload>`` that submits the first form (Shibboleth's, python3-saml's)."""
        if any(src.endswith("/autopost.js") for src in self._scripts):
            return next((form for form in self.forms if form.id == "saml-weiter"), None)
        if self.forms and (any(src.endswith("/post.js") for src in self._scripts)
                           or ".submit()" in self._onload):
            return self.forms[0]
        return None

    def form(self, with_field: str) -> Form:
        """The page's one form that has a field of that name."""
        found = [form for form in self.forms if with_field in form.fields]
        assert len(found) == 1, f"{len(found)} forms with {with_field} on {self.url}:\n" \
                                f"{self.text[:3000]}"
        return found[0]


@dataclass(frozen=True)
class Hop:
    """One request of a navigation and how the site answered it."""

    method: str
    url: str
    status: int
    # How the browser went on: "redirect", "refresh", "auto-post" or "stop" (a page for a
    # person, or the end).
    then: str
    # The form fields sent with a POST (the SAML message of an auto-POST).
    fields: dict[str, str] | None = None

    @property
    def origin(self) -> str:
        parts = urlsplit(self.url)
        return f"{parts.scheme}://{parts.netloc}"

    @property
    def path(self) -> str:
        return urlsplit(self.url).path

    def carries(self, name: str) -> bool:
        """Whether the request carried the parameter ``name`` (in its query or its form)."""
        return name in parse_qs(urlsplit(self.url).query) or name in (self.fields or {})

    def __str__(self) -> str:
        return f"{self.method} {self.url[:140]} → {self.status} ({self.then})"


def trace(hops: list[Hop]) -> str:
    """The hops one a line (for assertion messages)."""
    return "\n".join(map(str, hops))


# --- the browser ------------------------------------------------------------------------------

@dataclass
class _Cookie:
    value: str
    path: str
    same_site: str  # strict | lax | none | "" (no attribute)
    secure: bool
    set_at: float


def _site(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    return parts.scheme, parts.hostname or ""


class WebBrowser:
    """One citizen's browser across the IdP and the portals; ``send`` reaches the sites
    (:func:`fetch`, real HTTP, unless told otherwise)."""

    def __init__(self, send: Send = fetch) -> None:
        self._send = send
        self._jar: dict[str, dict[tuple[str, str], _Cookie]] = {}
        self.history: list[Hop] = []

    # --- what the citizen does --------------------------------------------------------

    def open(self, url: str) -> Page:
        """Type an address (or follow a link on a page of that same site)."""
        return self._navigate("GET", url, None, chain=[url])

    def submit(self, page: Page, form: Form, button: tuple[str, str] | None = None,
               **values: str) -> Page:
        """Fill in ``values`` and press ``button`` (name, value), or just send the form."""
        fields = {**form.fields, **values}
        if button is not None and button[0]:
            fields[button[0]] = button[1]
        target = urljoin(page.url, form.action or page.url)
        if form.method == "post":
            return self._navigate("POST", target, fields, chain=[page.url])
        return self._navigate("GET", f"{target.split('?')[0]}?{urlencode(fields)}", None,
                              chain=[page.url])

    def peek(self, url: str) -> Response:
        """One GET of ``url`` with this browser's cookies, nothing followed (a redirect stays a
        redirect)."""
        response = self._request("GET", url, None, [url])
        self.history.append(Hop("GET", url, response.status, "peek", None))
        return response

    def hops_since(self, start: int) -> list[Hop]:
        return self.history[start:]

    # --- the machinery ----------------------------------------------------------------

    def _navigate(self, method: str, url: str, data: dict[str, str] | None,
                  chain: list[str]) -> Page:
        """``chain``: the page the navigation started from, then each URL redirected through."""
        for _ in range(MAX_HOPS):
            response = self._request(method, url, data, chain)
            location = response.header("Location")
            if response.status in REDIRECTS and location:
                self.history.append(Hop(method, url, response.status, "redirect", data))
                if response.status in (301, 302, 303) and method == "POST":
                    method, data = "GET", None  # what browsers do (303 says so, 302 by habit)
                chain, url = [*chain, url], urljoin(url, location)
                continue
            page = Page(url, response.status, response.body)
            if response.status == 200 and page.refresh:
                self.history.append(Hop(method, url, response.status, "refresh", data))
                chain, url, method, data = [url], page.refresh, "GET", None
                continue
            if response.status == 200 and (form := page.auto_post) is not None:
                self.history.append(Hop(method, url, response.status, "auto-post", data))
                assert form.method == "post", f"an auto-submitted GET form on {url}"
                chain, url, method, data = [url], urljoin(url, form.action or url), "POST", \
                    dict(form.fields)
                continue
            self.history.append(Hop(method, url, response.status, "stop", data))
            return page
        raise AssertionError(f"more than {MAX_HOPS} hops:\n{trace(self.history[-MAX_HOPS:])}")

    def _request(self, method: str, url: str, data: dict[str, str] | None,
                 chain: list[str]) -> Response:
        same_site = all(_site(step) == _site(url) for step in chain)
        headers = {"User-Agent": "Servicekonto-Browser/1", "Accept-Language": "de"}
        if cookies := self._cookies_for(url, method, same_site):
            headers["Cookie"] = cookies
        body = None
        if data is not None:
            body = urlencode(data).encode()
            headers["Content-Type"] = "application/x-www-form-urlencoded"
            origin = urlsplit(chain[0])
            headers["Origin"] = f"{origin.scheme}://{origin.netloc}" if len(chain) == 1 \
                else "null"
        response = self._send(url, method, body, headers)
        self._store(urlsplit(url).hostname or "", response.all("Set-Cookie"))
        return response

    def _cookies_for(self, url: str, method: str, same_site: bool) -> str:
        parts = urlsplit(url)
        path = parts.path or "/"
        now = time.monotonic()
        sent = []
        for (name, cookie_path), cookie in self._jar.get(parts.hostname or "", {}).items():
            if cookie.secure and parts.scheme != "https" and parts.hostname != "localhost":
                continue
            if not (path == cookie_path or path.startswith(cookie_path.rstrip("/") + "/")):
                continue
            if not same_site:
                if cookie.same_site == "strict":
                    continue
                if method != "GET" and cookie.same_site == "lax":
                    continue
                if method != "GET" and cookie.same_site == "" and \
                        now - cookie.set_at > LAX_POST_SECONDS:
                    continue
            sent.append(f"{name}={cookie.value}")
        return "; ".join(sent)

    def _store(self, host: str, headers: list[str]) -> None:
        jar = self._jar.setdefault(host, {})
        for header in headers:
            pair, *attribute_parts = header.split(";")
            name, _, value = pair.strip().partition("=")
            attributes: dict[str, str] = {}
            for part in attribute_parts:
                key, _, attribute = part.strip().partition("=")
                attributes[key.lower()] = attribute.strip()
            path = attributes.get("path") or "/"
            if _expired(attributes):
                jar.pop((name, path), None)
                continue
            jar[(name, path)] = _Cookie(value, path, attributes.get("samesite", "").lower(),
                                        "secure" in attributes, time.monotonic())


def _expired(attributes: dict[str, str]) -> bool:
    if "max-age" in attributes:
        return int(attributes["max-age"]) <= 0
    if expires := attributes.get("expires"):
        return bool(parsedate_to_datetime(expires) <= datetime.now(UTC))
    return False
