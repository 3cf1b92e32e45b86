"""SimpleSAMLphp portals against a live IdP: what a portal operator running Debian's
SimpleSAMLphp 1.19 gets with the configuration in docs/examples/simplesamlphp/.

One SimpleSAMLphp installation with two saml:SP auth sources (two portals, two entity IDs, one
transient and one persistent NameID), and ``servicekonto run`` with both registered (metadata
fetched from SimpleSAMLphp over http, as development allows), started once for the module. The
citizen goes between them in :class:`WebBrowser` over real HTTP.
"""

from __future__ import annotations

import base64
import os
import shutil
import subprocess
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import yaml
from lxml import etree

from tests.e2e.processes import SERVICEKONTO, free_ports, start_idp, upgrade_database
from tests.interop.simplesamlphp_support import (
    SAML_POST,
    SAML_REDIRECT,
    Hop,
    Page,
    Portal,
    SimpleSamlPhp,
    WebBrowser,
    fetch,
    seen_by,
    simplesamlphp_version,
    why_not_installed,
)
from tests.saml_support import key_pair

PROJECT_ROOT = Path(__file__).resolve().parents[2]
USERNAME = "ErikaM"
PASSWORD = "Kräftig-Grün 42"
GIVEN_NAME = "urn:oid:2.5.4.42"
SURNAME = "urn:oid:2.5.4.4"
MAIL = "urn:oid:0.9.2342.19200300.100.1.3"
BPK2 = "urn:oid:1.3.6.1.4.1.25484.494450.3"
TRANSIENT = "urn:oasis:names:tc:SAML:2.0:nameid-format:transient"
PERSISTENT = "urn:oasis:names:tc:SAML:2.0:nameid-format:persistent"
RSA_SHA256 = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"
SUCCESS = "urn:oasis:names:tc:SAML:2.0:status:Success"
NS = {"md": "urn:oasis:names:tc:SAML:2.0:metadata", "ds": "http://www.w3.org/2000/09/xmldsig#",
      "samlp": "urn:oasis:names:tc:SAML:2.0:protocol"}
# Cheap password hashes: the cost is a setting; its effect is measured in benchmarks/.
CHEAP_ARGON2 = {"IDP_ARGON2_TIME_COST": "1", "IDP_ARGON2_MEMORY_KIB": "1024",
                "IDP_ARGON2_PARALLELISM": "1"}


@dataclass
class Federation:
    idp: str  # the IdP's base URL
    idp_entity_id: str
    idp_certificate: str
    sp: SimpleSamlPhp
    first: Portal
    second: Portal
    idp_log: Path

    def sso_over(self, binding: str) -> None:
        """The portals send their AuthnRequests over ``binding`` (saml20-idp-remote.php)."""
        self.sp.use_idp(self.idp_entity_id, self.idp, self.idp_certificate, binding)

    def diagnosis(self, browser: WebBrowser | None = None) -> str:
        hops = "\n".join(map(str, browser.history[-40:])) if browser else ""
        return (f"SimpleSAMLphp {simplesamlphp_version()}\n--- hops ---\n{hops}\n"
                f"--- SimpleSAMLphp ---\n{self.sp.logs()}\n--- IdP ---\n"
                f"{self.idp_log.read_text(errors='replace')[-4000:]}")


def _portal_policy(folder: Path, portal: Portal, attributes: list[str]) -> None:
    policy = {"display_name": portal.name, "entity_id": portal.entity_id,
              "metadata": portal.metadata_url, "attributes": attributes,
              "name_id_format": portal.name_id_format, "consent_required": True,
              "want_authn_requests_signed": True}
    (folder / f"{portal.auth_source}.yaml").write_text(
        yaml.safe_dump(policy, allow_unicode=True), encoding="utf-8")


def _idp_metadata(idp: str) -> tuple[str, str]:
    """The entity ID and signing certificate (base64) in the IdP's metadata."""
    answer = fetch(f"{idp}/saml/metadata")
    assert answer.status == 200, answer.body[:2000]
    root = etree.fromstring(answer.body.encode())
    certificates = root.xpath(
        "md:IDPSSODescriptor/md:KeyDescriptor[not(@use) or @use='signing']"
        "/ds:KeyInfo/ds:X509Data/ds:X509Certificate/text()", namespaces=NS)
    assert certificates, answer.body[:2000]
    return str(root.get("entityID")), "".join(str(certificates[0]).split())


