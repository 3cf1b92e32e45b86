"""The development mailbox: in development without SMTP, a citizen's mails are read here."""

from __future__ import annotations

import re
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from idp import create_app
from idp.clock import utcnow
from idp.db import db
from idp.mail.models import OutboxMail
from idp.mail.sender import send_due
from tests.conftest import REGISTRATION, Browser, app_with, outbox, register

MAILBOX = "/entwicklung/postfach/"


def rows(html: str) -> list[str]:
    """The mailbox table's rows of mails (not its head)."""
    return [row for row in re.findall(r"<tr>(.*?)</tr>", html, flags=re.DOTALL)
            if "<th" not in row]


def add_mail(app: Flask, **fields: Any) -> int:
    now = utcnow()
    values: dict[str, Any] = {
        "recipient": "buerger@example.org", "subject": "Betreff", "body_text": "Text",
        "body_html": "<p>Text</p>", "message_id": f"<{now.timestamp()}@servicekonto.invalid>",
        "created_at": now, "next_attempt_at": now, "attempts": 0} | fields
    with app.app_context():
        mail = OutboxMail(**values)
        db.session.add(mail)
        db.session.commit()
        return mail.id


def test_the_mailbox_lists_mails_newest_first_with_their_status(
        app: Flask, browser: Browser) -> None:
    register(browser)
    register(Browser(app.test_client()), username="AnnaS", email="anna@example.org")
    add_mail(app, recipient="weg@example.org", subject="Aufgegeben", failed_at=utcnow(),
             attempts=20)

    listed = rows(browser.get(MAILBOX).get_data(as_text=True))
    assert ["weg@example.org" in listed[0], "anna@example.org" in listed[1],
            REGISTRATION["email"] in listed[2]] == [True, True, True]
    assert "fehlgeschlagen" in listed[0]
    assert "wartet" in listed[1] and "wartet" in listed[2]
    assert "Bitte aktivieren Sie Ihr Konto" in listed[1]

    # Without SMTP, "sending" delivers into this mailbox.
    assert send_due(app).sent == 2
    listed = rows(browser.get(MAILBOX).get_data(as_text=True))
    assert "versendet" in listed[1] and "versendet" in listed[2]


def test_an_opened_mail_shows_its_text_with_a_clickable_activation_link(
        app: Flask, browser: Browser) -> None:
    register(browser)
    [mail] = outbox(app)
    inbox = browser.get(MAILBOX).get_data(as_text=True)
    assert f'href="{MAILBOX}{mail.id}"' in inbox

    page = browser.get(f"{MAILBOX}{mail.id}").get_data(as_text=True)
    assert "Guten Tag Erika Mustermann" in page
    link = re.search(r'<a href="(http://localhost/aktivieren/[^"]+)"', page)
    assert link is not None
    confirm = browser.get(link.group(1).removeprefix("http://localhost"))
    assert "Servicekonto aktivieren" in confirm.get_data(as_text=True)


def test_mail_content_is_escaped_and_its_html_shown_only_in_a_sandbox(
        app: Flask, client: FlaskClient) -> None:
    mail_id = add_mail(
        app, subject='<script>alert("betreff")</script>',
        body_text='Hallo <b>Welt</b> https://example.org/a?b=1&c=2"onmouseover="alert(1) '
                  "<img src=x onerror=alert(2)>",
        body_html='<script>alert("html")</script><p onclick="alert(3)">Hallo</p>')

    inbox = client.get(MAILBOX)
    assert "<script>" not in inbox.get_data(as_text=True)
    assert "&lt;script&gt;" in inbox.get_data(as_text=True)

    response = client.get(f"{MAILBOX}{mail_id}")
    page = response.get_data(as_text=True)
    assert "default-src 'self'" in response.headers["Content-Security-Policy"]
    assert "<script" not in page
    assert "<img" not in page and "<b>" not in page
    assert "&lt;b&gt;Welt&lt;/b&gt;" in page
    # The link ends where the attack begins, and its address is escaped.
    assert '<a href="https://example.org/a?b=1&amp;c=2" rel="noopener noreferrer">' in page
    assert 'onmouseover="' not in page
    [iframe] = re.findall(r"<iframe[^>]*>", page)
    assert 'sandbox=""' in iframe
    assert 'srcdoc="&lt;script&gt;alert(&#34;html&#34;)&lt;/script&gt;&lt;p onclick=' in iframe


def test_an_unknown_mail_gets_the_german_not_found_page(client: FlaskClient) -> None:
    response = client.get(f"{MAILBOX}4711")
    assert response.status_code == 404
    assert "Seite nicht gefunden" in response.get_data(as_text=True)


def test_there_is_no_mailbox_when_an_smtp_server_is_configured(
        settings: dict[str, Any]) -> None:
    settings["mail_server"] = "127.0.0.1"
    app = create_app(test_config=settings, env={})
    try:
        assert app.test_client().get(MAILBOX).status_code == 404
    finally:
        db.bound(app).engine.dispose()


@pytest.mark.parametrize("address", ["192.0.2.7", "172.17.0.1", "2001:db8::7", "::ffff:10.0.0.1"])
def test_the_mailbox_is_not_there_for_a_client_on_another_machine(
        app: Flask, browser: Browser, address: str) -> None:
    register(browser)
    [mail] = outbox(app)
    remote = app.test_client()
    for path in (MAILBOX, f"{MAILBOX}{mail.id}"):
        response = remote.get(path, environ_base={"REMOTE_ADDR": address})
        assert response.status_code == 404
        assert "Seite nicht gefunden" in response.get_data(as_text=True)
        assert "aktivieren" not in response.get_data(as_text=True)


@pytest.mark.parametrize("address", ["127.0.0.1", "::1", "::ffff:127.0.0.1"])
def test_the_mailbox_answers_a_client_on_this_machine(client: FlaskClient, address: str) -> None:
    assert client.get(MAILBOX, environ_base={"REMOTE_ADDR": address}).status_code == 200


def test_an_operator_may_open_the_mailbox_to_other_machines(settings: dict[str, Any]) -> None:
    with app_with(settings, development_remote=True) as app:
        response = app.test_client().get(MAILBOX, environ_base={"REMOTE_ADDR": "192.0.2.7"})
    assert response.status_code == 200
