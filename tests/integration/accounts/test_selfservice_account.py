"""At "Mein Servicekonto" a citizen edits data, changes the password, deletes the account."""

from __future__ import annotations

from typing import Any

from flask import Flask
from sqlalchemy import func, select

from idp.accounts.models import AccountToken, Citizen
from idp.db import db
from idp.security.models import BrowserSession
from tests.conftest import GOOD_PASSWORD, REGISTRATION, Browser, log_in, outbox, register

NEW_PASSWORD = "Wolken-Meer 731"


def change_password(browser: Browser, current: str = GOOD_PASSWORD,
                    new: str = NEW_PASSWORD, confirmation: str | None = None) -> Any:
    browser.get("/konto/passwort")
    return browser.submit("/konto/passwort", {
        "current_password": current, "password": new,
        "password_confirm": new if confirmation is None else confirmation})


def delete_account(browser: Browser, password: str = GOOD_PASSWORD) -> Any:
    browser.get("/konto/loeschen")
    return browser.submit("/konto/loeschen", {"password": password})


def count(app: Flask, model: type[Any]) -> int:
    with app.app_context():
        return int(db.session.scalar(select(func.count()).select_from(model)) or 0)


def test_account_pages_need_a_login(citizen: Browser) -> None:
    for path in ("/konto", "/konto/daten", "/konto/email", "/konto/passwort", "/konto/loeschen"):
        response = citizen.get(path)
        assert response.status_code == 302
        assert response.location == "/anmelden"


def test_account_page_shows_the_personal_data(citizen: Browser) -> None:
    log_in(citizen)
    page = citizen.get("/konto").get_data(as_text=True)
    for shown in ("Frau", "Erika", "Mustermann", "Gabler", REGISTRATION["email"], "ErikaM"):
        assert shown in page
    for link in ("/konto/daten", "/konto/email", "/konto/passwort", "/konto/loeschen"):
        assert f'href="{link}"' in page


def test_citizen_edits_personal_data(citizen: Browser) -> None:
    log_in(citizen)
    form = citizen.get("/konto/daten").get_data(as_text=True)
    assert 'value="Mustermann"' in form
    response = citizen.submit("/konto/daten", {"salutation": "divers",
                                               "given_name": "  Erika  Maria ",
                                               "surname": "Musterfrau", "birth_name": ""})
    assert response.status_code == 302
    page = citizen.get("/konto").get_data(as_text=True)
    assert "Ihre persönlichen Daten wurden gespeichert." in page
    assert "Erika Maria" in page
    assert "Musterfrau" in page
    assert "Gabler" not in page
    assert "divers" in page


def test_invalid_personal_data_is_named_and_nothing_is_saved(citizen: Browser) -> None:
    log_in(citizen)
    citizen.get("/konto/daten")
    response = citizen.submit("/konto/daten", {"salutation": "koenig", "given_name": "",
                                               "surname": "Muster\r\nBcc: x@example.org",
                                               "birth_name": "B" * 101})
    assert response.status_code == 422
    html = citizen.last_html
    assert "Bitte wählen Sie eine Anrede aus der Liste." in html
    assert "Bitte geben Sie Ihren Vornamen an." in html
    assert "Der Nachname enthält ungültige Zeichen." in html
    assert "Der Geburtsname darf höchstens 100 Zeichen lang sein." in html
    assert 'aria-describedby="surname-fehler"' in html
    page = citizen.get("/konto").get_data(as_text=True)
    assert "Mustermann" in page and "Gabler" in page


def test_password_change_needs_the_current_password(app: Flask, citizen: Browser) -> None:
    log_in(citizen)
    response = change_password(citizen, current="Falsch-geraten 1")
    assert response.status_code == 422
    assert "Das eingegebene Passwort ist nicht korrekt." in citizen.last_html
    response = change_password(citizen, current="")
    assert response.status_code == 422
    assert "Bitte geben Sie Ihr aktuelles Passwort ein." in citizen.last_html
    assert log_in(Browser(app.test_client()), password=NEW_PASSWORD).status_code == 401