@pytest.fixture(scope="module")
def federation(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Federation]:
    if reason := why_not_installed():
        pytest.skip(reason)
    folder = tmp_path_factory.mktemp("simplesamlphp")
    idp_port, sp_port = free_ports(2)
    idp, sp_base = f"http://127.0.0.1:{idp_port}", f"http://localhost:{sp_port}"
    first = Portal("musterstadt", "Bürgerportal Musterstadt", "transient", sp_base,
                   *key_pair(folder / "keys", "musterstadt"))
    second = Portal("beispielstadt", "Fachverfahren Beispielstadt", "persistent", sp_base,
                    *key_pair(folder / "keys", "beispielstadt"))
    sp = SimpleSamlPhp(folder / "simplesamlphp", sp_base, [first, second],
                       idp_entity_id=f"{idp}/saml/metadata")
    sp.write()

    policies = folder / "policies"
    (policies / "portals").mkdir(parents=True)
    shutil.copy(PROJECT_ROOT / "policies" / "password.yaml", policies / "password.yaml")
    _portal_policy(policies / "portals", first, ["givenName", "surname", "mail"])
    _portal_policy(policies / "portals", second, ["givenName", "surname", "mail", "bPK2"])
    env = {**os.environ, "IDP_ENV": "development", "IDP_BASE_URL": idp,
           "IDP_INSTANCE_PATH": str(folder / "instance"), "IDP_POLICY_DIR": str(policies),
           "IDP_DATABASE_URL": f"sqlite:///{folder / 'servicekonto.sqlite3'}",
           "IDP_SECRET_KEY": "interop-" + "x" * 40, **CHEAP_ARGON2}
    upgrade_database(env)
    created = subprocess.run(
        [str(SERVICEKONTO), "user", "create", "--username", USERNAME,
         "--email", "erika.mustermann@example.org", "--given-name", "Erika",
         "--surname", "Mustermann", "--salutation", "frau", "--password", PASSWORD],
        env=env, capture_output=True, text=True, timeout=60, check=False)
    assert created.returncode == 0, created.stdout + created.stderr

    # The portals first: the IdP fetches their metadata when it starts.
    with contextmanager(sp.run)(), \
            contextmanager(start_idp)(env, folder / "idp.log", migrate=False):
        entity_id, certificate = _idp_metadata(idp)
        federation = Federation(idp, entity_id, certificate, sp, first, second,
                                folder / "idp.log")
        federation.sso_over(SAML_REDIRECT)
        yield federation


# --- what the citizen does --------------------------------------------------------------------

@dataclass
class Visit:
    """A login at a portal as the citizen saw it."""

    page: Page  # where it ended
    hops: list[Hop]
    asked_for_password: bool
    asked_for_consent: bool


def log_in_at(federation: Federation, browser: WebBrowser, portal: Portal) -> Visit:
    """"Anmelden" at the portal; at the IdP the password if asked, ZUSTIMMEN if asked."""
    start = len(browser.history)
    page = browser.open(portal.page + "?anmelden")
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
    assert page.url == portal.page, f"ended at {page.url} ({page.status}), not at the " \
        f"portal:\n{page.text[:2000]}\n{federation.diagnosis(browser)}"
    return Visit(page, browser.hops_since(start), password, consent)


def authn_request_hop(federation: Federation, visit: Visit) -> Hop:
    """The first request that brought the portal's AuthnRequest to the IdP."""
    found = [hop for hop in visit.hops if hop.origin == federation.idp
             and hop.path in ("/saml/sso/redirect", "/saml/sso/post")]
    assert found, "\n".join(map(str, visit.hops))
    return found[0]


def saml_message(hop: Hop, name: str) -> etree._Element:
    """The SAML message ``name`` (SAMLRequest/SAMLResponse) a hop carried, parsed."""
    if hop.method == "GET":
        encoded = parse_qs(urlsplit(hop.url).query)[name][0]
        xml = zlib.decompress(base64.b64decode(encoded), -15)
    else:
        xml = base64.b64decode(dict(hop.fields)[name])
    return etree.fromstring(xml)


def attributes_of(page: Page) -> dict[str, list[str]]:
    seen = seen_by(page)
    assert seen["angemeldet"], seen
    attributes: dict[str, list[str]] = seen["attributes"]
    return attributes


# --- the tests ------------------------------------------------------------------------------

