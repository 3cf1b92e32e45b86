"""Logging in at a demo portal through the real IdP: what the citizen sees on both sides."""

from __future__ import annotations

from tests.sp_client.conftest import Journey


def test_a_citizen_logs_in_at_dueren_agrees_and_sees_her_data(citizen: Journey) -> None:
    citizen.go_to_servicekonto()
    citizen.log_in_at_idp()
    assert "Bürgerportal der Stadt Düren" in citizen.page
    citizen.decide("agree")
    assert citizen.url.endswith("/uebersicht")
    page = citizen.page
    assert "Sie sind angemeldet" in page
    for shown in ("Erika", "Mustermann", "erika.mustermann@example.org", "weiblich (Code 2)",
                  "STORK-QAA-Level-1"):
        assert shown in page
