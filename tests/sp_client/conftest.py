"""A demo portal and the real IdP, in-process, federated both ways; a citizen travelling between.

The portal runs with the IdP's real portal policy (``policies/portals/<profile>.yaml``), only
its metadata comes from a file the test writes; the portal reads the IdP's metadata from the
IdP's test client. Each test gets fresh databases for both (SQLite, and PostgreSQL when
``IDP_TEST_POSTGRES_URL`` is set).
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit

import pytest
import yaml
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import create_engine, text

from idp import create_app as create_idp
from idp.config import PROJECT_ROOT
from idp.db import db
from sp_client import create_app as create_portal
from sp_client.extensions import portal_db
from sp_client.models import PortalBase
from tests.conftest import CSRF, POSTGRES_URL, REGISTRATION, activate, register
from tests.conftest import Browser as IdpBrowser
from tests.postgres import temporary_database
from tests.saml_support import key_pair

AUTO_POST = re.compile(r'<form id="saml-weiter" method="post" action="([^"]+)"')
# The IdP's front-channel logout page: a link the script follows at once.
AUTO_LINK = re.compile(r'<a id="saml-weiter-link"[^>]* href="([^"]+)"')
HIDDEN = re.compile(r'<input type="hidden" name="([^"]+)" value="([^"]*)">')


# --- databases ------------------------------------------------------------------------------

@pytest.fixture(scope="session")
def portal_postgres() -> Iterator[str]:
    """A PostgreSQL database of the portal's own for this test run, dropped at the end."""
    if not POSTGRES_URL:
        pytest.skip("IDP_TEST_POSTGRES_URL is not set")
    with temporary_database(POSTGRES_URL, "portal_test") as url:
        engine = create_engine(url)
        PortalBase.metadata.create_all(engine)
        engine.dispose()
        yield url


@pytest.fixture
def portal_database_url(request: pytest.FixtureRequest, database_url: str,
                        tmp_path: Path) -> str:
    """The portal's database, of the same kind as the IdP's in this test run."""
    if database_url.startswith("sqlite"):
        return f"sqlite:///{tmp_path / 'portal.sqlite3'}"
    url: str = request.getfixturevalue("portal_postgres")
    engine = create_engine(url)
    with engine.begin() as connection:
        tables = ", ".join(f'"{t.name}"' for t in PortalBase.metadata.sorted_tables)
        connection.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    engine.dispose()
    return url


# --- the two apps ---------------------------------------------------------------------------

@pytest.fixture(scope="session")
def portal_keys(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, Path]]:
    """Signing and encryption keys of the portal, made once per run (as its start would)."""
    folder = tmp_path_factory.mktemp("portal-keys")
    return {"signing": key_pair(folder, "signing"), "encryption": key_pair(folder, "encryption")}


@pytest.fixture
def portal_profile() -> str:
    """Which demo portal a test module uses (override in the module)."""
    return "dueren"


@pytest.fixture
def portal_options() -> dict[str, Any]:
    """Settings of the portal a test changes (override in the module or the test)."""
    return {}


@pytest.fixture
def policy_changes() -> dict[str, Any]:
    """Changes to the IdP's shipped policy of the portal (override in a test)."""
    return {}


@pytest.fixture
def other_portals() -> list[str]:
    """Further demo portals federated with the same IdP (their databases: SQLite)."""
    return []


@dataclass
class Federation:
    """The IdP and the portal(s) of one test, each knowing the other's metadata."""

    portal: Flask
    idp: Flask | None = None
    others: list[Flask] = field(default_factory=list)

    @property
    def portal_url(self) -> str:
        return str(self.portal.config["PORTAL"].base_url)

    @property
    def portals(self) -> list[Flask]:
        return [self.portal, *self.others]

    def idp_app(self) -> Flask:
        assert self.idp is not None
        return self.idp


@pytest.fixture
def federation(settings: dict[str, Any], policy_dir: Path, tmp_path: Path,
               portal_profile: str, portal_options: dict[str, Any],
               policy_changes: dict[str, Any], portal_database_url: str,
               other_portals: list[str],
               portal_keys: dict[str, tuple[Path, Path]]) -> Iterator[Federation]:
    holder: list[Flask] = []

    def idp_metadata() -> bytes:
        assert holder, "the IdP is not running yet"
        return bytes(holder[0].test_client().get("/saml/metadata").data)

    def start(profile: str, database_url: str, **options: Any) -> Flask:
        portal = create_portal(
            profile, instance_path=tmp_path / f"portal-{profile}", database_url=database_url,
            secret_key="portal-" + "p" * 40, key_files=portal_keys["signing"],
            encryption_key_files=portal_keys["encryption"], metadata_loader=idp_metadata,
            **options)
        portal.config["TESTING"] = True
        metadata_file = tmp_path / f"{profile}-metadata.xml"
        metadata_file.write_bytes(portal.test_client().get(
            "/saml/metadata", base_url=portal.config["PORTAL"].base_url).data)
        # The shipped policy of this portal, reading its metadata from the file.
        policy = yaml.safe_load((PROJECT_ROOT / "policies" / "portals" / f"{profile}.yaml")
                                .read_text(encoding="utf-8"))
        policy.update(policy_changes if profile == portal_profile else {},
                      metadata=str(metadata_file))
        (policy_dir / "portals" / f"{profile}.yaml").write_text(
            yaml.safe_dump(policy, allow_unicode=True), encoding="utf-8")
        return portal

    portal = start(portal_profile, portal_database_url, **portal_options)
    others = [start(profile, f"sqlite:///{tmp_path / f'{profile}.sqlite3'}")
              for profile in other_portals]
    idp = create_idp(test_config=settings, env={})
    idp.config["TESTING"] = True
    holder.append(idp)
    yield Federation(portal, idp, others)
    db.bound(idp).engine.dispose()
    for app in (portal, *others):
        portal_db.bound(app).engine.dispose()


