""""Meine Zustimmungen": the citizen sees which portal gets which data and revokes consents."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from flask import Flask

from idp.clock import utcnow
from idp.consent import records
from idp.container import app_parts
from idp.db import db
from tests.conftest import Browser, activate, csrf_from, log_in, register
from tests.integration.consent.conftest import DUEREN, MAGS, agree, citizen_id

PAGE = "/konto/zustimmungen"


def revoke_path(consent_id: int) -> str:
    return f"/konto/zustimmungen/{consent_id}/widerrufen"


def covers(app: Flask, citizen: int, portal: str = DUEREN) -> bool:
    with app.app_context():
        return records.consent_covers(db.session, citizen, portal, (), utcnow())


def test_my_consents_need_a_login(app: Flask, citizen: Browser) -> None:
    mine = agree(app, citizen_id(app))
    assert citizen.get(PAGE).location == "/anmelden"
    response = citizen.client.post(revoke_path(mine))
    assert response.status_code in (302, 400)
    assert covers(app, citizen_id(app))


def test_the_account_page_links_to_my_consents(citizen: Browser) -> None:
    log_in(citizen)
    page = citizen.get("/konto").get_data(as_text=True)
    assert "Meine Zustimmungen" in page
    assert f'href="{PAGE}"' in page


def test_my_consents_show_portal_data_and_local_time(app: Flask, citizen: Browser) -> None:
    # 10:30 UTC is 12:30 in Düren in summer.
    agree(app, citizen_id(app), at=datetime(2026, 7, 1, 10, 30, tzinfo=UTC))
    log_in(citizen)
    page = citizen.get(PAGE).get_data(as_text=True)
    assert DUEREN in page
    for label in ("Vorname", "Nachname", "E-Mail-Adresse"):
        assert f"<li>{label}</li>" in page
    assert "01.07.2026, 12:30:00 Uhr" in page
    assert "Zustimmung widerrufen" in page


def test_without_consents_the_page_says_so(citizen: Browser) -> None:
    log_in(citizen)
    page = citizen.get(PAGE).get_data(as_text=True)
    assert "keinem Portal" in page


def test_the_citizen_revokes_a_consent_and_sees_a_confirmation(
        app: Flask, citizen: Browser) -> None:
    erika = citizen_id(app)
    dueren = agree(app, erika, portal=DUEREN)
    agree(app, erika, portal=MAGS)
    log_in(citizen)
    citizen.get(PAGE)
    response = citizen.submit(revoke_path(dueren))
    assert response.status_code == 302 and response.location == PAGE
    page = citizen.get(PAGE).get_data(as_text=True)
    assert re.search(r"Zustimmung zur Weitergabe Ihrer Daten an „[^“]*dueren[^“]*“ wurde "
                     r"widerrufen", page)
    assert not covers(app, erika, DUEREN)
    assert covers(app, erika, MAGS)
    # Listed no more, but the other portal is.
    assert revoke_path(dueren) not in page and MAGS in page


def test_revoking_another_citizens_consent_is_not_found_and_changes_nothing(
        app: Flask, citizen: Browser) -> None:
    erika = citizen_id(app)
    mine = agree(app, erika)
    other = Browser(app.test_client())
    register(other, given_name="Max", username="MaxM", email="max@example.org")
    activate(other, app, "max@example.org")
    log_in(other, username="MaxM")
    other.get(PAGE)
    assert DUEREN not in other.last_html
    response = other.submit(revoke_path(mine))
    assert response.status_code == 404
    assert covers(app, erika)


def test_revoking_without_the_csrf_token_changes_nothing(app: Flask, citizen: Browser) -> None:
    mine = agree(app, citizen_id(app))
    log_in(citizen)
    citizen.get(PAGE)
    response = citizen.client.post(revoke_path(mine), data={"csrf_token": "forged"})
    assert response.status_code == 400
    assert covers(app, citizen_id(app))


def test_portals_appear_under_their_registered_display_name(
        app: Flask, citizen: Browser) -> None:
    names = app_parts(app).portal_names
    names.clear()
    names[DUEREN] = "Bürgerportal Düren"
    agree(app, citizen_id(app), portal=DUEREN)
    agree(app, citizen_id(app), portal=MAGS)
    log_in(citizen)
    page = citizen.get(PAGE).get_data(as_text=True)
    assert "Bürgerportal Düren" in page and DUEREN not in page
    assert MAGS in page  # not registered: its entity id


def test_a_portal_name_with_markup_is_shown_as_text(app: Flask, citizen: Browser) -> None:
    agree(app, citizen_id(app), portal="https://evil.example/<script>alert(1)</script>")
    log_in(citizen)
    page = citizen.get(PAGE).get_data(as_text=True)
    assert "<script>alert(1)" not in page
    assert "&lt;script&gt;alert(1)" in page
    assert csrf_from(page)
