"""The IdP in the shape production runs it, for the scale and fault tests: gunicorn with two
workers on PostgreSQL (and Redis), and a citizen's browser behind the simulated proxy that sends
each request over a connection to a chosen worker.

Which worker served a request is read from gunicorn's own access log: the tests start gunicorn
with a log format that adds the worker's pid (``%(p)s``) and the user agent, which the browser
sets to a fresh marker for every request. The product gets no debug endpoint for it.
"""

from __future__ import annotations

import http.client
import re
import secrets
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlencode

from saml2 import BINDING_HTTP_REDIRECT
from saml2.client import Saml2Client
from saml2.xmldsig import SIG_RSA_SHA256
from sqlalchemy import create_engine, select

from idp.mail.models import OutboxMail
from idp.saml.configuration import METADATA_PATH
from idp.samlkit.crypto import install_backend
from tests.conftest import CSRF, LINK, REGISTRATION
from tests.deployment.gunicorn_process import (
    BASE_URL,
    CLIENT_ADDRESS,
    HOST,
    PORTAL,
    PORTAL_ACS,
    RunningIdp,
)
from tests.flows.conftest import Portal, to_idp
from tests.saml_support import sp_config

# The worker's pid ("<1234>") first, the user agent (a marker per request) last.
ACCESS_LOG_WITH_PID = '%(p)s %(h)s "%(r)s" %(s)s "%(a)s"'
# Cheap argon2: these tests are about workers and stores, not about the hash's cost.
CHEAP_ARGON2 = {"IDP_ARGON2_TIME_COST": "1", "IDP_ARGON2_MEMORY_KIB": "1024",
                "IDP_ARGON2_PARALLELISM": "1"}
PASSWORD = REGISTRATION["password"]


@dataclass
class Page:
    status: int
    location: str
    html: str
    retry_after: str = ""


def proxy_headers(marker: str, address: str = CLIENT_ADDRESS) -> dict[str, str]:
    """What the TLS proxy in front of the IdP adds, and a marker to find the request by."""
    return {"Host": HOST, "X-Forwarded-For": address, "X-Forwarded-Proto": "https",
            "User-Agent": marker}


def random_address() -> str:
    """A client address of its own, so that the address throttle's counters (in Redis, kept
    for an hour, also across test runs) belong to one browser only."""
    return "10." + ".".join(str(byte) for byte in secrets.token_bytes(3))


def new_marker(prefix: str = "req") -> str:
    return f"{prefix}-{secrets.token_hex(6)}"


def workers_of(idp: RunningIdp, markers: list[str], seconds: float = 5.0) -> dict[str, int]:
    """The pid of the worker that served each marked request, from the access log."""
    quoted = [f'"{marker}"' for marker in markers]
    log = idp.access_log_once(*quoted, seconds=seconds)
    found: dict[str, int] = {}
    for line in log.splitlines():
        match = re.match(r"<(\d+)> .*\"([^\"]+)\"$", line)
        if match and match.group(2) in markers:
            found[match.group(2)] = int(match.group(1))
    return found


def connection_to(idp: RunningIdp) -> http.client.HTTPConnection:
    return http.client.HTTPConnection("127.0.0.1", idp.port, timeout=30)


def connections_by_worker(idp: RunningIdp, per_worker: int,
                          workers: int = 2) -> dict[int, list[http.client.HTTPConnection]]:
    """Keep-alive connections, ``per_worker`` to each of the ``workers`` workers: opened until
    the kernel has handed enough of them to each (a kept-alive connection stays with its
    worker). Tried for up to 30 s: right after the start a worker may still be loading the app
    while the other takes every connection."""
    by_worker: dict[int, list[http.client.HTTPConnection]] = defaultdict(list)
    spare: list[http.client.HTTPConnection] = []
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        held = [connection_to(idp) for _ in range(workers)]  # opened together: spread out
        markers = [new_marker("probe") for _ in held]
        for connection, marker in zip(held, markers, strict=True):
            connection.request("GET", "/datenschutz", headers=proxy_headers(marker))
        for connection in held:
            connection.getresponse().read()
        pids = workers_of(idp, markers)
        for connection, marker in zip(held, markers, strict=True):
            pool = by_worker[pids[marker]]
            (pool if len(pool) < per_worker else spare).append(connection)
        if len(by_worker) >= workers and all(len(pool) >= per_worker
                                             for pool in by_worker.values()):
            break
        if len(by_worker) < workers:
            time.sleep(0.1)
    for connection in spare:
        connection.close()
    assert len(by_worker) >= workers, f"only workers {list(by_worker)} took connections"
    return dict(by_worker)


