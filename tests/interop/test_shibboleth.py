"""Shibboleth SP 3 portals against a live IdP: what a portal operator running Debian's
libapache2-mod-shib gets with the configuration in docs/examples/shibboleth/.

Two portals, each its own shibd and Apache (hosts ``localhost`` and ``127.0.0.2``: cookies do not
tell ports apart), the first sending its AuthnRequest over HTTP-Redirect, the second over
HTTP-POST (``outgoingBindings``), and ``servicekonto run`` with both registered, started once for
the module. The citizen goes between them in the browser of tests/interop/web.py; the steps
and checks common with the SimpleSAMLphp tests are in live_support.py.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack

import pytest

from idp.testing.browser import WebBrowser, trace
from tests.e2e.processes import free_ports
from tests.interop.live_support import (
    SAML_POST,
    SAML_REDIRECT,
    LiveFederation,
    logged_in_seen_by,
    prepare_idp,
)
from tests.interop.shibboleth_support import ShibbolethPortal, shibd_version, why_not_installed
from tests.saml_support import key_pair

Federation = LiveFederation[ShibbolethPortal]


@pytest.fixture(scope="module")
def federation(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Federation]:
    if reason := why_not_installed():
        pytest.skip(reason)
    folder = tmp_path_factory.mktemp("shibboleth")
    idp_port, first_port, second_port = free_ports(3)
    idp_key, idp_cert = key_pair(folder / "keys", "idp")
    idp = prepare_idp(folder, f"http://127.0.0.1:{idp_port}",
                      IDP_KEY_FILE=str(idp_key), IDP_CERT_FILE=str(idp_cert))
    first = ShibbolethPortal("eins", "localhost", first_port,
                             *key_pair(folder / "keys", "eins"), (SAML_REDIRECT, SAML_POST))
    second = ShibbolethPortal("zwei", "127.0.0.2", second_port,
                              *key_pair(folder / "keys", "zwei"), (SAML_POST, SAML_REDIRECT))
    for portal, format_, attributes in (
            (first, "transient", ["givenName", "surname", "mail"]),
            (second, "persistent", ["givenName", "surname", "mail", "bPK2"])):
        portal.write(idp.entity_id, idp.url, idp_cert.read_text(encoding="utf-8"))
        idp.register(portal.name, f"Portal {portal.name} (Shibboleth)", portal.entity_id,
                     portal.metadata_url, format_, attributes)

    with ExitStack() as servers:
        # The portals first (the IdP fetches their metadata when it starts), then shibd again
        # (it reads the IdP's metadata when it starts).
        for portal in (first, second):
            servers.enter_context(portal.run())
        servers.enter_context(idp.run())
        for portal in (first, second):
            portal.restart_shibd()
        yield Federation(idp, first, second, shibd_version(),
                         lambda: f"--- first ---\n{first.logs()}\n--- second ---\n"
                                 f"{second.logs()}")


@pytest.mark.parametrize("which", ["first", "second"])
def test_a_shibboleth_portal_gets_the_citizens_name_and_mail_after_her_login(
        federation: Federation, which: str) -> None:
    portal: ShibbolethPortal = getattr(federation, which)
    browser = WebBrowser()

    visit = federation.log_in_at(browser, portal)

    assert visit.asked_for_password
    federation.assert_signed_authn_request(visit, portal, portal.sso_bindings[0])
    values = logged_in_seen_by(visit.page, "values")
    assert values["givenName"] == "Erika", values
    assert values["sn"] == "Mustermann", values
    assert values["mail"] == "erika.mustermann@example.org", values
    assert values["Shib-Identity-Provider"] == federation.idp.entity_id, values
    if portal is federation.second:
        assert values["persistent-id"] == values["bPK2"] == values["REMOTE_USER"], values
    else:
        assert values["transient-id"] == values["REMOTE_USER"] and "bPK2" not in values, values


def test_a_citizen_logged_in_at_one_shibboleth_portal_enters_the_second_without_her_password(
        federation: Federation) -> None:
    browser = WebBrowser()
    assert federation.log_in_at(browser, federation.first).asked_for_password

    visit = federation.log_in_at(browser, federation.second)

    assert not visit.asked_for_password, trace(visit.hops)
    assert logged_in_seen_by(visit.page, "values")["givenName"] == "Erika"


@pytest.fixture
def logged_in_at_both(federation: Federation) -> WebBrowser:
    return federation.log_in_at_both()


def test_logging_out_at_one_shibboleth_portal_logs_the_citizen_out_at_the_other_too(
        federation: Federation, logged_in_at_both: WebBrowser) -> None:
    browser = logged_in_at_both

    hops = federation.log_out_at_first(browser)

    federation.assert_logged_out_everywhere(browser, hops)


def test_after_logging_out_at_a_shibboleth_portal_the_next_login_asks_for_the_password(
        federation: Federation, logged_in_at_both: WebBrowser) -> None:
    browser = logged_in_at_both
    federation.log_out_at_first(browser)

    visit = federation.log_in_at(browser, federation.second)

    assert visit.asked_for_password, trace(visit.hops)
    assert logged_in_seen_by(visit.page, "values")["givenName"] == "Erika"
