"""The outbox sender's rules: backoff, claiming, and what a failed delivery means.

The sender gets a fake transport and a fake clock; the outbox is a throwaway SQLite file.
"""

from __future__ import annotations

import smtplib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from idp.db import make_engine
from idp.mail.models import OutboxMail
from idp.mail.sender import OutboxSender, RetryPolicy, claim, record_sent
from idp.mail.transport import Deliver, classify

T0 = datetime(2026, 5, 4, 9, 0, tzinfo=UTC)
POLICY = RetryPolicy(base_seconds=30, max_seconds=3600, max_attempts=5)


# --- backoff -------------------------------------------------------------------------------

def test_delays_double_from_the_base_until_they_reach_the_cap() -> None:
    delays = [POLICY.delay(failures, rand=0.0).total_seconds() for failures in range(1, 10)]
    assert delays == [30, 60, 120, 240, 480, 960, 1920, 3600, 3600]


def test_jitter_shortens_a_delay_by_at_most_a_tenth_and_never_exceeds_the_cap() -> None:
    for failures in (1, 4, 50, 10_000):
        full = POLICY.delay(failures, rand=0.0)
        for rand in (0.0, 0.5, 0.999):
            delay = POLICY.delay(failures, rand=rand)
            assert full * 0.9 <= delay <= full
            assert delay <= timedelta(seconds=POLICY.max_seconds)


def test_the_sender_gives_up_only_at_the_configured_number_of_attempts() -> None:
    assert not POLICY.gives_up(4)
    assert POLICY.gives_up(5)


# --- what a failure means ------------------------------------------------------------------

def test_a_recipient_refused_for_good_is_given_up_at_once() -> None:
    error = smtplib.SMTPRecipientsRefused({"a@example.org": (550, b"no such user")})
    failure = classify(error)
    assert failure.permanent
    assert "550" in failure.reason


def test_a_busy_server_is_tried_again_over_the_same_connection() -> None:
    failure = classify(smtplib.SMTPRecipientsRefused({"a@example.org": (451, b"try later")}))
    assert not failure.permanent and not failure.connection_lost
    failure = classify(smtplib.SMTPDataError(452, b"mailbox full"))
    assert not failure.permanent and not failure.connection_lost


def test_an_unreachable_server_ends_the_batch_but_the_mail_is_tried_again() -> None:
    for error in (ConnectionRefusedError(111, "Connection refused"), TimeoutError("timed out"),
                  smtplib.SMTPServerDisconnected("Connection unexpectedly closed")):
        failure = classify(error)
        assert failure.connection_lost and not failure.permanent


def test_the_recorded_error_is_one_short_line() -> None:
    failure = classify(smtplib.SMTPDataError(554, b"rejected\r\nX-Injected: yes " + b"x" * 500))
    assert "\n" not in failure.reason and "\r" not in failure.reason
    assert len(failure.reason) <= 200


# --- fakes ---------------------------------------------------------------------------------

@dataclass
class FakeClock:
    now: datetime = T0

    def __call__(self) -> datetime:
        return self.now


@dataclass
class FakeTransport:
    """Records what it delivered; fails to connect while ``down``, or on chosen mails."""

    timeout_seconds: float = 10.0
    down: bool = False
    failures: dict[str, Exception] = field(default_factory=dict)
    delivered: list[str] = field(default_factory=list)
    connections: int = 0
    on_deliver: Callable[[OutboxMail], None] | None = None

    @contextmanager
    def open(self) -> Iterator[Deliver]:
        if self.down:
            raise ConnectionRefusedError(111, "Connection refused")
        self.connections += 1
        yield self._deliver

    def _deliver(self, mail: OutboxMail) -> None:
        if self.on_deliver is not None:
            self.on_deliver(mail)
        if error := self.failures.get(mail.recipient):
            raise error
        self.delivered.append(mail.recipient)


@pytest.fixture
def sessions(tmp_path: Path) -> sessionmaker[Session]:
    engine = make_engine(f"sqlite:///{tmp_path / 'outbox.sqlite3'}")
    OutboxMail.__table__.create(engine)  # type: ignore[attr-defined]
    return sessionmaker(engine, expire_on_commit=False)


