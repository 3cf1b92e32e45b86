"""Stopping the long-running commands as ``docker stop`` and systemd do, with SIGTERM: the mail
sender finishes the mail in hand, gives the rest of its batch back and ends; a sender started
afterwards sends exactly the rest. ``purge --forever`` ends between two rounds.
"""

from __future__ import annotations

import signal
import subprocess
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session

from idp.clock import utcnow
from idp.mail.models import OutboxMail
from tests.e2e.processes import SERVICEKONTO, eventually, upgrade_database
from tests.integration.mail.smtp import SmtpServer

MAILS = 8


def queue_mails(database_url: str, count: int) -> None:
    engine = create_engine(database_url)
    now = utcnow()
    with Session(engine) as session:
        session.add_all(OutboxMail(
            recipient=f"buerger{number}@example.org", subject=f"Mail {number}",
            body_text="Guten Tag", body_html="<p>Guten Tag</p>",
            message_id=f"<stop-{number}@servicekonto.invalid>", created_at=now,
            next_attempt_at=now, attempts=0) for number in range(count))
        session.commit()
    engine.dispose()


def outbox(database_url: str) -> list[OutboxMail]:
    engine = create_engine(database_url)
    with Session(engine) as session:
        mails = list(session.scalars(select(OutboxMail).order_by(OutboxMail.id)))
    engine.dispose()
    return mails


@contextmanager
def started(env: dict[str, str], log: Path, *arguments: str) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("ab") as output:
        process = subprocess.Popen([str(SERVICEKONTO), *arguments], env=env, stdout=output,
                                   stderr=subprocess.STDOUT)
    try:
        yield process
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_a_mail_sender_stopped_with_sigterm_sends_no_mail_twice_and_its_successor_the_rest(
        idp_env: dict[str, str], smtp_server: SmtpServer, tmp_path: Path) -> None:
    env = idp_env | {"IDP_MAIL_SERVER": "127.0.0.1", "IDP_MAIL_PORT": str(smtp_server.port)}
    database_url = env["IDP_DATABASE_URL"]
    upgrade_database(env)
    queue_mails(database_url, MAILS)
    smtp_server.inbox.delay = 0.3  # a slow relay: SIGTERM arrives in the middle of the batch
    log = tmp_path / "sender.log"

    with started(env, log, "mail", "send", "--forever", "--interval", "0.2") as sender:
        eventually(lambda: smtp_server.inbox.received or None)
        sender.send_signal(signal.SIGTERM)
        sender.wait(timeout=15)
    after_stop = outbox(database_url)
    received_before_restart = len(smtp_server.inbox.received)
    with started(env, tmp_path / "successor.log", "mail", "send") as successor:
        successor.wait(timeout=30)

    assert sender.returncode == 0, log.read_text(encoding="utf-8")
    assert "Mail(s) versendet" in log.read_text(encoding="utf-8")
    sent_before = [mail for mail in after_stop if mail.sent_at is not None]
    # Stopped mid-batch: what reached the relay is recorded as sent; the rest is free at once.
    assert 0 < len(sent_before) < MAILS
    assert len(sent_before) == received_before_restart
    assert all(mail.locked_until is None and mail.attempts == 0
               for mail in after_stop if mail.sent_at is None)
    assert successor.returncode == 0
    assert all(mail.sent_at is not None for mail in outbox(database_url))
    assert Counter(message["Message-ID"] for message in smtp_server.inbox.received) == Counter(
        f"<stop-{number}@servicekonto.invalid>" for number in range(MAILS))


def test_purge_forever_purges_in_rounds_and_ends_on_sigterm(
        idp_env: dict[str, str], tmp_path: Path) -> None:
    upgrade_database(idp_env)
    log = tmp_path / "purge.log"

    with started(idp_env, log, "purge", "--forever", "--interval", "0.2") as purge:
        eventually(lambda: log.read_text(encoding="utf-8").count("gelöscht") >= 2 or None)
        purge.send_signal(signal.SIGTERM)
        purge.wait(timeout=10)

    assert purge.returncode == 0, log.read_text(encoding="utf-8")
    assert "0 abgelaufene Registrierung(en), 0 Sitzung(en)" in log.read_text(encoding="utf-8")
