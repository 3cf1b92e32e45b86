"""What the real-HTTP interop tests (SimpleSAMLphp, Shibboleth) share.

- :func:`prepare_idp`: ``servicekonto run`` (started by tests/e2e/processes.py) with a policy
  folder and a database of its own and the citizen Erika, ready to register portals;
- :func:`serving`: a portal's server process, up until the block ends;
- :class:`LiveFederation`: the live IdP and two portals, with the citizen's steps (log in,
  log out) and the checks on her hops that hold for any portal software;
- reading what a hop carried (:func:`saml_message`) and what a portal page says it received
  (:func:`seen_by`).
"""

from __future__ import annotations

import base64
import html
import json
import os
import re
import shutil
import subprocess
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, Protocol, TypeVar
from urllib.parse import parse_qs, urlsplit

import yaml
from lxml import etree

from idp.testing.browser import Hop, Page, WebBrowser, fetch, trace
from tests.e2e.conftest import CHEAP_ARGON2
from tests.e2e.processes import (
    SERVICEKONTO,
    eventually,
    start_idp,
    stop,
    upgrade_database,
)

PROJECT_ROOT = Path(__file__).resolve().parents[2]
USERNAME = "ErikaM"
PASSWORD = "Kräftig-Grün 42"
SAML_REDIRECT = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect"
SAML_POST = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST"
RSA_SHA256 = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"
SUCCESS = "urn:oasis:names:tc:SAML:2.0:status:Success"
NS = {"md": "urn:oasis:names:tc:SAML:2.0:metadata", "ds": "http://www.w3.org/2000/09/xmldsig#",
      "samlp": "urn:oasis:names:tc:SAML:2.0:protocol",
      "saml": "urn:oasis:names:tc:SAML:2.0:assertion"}


def fill(example: Path, values: dict[str, str]) -> str:
    """The operator's example file with each ``{{NAME}}`` replaced; none may be left."""
    text = example.read_text(encoding="utf-8")
    for name, value in values.items():
        text = text.replace("{{" + name + "}}", value)
    left = re.findall(r"\{\{[A-Z_]+\}\}", text)
    assert not left, f"{example.name}: no value for {sorted(set(left))}"
    return text


# --- processes --------------------------------------------------------------------------------

@contextmanager
def serving(command: list[str], log: Path, url: str, logs: Callable[[], str],
            **popen: Any) -> Iterator[subprocess.Popen[bytes]]:
    """``command`` running (its output in ``log``) once ``url`` answers 200, until the block
    ends; ``logs`` tells what went wrong."""
    with log.open("ab") as output:
        process = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT, **popen)
    try:
        def served() -> bool | None:
            assert process.poll() is None, logs()
            try:
                status = fetch(url).status
            except OSError:
                return None
            assert status == 200, f"{url} answered {status}:\n{logs()}"
            return True

        eventually(served, 30, logs)
        yield process
    finally:
        stop(process)


@dataclass
class LiveIdp:
    """``servicekonto run`` at ``url`` with its folder (policies, database, log)."""

    url: str
    folder: Path
    env: dict[str, str]

    @property
    def entity_id(self) -> str:
        return f"{self.url}/saml/metadata"

    @property
    def log(self) -> Path:
        return self.folder / "idp.log"

    def register(self, short_name: str, display_name: str, entity_id: str, metadata_url: str,
                 name_id_format: str, attributes: list[str]) -> None:
        """A portal in the policy folder (before :meth:`run`: the IdP fetches the portals'
        metadata when it starts), with consent and signed AuthnRequests required."""
        policy = {"display_name": display_name, "entity_id": entity_id,
                  "metadata": metadata_url, "attributes": attributes,
                  "name_id_format": name_id_format, "consent_required": True,
                  "want_authn_requests_signed": True}
        (self.folder / "policies" / "portals" / f"{short_name}.yaml").write_text(
            yaml.safe_dump(policy, allow_unicode=True), encoding="utf-8")

    @contextmanager
    def run(self) -> Iterator[LiveIdp]:
        with contextmanager(start_idp)(self.env, self.log, migrate=False):
            yield self

    def logs(self) -> str:
        return self.log.read_text(errors="replace")[-4000:]


