"""Registration and activation as a citizen experiences them."""

from __future__ import annotations

import threading
from collections import Counter

import pytest
from flask import Flask
from sqlalchemy import func, select

from idp.accounts.models import AccountToken, Citizen
from idp.cli import main
from idp.db import db
from tests.conftest import (
    REGISTRATION,
    Browser,
    Clock,
    activate,
    link_in,
    log_in,
    outbox,
    path_of,
    register,
)


def _citizens(app: Flask) -> list[Citizen]:
    with app.app_context():
        return list(db.session.scalars(select(Citizen).order_by(Citizen.id)))


def test_the_form_lists_the_password_rules_and_the_privacy_checkbox(browser: Browser) -> None:
    page = browser.get("/registrieren/benutzername").get_data(as_text=True)
    assert "mindestens 8 Zeichen" in page
    assert "davon mindestens 1 Sonderzeichen" in page
    assert "Ich habe die Datenschutzerklärung gelesen und akzeptiere diese." in page
    assert "Groß- und Kleinschreibung" in page


def test_every_problem_of_the_form_is_named_at_once(app: Flask, browser: Browser) -> None:
    browser.get("/registrieren/benutzername")
    response = browser.submit("/registrieren/benutzername", {
        "given_name": "", "surname": "", "email": "keine-adresse", "username": "x",
        "password": "kurz", "password_confirm": "anders"})
    page = response.get_data(as_text=True)
    assert response.status_code == 422
    for message in ("Bitte geben Sie Ihren Vornamen an.", "Bitte geben Sie Ihren Nachnamen an.",
                    "gültige E-Mail-Adresse", "3 bis 64 Zeichen", "mindestens 8 Zeichen",
                    "stimmen nicht überein", "Datenschutzerklärung"):
        assert message in page
    assert _citizens(app) == []


def test_the_review_page_shows_the_data_before_it_is_saved(app: Flask, browser: Browser) -> None:
    browser.get("/registrieren/benutzername")
    browser.submit("/registrieren/benutzername", REGISTRATION)
    review = browser.get("/registrieren/pruefen").get_data(as_text=True)
    for value in ("Frau", "Erika", "Mustermann", "Gabler", "erika.mustermann@example.org",
                  "ErikaM", "Daten speichern"):
        assert value in review
    assert REGISTRATION["password"] not in review
    assert _citizens(app) == []


def test_a_username_differing_only_by_case_or_width_is_taken(app: Flask, citizen: Browser
                                                             ) -> None:
    other = Browser(app.test_client())
    for name in ("erikam", "ＥＲＩＫＡＭ"):
        other.get("/registrieren/benutzername")
        response = other.submit("/registrieren/benutzername", REGISTRATION | {
            "username": name, "email": "andere@example.org"})
        assert response.status_code == 422
        assert "bereits vergeben" in response.get_data(as_text=True)
    assert len(_citizens(app)) == 1


def test_registering_an_address_that_has_an_account_tells_its_owner_not_the_visitor(
        app: Flask, citizen: Browser) -> None:
    other = Browser(app.test_client())
    response = register(other, username="Zweitkonto")
    assert "Sie erhalten eine Mail" in other.get(response.location).get_data(as_text=True)
    assert len(_citizens(app)) == 1
    notice = outbox(app)[-1]
    assert notice.recipient == REGISTRATION["email"]
    assert "bereits ein Servicekonto" in notice.body_text


def test_the_activation_link_shows_a_button_and_only_its_post_activates(
        app: Flask, browser: Browser) -> None:
    register(browser)
    path = path_of(link_in(outbox(app)[0]))
    for _ in range(3):  # a mail scanner opening the link does not use it up
        page = browser.get(path).get_data(as_text=True)
        assert "Servicekonto aktivieren" in page
    assert not _citizens(app)[0].is_active
    assert "erfolgreich registriert" in browser.submit(path).get_data(as_text=True)
    assert _citizens(app)[0].is_active


def test_an_activation_link_works_once(app: Flask, citizen: Browser) -> None:
    path = path_of(link_in(outbox(app)[0]))
    page = citizen.get(path)
    assert page.status_code == 410
    assert "bereits verwendet" in page.get_data(as_text=True)


def test_the_database_keeps_only_a_hash_of_the_activation_token(app: Flask,
                                                                browser: Browser) -> None:
    register(browser)
    token = link_in(outbox(app)[0]).rsplit("/", 1)[1]
    with app.app_context():
        stored = db.session.scalars(select(AccountToken.token_hash)).one()
    assert token not in stored and len(stored) == 64


def test_an_expired_activation_link_offers_a_new_one_that_voids_the_old(
        app: Flask, browser: Browser, clock: Clock) -> None:
    register(browser)
    old_path = path_of(link_in(outbox(app)[0]))
    clock.advance(hours=24, seconds=1)
    expired = browser.get(old_path)
    assert expired.status_code == 410
    assert "Aktivierungslink erneut senden" in expired.get_data(as_text=True)
    resent = browser.submit(old_path + "/erneut-senden")
    assert "neuen Aktivierungslink" in resent.get_data(as_text=True)
    assert len(outbox(app)) == 2
    assert browser.get(old_path).status_code == 410
    assert "erfolgreich registriert" in activate(browser, app).get_data(as_text=True)
    assert log_in(browser).status_code == 302


