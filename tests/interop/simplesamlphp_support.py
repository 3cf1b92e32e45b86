"""SimpleSAMLphp (Debian 12's package, 1.19) as real portals of a live IdP, and a browser that
goes between them over real HTTP.

SimpleSAMLphp runs under PHP's built-in server from a configuration folder of its own
(``SIMPLESAMLPHP_CONFIG_DIR``), written from the operator's examples in
``docs/examples/simplesamlphp/`` with their ``{{…}}`` filled in, and nothing else: what the tests
prove is what those files do. Its keys are made at test time.

The browser keeps cookies per host, as browsers do (not per port: the IdP is ``127.0.0.1`` and
the portals ``localhost``, so that their cookies stay apart), and follows what needs no person:
302/303/307, ``<meta http-equiv="refresh">`` pages and pages that POST a SAML message at once
(ours and SimpleSAMLphp's). ``SameSite`` as Chromium has it: a ``Lax`` cookie goes with a
cross-site top-level GET, not with a cross-site POST; a ``Strict`` one only within its site; one
without the attribute counts as ``Lax``, except that it still goes with a cross-site POST within
two minutes of being set ("Lax+POST"). A site is scheme and host. Every request is recorded as
a :class:`Hop`.
"""

from __future__ import annotations

import http.client
import os
import re
import secrets
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urljoin, urlsplit

PROJECT_ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = PROJECT_ROOT / "docs" / "examples" / "simplesamlphp"
SIMPLESAMLPHP = Path("/usr/share/simplesamlphp")
SAML_REDIRECT = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect"
SAML_POST = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST"
REDIRECTS = (301, 302, 303, 307, 308)
MAX_HOPS = 30
LAX_POST_SECONDS = 120


def why_not_installed() -> str | None:
    """Why SimpleSAMLphp cannot run here (None: it can)."""
    if shutil.which("php") is None:
        return "php is missing: bash tests/system-packages.sh installs php-cli (CI runs it)"
    if not (SIMPLESAMLPHP / "lib" / "_autoload.php").exists():
        return (f"{SIMPLESAMLPHP} is missing: bash tests/system-packages.sh installs Debian's "
                "simplesamlphp (CI runs it)")
    return None


def simplesamlphp_version() -> str:
    """The installed package's version (for the report of a failing test)."""
    dpkg_query = shutil.which("dpkg-query")
    if dpkg_query is None:
        return "unknown"
    result = subprocess.run([dpkg_query, "-W", "-f", "${Version}", "simplesamlphp"],
                            capture_output=True, text=True, check=False)
    return result.stdout.strip() or "unknown"


def fill(example: str, values: dict[str, str]) -> str:
    """The example file ``example`` with each ``{{NAME}}`` replaced; none may be left."""
    text = (EXAMPLES / example).read_text(encoding="utf-8")
    for name, value in values.items():
        text = text.replace("{{" + name + "}}", value)
    left = re.findall(r"\{\{[A-Z_]+\}\}", text)
    assert not left, f"{example}: no value for {sorted(set(left))}"
    return text


def php_string(value: str) -> str:
    """``value`` safe inside a single-quoted PHP string of the examples."""
    return value.replace("\\", "\\\\").replace("'", "\\'")


def without_php_opening(text: str) -> str:
    return text.removeprefix("<?php").lstrip("\n")


# --- SimpleSAMLphp --------------------------------------------------------------------------

@dataclass(frozen=True)
class Portal:
    """One saml:SP auth source: a portal with its own entity ID, keys and page."""

    auth_source: str
    name: str
    name_id_format: str  # transient | persistent
    base_url: str
    key: Path
    cert: Path

    @property
    def entity_id(self) -> str:
        return self.metadata_url

    @property
    def metadata_url(self) -> str:
        return f"{self.base_url}/simplesaml/module.php/saml/sp/metadata.php/{self.auth_source}"

    @property
    def acs_url(self) -> str:
        return f"{self.base_url}/simplesaml/module.php/saml/sp/saml2-acs.php/{self.auth_source}"

    @property
    def slo_url(self) -> str:
        return f"{self.base_url}/simplesaml/module.php/saml/sp/saml2-logout.php/{self.auth_source}"

    @property
    def page(self) -> str:
        """The portal's own page (docs/examples/simplesamlphp/portal.php)."""
        return f"{self.base_url}/{self.auth_source}/"