def prepare_idp(folder: Path, url: str, **settings: str) -> LiveIdp:
    """The IdP's settings (development, SQLite, cheap password hashes, ``settings`` on top), its
    policy folder with the shipped password policy and no portal yet, its database, and the
    citizen USERNAME with PASSWORD (activated, no consent given)."""
    policies = folder / "policies"
    (policies / "portals").mkdir(parents=True)
    shutil.copy(PROJECT_ROOT / "policies" / "password.yaml", policies / "password.yaml")
    env = {**os.environ, "IDP_ENV": "development", "IDP_BASE_URL": url,
           "IDP_INSTANCE_PATH": str(folder / "instance"), "IDP_POLICY_DIR": str(policies),
           "IDP_DATABASE_URL": f"sqlite:///{folder / 'servicekonto.sqlite3'}",
           "IDP_SECRET_KEY": "interop-" + "x" * 40, **CHEAP_ARGON2, **settings}
    upgrade_database(env)
    created = subprocess.run(
        [str(SERVICEKONTO), "user", "create", "--username", USERNAME,
         "--email", "erika.mustermann@example.org", "--given-name", "Erika",
         "--surname", "Mustermann", "--salutation", "frau", "--password", PASSWORD],
        env=env, capture_output=True, text=True, timeout=60, check=False)
    assert created.returncode == 0, created.stdout + created.stderr
    return LiveIdp(url, folder, env)


# --- what the citizen does and sees -----------------------------------------------------------

class LivePortal(Protocol):
    """A portal of the live IdP as the tests use it, whatever its software."""

    @property
    def entity_id(self) -> str: ...

    @property
    def page(self) -> str:
        """The portal's own page (it shows what it received, see :func:`seen_by`)."""

    @property
    def login_url(self) -> str:
        """Its "Anmelden": the login, back at :attr:`page`."""

    @property
    def logout_url(self) -> str:
        """Its "Abmelden": single logout, back at :attr:`page` + ``?abgemeldet``."""

    @property
    def slo_url(self) -> str:
        """Its SingleLogoutService (the start of the URL for every binding)."""


P = TypeVar("P", bound=LivePortal)


@dataclass
class Visit:
    """A login at a portal as the citizen saw it."""

    page: Page  # where it ended
    hops: list[Hop]
    asked_for_password: bool
    asked_for_consent: bool


