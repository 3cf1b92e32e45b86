"""A citizen who forgot the password asks for a link by mail and sets a new password."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from flask import Flask

from tests.conftest import (
    GOOD_PASSWORD,
    REGISTRATION,
    Browser,
    Clock,
    link_in,
    log_in,
    outbox,
    path_of,
    register,
    run_mail_sender,
)

NEW_PASSWORD = "Wolken-Meer 731"
SENT = "Wenn ein Servicekonto mit diesem Benutzernamen existiert, erhalten Sie eine E-Mail"


def request_reset(browser: Browser, username: str = "ErikaM") -> Any:
    """Ask for a reset link; the mail sender then answers the request."""
    browser.get("/passwort-vergessen")
    response = browser.submit("/passwort-vergessen", {"username": username})
    run_mail_sender(browser.client.application)
    return response


def reset_path(app: Flask) -> str:
    mail = [m for m in outbox(app) if m.subject == "Servicekonto: Neues Passwort vergeben"][-1]
    return path_of(link_in(mail))


def set_password(browser: Browser, path: str, password: str = NEW_PASSWORD,
                 confirmation: str | None = None) -> Any:
    browser.get(path)
    return browser.submit(path, {"password": password,
                                 "password_confirm": password if confirmation is None
                                 else confirmation})


def test_forgotten_password_is_replaced_through_the_mailed_link(app: Flask,
                                                                citizen: Browser) -> None:
    response = request_reset(citizen)
    assert response.status_code == 200
    assert SENT in citizen.last_html

    mail = outbox(app)[-1]
    assert mail.recipient == REGISTRATION["email"]
    assert "ErikaM" in mail.body_text
    assert link_in(mail).startswith("http://localhost/passwort-vergessen/")

    form = citizen.get(reset_path(app)).get_data(as_text=True)
    assert "Neues Passwort vergeben" in form
    assert "mindestens 8 Zeichen" in form  # the policy's rules are listed

    done = set_password(citizen, reset_path(app))
    assert done.status_code == 200
    assert "Ihr Passwort wurde geändert" in citizen.last_html

    assert log_in(citizen, password=GOOD_PASSWORD).status_code == 401
    assert log_in(citizen, password=NEW_PASSWORD).status_code == 302
    notice = outbox(app)[-1]
    assert notice.recipient == REGISTRATION["email"]
    assert notice.subject == "Servicekonto: Ihr Passwort wurde geändert"


def test_page_is_the_same_for_known_and_unknown_usernames(app: Flask, citizen: Browser) -> None:
    mails_before = len(outbox(app))
    known = request_reset(citizen, "ErikaM").get_data(as_text=True)
    unknown = request_reset(citizen, "NiemandHier").get_data(as_text=True)
    assert known == unknown
    assert SENT in unknown
    assert len(outbox(app)) == mails_before + 1  # only the existing account got a mail


def test_unactivated_registration_gets_no_reset_link(app: Flask, browser: Browser) -> None:
    register(browser)
    request_reset(browser)
    assert SENT in browser.last_html
    assert [m.subject for m in outbox(app)] == ["Servicekonto: Bitte aktivieren Sie Ihr Konto"]


def test_empty_or_malformed_username_is_named_on_the_form(browser: Browser) -> None:
    response = request_reset(browser, "")
    assert response.status_code == 422
    assert "Bitte geben Sie einen Benutzernamen an." in browser.last_html
    response = request_reset(browser, "Erika\r\nBcc: x@example.org")
    assert response.status_code == 422
    assert "ungültige Zeichen" in browser.last_html


def test_opening_the_link_does_not_use_it_up(app: Flask, citizen: Browser) -> None:
    request_reset(citizen)
    path = reset_path(app)
    for _ in range(3):
        assert citizen.get(path).status_code == 200
    assert set_password(citizen, path).status_code == 200


def test_reset_link_works_only_once(app: Flask, citizen: Browser) -> None:
    request_reset(citizen)
    path = reset_path(app)
    form = citizen.get(path).get_data(as_text=True)
    citizen.submit(path, {"password": NEW_PASSWORD, "password_confirm": NEW_PASSWORD})

    again = citizen.get(path)
    assert again.status_code == 410
    assert "bereits verwendet" in citizen.last_html
    assert 'href="/passwort-vergessen"' in citizen.last_html  # offers a new link

    citizen.last_html = form  # the form sent once more, as a back button would
    other = "Ander-es 99x"
    replayed = citizen.submit(path, {"password": other, "password_confirm": other})
    assert replayed.status_code == 410
    assert log_in(citizen, password=other).status_code == 401
    assert log_in(citizen, password=NEW_PASSWORD).status_code == 302


def test_expired_reset_link_offers_a_new_one(app: Flask, citizen: Browser, clock: Clock) -> None:
    request_reset(citizen)
    path = reset_path(app)
    clock.advance(minutes=61)

    response = citizen.get(path)
    assert response.status_code == 410
    assert "abgelaufen" in citizen.last_html
    assert "Neuen Link anfordern" in citizen.last_html


def test_newer_link_replaces_the_older_one(app: Flask, citizen: Browser) -> None:
    request_reset(citizen)
    first = reset_path(app)
    request_reset(citizen)
    second = reset_path(app)
    assert first != second
    assert citizen.get(first).status_code == 410
    assert "nicht mehr gültig" in citizen.last_html
    assert set_password(citizen, second).status_code == 200


@pytest.mark.parametrize("path", ["/passwort-vergessen/erfunden",
                                  "/passwort-vergessen/" + "A" * 300])
def test_unknown_or_tampered_link_is_refused(citizen: Browser, path: str) -> None:
    response = citizen.get(path)
    assert response.status_code == 404
    assert "Link ungültig" in citizen.last_html


def test_weak_password_is_refused_and_the_link_stays_usable(app: Flask,
                                                             citizen: Browser) -> None:
    request_reset(citizen)
    path = reset_path(app)
    response = set_password(citizen, path, "kurz")
    assert response.status_code == 422
    assert "mindestens 8 Zeichen" in citizen.last_html
    assert 'aria-describedby="passwort-regeln password-fehler"' in citizen.last_html

    response = set_password(citizen, path, NEW_PASSWORD, "Wolken-Meer 732")
    assert response.status_code == 422
    assert "Die beiden Passwörter stimmen nicht überein." in citizen.last_html

    assert set_password(citizen, path).status_code == 200
    assert log_in(citizen, password=NEW_PASSWORD).status_code == 302


def test_reset_logs_out_every_other_browser(app: Flask, citizen: Browser) -> None:
    other = Browser(app.test_client())
    log_in(other)
    assert other.get("/konto").status_code == 200

    request_reset(citizen)
    set_password(citizen, reset_path(app))

    response = other.get("/konto")
    assert response.status_code == 302
    assert response.location.startswith("/anmelden")


def test_reset_lifts_the_login_delay_of_the_account(app: Flask, citizen: Browser) -> None:
    for _ in range(7):
        log_in(citizen, password="Falsch-geraten 1")
    # Throttled: even the right password is refused for now.
    assert log_in(citizen).status_code == 401

    request_reset(citizen)
    set_password(citizen, reset_path(app))
    assert log_in(citizen, password=NEW_PASSWORD).status_code == 302


def test_requests_beyond_the_hourly_limit_send_no_more_mails(app: Flask,
                                                              citizen: Browser) -> None:
    for _ in range(8):
        assert SENT in request_reset(citizen).get_data(as_text=True)
    assert len([m for m in outbox(app) if m.recipient == REGISTRATION["email"]]) == 5


def test_two_simultaneous_resets_with_one_link_succeed_once(app: Flask,
                                                            citizen: Browser) -> None:
    request_reset(citizen)
    path = reset_path(app)
    browsers = [Browser(app.test_client()) for _ in range(2)]
    for browser in browsers:
        browser.get(path)
    passwords = ["Erste-Wahl 111", "Zweite-Wahl 222"]
    start = threading.Barrier(2)
    statuses: list[int] = []

    def submit(browser: Browser, password: str) -> None:
        start.wait()
        response = browser.submit(path, {"password": password, "password_confirm": password})
        statuses.append(response.status_code)

    threads = [threading.Thread(target=submit, args=pair)
               for pair in zip(browsers, passwords, strict=True)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(statuses) == [200, 410]
    logins = [log_in(citizen, password=p).status_code for p in passwords]
    assert sorted(logins) == [302, 401]
    notices = [m for m in outbox(app) if m.subject == "Servicekonto: Ihr Passwort wurde geändert"]
    assert len(notices) == 1