@dataclass
class SimpleSamlPhp:
    """One SimpleSAMLphp installation (one config folder, one PHP server) with its portals."""

    folder: Path
    base_url: str
    portals: list[Portal]
    # The IdP's entity ID in authsources.php ('idp'); use_idp() sets the one its metadata says.
    idp_entity_id: str

    def __post_init__(self) -> None:
        self.config_dir = self.folder / "config"
        self.docroot = self.folder / "www"
        self.log = self.folder / "php-server.log"
        self._secrets = {"SECRET_SALT": secrets.token_hex(16),
                         "ADMIN_PASSWORD": secrets.token_hex(16)}

    def write(self) -> None:
        """config.php, authsources.php and each portal's page (the IdP comes later)."""
        for sub in ("config/metadata", "log", "data", "tmp", "www"):
            (self.folder / sub).mkdir(parents=True, exist_ok=True)
        common = {"SP_BASE_URL": self.base_url, "CONFIG_DIR": str(self.config_dir),
                  "CERT_DIR": str(self.folder / "keys") + "/",
                  "LOG_DIR": str(self.folder / "log") + "/",
                  "DATA_DIR": str(self.folder / "data") + "/",
                  "TEMP_DIR": str(self.folder / "tmp"), **self._secrets}
        (self.config_dir / "config.php").write_text(fill("config.php", common), encoding="utf-8")
        sources = ["<?php\n$config = [];\n"]
        for portal in self.portals:
            sources.append(without_php_opening(fill("authsources.php", {
                **common, "AUTH_SOURCE": portal.auth_source, "SP_NAME": php_string(portal.name),
                "SP_ENTITY_ID": portal.entity_id, "IDP_ENTITY_ID": self.idp_entity_id,
                "SP_KEY_FILE": str(portal.key), "SP_CERT_FILE": str(portal.cert),
                "NAME_ID_FORMAT": portal.name_id_format})))
            page = self.docroot / portal.auth_source / "index.php"
            page.parent.mkdir(parents=True, exist_ok=True)
            page.write_text(fill("portal.php", {
                "AUTH_SOURCE": portal.auth_source, "SP_NAME": php_string(portal.name),
                "PORTAL_URL": portal.page}), encoding="utf-8")
        (self.config_dir / "authsources.php").write_text("\n".join(sources), encoding="utf-8")
        # Debian's apache.conf serves www/ as /simplesaml; here a link does.
        link = self.docroot / "simplesaml"
        if not link.exists():
            link.symlink_to(SIMPLESAMLPHP / "www")

    def use_idp(self, entity_id: str, base_url: str, certificate: str,
                sso_binding: str = SAML_REDIRECT) -> None:
        """saml20-idp-remote.php for the IdP; for HTTP-POST without the HTTP-Redirect SSO line,
        as the example's comment tells the operator."""
        if entity_id != self.idp_entity_id:
            self.idp_entity_id = entity_id
            self.write()
        text = fill("saml20-idp-remote.php", {"IDP_ENTITY_ID": entity_id,
                                              "IDP_BASE_URL": base_url,
                                              "IDP_CERTIFICATE": certificate})
        if sso_binding == SAML_POST:
            lines = [line for line in text.splitlines(keepends=True)
                     if not (SAML_REDIRECT in line and "/saml/sso/" in line)]
            assert len(lines) == len(text.splitlines()) - 1, "no HTTP-Redirect SSO line"
            text = "".join(lines)
        (self.config_dir / "metadata" / "saml20-idp-remote.php").write_text(
            text, encoding="utf-8")

    def run(self) -> Iterator[SimpleSamlPhp]:
        """PHP's built-in server on the base URL's port until the generator is closed."""
        port = urlsplit(self.base_url).port
        env = {**os.environ, "SIMPLESAMLPHP_CONFIG_DIR": str(self.config_dir)}
        php = shutil.which("php")
        assert php is not None, why_not_installed()
        with self.log.open("ab") as output:
            process = subprocess.Popen(
                [php, "-d", "display_errors=stderr", "-S", f"127.0.0.1:{port}",
                 "-t", str(self.docroot)],
                env=env, stdout=output, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + 20
            while True:
                assert process.poll() is None, self.log.read_text(errors="replace")
                try:
                    status = fetch(self.portals[0].metadata_url).status
                    assert status == 200, f"metadata answered {status}:\n{self.logs()}"
                    break
                except OSError:
                    assert time.monotonic() < deadline, self.logs()
                    time.sleep(0.05)
            yield self
        finally:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()

    def logs(self) -> str:
        """The PHP server's output and SimpleSAMLphp's log (for assertion messages)."""
        parts = [self.log.read_text(errors="replace")[-4000:]]
        ssp_log = self.folder / "log" / "simplesamlphp.log"
        if ssp_log.exists():
            parts.append(ssp_log.read_text(errors="replace")[-6000:])
        return "\n--- simplesamlphp.log ---\n".join(parts)


@dataclass
class Response:
    status: int
    headers: list[tuple[str, str]]
    body: str

    def header(self, name: str) -> str | None:
        return next((value for key, value in self.headers if key.lower() == name.lower()), None)

    def all(self, name: str) -> list[str]:
        return [value for key, value in self.headers if key.lower() == name.lower()]


def fetch(url: str, method: str = "GET", body: bytes | None = None,
          headers: dict[str, str] | None = None) -> Response:
    """One HTTP request, nothing followed (the raw query is sent byte for byte)."""
    parts = urlsplit(url)
    assert parts.scheme == "http", url
    connection = http.client.HTTPConnection(parts.hostname or "", parts.port or 80, timeout=30)
    try:
        target = parts.path or "/"
        if parts.query:
            target += "?" + parts.query
        connection.request(method, target, body=body, headers=headers or {})
        answer = connection.getresponse()
        return Response(answer.status, answer.getheaders(),
                        answer.read().decode("utf-8", errors="replace"))
    finally:
        connection.close()


# --- the browser ----------------------------------------------------------------------------

@dataclass
class Form:
    action: str
    method: str
    id: str | None
    fields: dict[str, str] = field(default_factory=dict)
    buttons: list[tuple[str, str]] = field(default_factory=list)


class _PageParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.forms: list[Form] = []
        self.refresh: str | None = None
        self.scripts: list[str] = []
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
            self.scripts.append(attributes["src"])
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

    @property
    def auto_post(self) -> Form | None:
        """The form that posts a SAML message at once (our autopost.js, SimpleSAMLphp's
        post.js): a POST form of hidden fields only, one of them the SAML message."""
        for form in self.forms:
            if form.method == "post" and ({"SAMLRequest", "SAMLResponse"} & form.fields.keys()):
                return form
        return None

    def form(self, with_field: str) -> Form:
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
    # How the browser went on: "redirect", "refresh", "auto-post" or "stop".
    then: str
    # The fields of a POST (the SAML message of an auto-POST).
    fields: tuple[tuple[str, str], ...] = ()

    @property
    def origin(self) -> str:
        parts = urlsplit(self.url)
        return f"{parts.scheme}://{parts.netloc}"

    @property
    def path(self) -> str:
        return urlsplit(self.url).path

    def __str__(self) -> str:
        return f"{self.method} {self.url[:140]} → {self.status} ({self.then})"


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
    """One citizen's browser over real HTTP across the IdP and the portals."""

    def __init__(self) -> None:
        self._jar: dict[str, dict[tuple[str, str], _Cookie]] = {}
        self.history: list[Hop] = []

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

    def hops_since(self, start: int) -> list[Hop]:
        return self.history[start:]

    def _navigate(self, method: str, url: str, data: dict[str, str] | None,
                  chain: list[str]) -> Page:
        """``chain``: the page the navigation started from, then each URL redirected through
        (a redirect chain that left the site once is cross-site)."""
        for _ in range(MAX_HOPS):
            response = self._request(method, url, data, chain)
            fields = tuple(data.items()) if data else ()
            location = response.header("Location")
            if response.status in REDIRECTS and location:
                self.history.append(Hop(method, url, response.status, "redirect", fields))
                if response.status in (301, 302, 303) and method == "POST":
                    method, data = "GET", None
                chain, url = [*chain, url], urljoin(url, location)
                continue
            page = Page(url, response.status, response.body)
            if response.status == 200 and page.refresh:
                self.history.append(Hop(method, url, response.status, "refresh", fields))
                chain, url, method, data = [url], page.refresh, "GET", None
                continue
            if response.status == 200 and (form := page.auto_post) is not None:
                self.history.append(Hop(method, url, response.status, "auto-post", fields))
                chain, url, method, data = [url], urljoin(url, form.action or url), "POST", \
                    dict(form.fields)
                continue
            self.history.append(Hop(method, url, response.status, "stop", fields))
            return page
        raise AssertionError("more than {} hops:\n{}".format(
            MAX_HOPS, "\n".join(map(str, self.history[-MAX_HOPS:]))))

    def _request(self, method: str, url: str, data: dict[str, str] | None,
                 chain: list[str]) -> Response:
        parts = urlsplit(url)
        same_site = all(_site(step) == _site(url) for step in chain)
        headers = {"User-Agent": "Servicekonto-Interop/1", "Accept-Language": "de"}
        if cookies := self._cookies_for(url, method, same_site):
            headers["Cookie"] = cookies
        body = None
        if data is not None:
            body = urlencode(data).encode()
            headers["Content-Type"] = "application/x-www-form-urlencoded"
            origin = urlsplit(chain[0])
            headers["Origin"] = f"{origin.scheme}://{origin.netloc}" if len(chain) == 1 \
                else "null"
        response = fetch(url, method, body, headers)
        self._store(parts.hostname or "", response.all("Set-Cookie"))
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

    def cookie(self, host: str, name: str) -> str | None:
        return next((cookie.value for (key, _), cookie in self._jar.get(host, {}).items()
                     if key == name), None)


def _expired(attributes: dict[str, str]) -> bool:
    if "max-age" in attributes:
        return int(attributes["max-age"]) <= 0
    if expires := attributes.get("expires"):
        return bool(parsedate_to_datetime(expires) <= datetime.now(UTC))
    return False


def seen_by(page: Page) -> dict[str, Any]:
    """What the portal page (portal.php) says it received: the JSON in ``<pre id="saml">``."""
    import html
    import json

    found = re.search(r'<pre id="saml">(.*?)</pre>', page.text, re.DOTALL)
    assert found, f"not a portal page: {page.url} ({page.status})\n{page.text[:3000]}"
    seen: dict[str, Any] = json.loads(html.unescape(found.group(1)))
    return seen