@dataclass
class ProxiedBrowser:
    """A citizen's browser behind the proxy: keeps cookies (also the Secure ones: the proxy
    speaks https to it), fills in the CSRF token, follows no redirect by itself."""

    idp: RunningIdp
    address: str = field(default_factory=random_address)
    cookies: dict[str, str] = field(default_factory=dict)
    last_html: str = ""
    markers: list[str] = field(default_factory=list)

    def request(self, method: str, path: str, via: http.client.HTTPConnection | None = None,
                fields: dict[str, str] | None = None) -> Page:
        marker = new_marker("citizen")
        self.markers.append(marker)
        headers = proxy_headers(marker, self.address)
        if self.cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        body = None
        if fields is not None:
            body = urlencode(fields)
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        connection = via or connection_to(self.idp)
        connection.request(method, path, body=body, headers=headers)
        response = connection.getresponse()
        text = response.read().decode("utf-8", errors="replace")
        if via is None:
            connection.close()
        for cookie in response.headers.get_all("Set-Cookie") or []:
            name, _, rest = cookie.partition("=")
            value, _, attributes = rest.partition(";")
            if "max-age=0" in attributes.lower() or not value:
                self.cookies.pop(name, None)
            else:
                self.cookies[name] = value
        self.last_html = text
        location = response.headers.get("Location", "")
        return Page(response.status, location.removeprefix(BASE_URL), text,
                    response.headers.get("Retry-After", ""))

    def get(self, path: str, via: http.client.HTTPConnection | None = None) -> Page:
        return self.request("GET", path, via)

    def submit(self, path: str, fields: dict[str, str] | None = None,
               via: http.client.HTTPConnection | None = None) -> Page:
        """POST a form with the CSRF token of the page last seen."""
        return self.request("POST", path, via, {"csrf_token": csrf_of(self.last_html),
                                                **(fields or {})})

    def workers(self) -> set[int]:
        """The pids of the workers that served this browser's requests (from the access log)."""
        return set(workers_of(self.idp, self.markers).values())


def csrf_of(page: str) -> str:
    match = CSRF.search(page)
    assert match, "the page has no form with a CSRF token"
    return match.group(1)


def unique_citizen() -> dict[str, str]:
    """The registration form of a citizen no other test uses."""
    tag = secrets.token_hex(4)
    return REGISTRATION | {"username": f"Erika{tag}", "email": f"erika.{tag}@example.org"}


def register(browser: ProxiedBrowser, citizen: dict[str, str],
             via: list[http.client.HTTPConnection | None] | None = None) -> None:
    """Fill in the registration form and save it, the requests in turn over ``via``."""
    hops = (via or [None]) * 4
    browser.get("/registrieren/benutzername", hops[0])
    sent = browser.submit("/registrieren/benutzername", citizen, hops[1])
    assert sent.status == 302, sent.html
    browser.get("/registrieren/pruefen", hops[2])
    saved = browser.submit("/registrieren/pruefen", None, hops[3])
    assert saved.location == "/registrieren/mail-versendet", saved.status


def activation_path(database_url: str, email: str) -> str:
    """The path of the newest activation link mailed to ``email`` (read from the outbox)."""
    engine = create_engine(database_url)
    try:
        with engine.connect() as connection:
            body = connection.scalars(
                select(OutboxMail.body_text).where(OutboxMail.recipient == email)
                .order_by(OutboxMail.id.desc())).first()
    finally:
        engine.dispose()
    assert body, f"no mail to {email}"
    match = LINK.search(body)
    assert match and match.group(0).startswith(BASE_URL), body
    return match.group(0).removeprefix(BASE_URL)


def activated_citizen(browser: ProxiedBrowser, database_url: str) -> dict[str, str]:
    citizen = unique_citizen()
    register(browser, citizen)
    path = activation_path(database_url, citizen["email"])
    browser.get(path)
    assert browser.submit(path).status == 200
    return citizen


def log_in(browser: ProxiedBrowser, username: str, password: str = PASSWORD,
           via: http.client.HTTPConnection | None = None, path: str = "/anmelden") -> Page:
    browser.get(path, via)
    return browser.submit(path, {"username": username, "password": password}, via)


def portal_for(idp: RunningIdp, keys: tuple[Path, Path]) -> Portal:
    """The test portal as a pysaml2 SP that has loaded the running IdP's metadata."""
    metadata = _metadata(idp)
    client = Saml2Client(config=sp_config(PORTAL, PORTAL_ACS, *keys, metadata))
    install_backend(client)
    return Portal(client, acs_url=PORTAL_ACS)


def _metadata(idp: RunningIdp) -> str:
    connection = connection_to(idp)
    connection.request("GET", METADATA_PATH, headers=proxy_headers("metadata"))
    text = connection.getresponse().read().decode("utf-8")
    connection.close()
    return text


def authn_request_path(portal: Portal, relay_state: str = "/start") -> str:
    """Where the portal sends the browser: the IdP's Redirect endpoint with a fresh request,
    signed on the query (RSA-SHA256) as every portal registered with the defaults must."""
    request_id, info = portal.client.prepare_for_authenticate(
        entityid=BASE_URL + METADATA_PATH, binding=BINDING_HTTP_REDIRECT,
        relay_state=relay_state, sign=True, sigalg=SIG_RSA_SHA256)
    portal.outstanding[request_id] = relay_state
    path, _ = to_idp(BINDING_HTTP_REDIRECT, info)
    return path
