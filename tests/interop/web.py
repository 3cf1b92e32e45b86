"""A browser for in-process tests with several sites: each URL goes, by its origin, to the test
client of the WSGI app serving it; cookies are kept per host; redirects (302/303), meta refresh
pages and auto-POST forms are followed as a browser does. It stops at a page that waits for the
citizen (a login form, a consent page, the portal's own page) and records every hop, so that a
test can say how each site answered.

Cookies as a current browser treats them (enough for SAML's cross-site hops): ``SameSite``
missing counts as ``Lax``; a ``Lax`` cookie goes with a cross-site top-level GET but not with a
cross-site POST (the reason the IdP hands a portal's POST back once in a form of its own); a
``Strict`` cookie only within its site. A site here is a host (the test hosts are chosen so
that no two share a registrable domain); ``http://localhost`` counts as secure, as in browsers.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from html.parser import HTMLParser
from http.cookies import SimpleCookie
from typing import Any
from urllib.parse import urlencode, urljoin, urlsplit

from flask import Flask
from flask.testing import FlaskClient

REDIRECTS = (301, 302, 303, 307, 308)
MAX_HOPS = 20


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
            _, _, target = attributes.get("content", "").partition("url=")
            self.refresh = target.strip() or None
        elif tag == "script" and "src" in attributes:
            self.scripts.append(attributes["src"])
        elif tag == "body":
            self.onload = attributes.get("onload", "")
        elif self._form is not None and "form" not in attributes:
            if tag == "input" and "name" in attributes and \
                    attributes.get("type", "text") not in ("submit", "button"):
                self._form.fields[attributes["name"]] = attributes.get("value", "")
            elif tag == "button" and attributes.get("type", "submit") == "submit":
                self._form.buttons.append((attributes.get("name", ""),
                                           attributes.get("value", "")))

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._form = None


@dataclass
class Page:
    """The page the browser shows after following everything that needs no one."""

    url: str
    status: int
    text: str
    headers: Any

    def __post_init__(self) -> None:
        parser = _PageParser()
        parser.feed(self.text)
        self.forms = parser.forms
        self.refresh = urljoin(self.url, parser.refresh) if parser.refresh else None
        self.auto_post = bool(self.forms) and (
            any(src.endswith("/autopost.js") for src in parser.scripts)
            or ".submit()" in parser.onload)

    def form(self, *, with_field: str | None = None, form_id: str | None = None) -> Form:
        """The page's form that has a field of that name (or that id)."""
        found = [form for form in self.forms
                 if (with_field is None or with_field in form.fields)
                 and (form_id is None or form.id == form_id)]
        assert len(found) == 1, f"{len(found)} matching forms on {self.url}:\n{self.text[:3000]}"
        return found[0]

    @property
    def auto_form(self) -> Form:
        """The form an auto-POST page sends (ours is called "saml-weiter")."""
        named = [form for form in self.forms if form.id == "saml-weiter"]
        return named[0] if named else self.forms[0]


@dataclass(frozen=True)
class Hop:
    """One request of a navigation and how the site answered it."""

    method: str
    url: str
    status: int
    # How the browser went on: "redirect", "refresh", "auto-post" or "stop" (a page for a
    # person, or the end).
    then: str
    # The form fields sent with a POST.
    fields: dict[str, str] | None = None

    @property
    def origin(self) -> str:
        parts = urlsplit(self.url)
        return f"{parts.scheme}://{parts.netloc}"

    @property
    def path(self) -> str:
        return urlsplit(self.url).path


@dataclass
class _Cookie:
    value: str
    same_site: str
    secure: bool


