"""A citizen registers in two steps, activates by mail and logs in."""

from __future__ import annotations

from flask import Flask

from tests.conftest import REGISTRATION, Browser, activate, link_in, log_in, outbox, register


def test_citizen_registers_activates_and_logs_in(app: Flask, browser: Browser) -> None:
    response = register(browser)
    assert response.status_code == 302
    assert "Sie erhalten eine Mail" in browser.get(response.location).get_data(as_text=True)

    mails = outbox(app)
    assert [m.recipient for m in mails] == [REGISTRATION["email"]]
    assert "aktivieren" in mails[0].subject.lower()
    assert link_in(mails[0]).startswith("http://localhost/aktivieren/")

    done = activate(browser, app)
    assert "Sie sind erfolgreich registriert" in done.get_data(as_text=True)

    response = log_in(browser)
    assert response.status_code == 302
    account = browser.get(response.location).get_data(as_text=True)
    assert "Mein Servicekonto" in account
    assert "Mustermann" in account
