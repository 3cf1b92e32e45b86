"""The outbox sender: delivers due mails through Flask-Mail, retrying with backoff.

A sender first *claims* a batch of due mails (it holds them until ``locked_until``), then sends
them over one SMTP connection and records each result at once. Two senders never claim the same
mail, and a claim is only used while it is certainly still held, so a mail is never sent twice by
us. (A delivery cut off after the server accepted it may be retried; the stable Message-ID lets the
receiving side drop that rare duplicate.) An SMTP outage only postpones mails: nothing is lost.

Before delivering, a run answers the waiting "vergessen" requests (:mod:`idp.accounts.forgotten`):
their mails are made here, out of any request, so that the forms answer in the same time whether
or not an account exists; they go out in the same run.

Runs in an app context, never in a request.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable, Sequence
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, cast

from flask import Flask
from sqlalchemy import ColumnElement, CursorResult, Update, and_, or_, select, update
from sqlalchemy.orm import Session

from idp.accounts.forgotten import answer_waiting_requests
from idp.clock import utcnow
from idp.config import Config
from idp.container import app_parts
from idp.db import Database
from idp.mail.models import OutboxMail
from idp.mail.transport import (
    DeliveryFailure,
    Transport,
    classify,
    transport_for,
)

log = logging.getLogger(__name__)

BATCH_SIZE = 50
# SQLite: how often a sender looks again after others took all the mails it saw.
MAX_CLAIM_ROUNDS = 20
# A claim lasts this long at least; a send is only started while the claim has time for it.
MIN_LEASE_SECONDS = 300.0
# One delivery is a handful of SMTP round trips (MAIL, RCPT, DATA, data, RSET), each of which may
# take up to the timeout: the claim must outlast that many timeouts when a send starts.
ROUND_TRIPS_PER_MAIL = 6

Clock = Callable[[], datetime]


# --- when to try again ---------------------------------------------------------------------

@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff for failed deliveries, and when to give up."""

    base_seconds: float
    max_seconds: float
    max_attempts: int
    # Up to this share of a delay is taken off at random, so that mails which failed together
    # (an outage) are not all retried in the same second.
    jitter: float = 0.1

    @classmethod
    def from_config(cls, config: Config) -> RetryPolicy:
        return cls(config.mail_retry_base_seconds, config.mail_retry_max_seconds,
                   config.mail_max_attempts)

    def delay(self, failures: int, rand: float) -> timedelta:
        """Wait after the ``failures``-th failure: base·2^(failures−1), capped; never above the cap.

        ``rand`` is a number in [0, 1) that picks the jitter.
        """
        exponent = min(max(failures - 1, 0), 60)  # 2**60 seconds is far past any cap
        seconds = min(self.max_seconds, self.base_seconds * 2 ** exponent)
        return timedelta(seconds=seconds * (1 - self.jitter * rand))

    def gives_up(self, attempts: int) -> bool:
        return attempts >= self.max_attempts


# --- claiming and recording ----------------------------------------------------------------

def _due(now: datetime) -> ColumnElement[bool]:
    return and_(OutboxMail.sent_at.is_(None), OutboxMail.failed_at.is_(None),
                OutboxMail.next_attempt_at <= now, _unclaimed(now))


def _unclaimed(now: datetime) -> ColumnElement[bool]:
    return or_(OutboxMail.locked_until.is_(None), OutboxMail.locked_until < now)


def claim(session: Session, now: datetime, lease_until: datetime, limit: int) -> list[OutboxMail]:
    """Claim up to ``limit`` due mails until ``lease_until`` and commit; oldest due first.

    No other sender can claim them before ``lease_until``. PostgreSQL skips rows another sender is
    claiming right now; SQLite (one writer at a time) claims each row with a conditional update.
    """
    candidates = (select(OutboxMail.id).where(_due(now))
                  .order_by(OutboxMail.next_attempt_at, OutboxMail.id).limit(limit))
    take = update(OutboxMail).values(locked_until=lease_until).execution_options(
        synchronize_session=False)
    if session.get_bind().dialect.name == "postgresql":
        ids = list(session.scalars(candidates.with_for_update(skip_locked=True)))
        if ids:
            session.execute(take.where(OutboxMail.id.in_(ids)))
    else:
        ids = []
        # Another sender may take every candidate we saw; then look again instead of stopping
        # as if nothing were due (bounded: each round someone else made progress).
        for _ in range(MAX_CLAIM_ROUNDS):
            found = list(session.scalars(candidates))
            session.commit()  # end the read, so the writes below wait for the lock, not fail
            ids = [mail_id for mail_id in found if _rows_changed(
                session, take.where(OutboxMail.id == mail_id, _due(now))) == 1]
            if ids or not found:
                break
    session.commit()
    if not ids:
        return []
    mails = list(session.scalars(select(OutboxMail).where(OutboxMail.id.in_(ids))
                                 .order_by(OutboxMail.next_attempt_at, OutboxMail.id)))
    session.commit()  # hold no transaction while sending (SQLite: no read lock kept open)
    session.expunge_all()
    return mails