@pytest.mark.parametrize("binding", [SAML_REDIRECT, SAML_POST], ids=["redirect", "post"])
@pytest.mark.parametrize("which", ["first", "second"])
def test_a_simplesamlphp_portal_gets_the_citizens_name_and_mail_after_her_login(
        federation: Federation, which: str, binding: str) -> None:
    portal: Portal = getattr(federation, which)
    federation.sso_over(binding)
    browser = WebBrowser()

    visit = log_in_at(federation, browser, portal)

    assert visit.asked_for_password
    sent = authn_request_hop(federation, visit)
    request = saml_message(sent, "SAMLRequest")
    assert request.tag == f"{{{NS['samlp']}}}AuthnRequest"
    assert request.findtext("{urn:oasis:names:tc:SAML:2.0:assertion}Issuer") == portal.entity_id
    if binding == SAML_REDIRECT:
        assert sent.method == "GET", sent
        query = parse_qs(urlsplit(sent.url).query)
        assert query["SigAlg"] == [RSA_SHA256] and query["Signature"], sent
    else:
        assert sent.method == "POST", sent
        assert request.xpath("ds:Signature/ds:SignedInfo/ds:SignatureMethod/@Algorithm",
                             namespaces=NS) == [RSA_SHA256]
    seen = seen_by(visit.page)
    attributes = attributes_of(visit.page)
    assert attributes[GIVEN_NAME] == ["Erika"], seen
    assert attributes[SURNAME] == ["Mustermann"], seen
    assert attributes[MAIL] == ["erika.mustermann@example.org"], seen
    assert seen["idp"] == federation.idp_entity_id
    assert seen["session_index"], seen
    if portal.name_id_format == "persistent":
        # The pairwise identifier: the NameID is bPK2.
        assert seen["nameid_format"] == PERSISTENT, seen
        assert attributes[BPK2] == [seen["nameid"]], seen
    else:
        assert seen["nameid_format"] == TRANSIENT, seen
        assert BPK2 not in attributes, seen


@pytest.mark.parametrize("binding", [SAML_REDIRECT, SAML_POST], ids=["redirect", "post"])
def test_a_citizen_logged_in_at_one_portal_enters_the_second_without_her_password(
        federation: Federation, binding: str) -> None:
    federation.sso_over(binding)
    browser = WebBrowser()
    assert log_in_at(federation, browser, federation.first).asked_for_password

    visit = log_in_at(federation, browser, federation.second)

    assert not visit.asked_for_password, "\n".join(map(str, visit.hops))
    assert authn_request_hop(federation, visit).method == \
        ("GET" if binding == SAML_REDIRECT else "POST")
    assert attributes_of(visit.page)[GIVEN_NAME] == ["Erika"]


@pytest.fixture
def logged_in_at_both(federation: Federation) -> WebBrowser:
    federation.sso_over(SAML_REDIRECT)
    browser = WebBrowser()
    log_in_at(federation, browser, federation.first)
    log_in_at(federation, browser, federation.second)
    for portal in (federation.first, federation.second):
        assert seen_by(browser.open(portal.page))["angemeldet"]
    return browser


def test_logging_out_at_one_portal_logs_the_citizen_out_at_the_other_portal_too(
        federation: Federation, logged_in_at_both: WebBrowser) -> None:
    browser = logged_in_at_both
    start = len(browser.history)

    page = browser.open(federation.first.page + "?abmelden")

    hops = browser.hops_since(start)
    trace = "\n".join(map(str, hops))
    assert page.url == federation.first.page + "?abgemeldet", trace
    assert not seen_by(page)["angemeldet"], trace
    # The IdP asked the second portal (a LogoutRequest to its SingleLogoutService) ...
    to_second = [hop for hop in hops if hop.url.startswith(federation.second.slo_url + "?")]
    assert to_second, trace
    assert saml_message(to_second[0], "SAMLRequest").tag == f"{{{NS['samlp']}}}LogoutRequest"
    # ... and told the first one that everything went well (no PartialLogout).
    to_first = [hop for hop in hops if hop.url.startswith(federation.first.slo_url + "?")]
    assert to_first, trace
    answer = saml_message(to_first[-1], "SAMLResponse")
    codes = answer.xpath("samlp:Status//samlp:StatusCode/@Value", namespaces=NS)
    assert codes == [SUCCESS], f"{codes}\n{trace}"
    assert not seen_by(browser.open(federation.second.page))["angemeldet"], trace
    # The logout was started by a GET: the IdP answers each hop with a redirect, no page.
    at_idp = [hop for hop in hops if hop.origin == federation.idp]
    assert at_idp, trace
    assert all(hop.status in (302, 303) for hop in at_idp), trace


def test_after_the_logout_the_next_login_asks_for_the_password_again(
        federation: Federation, logged_in_at_both: WebBrowser) -> None:
    browser = logged_in_at_both
    page = browser.open(federation.first.page + "?abmelden")
    assert page.url == federation.first.page + "?abgemeldet"

    for portal in (federation.second, federation.first):
        visit = log_in_at(federation, browser, portal)
        assert visit.asked_for_password, "\n".join(map(str, visit.hops))
        assert attributes_of(visit.page)[GIVEN_NAME] == ["Erika"]
        browser = WebBrowser()  # the second portal's login would reuse this new session