def queue(sessions: sessionmaker[Session], *recipients: str, at: datetime = T0) -> None:
    with sessions.begin() as session:
        for number, recipient in enumerate(recipients):
            session.add(OutboxMail(
                recipient=recipient, subject="Betreff", body_text="Text", body_html="<p>Text</p>",
                message_id=f"<{recipient}.{number}.{at.timestamp()}@test>", created_at=at,
                next_attempt_at=at, attempts=0))


def mails(sessions: sessionmaker[Session]) -> dict[str, OutboxMail]:
    with sessions() as session:
        return {m.recipient: m for m in session.scalars(select(OutboxMail))}


def sender(sessions: sessionmaker[Session], transport: FakeTransport, clock: FakeClock,
           batch_size: int = 50) -> OutboxSender:
    return OutboxSender(new_session=sessions, transport=transport, policy=POLICY, clock=clock,
                        batch_size=batch_size, rand=lambda: 0.0)


# --- claiming ------------------------------------------------------------------------------

def test_a_claimed_mail_is_not_claimed_again_until_its_lease_ends(
        sessions: sessionmaker[Session]) -> None:
    queue(sessions, "a@example.org")
    lease = T0 + timedelta(minutes=5)
    with sessions() as first, sessions() as second:
        assert [m.recipient for m in claim(first, T0, lease, 10)] == ["a@example.org"]
        assert claim(second, T0 + timedelta(minutes=4), lease, 10) == []
        later = T0 + timedelta(minutes=6)
        assert len(claim(second, later, later + timedelta(minutes=5), 10)) == 1


def test_sent_given_up_and_not_yet_due_mails_are_not_claimed(
        sessions: sessionmaker[Session]) -> None:
    queue(sessions, "sent@example.org", "failed@example.org", "later@example.org",
          "due@example.org")
    with sessions.begin() as session:
        for mail in session.scalars(select(OutboxMail)):
            if mail.recipient == "sent@example.org":
                mail.sent_at = T0
            elif mail.recipient == "failed@example.org":
                mail.failed_at = T0
            elif mail.recipient == "later@example.org":
                mail.next_attempt_at = T0 + timedelta(seconds=1)
    with sessions() as session:
        claimed = claim(session, T0, T0 + timedelta(minutes=5), 10)
    assert [m.recipient for m in claimed] == ["due@example.org"]


def test_a_sender_whose_claim_was_taken_over_records_nothing(
        sessions: sessionmaker[Session]) -> None:
    queue(sessions, "a@example.org")
    first_lease = T0 + timedelta(minutes=5)
    later = T0 + timedelta(minutes=6)
    with sessions() as first, sessions() as second:
        [mine] = claim(first, T0, first_lease, 10)
        claim(second, later, later + timedelta(minutes=5), 10)
        record_sent(first, mine, first_lease, later)
    assert mails(sessions)["a@example.org"].sent_at is None


# --- sending -------------------------------------------------------------------------------

def test_due_mails_are_sent_over_one_connection_and_marked_sent(
        sessions: sessionmaker[Session]) -> None:
    queue(sessions, "a@example.org", "b@example.org", "c@example.org")
    transport, clock = FakeTransport(), FakeClock()
    report = sender(sessions, transport, clock).send_due()
    assert (report.sent, report.failed) == (3, 0)
    assert transport.connections == 1
    assert sorted(transport.delivered) == ["a@example.org", "b@example.org", "c@example.org"]
    assert all(m.sent_at == T0 and m.locked_until is None for m in mails(sessions).values())
    assert sender(sessions, transport, clock).send_due().sent == 0


def test_large_outboxes_are_sent_in_several_batches(sessions: sessionmaker[Session]) -> None:
    queue(sessions, *(f"{n}@example.org" for n in range(7)))
    transport = FakeTransport()
    report = sender(sessions, transport, FakeClock(), batch_size=3).send_due()
    assert report.sent == 7
    assert transport.connections == 3


