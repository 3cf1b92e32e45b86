"""The portal checker against the demo portals: both refuse every fault and every status answer
(issue 13's "Run against our own sp_client portals it must report 0 accepted")."""

from __future__ import annotations

import pytest

from idp.testing.browser import InProcessSites
from idp.testing.checker import Target, table
from idp.testing.faults import FAULTS
from tests.conftest import BASE_URL
from tests.flows.test_portal_checker_careless import run_checker
from tests.sp_client.conftest import Federation


@pytest.fixture(params=["dueren", "mags"])
def portal_profile(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def test_the_checker_finds_that_a_demo_portal_accepts_none_of_the_faults(
        federation: Federation, portal_profile: str) -> None:
    url = federation.portal_url
    sites = InProcessSites({BASE_URL: federation.idp_app(), url: federation.portal})
    verdicts = run_checker(federation.idp_app(), portal_profile, sites,
                           Target(f"{url}/anmelden", f"{url}/uebersicht"))
    print(f"\n{portal_profile}\n{table(verdicts)}")
    assert [verdict.fault for verdict in verdicts if verdict.accepted] == []
    assert len(verdicts) == len(FAULTS)
