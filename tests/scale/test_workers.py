"""Any worker serves any step: a login, an SSO round, the throttle and the one-time links work
the same when their requests land on different gunicorn workers (PostgreSQL and Redis hold
everything; no sticky sessions)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from functools import partial
from pathlib import Path

from redis import Redis

from idp.accounts.authentication import LOGIN_FAILED
from idp.accounts.identity import username_key
from tests.deployment.gunicorn_process import running_gunicorn
from tests.flows.conftest import field_value
from tests.scale.cluster import (
    Page,
    ProxiedBrowser,
    activated_citizen,
    activation_path,
    authn_request_path,
    connection_to,
    connections_by_worker,
    log_in,
    register,
    unique_citizen,
)
from tests.scale.conftest import REDIS_URL, Cluster


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


def test_a_second_host_on_the_same_database_and_redis_finishes_a_login_the_first_began(
        cluster: Cluster, tmp_path: Path) -> None:
    # Another machine: its own gunicorn and its own instance folder; only PostgreSQL, Redis,
    # the secret and the key files (mounted the same on every host) are shared.
    env = cluster.env | {"IDP_INSTANCE_PATH": str(tmp_path / "instance")}
    with running_gunicorn(env, tmp_path, workers=1) as (other_host, _):
        one, other = connection_to(cluster.idp), connection_to(other_host)
        browser = ProxiedBrowser(cluster.idp)
        citizen = activated_citizen(browser, cluster.database_url)
        request = authn_request_path(cluster.portal, "/antrag/8")
        to_login = browser.get(request, one)
        replayed = ProxiedBrowser(cluster.idp).get(request, other)
        back = log_in(browser, citizen["username"], via=other, path=to_login.location)
        consent = browser.get(back.location, one)
        answer = browser.submit("/saml/zustimmung", {
            "transaction": field_value(consent.html, "transaction"), "decision": "agree"}, other)

    assert to_login.status == 302 and back.status == 302
    assert replayed.status == 400 and "konnte nicht angenommen werden" in replayed.html
    response = cluster.portal.receive(answer.html)
    assert response.relay_state == "/antrag/8"
    assert response.assertion.subject.name_id.text


def test_failed_logins_spread_over_both_workers_are_counted_together(cluster: Cluster) -> None:
    pools = connections_by_worker(cluster.idp, per_worker=1)
    first, second = (pool[0] for pool in pools.values())
    citizen = activated_citizen(ProxiedBrowser(cluster.idp), cluster.database_url)
    attacker = ProxiedBrowser(cluster.idp)

    # Five failures, three on one worker and two on the other: neither worker alone has seen
    # the five free ones, together they throttle the account for a second.
    for via in (first, second, first, second, first):
        failed = log_in(attacker, citizen["username"], "Falsch-Geraten 1", via=via)
        assert failed.status == 401 and LOGIN_FAILED in failed.html
    right_password = log_in(attacker, citizen["username"], via=second)

    assert right_password.status == 401 and LOGIN_FAILED in right_password.html
    counter = Redis.from_url(REDIS_URL).hget(
        f"servicekonto:throttle:account:{username_key(citizen['username'])}", "failures")
    assert counter == b"5"
    assert attacker.workers() == set(pools)


def _at_once(jobs: list[Callable[[], Page]]) -> list[Page]:
    """Run the jobs in threads that start together; their pages in order."""
    start = threading.Barrier(len(jobs))

    def run(job: Callable[[], Page]) -> Page:
        start.wait()
        return job()

    with ThreadPoolExecutor(len(jobs)) as pool:
        return list(pool.map(run, jobs))


def test_twenty_clicks_on_one_activation_link_across_workers_activate_exactly_once(
        cluster: Cluster) -> None:
    pools = connections_by_worker(cluster.idp, per_worker=10)
    connections = [connection for pool in pools.values() for connection in pool]
    citizen = unique_citizen()
    register(ProxiedBrowser(cluster.idp), citizen)
    link = activation_path(cluster.database_url, citizen["email"])
    tabs = [ProxiedBrowser(cluster.idp) for _ in connections]
    for tab, via in zip(tabs, connections, strict=True):
        assert tab.get(link, via).status == 200

    pages = _at_once([partial(tab.submit, link, None, via)
                      for tab, via in zip(tabs, connections, strict=True)])

    assert sorted(page.status for page in pages) == [200] + [410] * 19
    assert set().union(*(tab.workers() for tab in tabs)) == set(pools)
    assert log_in(ProxiedBrowser(cluster.idp), citizen["username"]).status == 302


def test_twenty_consent_posts_of_one_transaction_across_workers_answer_the_portal_once(
        cluster: Cluster) -> None:
    pools = connections_by_worker(cluster.idp, per_worker=10)
    connections = [connection for pool in pools.values() for connection in pool]
    browser = ProxiedBrowser(cluster.idp)
    citizen = activated_citizen(browser, cluster.database_url)
    to_login = browser.get(authn_request_path(cluster.portal))
    back = log_in(browser, citizen["username"], path=to_login.location)
    consent = browser.get(back.location)
    transaction = field_value(consent.html, "transaction")
    tabs = [replace(browser, cookies=dict(browser.cookies), markers=[]) for _ in connections]

    pages = _at_once([partial(tab.submit, "/saml/zustimmung",
                              {"transaction": transaction, "decision": "agree"}, via)
                      for tab, via in zip(tabs, connections, strict=True)])

    answered = [page for page in pages if "SAMLResponse" in page.html]
    assert len(answered) == 1
    assert sorted(page.status for page in pages) == [200] + [410] * 19  # the rest: answered already
    assert cluster.portal.receive(answered[0].html).assertion is not None
    assert set().union(*(tab.workers() for tab in tabs)) == set(pools)
