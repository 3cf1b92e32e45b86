"""Mails leave the outbox for a real SMTP server: once each, also across an outage."""

from __future__ import annotations

import threading
from datetime import timedelta

from flask import Flask

from idp.cli import main
from idp.clock import utcnow
from idp.config import Config
from idp.db import db
from idp.mail.models import OutboxMail
from idp.mail.sender import SendReport, send_due
from tests.conftest import (
    LINK,
    REGISTRATION,
    Browser,
    log_in,
    outbox,
    path_of,
    register,
)
from tests.integration.mail.smtp import SmtpServer

CITIZENS = [
    {"given_name": "Anna", "surname": "Schmitz", "username": "AnnaS",
     "email": "anna.schmitz@example.org"},
    {"given_name": "Jürgen", "surname": "Özdemir", "username": "JuergenOe",
     "email": "juergen.oezdemir@example.org"},
    {"given_name": "Mia", "surname": "Wagner", "username": "mia.wagner",
     "email": "mia@example.net"},
    {"given_name": "Lukas", "surname": "Becker", "username": "LukasB",
     "email": "lukas.becker@example.com"},
]


def config_of(app: Flask) -> Config:
    config: Config = app.config["SERVICEKONTO"]
    return config


def register_each(app: Flask, citizens: list[dict[str, str]]) -> None:
    """Each citizen registers in a browser of their own."""
    for citizen in citizens:
        response = register(Browser(app.test_client()), **citizen)
        assert response.status_code == 302


def test_the_activation_mail_arrives_as_a_german_text_and_html_mail_whose_link_activates(
        mail_app: Flask, browser: Browser, smtp_server: SmtpServer) -> None:
    register(browser)
    report = send_due(mail_app)
    assert (report.sent, report.failed) == (1, 0)

    [message] = smtp_server.inbox.received
    assert smtp_server.inbox.envelope_recipients == [REGISTRATION["email"]]
    assert message["To"] == REGISTRATION["email"]
    assert "noreply@servicekonto.invalid" in message["From"]
    assert message["Subject"] == "Servicekonto: Bitte aktivieren Sie Ihr Konto"
    # One Message-ID, the outbox's own: a receiver can drop a rare second delivery.
    assert message.get_all("Message-ID") == [outbox(mail_app)[0].message_id]

    [alternative] = [part for part in message.walk()
                     if part.get_content_type() == "multipart/alternative"]
    plain, html = alternative.iter_parts()
    assert plain.get_content_type() == "text/plain"
    assert html.get_content_type() == "text/html"
    assert plain.get_content_charset() == html.get_content_charset() == "utf-8"
    text = plain.get_content()
    assert "Guten Tag Erika Mustermann" in text
    assert "Registrierungsvorgang abzuschließen" in text
    assert "Guten Tag Erika Mustermann" in html.get_content()

    link = LINK.search(text)
    assert link is not None
    path = path_of(link.group(0))  # built from IDP_BASE_URL
    assert "Servicekonto aktivieren" in browser.get(path).get_data(as_text=True)
    done = browser.submit(path)
    assert "Sie sind erfolgreich registriert" in done.get_data(as_text=True)
    assert log_in(browser).status_code == 302


def test_mails_written_during_an_smtp_outage_are_all_delivered_once_it_is_over(
        mail_app: Flask, smtp_server: SmtpServer) -> None:
    smtp_server.stop()
    register_each(mail_app, CITIZENS)

    report = send_due(mail_app)
    assert (report.sent, report.failed) == (0, len(CITIZENS))
    for mail in outbox(mail_app):
        assert mail.attempts == 1
        assert mail.sent_at is None and mail.failed_at is None
        assert mail.last_error is not None and "nicht erreichbar" in mail.last_error
    # While the backoff runs nothing is tried again.
    assert send_due(mail_app).failed == 0

    smtp_server.start()
    after_backoff = utcnow() + timedelta(seconds=config_of(mail_app).mail_retry_base_seconds + 1)
    report = send_due(mail_app, now=after_backoff)
    assert (report.sent, report.failed) == (len(CITIZENS), 0)
    assert send_due(mail_app, now=after_backoff + timedelta(hours=2)).sent == 0

    assert smtp_server.inbox.per_recipient() == {c["email"]: 1 for c in CITIZENS}
    assert sorted(m["Message-ID"] for m in smtp_server.inbox.received) == sorted(
        mail.message_id for mail in outbox(mail_app))
    assert all(mail.sent_at is not None for mail in outbox(mail_app))


