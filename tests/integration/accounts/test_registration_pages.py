"""What the registration pages and the activation mail tell a citizen, also read aloud."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import lxml.html
import pytest
from flask import Flask

from tests.conftest import (
    REGISTRATION,
    Browser,
    Clock,
    app_with,
    link_in,
    log_in,
    outbox,
    path_of,
    register,
    run_mail_sender,
)

PRESS_THE_BUTTON = "klicken Sie dort auf „Servicekonto aktivieren“"


def spoken(html: str, where: str = "//main") -> str:
    """The text a screen reader reads at ``where`` (an XPath): without what is hidden from it."""
    (part,) = lxml.html.fromstring(html).xpath(where)
    for hidden in part.xpath(".//*[@aria-hidden='true']"):
        hidden.drop_tree()
    return " ".join(part.text_content().split())


def field(html: str, name: str) -> Any:
    (element,) = lxml.html.fromstring(html).xpath(f"//input[@id='{name}']")
    return element


def test_the_mail_and_the_mail_sent_page_say_that_the_button_behind_the_link_activates(
        app: Flask, browser: Browser) -> None:
    sent = browser.get(register(browser).location).get_data(as_text=True)
    assert PRESS_THE_BUTTON in " ".join(sent.split())
    mail = outbox(app)[0]
    assert PRESS_THE_BUTTON in " ".join(mail.body_text.split())
    assert PRESS_THE_BUTTON in " ".join(mail.body_html.split())
    # … and the page the link opens has exactly that button.
    page = browser.get(path_of(link_in(mail))).get_data(as_text=True)
    assert ">Servicekonto aktivieren</button>" in page


@pytest.fixture
def two_day_links(settings: dict[str, Any]) -> Iterator[Flask]:
    """An IdP whose activation links are valid for 48 hours instead of 24."""
    with app_with(settings, activation_hours=48) as application:
        yield application


def test_every_page_names_the_configured_validity_of_the_activation_link(
        two_day_links: Flask, clock: Clock) -> None:
    browser = Browser(two_day_links.test_client())
    pages = [browser.get(register(browser).location).get_data(as_text=True),
             outbox(two_day_links)[0].body_text,
             browser.get("/datenschutz").get_data(as_text=True),
             browser.get("/aktivieren/unbekannt").get_data(as_text=True)]
    clock.advance(hours=47)
    path = path_of(link_in(outbox(two_day_links)[0]))
    assert "Servicekonto aktivieren" in browser.get(path).get_data(as_text=True)
    clock.advance(hours=1, seconds=1)
    pages.append(browser.get(path).get_data(as_text=True))
    for page in pages:
        assert "48 Stunden" in page and "24 Stunden" not in page, page


def test_the_privacy_page_names_the_configured_session_limits(settings: dict[str, Any]) -> None:
    with app_with(settings, session_absolute_minutes=8 * 60, session_idle_minutes=30) as app:
        page = " ".join(app.test_client().get("/datenschutz").get_data(as_text=True).split())

    assert "höchstens 8 Stunden, nach 30 Minuten ohne Aktivität endet die Sitzung" in page


def test_an_expired_and_a_replaced_link_each_get_their_own_heading(
        app: Flask, browser: Browser, clock: Clock) -> None:
    register(browser)
    first = path_of(link_in(outbox(app)[0]))
    browser.get(first)
    browser.submit(first + "/erneut-senden")
    replaced = browser.get(first).get_data(as_text=True)
    assert "<h1>Es gibt einen neueren Aktivierungslink</h1>" in replaced
    assert "abgelaufen" not in replaced
    clock.advance(hours=24, seconds=1)
    expired = browser.get(path_of(link_in(outbox(app)[-1]))).get_data(as_text=True)
    assert "<h1>Aktivierungslink abgelaufen</h1>" in expired
    assert "Dieser Aktivierungslink ist abgelaufen. Er war 24 Stunden gültig." in expired


def test_the_form_shows_the_username_rules_before_any_error(browser: Browser) -> None:
    form = browser.get("/registrieren/benutzername").get_data(as_text=True)
    rules = ("Der Benutzername muss 3 bis 64 Zeichen lang sein und darf nur Buchstaben, "
             "Ziffern und die Zeichen . _ - @ + enthalten.")
    assert rules in spoken(form)
    username = field(form, "username")
    assert username.get("maxlength") == "64"
    assert "username-hinweis" in username.get("aria-describedby")
    # The error names the rule in the hint's words.
    browser.submit("/registrieren/benutzername", REGISTRATION | {"username": "Erika M"})
    assert ("Der Benutzername darf nur Buchstaben, Ziffern und die Zeichen . _ - @ + enthalten."
            in browser.last_html)


def test_the_form_lists_every_rule_a_password_is_checked_against(browser: Browser) -> None:
    rules = spoken(browser.get("/registrieren/benutzername").get_data(as_text=True),
                   "//*[@id='passwort-regeln']")
    assert "darf den Benutzernamen nicht enthalten" in rules
    assert "darf kein bekanntes, leicht zu erratendes Passwort sein" in rules
    browser.submit("/registrieren/benutzername", REGISTRATION | {
        "password": "xErikaM-2026", "password_confirm": "xErikaM-2026"})
    assert "Das Passwort darf den Benutzernamen nicht enthalten." in browser.last_html


def test_an_empty_password_is_asked_for_once_instead_of_breaking_every_rule(
        browser: Browser) -> None:
    browser.get("/registrieren/benutzername")
    response = browser.submit("/registrieren/benutzername",
                              REGISTRATION | {"password": "", "password_confirm": ""})
    assert response.status_code == 422
    (errors,) = lxml.html.fromstring(browser.last_html).xpath("//ul[@id='password-fehler']")
    assert [" ".join(item.text_content().split()) for item in errors.iter("li")] == [
        "Bitte geben Sie ein Passwort an."]


def test_a_missing_password_character_is_named_in_words(browser: Browser) -> None:
    browser.get("/registrieren/benutzername")
    browser.submit("/registrieren/benutzername", REGISTRATION | {
        "password": "kräftig grün", "password_confirm": "kräftig grün"})
    page = browser.last_html
    assert "Das Passwort muss mindestens einen Großbuchstaben enthalten." in page
    assert "Das Passwort muss mindestens eine Ziffer enthalten." in page
    assert "(n)" not in spoken(page, "//div[contains(@class, 'alert-error')]")


def test_every_new_password_field_is_described_by_the_rules(app: Flask,
                                                            browser: Browser) -> None:
    forms = [browser.get("/registrieren/benutzername").get_data(as_text=True)]
    register(browser)
    browser.get(path_of(link_in(outbox(app)[0])))
    browser.submit(path_of(link_in(outbox(app)[0])))
    log_in(browser)
    forms.append(browser.get("/konto/passwort").get_data(as_text=True))
    browser.get("/passwort-vergessen")
    browser.submit("/passwort-vergessen", {"username": REGISTRATION["username"]})
    run_mail_sender(app)
    forms.append(browser.get(path_of(link_in(outbox(app)[-1]))).get_data(as_text=True))
    for form in forms:
        assert 'id="passwort-regeln"' in form
        assert "passwort-regeln" in field(form, "password").get("aria-describedby").split()
        assert "Siehe die Bedingungen oben" not in form


@pytest.mark.parametrize("path", ["/anmelden", "/registrieren/benutzername",
                                  "/passwort-vergessen", "/benutzername-vergessen"])
def test_screen_readers_hear_which_fields_are_required(browser: Browser, path: str) -> None:
    page = spoken(browser.get(path).get_data(as_text=True))
    assert ("Bitte beachten: Felder mit Stern sind Pflichtfelder und müssen ausgefüllt werden."
            in page)


@pytest.mark.parametrize(("path", "options"), [
    ("/", ["Login mit externem Servicekonto"]),
])
def test_options_that_are_not_offered_yet_say_so_in_words(browser: Browser, path: str,
                                                          options: list[str]) -> None:
    html = browser.get(path).get_data(as_text=True)
    for option in options:
        assert f"{option} (noch nicht verfügbar)" in spoken(html)
    assert "aria-disabled" not in html and "(folgt)" not in html


def test_the_privacy_link_of_the_registration_form_says_it_opens_a_new_window(
        browser: Browser) -> None:
    html = browser.get("/registrieren/benutzername").get_data(as_text=True)
    (link,) = [a for a in lxml.html.fromstring(html).iter("a")
               if a.get("href") == "/datenschutz" and a.get("target") == "_blank"]
    assert link.get("rel") == "noopener"
    assert "öffnet in einem neuen Fenster" in link.text_content()