def test_resending_voids_the_earlier_link_even_before_it_expired(app: Flask,
                                                                 browser: Browser) -> None:
    register(browser)
    old_path = path_of(link_in(outbox(app)[0]))
    browser.get(old_path)
    browser.submit(old_path + "/erneut-senden")
    browser.get(old_path)
    refused = browser.submit(old_path)
    assert refused.status_code == 410
    assert "durch einen neueren ersetzt" in refused.get_data(as_text=True)


def test_a_registration_not_activated_in_time_frees_username_and_address(
        app: Flask, browser: Browser, clock: Clock) -> None:
    register(browser)
    clock.advance(hours=25)
    again = Browser(app.test_client())
    register(again)
    citizens = _citizens(app)
    assert len(citizens) == 1 and citizens[0].created_at > citizens[0].created_at - clock.offset
    assert "erfolgreich registriert" in activate(again, app).get_data(as_text=True)


def test_the_purge_command_removes_expired_registrations_only(app: Flask, citizen: Browser,
                                                              clock: Clock) -> None:
    register(Browser(app.test_client()), username="Spaeter", email="spaeter@example.org")
    clock.advance(hours=25)
    result = app.test_cli_runner().invoke(main, args=["purge"])
    assert "1 abgelaufene Registrierung(en)" in result.output
    assert [c.username for c in _citizens(app)] == ["ErikaM"]


def test_the_purge_command_removes_mails_delivered_more_than_30_days_ago(
        app: Flask, citizen: Browser, clock: Clock) -> None:
    app.test_cli_runner().invoke(main, args=["mail", "send"])
    assert len(outbox(app)) == 1
    register(Browser(app.test_client()), username="Spaeter", email="spaeter@example.org")
    clock.advance(days=30, seconds=1)
    result = app.test_cli_runner().invoke(main, args=["purge"])
    assert "1 alte Mail(s)" in result.output
    assert [m.recipient for m in outbox(app)] == ["spaeter@example.org"]


# --- races on PostgreSQL -------------------------------------------------------------------

def _race(count: int, prepare: object, act: object) -> list[object]:
    """Run ``act`` in ``count`` threads released at the same moment."""
    barrier = threading.Barrier(count)
    results: list[object] = [None] * count

    def worker(index: int) -> None:
        state = prepare(index)  # type: ignore[operator]
        barrier.wait()
        results[index] = act(state)  # type: ignore[operator]

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def _postgres_only(app: Flask) -> None:
    if not app.config["SERVICEKONTO"].database_url.startswith("postgresql"):
        pytest.skip("concurrency is tested on PostgreSQL")


def test_fifty_parallel_activations_of_one_link_activate_exactly_once(
        app: Flask, browser: Browser) -> None:
    _postgres_only(app)
    register(browser)
    path = path_of(link_in(outbox(app)[0]))

    def prepare(_: int) -> Browser:
        visitor = Browser(app.test_client())
        visitor.get(path)
        return visitor

    results = _race(50, prepare, lambda visitor: visitor.submit(path).status_code)
    assert Counter(results) == {200: 1, 410: 49}
    assert _citizens(app)[0].is_active


def test_fifty_parallel_registrations_of_one_username_make_exactly_one_account(
        app: Flask) -> None:
    _postgres_only(app)

    def prepare(index: int) -> Browser:
        visitor = Browser(app.test_client())
        # Fifty people, each at an address of their own (the form limits count per address).
        visitor.client.environ_base["REMOTE_ADDR"] = f"198.51.100.{index + 1}"
        visitor.get("/registrieren/benutzername")
        visitor.submit("/registrieren/benutzername",
                       REGISTRATION | {"email": f"person{index}@example.org"})
        visitor.get("/registrieren/pruefen")
        return visitor

    results = _race(50, prepare, lambda visitor: visitor.submit("/registrieren/pruefen"))
    statuses = Counter(r.status_code for r in results)  # type: ignore[attr-defined]
    assert statuses == {302: 1, 409: 49}
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Citizen)) == 1
    assert len(outbox(app)) == 1


def test_resending_stops_after_five_mails_an_hour_with_a_clear_page(
        app: Flask, browser: Browser, clock: Clock) -> None:
    register(browser)
    path = path_of(link_in(outbox(app)[0]))
    clock.advance(hours=24, seconds=1)
    answers = []
    for _ in range(7):
        browser.get(path)
        answers.append(browser.submit(path + "/erneut-senden").status_code)
    assert answers == [200, 200, 200, 200, 200, 429, 429]
    assert "bereits mehrere Aktivierungslinks" in browser.last_html
    assert len(outbox(app)) == 1 + 5


def test_registering_with_a_known_address_mails_its_owner_at_most_five_times_an_hour(
        app: Flask, citizen: Browser) -> None:
    for number in range(7):
        register(Browser(app.test_client()), username=f"Fremd{number}")
    notices = [m for m in outbox(app) if "bereits ein Servicekonto" in m.body_text]
    assert len(notices) == 4  # plus the activation mail: five to this address this hour
