"""The login page posts only where the server decides: never to a path taken from its URL.

A link such as ``/anmelden?cancel=/konto/loeschen`` once made ABBRECHEN post the typed password
and a valid CSRF token to the account deletion (docs/security.md, "Login page").
"""

from __future__ import annotations

from html.parser import HTMLParser

import pytest
from flask import Flask

from tests.conftest import GOOD_PASSWORD, Browser, log_in
from tests.integration.security.conftest import citizens, is_logged_in


class Forms(HTMLParser):
    """What pressing each button of a page sends: (button text, target, field names)."""

    def __init__(self) -> None:
        super().__init__()
        self.forms: dict[str, tuple[str, list[str]]] = {}  # form id or index → (action, fields)
        self.buttons: list[tuple[str | None, str | None, str]] = []  # (form, formaction, text)
        self._form: str | None = None
        self._button: list[str | None] | None = None
        self._text = ""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag == "form":
            self._form = found.get("id") or f"form-{len(self.forms)}"
            self.forms[self._form] = (found.get("action") or "", [])
        elif tag == "input" and self._form and found.get("name"):
            self.forms[self._form][1].append(str(found["name"]))
        elif tag == "button" and found.get("type", "submit") == "submit":
            self._button = [found.get("form") or self._form, found.get("formaction")]
            self._text = ""

    def handle_data(self, data: str) -> None:
        if self._button is not None:
            self._text += data

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._form = None
        elif tag == "button" and self._button is not None:
            form, formaction = self._button
            self.buttons.append((form, formaction, self._text.strip()))
            self._button = None

    def pressing(self, text: str) -> tuple[str, list[str]]:
        """(where the browser posts, which fields it sends) when the button ``text`` is pressed."""
        for form, formaction, label in self.buttons:
            if label == text and form is not None:
                action, fields = self.forms[form]
                return formaction or action, fields
        raise AssertionError(f"no button {text!r}")


def buttons_of(html: str) -> Forms:
    parser = Forms()
    parser.feed(html)
    return parser


ATTACKS = ["/konto/loeschen", "/konto/zustimmungen/1/widerrufen",
           "/konto/passwort", "https://evil.example/"]


@pytest.mark.parametrize("target", ATTACKS)
def test_a_login_link_cannot_choose_where_abbrechen_or_anmelden_post(
        citizen: Browser, target: str) -> None:
    log_in(citizen)
    page = citizen.get("/anmelden", query_string={"cancel": target, "next": target})
    html = page.get_data(as_text=True)
    assert target not in html
    forms = buttons_of(html)
    assert forms.pressing("ANMELDEN")[0] == "/anmelden"
    assert all(formaction is None for _, formaction, _ in forms.buttons)


def test_pressing_abbrechen_on_a_crafted_login_link_leaves_the_account_alone(
        app: Flask, citizen: Browser) -> None:
    log_in(citizen)
    page = citizen.get("/anmelden?cancel=/konto/loeschen&next=/konto/loeschen")
    forms = buttons_of(page.get_data(as_text=True))
    # ABBRECHEN without a SAML login to cancel is a link back to the start page, not a button.
    assert "ABBRECHEN" not in {label for _, _, label in forms.buttons}
    # Typing the password and pressing ANMELDEN logs in again; it deletes nothing.
    action, fields = forms.pressing("ANMELDEN")
    typed = {"username": "ErikaM", "password": GOOD_PASSWORD}
    citizen.submit(action, {name: typed.get(name, "") for name in fields if name != "csrf_token"})
    assert [c.username for c in citizens(app)] == ["ErikaM"]
    assert is_logged_in(citizen.client)


def test_the_login_page_ignores_a_saml_login_this_browser_did_not_start(
        citizen: Browser) -> None:
    page = citizen.get("/anmelden?anfrage=someone-elses-reference")
    html = page.get_data(as_text=True)
    assert "someone-elses-reference" not in html
    assert "/saml/abbrechen/" not in html
    response = citizen.submit("/anmelden?anfrage=someone-elses-reference",
                              {"username": "ErikaM", "password": GOOD_PASSWORD})
    assert response.location == "/konto"