def test_an_outage_postpones_every_mail_with_backoff_and_loses_none(
        sessions: sessionmaker[Session]) -> None:
    queue(sessions, "a@example.org", "b@example.org")
    transport, clock = FakeTransport(down=True), FakeClock()
    report = sender(sessions, transport, clock).send_due()
    assert (report.sent, report.failed) == (0, 2)
    for mail in mails(sessions).values():
        assert mail.attempts == 1 and mail.sent_at is None and mail.failed_at is None
        assert mail.next_attempt_at == T0 + timedelta(seconds=30)
        assert mail.last_error is not None and "nicht erreichbar" in mail.last_error

    clock.now = T0 + timedelta(seconds=29)
    assert sender(sessions, transport, clock).send_due().failed == 0  # not yet due again
    clock.now = T0 + timedelta(seconds=30)
    sender(sessions, transport, clock).send_due()
    assert {m.next_attempt_at for m in mails(sessions).values()} == {
        clock.now + timedelta(seconds=60)}

    transport.down = False
    clock.now += timedelta(seconds=60)
    assert sender(sessions, transport, clock).send_due().sent == 2
    assert sorted(transport.delivered) == ["a@example.org", "b@example.org"]


def test_a_mail_is_given_up_after_the_last_attempt(sessions: sessionmaker[Session]) -> None:
    queue(sessions, "a@example.org")
    transport, clock = FakeTransport(down=True), FakeClock()
    for _ in range(POLICY.max_attempts):
        sender(sessions, transport, clock).send_due()
        clock.now += timedelta(seconds=POLICY.max_seconds)
    mail = mails(sessions)["a@example.org"]
    assert mail.attempts == POLICY.max_attempts
    assert mail.failed_at is not None
    transport.down = False
    assert sender(sessions, transport, clock).send_due().sent == 0


def test_a_refused_recipient_is_given_up_while_the_others_are_sent(
        sessions: sessionmaker[Session]) -> None:
    queue(sessions, "a@example.org", "nobody@example.org", "c@example.org")
    transport = FakeTransport(failures={"nobody@example.org": smtplib.SMTPRecipientsRefused(
        {"nobody@example.org": (550, b"5.1.1 unknown user")})})
    report = sender(sessions, transport, FakeClock()).send_due()
    assert (report.sent, report.failed, report.given_up) == (2, 1, 1)
    refused = mails(sessions)["nobody@example.org"]
    assert refused.failed_at == T0 and refused.attempts == 1
    assert refused.last_error is not None and "550" in refused.last_error


def test_a_lost_connection_fails_the_current_mail_and_gives_the_rest_back(
        sessions: sessionmaker[Session]) -> None:
    queue(sessions, "a@example.org", "b@example.org", "c@example.org")
    transport = FakeTransport(failures={
        "b@example.org": smtplib.SMTPServerDisconnected("Connection unexpectedly closed")})
    report = sender(sessions, transport, FakeClock()).send_due()
    assert (report.sent, report.failed, report.released) == (1, 1, 1)
    outbox = mails(sessions)
    assert outbox["a@example.org"].sent_at is not None
    assert outbox["b@example.org"].attempts == 1
    assert outbox["b@example.org"].next_attempt_at > T0
    # The mail never tried is due again at once, without an attempt counted.
    assert outbox["c@example.org"].attempts == 0
    assert outbox["c@example.org"].locked_until is None
    assert outbox["c@example.org"].next_attempt_at == T0


def test_the_sender_starts_no_send_its_claim_may_not_outlast(
        sessions: sessionmaker[Session]) -> None:
    queue(sessions, "a@example.org", "b@example.org")
    clock = FakeClock()
    transport = FakeTransport()
    slow = sender(sessions, transport, clock)

    def hang(_mail: OutboxMail) -> None:
        clock.now += slow.lease  # the first send takes as long as the whole claim

    transport.on_deliver = hang
    report = slow.send_due()
    assert (report.sent, report.released) == (1, 1)
    assert transport.delivered == ["a@example.org"]
    assert mails(sessions)["b@example.org"].locked_until is None