def _rows_changed(session: Session, statement: Update) -> int:
    result = cast(CursorResult[Any], session.execute(statement))
    return result.rowcount


def _change(mail: OutboxMail, lease_until: datetime, **values: object) -> Update:
    """An update of ``mail`` that applies only while our claim on it stands."""
    return (update(OutboxMail).where(_held(mail, lease_until)).values(**values)
            .execution_options(synchronize_session=False))


def _held(mail: OutboxMail, lease_until: datetime) -> ColumnElement[bool]:
    """Only while our claim stands do we record a result (the lease time is our claim's mark)."""
    return and_(OutboxMail.id == mail.id, OutboxMail.locked_until == lease_until)


def record_sent(session: Session, mail: OutboxMail, lease_until: datetime, now: datetime) -> None:
    changed = _rows_changed(session, _change(mail, lease_until, sent_at=now, locked_until=None,
                                             attempts=OutboxMail.attempts + 1, last_error=None))
    session.commit()
    if changed != 1:
        log.warning("outbox mail %s: sent, but the claim had been lost", mail.id)


def record_failure(session: Session, mail: OutboxMail, lease_until: datetime, now: datetime,
                   failure: DeliveryFailure, policy: RetryPolicy, rand: float) -> bool:
    """Count a failed attempt and schedule the next one; return True if we give up on it."""
    attempts = mail.attempts + 1
    gives_up = failure.permanent or policy.gives_up(attempts)
    values: dict[str, object] = {"attempts": attempts, "last_error": failure.reason,
                                 "locked_until": None}
    if gives_up:
        values["failed_at"] = now
    else:
        values["next_attempt_at"] = now + policy.delay(attempts, rand)
    session.execute(_change(mail, lease_until, **values))
    session.commit()
    return gives_up


def release(session: Session, mails: Sequence[OutboxMail], lease_until: datetime) -> None:
    """Give unsent mails back at once (no attempt counted): the next run takes them."""
    for mail in mails:
        session.execute(_change(mail, lease_until, locked_until=None))
    session.commit()


# --- one run -------------------------------------------------------------------------------

@dataclass
class SendReport:
    """What one run did: mails sent, failed attempts (of which given up), mails released."""

    sent: int = 0
    failed: int = 0
    given_up: int = 0
    released: int = 0
    errors: list[str] = field(default_factory=list)

    def add(self, other: SendReport) -> None:
        self.sent += other.sent
        self.failed += other.failed
        self.given_up += other.given_up
        self.released += other.released
        self.errors.extend(other.errors)