class WebBrowser:
    """One citizen's browser across the IdP and the portals."""

    def __init__(self) -> None:
        self._clients: dict[str, FlaskClient] = {}
        self._jar: dict[str, dict[str, _Cookie]] = {}
        self.history: list[Hop] = []

    def serve(self, origin: str, app: Flask) -> None:
        """Requests to ``origin`` (scheme://host[:port]) go to ``app``."""
        self._clients[origin.rstrip("/")] = app.test_client(use_cookies=False)

    # --- what the citizen does --------------------------------------------------------

    def open(self, url: str) -> Page:
        """Type an address (or follow a link from a page of that same site)."""
        return self._navigate("GET", url, None, initiator=url)

    def submit(self, page: Page, form: Form, button: tuple[str, str] | None = None,
               **values: str) -> Page:
        """Fill in ``values`` and press ``button`` (name, value) or just send the form."""
        fields = {**form.fields, **values}
        if button is not None and button[0]:
            fields[button[0]] = button[1]
        target = urljoin(page.url, form.action or page.url)
        if form.method == "post":
            return self._navigate("POST", target, fields, initiator=page.url)
        return self._navigate("GET", f"{target.split('?')[0]}?{urlencode(fields)}", None,
                              initiator=page.url)

    def hops_since(self, start: int) -> list[Hop]:
        return self.history[start:]

    # --- the machinery ----------------------------------------------------------------

    def _navigate(self, method: str, url: str, data: dict[str, str] | None,
                  initiator: str) -> Page:
        for _ in range(MAX_HOPS):
            response = self._request(method, url, data, initiator)
            status = response.status_code
            text = response.get_data(as_text=True)
            if status in REDIRECTS and "Location" in response.headers:
                self.history.append(Hop(method, url, status, "redirect", data))
                if status in (301, 302, 303) and method == "POST":
                    method, data = "GET", None  # what browsers do (303 says so, 302 by habit)
                initiator, url = url, urljoin(url, response.headers["Location"])
                continue
            page = Page(url, status, text, response.headers)
            if status == 200 and page.refresh:
                self.history.append(Hop(method, url, status, "refresh", data))
                initiator, url, method, data = url, page.refresh, "GET", None
                continue
            if status == 200 and page.auto_post:
                self.history.append(Hop(method, url, status, "auto-post", data))
                form = page.auto_form
                assert form.method == "post", f"an auto-submitted GET form on {url}"
                initiator, url, method, data = url, urljoin(url, form.action), "POST", \
                    dict(form.fields)
                continue
            self.history.append(Hop(method, url, status, "stop", data))
            return page
        raise AssertionError(f"more than {MAX_HOPS} hops: {self.history[-MAX_HOPS:]}")

    def _request(self, method: str, url: str, data: dict[str, str] | None,
                 initiator: str) -> Any:
        parts = urlsplit(url)
        origin = f"{parts.scheme}://{parts.netloc}"
        client = self._clients.get(origin)
        assert client is not None, f"no site serves {origin} (asked for {url})"
        cross_site = urlsplit(initiator).hostname != parts.hostname
        cookies = self._cookies_for(parts.scheme, parts.hostname or "", method, cross_site)
        headers = {"Cookie": cookies} if cookies else {}
        # The raw URL keeps the query exactly as sent (a Redirect signature covers its bytes).
        response = client.open(url, method=method, data=data, headers=headers)
        self._store(parts.hostname or "", response.headers.getlist("Set-Cookie"))
        return response

    def _cookies_for(self, scheme: str, host: str, method: str, cross_site: bool) -> str:
        secure_context = scheme == "https" or host == "localhost"
        sent = []
        for name, cookie in self._jar.get(host, {}).items():
            if cookie.secure and not secure_context:
                continue
            if cross_site and cookie.same_site == "strict":
                continue
            if cross_site and method != "GET" and cookie.same_site == "lax":
                continue
            sent.append(f"{name}={cookie.value}")
        return "; ".join(sent)

    def _store(self, host: str, headers: list[str]) -> None:
        jar = self._jar.setdefault(host, {})
        for header in headers:
            parsed: SimpleCookie = SimpleCookie()
            parsed.load(header)
            for name, morsel in parsed.items():
                if _expired(morsel):
                    jar.pop(name, None)
                    continue
                jar[name] = _Cookie(morsel.value, (morsel["samesite"] or "lax").lower(),
                                    bool(morsel["secure"]))

    def cookie(self, host: str, name: str) -> str | None:
        found = self._jar.get(host, {}).get(name)
        return found.value if found else None


def _expired(morsel: Any) -> bool:
    if morsel["max-age"] and int(morsel["max-age"]) <= 0:
        return True
    if morsel["expires"]:
        return bool(parsedate_to_datetime(morsel["expires"]) <= datetime.now(UTC))
    return False

