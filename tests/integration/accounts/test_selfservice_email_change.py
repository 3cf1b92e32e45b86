"""A citizen changes the e-mail address; it counts only once the new address confirmed it."""

from __future__ import annotations

from typing import Any

from flask import Flask

from tests.conftest import (
    GOOD_PASSWORD,
    REGISTRATION,
    Browser,
    Clock,
    activate,
    link_in,
    log_in,
    outbox,
    path_of,
    register,
    run_mail_sender,
)

NEW_EMAIL = "erika@neu.example.org"


def ask_for_change(browser: Browser, email: str = NEW_EMAIL,
                   password: str = GOOD_PASSWORD) -> Any:
    browser.get("/konto/email")
    return browser.submit("/konto/email", {"email": email, "password": password})


def confirmation_path(app: Flask, address: str = NEW_EMAIL) -> str:
    mail = [m for m in outbox(app) if m.recipient == address][-1]
    return path_of(link_in(mail))


def confirm(browser: Browser, path: str) -> Any:
    browser.get(path)
    return browser.submit(path)


def test_new_address_counts_only_after_its_confirmation(app: Flask, citizen: Browser) -> None:
    log_in(citizen)
    response = ask_for_change(citizen)
    assert response.status_code == 302
    page = citizen.get("/konto").get_data(as_text=True)
    assert f"Wir haben einen Bestätigungslink an {NEW_EMAIL} gesendet" in page
    assert "wartet auf" in page
    assert REGISTRATION["email"] in page

    mail = outbox(app)[-1]
    assert mail.recipient == NEW_EMAIL
    assert link_in(mail).startswith("http://localhost/email-bestaetigen/")
    # Until it is confirmed, mails still go to the old address.
    citizen.get("/benutzername-vergessen")
    citizen.submit("/benutzername-vergessen", {"email": REGISTRATION["email"]})
    run_mail_sender(app)
    assert outbox(app)[-1].recipient == REGISTRATION["email"]

    path = confirmation_path(app)
    shown = citizen.get(path).get_data(as_text=True)
    assert NEW_EMAIL in shown
    assert "E-Mail-Adresse bestätigen" in shown
    done = citizen.submit(path)
    assert done.status_code == 200
    assert "E-Mail-Adresse geändert" in citizen.last_html

    page = citizen.get("/konto").get_data(as_text=True)
    assert NEW_EMAIL in page
    assert "wartet auf" not in page


def test_old_address_is_told_about_the_change(app: Flask, citizen: Browser) -> None:
    log_in(citizen)
    ask_for_change(citizen)
    confirm(citizen, confirmation_path(app))
    notice = outbox(app)[-1]
    assert notice.recipient == REGISTRATION["email"]
    assert notice.subject == "Servicekonto: Ihre E-Mail-Adresse wurde geändert"
    assert NEW_EMAIL in notice.body_text


def test_confirmation_link_can_be_opened_from_another_device(app: Flask,
                                                             citizen: Browser) -> None:
    log_in(citizen)
    ask_for_change(citizen)
    phone = Browser(app.test_client())
    assert confirm(phone, confirmation_path(app)).status_code == 200


def test_opening_the_link_does_not_change_anything(app: Flask, citizen: Browser) -> None:
    log_in(citizen)
    ask_for_change(citizen)
    path = confirmation_path(app)
    citizen.get(path)
    citizen.get(path)
    assert REGISTRATION["email"] in citizen.get("/konto").get_data(as_text=True)
    assert confirm(citizen, path).status_code == 200


def test_confirmation_link_works_once(app: Flask, citizen: Browser) -> None:
    log_in(citizen)
    ask_for_change(citizen)
    path = confirmation_path(app)
    form = citizen.get(path).get_data(as_text=True)
    citizen.submit(path)
    citizen.last_html = form
    replayed = citizen.submit(path)
    assert replayed.status_code == 410
    assert "bereits verwendet" in citizen.last_html
    assert len([m for m in outbox(app) if "geändert" in m.subject]) == 1


