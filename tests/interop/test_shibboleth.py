"""Shibboleth SP 3 portals against a live IdP: what a portal operator running Debian's
libapache2-mod-shib gets with the configuration in docs/examples/shibboleth/.

Two portals, each its own shibd and Apache (hosts ``localhost`` and ``127.0.0.2``: cookies do not
tell ports apart), the first sending its AuthnRequest over HTTP-Redirect, the second over
HTTP-POST (``outgoingBindings``), and ``servicekonto run`` with both registered, started once for
the module. The citizen goes between them in the browser of simplesamlphp_support.
"""

from __future__ import annotations

import base64
import os
import shutil
import subprocess
import zlib
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import yaml
from lxml import etree

from tests.e2e.processes import SERVICEKONTO, free_ports, start_idp, upgrade_database
from tests.interop.shibboleth_support import ShibbolethPortal, shibd_version, why_not_installed
from tests.interop.simplesamlphp_support import (
    SAML_POST,
    SAML_REDIRECT,
    Hop,
    Page,
    WebBrowser,
    seen_by,
)
from tests.saml_support import key_pair

PROJECT_ROOT = Path(__file__).resolve().parents[2]
USERNAME = "ErikaM"
PASSWORD = "Kräftig-Grün 42"
RSA_SHA256 = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"
SUCCESS = "urn:oasis:names:tc:SAML:2.0:status:Success"
NS = {"samlp": "urn:oasis:names:tc:SAML:2.0:protocol", "ds": "http://www.w3.org/2000/09/xmldsig#"}
CHEAP_ARGON2 = {"IDP_ARGON2_TIME_COST": "1", "IDP_ARGON2_MEMORY_KIB": "1024",
                "IDP_ARGON2_PARALLELISM": "1"}


@dataclass
class Federation:
    idp: str
    first: ShibbolethPortal
    second: ShibbolethPortal
    idp_log: Path

    def diagnosis(self, browser: WebBrowser | None = None) -> str:
        hops = "\n".join(map(str, browser.history[-40:])) if browser else ""
        return (f"{shibd_version()}\n--- hops ---\n{hops}\n--- first ---\n{self.first.logs()}"
                f"\n--- IdP ---\n{self.idp_log.read_text(errors='replace')[-4000:]}")


def _portal_policy(folder: Path, name: str, portal: ShibbolethPortal, format_: str,
                   attributes: list[str]) -> None:
    policy = {"display_name": f"Portal {name} (Shibboleth)", "entity_id": portal.entity_id,
              "metadata": portal.metadata_url, "attributes": attributes,
              "name_id_format": format_, "consent_required": True,
              "want_authn_requests_signed": True}
    (folder / f"{name}.yaml").write_text(yaml.safe_dump(policy, allow_unicode=True),
                                         encoding="utf-8")


@pytest.fixture(scope="module")
def federation(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Federation]:
    if reason := why_not_installed():
        pytest.skip(reason)
    folder = tmp_path_factory.mktemp("shibboleth")
    idp_port, first_port, second_port = free_ports(3)
    idp = f"http://127.0.0.1:{idp_port}"
    idp_key, idp_cert = key_pair(folder / "keys", "idp")
    first = ShibbolethPortal("eins", "localhost", first_port,
                             *key_pair(folder / "keys", "eins"), (SAML_REDIRECT, SAML_POST))
    second = ShibbolethPortal("zwei", "127.0.0.2", second_port,
                              *key_pair(folder / "keys", "zwei"), (SAML_POST, SAML_REDIRECT))
    for portal in (first, second):
        portal.write(f"{idp}/saml/metadata", idp, idp_cert.read_text(encoding="utf-8"))

    policies = folder / "policies"
    (policies / "portals").mkdir(parents=True)
    shutil.copy(PROJECT_ROOT / "policies" / "password.yaml", policies / "password.yaml")
    _portal_policy(policies / "portals", "eins", first, "transient",
                   ["givenName", "surname", "mail"])
    _portal_policy(policies / "portals", "zwei", second, "persistent",
                   ["givenName", "surname", "mail", "bPK2"])
    env = {**os.environ, "IDP_ENV": "development", "IDP_BASE_URL": idp,
           "IDP_INSTANCE_PATH": str(folder / "instance"), "IDP_POLICY_DIR": str(policies),
           "IDP_DATABASE_URL": f"sqlite:///{folder / 'servicekonto.sqlite3'}",
           "IDP_KEY_FILE": str(idp_key), "IDP_CERT_FILE": str(idp_cert),
           "IDP_SECRET_KEY": "interop-" + "x" * 40, **CHEAP_ARGON2}
    upgrade_database(env)
    created = subprocess.run(
        [str(SERVICEKONTO), "user", "create", "--username", USERNAME,
         "--email", "erika.mustermann@example.org", "--given-name", "Erika",
         "--surname", "Mustermann", "--password", PASSWORD],
        env=env, capture_output=True, text=True, timeout=60, check=False)
    assert created.returncode == 0, created.stdout + created.stderr

    with ExitStack() as servers:
        # The portals first (the IdP fetches their metadata when it starts), then shibd again
        # (it reads the IdP's metadata when it starts).
        for portal in (first, second):
            servers.enter_context(contextmanager(portal.run)())
        servers.enter_context(contextmanager(start_idp)(env, folder / "idp.log",
                                                        migrate=False))
        for portal in (first, second):
            portal.restart_shibd()
        yield Federation(idp, first, second, folder / "idp.log")


@dataclass
class Visit:
    page: Page
    hops: list[Hop]
    asked_for_password: bool