@dataclass
class OutboxSender:
    """Sends due mails in batches; its collaborators are passed in (fakes in unit tests)."""

    new_session: Callable[[], Session]
    transport: Transport
    policy: RetryPolicy
    clock: Clock
    batch_size: int = BATCH_SIZE
    rand: Callable[[], float] = random.random
    # Asked before each mail: once it says yes (SIGTERM), the rest of the batch is given back
    # and the run ends, so a stop never cuts a delivery in two.
    stopping: Callable[[], bool] = lambda: False

    @property
    def lease(self) -> timedelta:
        return timedelta(seconds=max(MIN_LEASE_SECONDS, 4 * self._margin.total_seconds()))

    @property
    def _margin(self) -> timedelta:
        return timedelta(seconds=ROUND_TRIPS_PER_MAIL * self.transport.timeout_seconds)

    def send_due(self) -> SendReport:
        """Send batches until nothing is due or the SMTP server stops answering."""
        report = SendReport()
        while True:
            batch, more = self.send_batch()
            report.add(batch)
            if not more:
                return report

    def send_batch(self) -> tuple[SendReport, bool]:
        """Claim and send one batch; the flag says whether to go on with the next batch."""
        report = SendReport()
        session = self.new_session()
        try:
            now = self.clock()
            lease_until = now + self.lease
            mails = claim(session, now, lease_until, self.batch_size)
            if not mails:
                return report, False
            connected = self._deliver(session, mails, lease_until, report)
        finally:
            session.close()
        # A full batch means more may be due; after connection trouble, wait for the next run.
        return report, connected and len(mails) == self.batch_size

    def _deliver(self, session: Session, mails: list[OutboxMail], lease_until: datetime,
                 report: SendReport) -> bool:
        """Send claimed mails over one connection; False if the connection failed or ran out."""
        try:
            channel = self.transport.open()
            deliver = channel.__enter__()
        except Exception as error:
            # No connection: every claimed mail had a failed attempt and waits for the next one.
            failure = classify(error)
            log.warning("outbox: cannot open mail connection: %s", failure.reason)
            for mail in mails:
                self._failed(session, mail, lease_until, failure, report)
            return False
        try:
            for index, mail in enumerate(mails):
                # Start a send only while our claim outlasts it; otherwise another sender may
                # claim the mail meanwhile and send it a second time.
                if self.clock() + self._margin >= lease_until or self.stopping():
                    self._release(session, mails[index:], lease_until, report)
                    return False
                try:
                    deliver(mail)
                except Exception as error:
                    failure = classify(error)
                    self._failed(session, mail, lease_until, failure, report)
                    if failure.connection_lost:
                        self._release(session, mails[index + 1:], lease_until, report)
                        return False
                else:
                    record_sent(session, mail, lease_until, self.clock())
                    report.sent += 1
            return True
        finally:
            with suppress(Exception):  # closing a broken connection must not hide the results
                channel.__exit__(None, None, None)

    def _failed(self, session: Session, mail: OutboxMail, lease_until: datetime,
                failure: DeliveryFailure, report: SendReport) -> None:
        gave_up = record_failure(session, mail, lease_until, self.clock(), failure, self.policy,
                                 self.rand())
        report.failed += 1
        report.given_up += gave_up
        report.errors.append(failure.reason)
        log.warning("outbox mail %s (%s): attempt %d failed%s: %s", mail.id, mail.message_id,
                    mail.attempts + 1, ", giving up" if gave_up else "", failure.reason)

    def _release(self, session: Session, mails: Sequence[OutboxMail], lease_until: datetime,
                 report: SendReport) -> None:
        if mails:
            release(session, mails, lease_until)
            report.released += len(mails)


def send_due(app: Flask, now: datetime | None = None, *, transport: Transport | None = None,
             batch_size: int = BATCH_SIZE,
             stopping: Callable[[], bool] = lambda: False) -> SendReport:
    """Deliver every mail of ``app``'s outbox that is due at ``now`` (default: the current time).

    ``now`` moves the sender's clock (tests jump past a backoff); time runs on from there.
    The waiting "vergessen" requests are answered first, so their mails are among those sent.
    """
    with app.app_context():
        config: Config = app.config["SERVICEKONTO"]
        bound = Database.bound(app)
        start, started = now or utcnow(), time.monotonic()
        services = app_parts(app).services
        answer_waiting_requests(bound.sessionmaker,
                                lambda session: services.accounts(session, start))
        sender = OutboxSender(
            new_session=bound.sessionmaker, transport=transport or transport_for(config),
            policy=RetryPolicy.from_config(config), batch_size=batch_size,
            clock=lambda: start + timedelta(seconds=time.monotonic() - started),
            stopping=stopping)
        return sender.send_due()


def run_sender(app: Flask, forever: bool = False, interval: float = 2.0,
               stop: threading.Event | None = None) -> tuple[int, int]:
    """Send due mails once, or every ``interval`` seconds until ``stop`` is set or Ctrl-C.

    Returns (mails sent, failed attempts). Running for ever, an error (the database is away) is
    logged and the next round tried; it does not end the sender.
    """
    stop = stop or threading.Event()
    total = SendReport()
    try:
        if not forever:
            total.add(send_due(app))
            return total.sent, total.failed
        while not stop.is_set():
            try:
                total.add(send_due(app, stopping=stop.is_set))
            except Exception:
                log.exception("outbox: sending failed; trying again in %.0f s", interval)
            total.errors.clear()  # a long-running sender keeps counts, not every message
            stop.wait(interval)
    except KeyboardInterrupt:
        pass
    return total.sent, total.failed


def start_background_sender(app: Flask, interval: float = 2.0,
                            stop: threading.Event | None = None) -> threading.Thread:
    """Start a daemon thread sending due mails every ``interval`` seconds (``servicekonto run``)."""
    thread = threading.Thread(target=run_sender, args=(app,),
                              kwargs={"forever": True, "interval": interval, "stop": stop},
                              name="servicekonto-mail-sender", daemon=True)
    thread.start()
    return thread