def test_expired_confirmation_link_changes_nothing(app: Flask, citizen: Browser,
                                                   clock: Clock) -> None:
    log_in(citizen)
    ask_for_change(citizen)
    path = confirmation_path(app)
    clock.advance(hours=25)
    response = citizen.get(path)
    assert response.status_code == 410
    assert "abgelaufen" in citizen.last_html


def test_newer_request_replaces_the_older_link(app: Flask, citizen: Browser) -> None:
    log_in(citizen)
    ask_for_change(citizen, "erste@example.org")
    first = confirmation_path(app, "erste@example.org")
    ask_for_change(citizen, "zweite@example.org")
    assert citizen.get(first).status_code == 410
    assert "nicht mehr gültig" in citizen.last_html
    confirm(citizen, confirmation_path(app, "zweite@example.org"))
    assert "zweite@example.org" in citizen.get("/konto").get_data(as_text=True)


def test_tampered_link_is_refused(citizen: Browser) -> None:
    response = citizen.get("/email-bestaetigen/erfunden-und-falsch")
    assert response.status_code == 404
    assert "Link ungültig" in citizen.last_html


def test_change_needs_the_password_and_a_valid_new_address(app: Flask,
                                                           citizen: Browser) -> None:
    log_in(citizen)
    mails_before = len(outbox(app))
    response = ask_for_change(citizen, "keine-adresse", "Falsch-geraten 1")
    assert response.status_code == 422
    assert "Bitte geben Sie eine gültige E-Mail-Adresse an" in citizen.last_html
    assert "Das eingegebene Passwort ist nicht korrekt." in citizen.last_html
    ask_for_change(citizen, "Erika.Mustermann@EXAMPLE.ORG")
    assert "Das ist bereits die E-Mail-Adresse Ihres Servicekontos." in citizen.last_html
    ask_for_change(citizen, "neu@example.org\r\nBcc: alle@example.org")
    assert "ungültige Zeichen" in citizen.last_html
    assert len(outbox(app)) == mails_before


def test_address_of_another_account_cannot_be_taken_over(app: Flask, citizen: Browser) -> None:
    log_in(citizen)
    ask_for_change(citizen, "max@example.org")
    path = confirmation_path(app, "max@example.org")
    # Meanwhile Max registers with that address.
    max_browser = Browser(app.test_client())
    register(max_browser, email="max@example.org", username="MaxM", given_name="Max")
    activate(max_browser, app, "max@example.org")

    response = confirm(citizen, path)
    assert response.status_code == 409
    assert "bereits für ein anderes Servicekonto verwendet" in citizen.last_html
    assert REGISTRATION["email"] in citizen.get("/konto").get_data(as_text=True)
    assert "Ihre E-Mail-Adresse wurde geändert" not in [m.subject for m in outbox(app)]


def test_asking_for_a_taken_address_does_not_reveal_that_it_is_taken(app: Flask,
                                                                    citizen: Browser) -> None:
    other = Browser(app.test_client())
    register(other, email="max@example.org", username="MaxM", given_name="Max")
    activate(other, app, "max@example.org")
    log_in(citizen)
    taken = ask_for_change(citizen, "max@example.org")
    free = ask_for_change(citizen, "frei@example.org")
    assert taken.status_code == free.status_code == 302


def test_change_voids_password_reset_links_sent_to_the_old_address(app: Flask,
                                                                   citizen: Browser) -> None:
    citizen.get("/passwort-vergessen")
    citizen.submit("/passwort-vergessen", {"username": "ErikaM"})
    run_mail_sender(app)
    reset = path_of(link_in(outbox(app)[-1]))
    log_in(citizen)
    ask_for_change(citizen)
    confirm(citizen, confirmation_path(app))
    assert citizen.get(reset).status_code == 410


def test_change_links_per_hour_are_limited(app: Flask, citizen: Browser) -> None:
    log_in(citizen)
    for number in range(5):
        assert ask_for_change(citizen, f"adresse{number}@example.org").status_code == 302
    response = ask_for_change(citizen, "adresse9@example.org")
    assert response.status_code == 422
    assert "bereits mehrere Bestätigungslinks angefordert" in citizen.last_html
    assert "adresse9@example.org" not in [m.recipient for m in outbox(app)]
