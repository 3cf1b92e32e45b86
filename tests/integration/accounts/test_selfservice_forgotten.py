""""Passwort vergessen" and "Benutzernamen vergessen" tell nobody who has an account: not by the
page and not by the time it takes. The request only records what was asked, the same work for
every input; the mail sender answers it afterwards.

The time itself is measured by ``benchmarks/forgotten.py``; here the cause of equal time is
checked: the same statements run in the request for known and unknown input.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import event, func, select

from idp.accounts.models import AccountToken, ForgottenRequest
from idp.cli import main
from idp.db import db
from idp.mail.sender import send_due
from tests.conftest import REGISTRATION, Browser, Clock, outbox, run_mail_sender

# The two forms: path, field, known input (Erika's), unknown input, the subject of the answer.
FORMS = {
    "password": ("/passwort-vergessen", "username", "ErikaM", "NiemandHier",
                 "Servicekonto: Neues Passwort vergeben"),
    "username": ("/benutzername-vergessen", "email", REGISTRATION["email"],
                 "niemand@example.org", "Servicekonto: Ihr Benutzername"),
}
PARAMETER = re.compile(r"\$\d+|%\(\w+\)s|\?")


@contextmanager
def statements(app: Flask) -> Iterator[list[str]]:
    """The SQL statements run on the app's database meanwhile (their text, without values)."""
    seen: list[str] = []

    def record(_connection: Any, _cursor: Any, statement: str, *_rest: Any) -> None:
        seen.append(" ".join(PARAMETER.sub("?", statement).split()))

    engine = db.bound(app).engine
    event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", record)


def rows(app: Flask) -> dict[str, int]:
    """How many requests, links and mails the database holds."""
    with app.app_context():
        return {table.__tablename__: db.session.scalar(select(func.count()).select_from(table))
                or 0 for table in (ForgottenRequest, AccountToken)} | {"mails": len(outbox(app))}


def ask(browser: Browser, form: str, value: str) -> Any:
    path, field, *_ = FORMS[form]
    browser.get(path)
    return browser.submit(path, {field: value})


@pytest.mark.parametrize("form", sorted(FORMS))
def test_the_form_does_the_same_database_work_whether_or_not_the_account_exists(
        app: Flask, citizen: Browser, form: str) -> None:
    _, _, known, unknown, _ = FORMS[form]
    ask(citizen, form, "Aufwaermen" if form == "password" else "warm@example.org")
    before = rows(app)

    with statements(app) as for_known:
        known_page = ask(citizen, form, known).get_data(as_text=True)
    between = rows(app)
    with statements(app) as for_unknown:
        unknown_page = ask(citizen, form, unknown).get_data(as_text=True)

    assert known_page == unknown_page
    # The GET of the form is in there too; the POST adds the same statements for both.
    assert for_known == for_unknown
    # One request row each; no link and no mail made in the request, no account read.
    assert between == before | {"forgotten_request": before["forgotten_request"] + 1}
    assert rows(app) == before | {"forgotten_request": before["forgotten_request"] + 2}
    assert not [sql for sql in for_known if re.search(r"\bcitizen\b", sql)]


@pytest.mark.parametrize("form", sorted(FORMS))
def test_the_mail_sender_then_mails_the_known_account_and_nobody_else(
        app: Flask, citizen: Browser, form: str) -> None:
    _, _, known, unknown, subject = FORMS[form]
    mails_before = len(outbox(app))
    ask(citizen, form, unknown)
    ask(citizen, form, known)
    assert len(outbox(app)) == mails_before  # nothing is mailed in the request

    run_mail_sender(app)

    [mail] = outbox(app)[mails_before:]
    assert (mail.recipient, mail.subject) == (REGISTRATION["email"], subject)
    assert "ErikaM" in mail.body_text and mail.sent_at is not None
    assert rows(app)["forgotten_request"] == 0  # answered and gone
    run_mail_sender(app)
    assert len(outbox(app)) == mails_before + 1  # answered once only


def test_two_mail_senders_at_once_answer_each_request_once(app: Flask, citizen: Browser) -> None:
    mails_before = len(outbox(app))
    for _ in range(2):  # with the activation mail, within the hourly limit of the address
        ask(citizen, "username", REGISTRATION["email"])
        ask(citizen, "password", "ErikaM")
    start = threading.Barrier(2)
    failures: list[BaseException] = []

    def sender() -> None:
        start.wait()
        try:
            send_due(app)
        except BaseException as error:  # reported below, not lost in the thread
            failures.append(error)

    threads = [threading.Thread(target=sender) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert failures == []
    subjects = sorted(mail.subject for mail in outbox(app)[mails_before:])
    assert subjects == sorted([FORMS["username"][4], FORMS["password"][4]] * 2)
    assert rows(app)["forgotten_request"] == 0


def test_purge_removes_requests_no_sender_answered_within_an_hour(
        app: Flask, citizen: Browser, clock: Clock) -> None:
    ask(citizen, "password", "ErikaM")
    clock.advance(minutes=61)
    ask(citizen, "username", "niemand@example.org")

    result = app.test_cli_runner().invoke(main, args=["purge"])

    assert result.exit_code == 0, result.output
    assert "1 nie beantwortete „vergessen“-Anfrage(n)" in result.output
    with app.app_context():
        assert list(db.session.scalars(select(ForgottenRequest.purpose))) == ["username_reminder"]


def test_the_hourly_mail_limit_per_address_still_holds(app: Flask, citizen: Browser) -> None:
    assert len(outbox(app)) == 1  # the activation mail, which counts towards the limit
    for _ in range(4):
        ask(citizen, "password", "ErikaM")
        ask(citizen, "username", REGISTRATION["email"])
    run_mail_sender(app)
    # Five mails to the address within the hour, then none.
    assert len(outbox(app)) == 5
