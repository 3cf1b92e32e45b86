"""Any worker serves any step: a login, an SSO round, the throttle and the one-time links work
the same when their requests land on different gunicorn workers (PostgreSQL and Redis hold
everything; no sticky sessions)."""

from __future__ import annotations

from tests.flows.conftest import field_value
from tests.scale.cluster import (
    ProxiedBrowser,
    activation_path,
    authn_request_path,
    connections_by_worker,
    register,
    unique_citizen,
)
from tests.scale.conftest import Cluster


def test_an_sso_started_on_one_worker_is_finished_by_the_other(cluster: Cluster) -> None:
    pools = connections_by_worker(cluster.idp, per_worker=1)
    first, second = (pool[0] for pool in pools.values())
    browser = ProxiedBrowser(cluster.idp)
    citizen = unique_citizen()

    register(browser, citizen, via=[first, second])
    link = activation_path(cluster.database_url, citizen["email"])
    browser.get(link, first)
    assert browser.submit(link, via=second).status == 200
    to_login = browser.get(authn_request_path(cluster.portal, "/antrag/7"), first)
    assert to_login.status == 302 and to_login.location.startswith("/anmelden?")
    browser.get(to_login.location, second)
    back = browser.submit(to_login.location, {"username": citizen["username"],
                                              "password": citizen["password"]}, first)
    assert back.status == 302, back.html
    consent = browser.get(back.location, second)
    assert "Zustimmung zur Weitergabe" in consent.html, consent.status
    answer = browser.submit("/saml/zustimmung", {
        "transaction": field_value(consent.html, "transaction"), "decision": "agree"}, first)

    response = cluster.portal.receive(answer.html)
    assert response.relay_state == "/antrag/7"
    assert response.assertion.subject.name_id.text
    assert browser.workers() == set(pools)  # both workers served steps of this one flow
