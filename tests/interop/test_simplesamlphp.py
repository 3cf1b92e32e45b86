"""SimpleSAMLphp portals against a live IdP: what a portal operator running Debian's
SimpleSAMLphp 1.19 gets with the configuration in docs/examples/simplesamlphp/.

One SimpleSAMLphp installation with two saml:SP auth sources (two portals, two entity IDs, one
transient and one persistent NameID), and ``servicekonto run`` with both registered (metadata
fetched from SimpleSAMLphp over http, as development allows), started once for the module. The
citizen goes between them in the browser of tests/interop/web.py over real HTTP; the steps and
checks common with the Shibboleth tests are in live_support.py.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass

import pytest
from lxml import etree

from idp.testing.browser import WebBrowser, fetch, trace
from tests.e2e.processes import free_ports
from tests.interop.live_support import (
    NS,
    SAML_POST,
    SAML_REDIRECT,
    LiveFederation,
    LiveIdp,
    logged_in_seen_by,
    prepare_idp,
    seen_by,
)
from tests.interop.simplesamlphp_support import (
    Portal,
    SimpleSamlPhp,
    simplesamlphp_version,
    why_not_installed,
)
from tests.saml_support import key_pair

GIVEN_NAME = "urn:oid:2.5.4.42"
SURNAME = "urn:oid:2.5.4.4"
MAIL = "urn:oid:0.9.2342.19200300.100.1.3"
BPK2 = "urn:oid:1.3.6.1.4.1.25484.494450.3"
TRANSIENT = "urn:oasis:names:tc:SAML:2.0:nameid-format:transient"
PERSISTENT = "urn:oasis:names:tc:SAML:2.0:nameid-format:persistent"


@dataclass
class Federation(LiveFederation[Portal]):
    sp: SimpleSamlPhp
    idp_entity_id: str  # as the IdP's metadata says
    idp_certificate: str

    def sso_over(self, binding: str) -> None:
        """The portals send their AuthnRequests over ``binding`` (saml20-idp-remote.php)."""
        self.sp.use_idp(self.idp_entity_id, self.idp.url, self.idp_certificate, binding)


def _idp_metadata(idp: LiveIdp) -> tuple[str, str]:
    """The entity ID and signing certificate (base64) in the IdP's metadata."""
    answer = fetch(idp.entity_id)
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
    idp = prepare_idp(folder, f"http://127.0.0.1:{idp_port}")
    sp_base = f"http://localhost:{sp_port}"
    first = Portal("musterstadt", "Bürgerportal Musterstadt", "transient", sp_base,
                   *key_pair(folder / "keys", "musterstadt"))
    second = Portal("beispielstadt", "Fachverfahren Beispielstadt", "persistent", sp_base,
                    *key_pair(folder / "keys", "beispielstadt"))
    sp = SimpleSamlPhp(folder / "simplesamlphp", sp_base, [first, second],
                       idp_entity_id=idp.entity_id)
    sp.write()
    for portal, attributes in ((first, ["givenName", "surname", "mail"]),
                               (second, ["givenName", "surname", "mail", "bPK2"])):
        idp.register(portal.auth_source, portal.name, portal.entity_id, portal.metadata_url,
                     portal.name_id_format, attributes)

    # The portals first: the IdP fetches their metadata when it starts.
    with ExitStack() as servers:
        servers.enter_context(sp.run())
        servers.enter_context(idp.run())
        federation = Federation(idp, first, second, f"SimpleSAMLphp {simplesamlphp_version()}",
                                lambda: f"--- SimpleSAMLphp ---\n{sp.logs()}", sp,
                                *_idp_metadata(idp))
        federation.sso_over(SAML_REDIRECT)
        yield federation


# --- the tests ------------------------------------------------------------------------------

@pytest.mark.parametrize("binding", [SAML_REDIRECT, SAML_POST], ids=["redirect", "post"])
@pytest.mark.parametrize("which", ["first", "second"])
def test_a_simplesamlphp_portal_gets_the_citizens_name_and_mail_after_her_login(
        federation: Federation, which: str, binding: str) -> None:
    portal: Portal = getattr(federation, which)
    federation.sso_over(binding)
    browser = WebBrowser()

    visit = federation.log_in_at(browser, portal)

    assert visit.asked_for_password
    federation.assert_signed_authn_request(visit, portal, binding)
    seen = seen_by(visit.page)
    attributes = logged_in_seen_by(visit.page, "attributes")
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
    assert federation.log_in_at(browser, federation.first).asked_for_password

    visit = federation.log_in_at(browser, federation.second)

    assert not visit.asked_for_password, trace(visit.hops)
    assert federation.authn_request_hop(visit).method == \
        ("GET" if binding == SAML_REDIRECT else "POST")
    assert logged_in_seen_by(visit.page, "attributes")[GIVEN_NAME] == ["Erika"]


@pytest.fixture
def logged_in_at_both(federation: Federation) -> WebBrowser:
    federation.sso_over(SAML_REDIRECT)
    return federation.log_in_at_both()


def test_logging_out_at_one_portal_logs_the_citizen_out_at_the_other_portal_too(
        federation: Federation, logged_in_at_both: WebBrowser) -> None:
    browser = logged_in_at_both

    hops = federation.log_out_at_first(browser)

    federation.assert_logged_out_everywhere(browser, hops)


def test_after_the_logout_the_next_login_asks_for_the_password_again(
        federation: Federation, logged_in_at_both: WebBrowser) -> None:
    browser = logged_in_at_both
    federation.log_out_at_first(browser)

    for portal in (federation.second, federation.first):
        visit = federation.log_in_at(browser, portal)
        assert visit.asked_for_password, trace(visit.hops)
        assert logged_in_seen_by(visit.page, "attributes")[GIVEN_NAME] == ["Erika"]
        browser = WebBrowser()  # the second portal's login would reuse this new session