def test_a_server_that_refuses_for_now_gets_the_mail_again_later(
        mail_app: Flask, smtp_server: SmtpServer) -> None:
    first, second = CITIZENS[:2]
    smtp_server.inbox.refuse[first["email"]] = "451 4.3.0 Bitte später erneut versuchen"
    register_each(mail_app, [first, second])

    report = send_due(mail_app)
    assert (report.sent, report.failed, report.given_up) == (1, 1, 0)
    assert smtp_server.inbox.per_recipient() == {second["email"]: 1}

    del smtp_server.inbox.refuse[first["email"]]
    later = utcnow() + timedelta(hours=1)
    assert send_due(mail_app, now=later).sent == 1
    assert smtp_server.inbox.per_recipient() == {first["email"]: 1, second["email"]: 1}


def test_a_recipient_the_server_does_not_know_is_given_up_at_once(
        mail_app: Flask, smtp_server: SmtpServer) -> None:
    citizen = CITIZENS[0]
    smtp_server.inbox.refuse[citizen["email"]] = "550 5.1.1 Unbekannter Empfänger"
    register_each(mail_app, [citizen])

    report = send_due(mail_app)
    assert (report.sent, report.given_up) == (0, 1)
    [mail] = outbox(mail_app)
    assert mail.failed_at is not None
    assert mail.last_error is not None and "550" in mail.last_error
    assert send_due(mail_app, now=utcnow() + timedelta(days=2)).failed == 0


def queue_mails(app: Flask, count: int) -> None:
    now = utcnow()
    with app.app_context():
        for number in range(count):
            db.session.add(OutboxMail(
                recipient=f"buerger{number}@example.org", subject=f"Mail {number}",
                body_text="Guten Tag", body_html="<p>Guten Tag</p>",
                message_id=f"<parallel-{number}@servicekonto.invalid>", created_at=now,
                next_attempt_at=now, attempts=0))
        db.session.commit()


def test_senders_running_at_the_same_time_never_send_a_mail_twice(
        mail_app: Flask, smtp_server: SmtpServer) -> None:
    count, senders = 40, 4
    queue_mails(mail_app, count)
    smtp_server.inbox.delay = 0.02  # a server that takes its time lets the senders overlap
    start = threading.Barrier(senders)
    reports: list[SendReport] = []
    errors: list[BaseException] = []

    def sender() -> None:
        try:
            start.wait()
            reports.append(send_due(mail_app, batch_size=3))
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=sender) for _ in range(senders)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert errors == []
    assert sum(report.sent for report in reports) == count
    assert sum(1 for report in reports if report.sent) >= 2, "the senders did not overlap"
    assert smtp_server.inbox.per_recipient() == {f"buerger{n}@example.org": 1
                                                 for n in range(count)}


def test_mail_send_prints_how_many_mails_it_sent(
        mail_app: Flask, browser: Browser, smtp_server: SmtpServer) -> None:
    register(browser)
    result = mail_app.test_cli_runner().invoke(main, args=["mail", "send"])
    assert result.exit_code == 0, result.output
    assert "1 Mail(s) versendet, 0 Fehlversuch(e)." in result.output
    assert smtp_server.inbox.per_recipient() == {REGISTRATION["email"]: 1}


def test_mail_send_during_an_outage_counts_the_failed_attempts_and_keeps_the_mail(
        mail_app: Flask, browser: Browser, smtp_server: SmtpServer) -> None:
    register(browser)
    smtp_server.stop()
    result = mail_app.test_cli_runner().invoke(main, args=["mail", "send"])
    assert result.exit_code == 0, result.output
    assert "0 Mail(s) versendet, 1 Fehlversuch(e)." in result.output
    [mail] = outbox(mail_app)
    assert mail.sent_at is None and mail.failed_at is None