def log_in_at(federation: Federation, browser: WebBrowser, portal: ShibbolethPortal) -> Visit:
    start = len(browser.history)
    page = browser.open(portal.login_url)
    password = consent = False
    for _ in range(3):
        if not page.url.startswith(federation.idp + "/"):
            break
        if any("password" in form.fields for form in page.forms) and not password:
            password = True
            page = browser.submit(page, page.form("password"), username=USERNAME,
                                  password=PASSWORD)
        elif any("transaction" in form.fields for form in page.forms) and not consent:
            consent = True
            page = browser.submit(page, page.form("transaction"), button=("decision", "agree"))
        else:
            break
    assert page.url == portal.page, f"ended at {page.url} ({page.status}):\n" \
        f"{page.text[:2000]}\n{federation.diagnosis(browser)}"
    return Visit(page, browser.hops_since(start), password)


def values_of(page: Page) -> dict[str, Any]:
    seen = seen_by(page)
    assert seen["angemeldet"], seen
    values: dict[str, Any] = seen["values"]
    return values


def saml_message(hop: Hop, name: str) -> Any:
    if hop.method == "GET":
        encoded = parse_qs(urlsplit(hop.url).query)[name][0]
        return etree.fromstring(zlib.decompress(base64.b64decode(encoded), -15))
    return etree.fromstring(base64.b64decode(dict(hop.fields)[name]))


def authn_request_hop(federation: Federation, visit: Visit) -> Hop:
    found = [hop for hop in visit.hops if hop.origin == federation.idp
             and hop.path in ("/saml/sso/redirect", "/saml/sso/post")]
    assert found, "\n".join(map(str, visit.hops))
    return found[0]


@pytest.mark.parametrize("which", ["first", "second"])
def test_a_shibboleth_portal_gets_the_citizens_name_and_mail_after_her_login(
        federation: Federation, which: str) -> None:
    portal: ShibbolethPortal = getattr(federation, which)
    browser = WebBrowser()

    visit = log_in_at(federation, browser, portal)

    assert visit.asked_for_password
    sent = authn_request_hop(federation, visit)
    request = saml_message(sent, "SAMLRequest")
    assert request.findtext("{urn:oasis:names:tc:SAML:2.0:assertion}Issuer") == portal.entity_id
    if portal.sso_bindings[0] == SAML_REDIRECT:
        assert sent.method == "GET", sent
        assert parse_qs(urlsplit(sent.url).query)["SigAlg"] == [RSA_SHA256], sent
    else:
        assert sent.method == "POST", sent
        assert request.xpath("ds:Signature/ds:SignedInfo/ds:SignatureMethod/@Algorithm",
                             namespaces=NS) == [RSA_SHA256]
    values = values_of(visit.page)
    assert values["givenName"] == "Erika", values
    assert values["sn"] == "Mustermann", values
    assert values["mail"] == "erika.mustermann@example.org", values
    assert values["Shib-Identity-Provider"] == f"{federation.idp}/saml/metadata", values
    if portal is federation.second:
        assert values["persistent-id"] == values["bPK2"] == values["REMOTE_USER"], values
    else:
        assert values["transient-id"] == values["REMOTE_USER"] and "bPK2" not in values, values


def test_a_citizen_logged_in_at_one_shibboleth_portal_enters_the_second_without_her_password(
        federation: Federation) -> None:
    browser = WebBrowser()
    assert log_in_at(federation, browser, federation.first).asked_for_password

    visit = log_in_at(federation, browser, federation.second)

    assert not visit.asked_for_password, "\n".join(map(str, visit.hops))
    assert values_of(visit.page)["givenName"] == "Erika"


@pytest.fixture
def logged_in_at_both(federation: Federation) -> WebBrowser:
    browser = WebBrowser()
    log_in_at(federation, browser, federation.first)
    log_in_at(federation, browser, federation.second)
    return browser


def test_logging_out_at_one_shibboleth_portal_logs_the_citizen_out_at_the_other_too(
        federation: Federation, logged_in_at_both: WebBrowser) -> None:
    browser = logged_in_at_both
    start = len(browser.history)

    page = browser.open(federation.first.logout_url)

    hops = browser.hops_since(start)
    trace = "\n".join(map(str, hops)) + "\n" + federation.diagnosis()
    assert page.url == federation.first.page + "?abgemeldet", trace
    assert not seen_by(page)["angemeldet"], trace
    to_second = [hop for hop in hops if hop.url.startswith(federation.second.slo_url)
                 and "SAMLRequest" in (hop.url + str(hop.fields))]
    assert to_second, trace
    to_first = [hop for hop in hops if hop.url.startswith(federation.first.slo_url)
                and "SAMLResponse" in (hop.url + str(hop.fields))]
    assert to_first, trace
    codes = saml_message(to_first[-1], "SAMLResponse").xpath(
        "samlp:Status//samlp:StatusCode/@Value", namespaces=NS)
    assert codes == [SUCCESS], f"{codes}\n{trace}"
    assert not seen_by(browser.open(federation.second.page))["angemeldet"], trace
    at_idp = [hop for hop in hops if hop.origin == federation.idp]
    assert at_idp, trace
    assert all(hop.status in (302, 303) for hop in at_idp), trace


def test_after_logging_out_at_a_shibboleth_portal_the_next_login_asks_for_the_password(
        federation: Federation, logged_in_at_both: WebBrowser) -> None:
    browser = logged_in_at_both
    page = browser.open(federation.first.logout_url)
    assert page.url == federation.first.page + "?abgemeldet"

    visit = log_in_at(federation, browser, federation.second)

    assert visit.asked_for_password, "\n".join(map(str, visit.hops))
    assert values_of(visit.page)["givenName"] == "Erika"