def test_guessing_the_current_password_is_slowed_down(app: Flask, citizen: Browser) -> None:
    log_in(citizen)
    for _ in range(7):
        change_password(citizen, current="Falsch-geraten 1")
    response = change_password(citizen)  # the right one, but too soon
    assert response.status_code == 422
    assert "zu viele Fehlversuche" in citizen.last_html
    assert log_in(Browser(app.test_client()), password=NEW_PASSWORD).status_code == 401


def test_new_password_must_meet_the_policy_and_match(citizen: Browser) -> None:
    log_in(citizen)
    response = change_password(citizen, new="kurz", confirmation="anders")
    assert response.status_code == 422
    assert "mindestens 8 Zeichen" in citizen.last_html
    assert "Die beiden Passwörter stimmen nicht überein." in citizen.last_html
    response = change_password(citizen, new="ErikaM-Geheim 1")
    assert "Das Passwort darf den Benutzernamen nicht enthalten." in citizen.last_html


def test_password_change_keeps_this_browser_and_logs_out_the_others(app: Flask,
                                                                     citizen: Browser) -> None:
    other = Browser(app.test_client())
    log_in(other)
    log_in(citizen)
    cookie_before = citizen.client.get_cookie("servicekonto")
    assert cookie_before is not None

    response = change_password(citizen)
    assert response.status_code == 302
    page = citizen.get("/konto")
    assert page.status_code == 200
    assert "Ihr Passwort wurde geändert." in citizen.last_html
    cookie_after = citizen.client.get_cookie("servicekonto")
    assert cookie_after is not None and cookie_after.value != cookie_before.value

    assert other.get("/konto").status_code == 302
    assert outbox(app)[-1].subject == "Servicekonto: Ihr Passwort wurde geändert"
    fresh = Browser(app.test_client())
    assert log_in(fresh, password=GOOD_PASSWORD).status_code == 401
    assert log_in(fresh, password=NEW_PASSWORD).status_code == 302


def test_deleting_needs_the_password(app: Flask, citizen: Browser) -> None:
    log_in(citizen)
    response = delete_account(citizen, password="Falsch-geraten 1")
    assert response.status_code == 422
    assert "Das eingegebene Passwort ist nicht korrekt." in citizen.last_html
    assert count(app, Citizen) == 1
    assert citizen.get("/konto").status_code == 200


def test_deleting_removes_the_account_and_every_personal_trace(app: Flask,
                                                                citizen: Browser) -> None:
    other = Browser(app.test_client())
    log_in(other)
    log_in(citizen)
    # A pending e-mail change: its link went to a second address, naming Erika.
    citizen.get("/konto/email")
    citizen.submit("/konto/email", {"email": "erika@neu.example.org", "password": GOOD_PASSWORD})
    assert {m.recipient for m in outbox(app)} == {REGISTRATION["email"], "erika@neu.example.org"}

    response = delete_account(citizen)
    assert response.status_code == 200
    assert "Ihr Servicekonto wurde gelöscht" in citizen.last_html
    assert citizen.client.get_cookie("servicekonto") is None

    assert count(app, Citizen) == 0
    assert count(app, AccountToken) == 0
    assert count(app, BrowserSession) == 0
    assert outbox(app) == []
    assert citizen.get("/konto").status_code == 302
    assert other.get("/konto").status_code == 302
    assert log_in(Browser(app.test_client())).status_code == 401


def test_deleted_account_frees_username_and_address(app: Flask, citizen: Browser) -> None:
    log_in(citizen)
    delete_account(citizen)
    response = register(Browser(app.test_client()))
    assert response.status_code == 302
    assert [m.recipient for m in outbox(app)] == [REGISTRATION["email"]]


def test_replayed_delete_after_deletion_only_asks_to_log_in(citizen: Browser) -> None:
    log_in(citizen)
    citizen.get("/konto/loeschen")
    form = citizen.last_html
    citizen.submit("/konto/loeschen", {"password": GOOD_PASSWORD})
    citizen.last_html = form
    response = citizen.submit("/konto/loeschen", {"password": GOOD_PASSWORD})
    assert response.status_code in (302, 400)