@dataclass
class LiveFederation(Generic[P]):
    """The running IdP and two portals registered with it."""

    idp: LiveIdp
    first: P
    second: P
    software: str  # the portals' software and version, for the report of a failing test
    portal_logs: Callable[[], str]

    def diagnosis(self, browser: WebBrowser | None = None) -> str:
        hops = trace(browser.history[-40:]) if browser else ""
        return (f"{self.software}\n--- hops ---\n{hops}\n{self.portal_logs()}\n"
                f"--- IdP ---\n{self.idp.logs()}")

    def log_in_at(self, browser: WebBrowser, portal: P) -> Visit:
        """"Anmelden" at the portal; at the IdP the password if asked, ZUSTIMMEN if asked."""
        start = len(browser.history)
        page = browser.open(portal.login_url)
        password = consent = False
        for _ in range(3):
            if not page.url.startswith(self.idp.url + "/"):
                break
            if any("password" in form.fields for form in page.forms) and not password:
                password = True
                page = browser.submit(page, page.form("password"), username=USERNAME,
                                      password=PASSWORD)
            elif any("transaction" in form.fields for form in page.forms) and not consent:
                consent = True
                page = browser.submit(page, page.form("transaction"),
                                      button=("decision", "agree"))
            else:
                break
        assert page.url == portal.page, f"ended at {page.url} ({page.status}), not at the " \
            f"portal:\n{page.text[:2000]}\n{self.diagnosis(browser)}"
        return Visit(page, browser.hops_since(start), password, consent)

    def log_in_at_both(self) -> WebBrowser:
        """A new browser logged in at the first portal, then (single sign-on) at the second."""
        browser = WebBrowser()
        self.log_in_at(browser, self.first)
        self.log_in_at(browser, self.second)
        for portal in (self.first, self.second):
            assert seen_by(browser.open(portal.page))["angemeldet"], self.diagnosis(browser)
        return browser

    def authn_request_hop(self, visit: Visit) -> Hop:
        """The first request that brought the portal's AuthnRequest to the IdP."""
        found = [hop for hop in visit.hops if hop.origin == self.idp.url
                 and hop.path in ("/saml/sso/redirect", "/saml/sso/post")]
        assert found, trace(visit.hops)
        return found[0]

    def assert_signed_authn_request(self, visit: Visit, portal: P, binding: str) -> None:
        """The portal's AuthnRequest came over ``binding``, from it, signed with RSA-SHA256:
        on the query (HTTP-Redirect) or in the XML (HTTP-POST)."""
        sent = self.authn_request_hop(visit)
        request = saml_message(sent, "SAMLRequest")
        assert request.tag == f"{{{NS['samlp']}}}AuthnRequest", sent
        assert request.findtext("saml:Issuer", namespaces=NS) == portal.entity_id, sent
        if binding == SAML_REDIRECT:
            assert sent.method == "GET", sent
            query = parse_qs(urlsplit(sent.url).query)
            assert query["SigAlg"] == [RSA_SHA256] and query["Signature"], sent
        else:
            assert sent.method == "POST", sent
            assert request.xpath("ds:Signature/ds:SignedInfo/ds:SignatureMethod/@Algorithm",
                                 namespaces=NS) == [RSA_SHA256], sent

    def log_out_at_first(self, browser: WebBrowser) -> list[Hop]:
        """"Abmelden" at the first portal: back there, logged out; the hops of it."""
        start = len(browser.history)
        page = browser.open(self.first.logout_url)
        hops = browser.hops_since(start)
        why = f"{trace(hops)}\n{self.diagnosis()}"
        assert page.url == self.first.page + "?abgemeldet", why
        assert not seen_by(page)["angemeldet"], trace(hops)
        return hops

    def assert_logged_out_everywhere(self, browser: WebBrowser, hops: list[Hop]) -> None:
        """After :meth:`log_out_at_first`: the IdP logged the citizen out at the second portal
        too, told the first that all went well, and answered each hop with a redirect."""
        why = trace(hops) + "\n" + self.diagnosis()
        # The IdP asked the second portal (a LogoutRequest to its SingleLogoutService) ...
        to_second = [hop for hop in hops if hop.url.startswith(self.second.slo_url)
                     and hop.carries("SAMLRequest")]
        assert to_second, why
        request = saml_message(to_second[0], "SAMLRequest")
        assert request.tag == f"{{{NS['samlp']}}}LogoutRequest", why
        # ... and told the first one that everything went well (no PartialLogout).
        to_first = [hop for hop in hops if hop.url.startswith(self.first.slo_url)
                    and hop.carries("SAMLResponse")]
        assert to_first, why
        codes = saml_message(to_first[-1], "SAMLResponse").xpath(
            "samlp:Status//samlp:StatusCode/@Value", namespaces=NS)
        assert codes == [SUCCESS], f"{codes}\n{why}"
        assert not seen_by(browser.open(self.second.page))["angemeldet"], why
        # The logout was started by a GET: the IdP answers each hop with a redirect, no page.
        at_idp = [hop for hop in hops if hop.origin == self.idp.url]
        assert at_idp, why
        assert all(hop.status in (302, 303) for hop in at_idp), why


def saml_message(hop: Hop, name: str) -> Any:
    """The SAML message ``name`` (SAMLRequest/SAMLResponse) a hop carried, parsed."""
    if hop.method == "GET":
        encoded = parse_qs(urlsplit(hop.url).query)[name][0]
        return etree.fromstring(zlib.decompress(base64.b64decode(encoded), -15))
    assert hop.fields is not None, hop
    return etree.fromstring(base64.b64decode(hop.fields[name]))


def seen_by(page: Page) -> dict[str, Any]:
    """What the portal's page says it received: the JSON in its ``<pre id="saml">``
    (``angemeldet`` and the portal software's own account of the login)."""
    found = re.search(r'<pre id="saml">(.*?)</pre>', page.text, re.DOTALL)
    assert found, f"not a portal page: {page.url} ({page.status})\n{page.text[:3000]}"
    seen: dict[str, Any] = json.loads(html.unescape(found.group(1)))
    return seen


def logged_in_seen_by(page: Page, key: str) -> dict[str, Any]:
    """``seen_by(page)[key]`` of a page that says the citizen is logged in."""
    seen = seen_by(page)
    assert seen["angemeldet"], seen
    found: dict[str, Any] = seen[key]
    return found
