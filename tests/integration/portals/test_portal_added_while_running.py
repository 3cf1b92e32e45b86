"""A portal added while gunicorn runs with two workers: both serve it within a second, no
restart, each to a citizen logging in through it at the same time."""

from __future__ import annotations

import http.client
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from saml2 import BINDING_HTTP_REDIRECT
from saml2.client import Saml2Client
from saml2.xmldsig import SIG_RSA_SHA256

from idp.portals.live import CHECK_EVERY
from idp.saml.configuration import METADATA_PATH
from idp.samlkit.crypto import install_backend
from tests.deployment.gunicorn_process import (
    BASE_URL,
    BIN,
    migrate,
    portal_policies,
    production_env,
    running_gunicorn,
)
from tests.flows.conftest import Portal, field_value, to_idp
from tests.saml_support import key_pair, metadata_of, sp_config
from tests.scale.cluster import (
    ACCESS_LOG_WITH_PID,
    CHEAP_ARGON2,
    ProxiedBrowser,
    activated_citizen,
    connection_to,
    connections_by_worker,
    log_in,
    proxy_headers,
)

pytestmark = pytest.mark.slow

NEW_PORTAL = "https://neustadt.test/saml/metadata"
NEW_ACS = "https://neustadt.test/saml/acs"


def _idp_metadata(connection: http.client.HTTPConnection) -> str:
    connection.request("GET", METADATA_PATH, headers=proxy_headers("metadata"))
    return connection.getresponse().read().decode("utf-8")


def _new_portal(keys: tuple[Path, Path], idp_metadata: str) -> Portal:
    client = Saml2Client(config=sp_config(NEW_PORTAL, NEW_ACS, *keys, idp_metadata))
    install_backend(client)
    return Portal(client, acs_url=NEW_ACS)


def _request_path(portal: Portal, relay_state: str) -> str:
    request_id, info = portal.client.prepare_for_authenticate(
        entityid=BASE_URL + METADATA_PATH, binding=BINDING_HTTP_REDIRECT,
        relay_state=relay_state, sign=True, sigalg=SIG_RSA_SHA256)
    portal.outstanding[request_id] = relay_state
    path, _ = to_idp(BINDING_HTTP_REDIRECT, info)
    return path


def _sso_through(portal: Portal, browser: ProxiedBrowser, username: str,
                 via: http.client.HTTPConnection, relay_state: str) -> str:
    """Log in at the portal with every step on one worker; the RelayState the portal gets."""
    to_login = browser.get(_request_path(portal, relay_state), via)
    assert to_login.status == 302 and to_login.location.startswith("/anmelden?"), to_login.html
    back = log_in(browser, username, via=via, path=to_login.location)
    assert back.status == 302, back.html
    consent = browser.get(back.location, via)
    assert "Zustimmung zur Weitergabe" in consent.html, consent.status
    answer = browser.submit("/saml/zustimmung", {
        "transaction": field_value(consent.html, "transaction"), "decision": "agree"}, via)
    response = portal.receive(answer.html)
    assert response.assertion.subject.name_id.text
    return str(response.relay_state)


def test_a_portal_added_while_two_workers_run_is_served_by_both_at_once(
        tmp_path: Path, database_url: str, signing_keys: tuple[Path, Path]) -> None:
    env = production_env(tmp_path, database_url, signing_keys,
                         portal_policies(tmp_path)) | CHEAP_ARGON2
    env["IDP_LOG_FORMAT"] = "text"
    keys = key_pair(tmp_path / "neustadt", "neustadt")
    metadata = tmp_path / "neustadt-metadata.xml"
    metadata.write_text(metadata_of(sp_config(NEW_PORTAL, NEW_ACS, *keys)), encoding="utf-8")
    migrate(env)
    with running_gunicorn(env, tmp_path, "--access-logformat", ACCESS_LOG_WITH_PID) as (idp, _):
        first, second = (pool[0] for pool in connections_by_worker(idp, 1).values())
        citizens = [activated_citizen(ProxiedBrowser(idp), database_url) for _ in range(2)]
        portals = [_new_portal(keys, _idp_metadata(connection_to(idp))) for _ in range(2)]
        browsers = [ProxiedBrowser(idp), ProxiedBrowser(idp)]
        unknown = [browser.get(_request_path(portal, "/vorher"), via)
                   for browser, portal, via in zip(browsers, portals, (first, second),
                                                   strict=True)]

        added = subprocess.run(
            [str(BIN / "servicekonto"), "portal", "add", "--name", "neustadt",
             "--metadata", str(metadata), "--display-name", "Bürgerportal Neustadt"],
            env=env, capture_output=True, text=True, timeout=60, check=False)
        assert added.returncode == 0, added.stderr
        time.sleep(CHECK_EVERY + 0.2)  # what the command promises: within a second
        with ThreadPoolExecutor(max_workers=2) as pool:
            logins = [pool.submit(_sso_through, portal, browser, citizen["username"], via,
                                  f"/antrag/{number}")
                      for number, (portal, browser, citizen, via) in enumerate(
                          zip(portals, browsers, citizens, (first, second), strict=True))]
            relay_states = [login.result(timeout=60) for login in logins]
        served_by = [browser.workers() for browser in browsers]

    assert [page.status for page in unknown] == [400, 400], "no worker knew it before"
    assert relay_states == ["/antrag/0", "/antrag/1"]
    # Each citizen's every step on one worker, and the two on different workers.
    assert len(served_by[0]) == len(served_by[1]) == 1 and served_by[0] != served_by[1]