# --- a citizen's browser across both sites --------------------------------------------------

class Journey:
    """A browser that goes wherever the pages send it: redirects and auto-POST forms across
    the portal and the IdP, each with its own cookies."""

    def __init__(self, federation: Federation) -> None:
        self.federation = federation
        self.portal = federation.portal.test_client()
        self.others = {str(app.config["PORTAL"].base_url): app.test_client()
                       for app in federation.others}
        self.idp = federation.idp_app().test_client()
        self.url = federation.portal_url + "/"
        self.page = ""
        self.response: Any = None
        # An auto-POST form to this URL is not sent but left on the page (see held_form).
        self.hold_at: str | None = None

    def new_portal_browser(self) -> None:
        """Go on at the portal in another browser (no cookies), as an attacker would."""
        self.portal = self.federation.portal.test_client()

    def _client(self, url: str) -> FlaskClient:
        if url.startswith(self.federation.portal_url):
            return self.portal
        return next((client for base, client in self.others.items() if url.startswith(base)),
                    self.idp)

    def open(self, url: str, data: dict[str, str] | None = None, follow: bool = True) -> Any:
        """GET (or POST ``data`` to) ``url``, relative to the page last seen."""
        url = urljoin(self.url, url)
        client = self._client(url)
        parts = urlsplit(url)
        base = f"{parts.scheme}://{parts.netloc}"
        path = url[len(base):] or "/"
        response = client.post(path, data=data, base_url=base) if data is not None \
            else client.get(path, base_url=base)
        self.url, self.response = url, response
        self.page = response.get_data(as_text=True)
        return self.follow() if follow else response

    def follow(self) -> Any:
        """Follow redirects, auto-POST forms and auto-links until a page wants the citizen."""
        for _ in range(20):
            response = self.response
            if response.status_code in (301, 302, 303, 307):
                self.open(response.location, follow=False)
                continue
            link = AUTO_LINK.search(self.page)
            if link is not None and html.unescape(link.group(1)).split("?")[0] != self.hold_at:
                self.open(html.unescape(link.group(1)), follow=False)
                continue
            form = AUTO_POST.search(self.page)
            if form is None or html.unescape(form.group(1)) == self.hold_at:
                return response
            self.open(html.unescape(form.group(1)), self.held_form(), follow=False)
        raise AssertionError("redirect loop")

    def sent_to(self) -> str:
        """Where the last answer sends the browser: its redirect or its auto-link."""
        if self.response.status_code in (301, 302, 303, 307):
            return str(self.response.location)
        link = AUTO_LINK.search(self.page)
        assert link, self.page[:2000]
        return html.unescape(link.group(1))

    def held_form(self) -> dict[str, str]:
        """The hidden fields of the auto-POST form on the page."""
        return {name: html.unescape(value) for name, value in HIDDEN.findall(self.page)}

    def submit(self, url: str, data: dict[str, str] | None = None, follow: bool = True) -> Any:
        """POST a form of the page last seen (with its CSRF token)."""
        token = CSRF.search(self.page)
        assert token, f"no form on the page:\n{self.page[:2000]}"
        return self.open(url, {"csrf_token": token.group(1), **(data or {})}, follow)

    # -- a citizen's steps --

    def go_to_servicekonto(self) -> Any:
        """Portal: "Anmelden" → "Zum Servicekonto.NRW"."""
        self.open("/anmelden")
        assert "Servicekonto.NRW erforderlich!" in self.page
        return self.submit("/anmelden")

    def log_in_at_idp(self, username: str = "ErikaM",
                      password: str = REGISTRATION["password"]) -> Any:
        assert "/anmelden" in self.url and "Anmelden mit Benutzername und Passwort" in self.page
        return self.submit(self.url, {"username": username, "password": password})

    def decide(self, decision: str = "agree") -> Any:
        assert "Zustimmung zur Weitergabe an ein Fachverfahren" in self.page, self.page[:2000]
        transaction = re.search(r'name="transaction" value="([^"]+)"', self.page)
        assert transaction
        return self.submit("/saml/zustimmung", {"transaction": transaction.group(1),
                                                "decision": decision})

    def log_in(self) -> Any:
        """The whole login at the portal: Servicekonto, password, consent (if asked)."""
        self.go_to_servicekonto()
        self.log_in_at_idp()
        if "Zustimmung zur Weitergabe" in self.page:
            self.decide("agree")
        return self.response


def visible_and_technical(page: str) -> tuple[str, str]:
    """The page after login split at its collapsed "Technische Angaben": (what the citizen
    sees, what only an opened details element shows)."""
    visible, marker, technical = page.partition('<details class="technical">')
    assert marker, page[:3000]  # no "open": the details start collapsed
    assert "Technische Angaben (für Test und Entwicklung)" in technical
    return visible, technical


@pytest.fixture
def journey(federation: Federation) -> Journey:
    return Journey(federation)


def registered(journey: Journey, **changes: str) -> Journey:
    """The citizen (Erika by default) registered and activated her Servicekonto."""
    browser = IdpBrowser(journey.idp)
    register(browser, **changes)
    activate(browser, journey.federation.idp_app(),
             recipient=changes.get("email", REGISTRATION["email"]))
    return journey


@pytest.fixture
def citizen(journey: Journey) -> Journey:
    return registered(journey)


@pytest.fixture
def logged_in(citizen: Journey) -> Journey:
    citizen.log_in()
    assert "Sie sind angemeldet" in citizen.page, citizen.page[:3000]
    return citizen
