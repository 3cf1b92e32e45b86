"""The self-service rules without Flask: a throwaway SQLite file, a fixed clock, no throttle state.

What the pages cannot easily show is checked here: the exact expiry, links voided by other
changes, and a unique violation at commit that must end as a form error, not a crash.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from idp.accounts import forgotten, selfservice, tokens
from idp.accounts.context import AccountContext, AccountSettings, FormErrors
from idp.accounts.identity import check_personal_data, email_key, username_key
from idp.accounts.models import AccountStatus, Citizen, ForgottenRequest, Salutation
from idp.accounts.passwords import PasswordHasher, PasswordPolicy
from idp.accounts.tokens import LinkState
from idp.config import PROJECT_ROOT, Argon2Parameters
from idp.db import Base, make_engine
from idp.german import duration
from idp.links import Links
from idp.mail.models import OutboxMail
from idp.mail.outbox import MailTemplates
from idp.models import import_all_models
from idp.security.throttle import Throttle, ThrottleRule

T0 = datetime(2026, 5, 4, 9, 0, tzinfo=UTC)
PASSWORD = "Kräftig-Grün 42"
NEW_PASSWORD = "Wolken-Meer 731"
HASHER = PasswordHasher(Argon2Parameters(time_cost=1, memory_cost_kib=1024, parallelism=1))
POLICY = PasswordPolicy.load(PROJECT_ROOT / "policies" / "password.yaml")
TEMPLATES = MailTemplates(PROJECT_ROOT / "templates", "example.org")

import_all_models()


class MemoryThrottleStore:
    """Counters in a dict: enough to see that a failure is counted and a success clears."""

    def __init__(self) -> None:
        self.failures: dict[tuple[str, str], int] = {}

    def blocked(self, rule: ThrottleRule, key: str, now: datetime) -> bool:
        return self.failures.get((rule.scope, key), 0) >= rule.free_failures

    def record(self, rule: ThrottleRule, key: str, now: datetime, counted: bool) -> bool:
        if counted:
            self.failures[(rule.scope, key)] = self.failures.get((rule.scope, key), 0) + 1
        return False

    def clear(self, rule: ThrottleRule, key: str) -> None:
        self.failures.pop((rule.scope, key), None)

    def commit(self) -> None:
        pass


@pytest.fixture
def sessions(tmp_path: Path) -> Iterator[sessionmaker[Session]]:
    engine = make_engine(f"sqlite:///{tmp_path / 'selfservice.sqlite3'}")
    Base.metadata.create_all(engine)
    yield sessionmaker(engine, expire_on_commit=False)
    engine.dispose()


@pytest.fixture
def session(sessions: sessionmaker[Session]) -> Iterator[Session]:
    with sessions() as db_session:
        yield db_session


@pytest.fixture
def store() -> MemoryThrottleStore:
    return MemoryThrottleStore()


def context(session: Session, now: datetime = T0) -> AccountContext:
    return AccountContext(session=session, now=now, hasher=HASHER, policy=POLICY,
                          templates=TEMPLATES, links=Links("https://konto.example.org"),
                          settings=AccountSettings())


def add_citizen(session: Session, username: str = "ErikaM",
                email: str = "erika@example.org", active: bool = True) -> Citizen:
    citizen = Citizen(
        username=username, username_key=username_key(username), email=email,
        email_key=email_key(email), salutation=Salutation.FRAU, given_name="Erika",
        surname="Mustermann", birth_name=None, password_hash=HASHER.hash(PASSWORD),
        status=AccountStatus.ACTIVE if active else AccountStatus.PENDING, created_at=T0,
        activated_at=T0 if active else None, password_changed_at=T0,
        privacy_accepted_at=T0, privacy_version="test")
    session.add(citizen)
    session.commit()
    return citizen


def holder(citizen: Citizen, store: MemoryThrottleStore) -> selfservice.AccountHolder:
    return selfservice.AccountHolder(citizen=citizen, throttle=Throttle(store),
                                     address="192.0.2.1", session_id=None)


def answered(session: Session, now: datetime = T0) -> None:
    """The mail sender's turn: it answers the waiting "vergessen" requests."""
    forgotten.answer_waiting_requests(sessionmaker(session.get_bind(), expire_on_commit=False),
                                      lambda own: context(own, now))


def ask_for_reset(session: Session, username: str = "ErikaM") -> None:
    forgotten.request_password_reset(context(session), username)
    answered(session)


def ask_for_username(session: Session, email: str) -> None:
    forgotten.send_username_reminder(context(session), email)
    answered(session)


def mails(session: Session) -> list[OutboxMail]:
    return list(session.scalars(select(OutboxMail).order_by(OutboxMail.id)))


def token_of(mail: OutboxMail) -> str:
    link = next(word for word in mail.body_text.split() if word.startswith("https://"))
    return link.rsplit("/", 1)[1]


def test_reset_link_is_valid_for_exactly_the_configured_time(session: Session) -> None:
    add_citizen(session)
    ask_for_reset(session)
    token = token_of(mails(session)[-1])
    valid = AccountSettings().password_reset_valid
    assert "60 Minuten" in mails(session)[-1].body_text
    almost = context(session, T0 + valid - timedelta(seconds=1))
    assert selfservice.password_reset_state(almost, token) is LinkState.USABLE
    assert selfservice.password_reset_state(context(session, T0 + valid), token) \
        is LinkState.EXPIRED


def test_reset_through_an_expired_link_changes_nothing(session: Session,
                                                       store: MemoryThrottleStore) -> None:
    citizen = add_citizen(session)
    ask_for_reset(session)
    token = token_of(mails(session)[-1])
    late = context(session, T0 + timedelta(hours=2))
    outcome = selfservice.reset_password(late, Throttle(store), token, NEW_PASSWORD, NEW_PASSWORD)
    assert outcome.state is LinkState.EXPIRED
    session.refresh(citizen)
    assert HASHER.verify(citizen.password_hash, PASSWORD)


def test_rejected_new_password_leaves_the_link_usable(session: Session,
                                                      store: MemoryThrottleStore) -> None:
    add_citizen(session)
    ctx = context(session)
    ask_for_reset(session)
    token = token_of(mails(session)[-1])
    with pytest.raises(FormErrors) as error:
        selfservice.reset_password(ctx, Throttle(store), token, "ErikaM-2026!", "anders")
    assert "Das Passwort darf den Benutzernamen nicht enthalten." in error.value.errors["password"]
    assert error.value.errors["password_confirm"] == ["Die beiden Passwörter stimmen nicht "
                                                      "überein."]
    assert selfservice.password_reset_state(ctx, token) is LinkState.USABLE


def test_reset_clears_the_throttle_and_records_the_change(session: Session,
                                                          store: MemoryThrottleStore) -> None:
    citizen = add_citizen(session)
    store.failures[("account", "erikam")] = 9
    ask_for_reset(session)
    token = token_of(mails(session)[-1])
    later = T0 + timedelta(minutes=5)
    outcome = selfservice.reset_password(context(session, later), Throttle(store), token,
                                         NEW_PASSWORD, NEW_PASSWORD)
    assert outcome.done and outcome.citizen_id == citizen.id
    assert ("account", "erikam") not in store.failures
    session.refresh(citizen)
    assert citizen.password_changed_at == later
    assert HASHER.verify(citizen.password_hash, NEW_PASSWORD)


def test_reset_drops_an_e_mail_change_someone_else_started(session: Session,
                                                           store: MemoryThrottleStore) -> None:
    citizen = add_citizen(session)
    ctx = context(session)
    selfservice.request_email_change(ctx, holder(citizen, store), "dieb@example.net", PASSWORD)
    change = token_of(mails(session)[-1])
    ask_for_reset(session)
    selfservice.reset_password(ctx, Throttle(store), token_of(mails(session)[-1]),
                               NEW_PASSWORD, NEW_PASSWORD)
    assert selfservice.email_change_state(ctx, change).state is LinkState.REPLACED
    assert selfservice.pending_email_change(ctx, citizen) is None


def test_password_change_voids_reset_links(session: Session, store: MemoryThrottleStore) -> None:
    citizen = add_citizen(session)
    ctx = context(session)
    ask_for_reset(session)
    reset = token_of(mails(session)[-1])
    selfservice.change_password(ctx, holder(citizen, store), {
        "current_password": PASSWORD, "password": NEW_PASSWORD,
        "password_confirm": NEW_PASSWORD})
    assert selfservice.password_reset_state(ctx, reset) is LinkState.REPLACED
    assert mails(session)[-1].subject == "Servicekonto: Ihr Passwort wurde geändert"


def test_wrong_current_password_counts_as_a_failed_login(session: Session,
                                                         store: MemoryThrottleStore) -> None:
    citizen = add_citizen(session)
    with pytest.raises(FormErrors):
        selfservice.delete_account(context(session), holder(citizen, store), "Falsch-123!")
    assert store.failures[("account", "erikam")] == 1
    assert session.get(Citizen, citizen.id) is not None


def test_address_taken_at_the_last_moment_ends_as_a_form_error(
        session: Session, store: MemoryThrottleStore, monkeypatch: pytest.MonkeyPatch) -> None:
    citizen = add_citizen(session)
    ctx = context(session)
    selfservice.request_email_change(ctx, holder(citizen, store), "neu@example.org", PASSWORD)
    token = token_of(mails(session)[-1])
    use_up = tokens.use_up

    def another_account_registers_first(*args: Any) -> bool:
        # Between the check and the commit, another account gets the address.
        session.add(Citizen(
            username="MaxM", username_key="maxm", email="neu@example.org",
            email_key="neu@example.org", salutation=Salutation.HERR, given_name="Max",
            surname="Muster", password_hash="x", status=AccountStatus.ACTIVE, created_at=T0,
            password_changed_at=T0, privacy_accepted_at=T0, privacy_version="test"))
        return use_up(*args)

    monkeypatch.setattr(tokens, "use_up", another_account_registers_first)
    with pytest.raises(FormErrors) as error:
        selfservice.confirm_email_change(ctx, token)
    assert error.value.errors["email"] == [selfservice.EMAIL_TAKEN]
    session.refresh(citizen)
    assert citizen.email == "erika@example.org"
    monkeypatch.undo()
    assert selfservice.email_change_state(ctx, token).state is LinkState.USABLE


def test_expired_registration_gives_its_address_up_to_an_e_mail_change(
        session: Session, store: MemoryThrottleStore) -> None:
    citizen = add_citizen(session)
    add_citizen(session, "Verfallen", "neu@example.org", active=False)  # no usable link
    ctx = context(session)
    selfservice.request_email_change(ctx, holder(citizen, store), "neu@example.org", PASSWORD)
    outcome = selfservice.confirm_email_change(ctx, token_of(mails(session)[-1]))
    assert outcome.done
    assert session.scalar(select(Citizen.username).where(
        Citizen.email_key == "neu@example.org")) == "ErikaM"


def test_deleting_keeps_the_mails_of_another_account(session: Session,
                                                     store: MemoryThrottleStore) -> None:
    erika = add_citizen(session)
    add_citizen(session, "MaxM", "max@example.org")
    ctx = context(session)
    ask_for_username(session, "max@example.org")
    selfservice.request_email_change(ctx, holder(erika, store), "max@example.org", PASSWORD)
    selfservice.request_email_change(ctx, holder(erika, store), "frei@example.org", PASSWORD)
    selfservice.delete_account(ctx, holder(erika, store), PASSWORD)
    left = mails(session)
    assert [m.recipient for m in left] == ["max@example.org", "max@example.org"]


def test_username_goes_to_the_stored_address_not_the_typed_one(session: Session) -> None:
    add_citizen(session, email="Erika.M@example.org")
    ask_for_username(session, "erika.m@EXAMPLE.ORG")
    [mail] = mails(session)
    assert mail.recipient == "Erika.M@example.org"
    assert "ErikaM" in mail.body_text


def test_personal_data_is_normalised_as_at_registration() -> None:
    values = check_personal_data({
        "salutation": "herr", "given_name": " Ｍａｘ  Peter ", "surname": "Müller",
        "birth_name": ""})
    assert values == {"salutation": "herr", "given_name": "Ｍａｘ Peter", "surname": "Müller",
                      "birth_name": ""}
    with pytest.raises(FormErrors) as error:
        check_personal_data({"given_name": "1234", "surname": "\u202eevil"})
    assert set(error.value.errors) == {"given_name", "surname"}


@pytest.mark.parametrize(("span", "said"), [
    (timedelta(hours=24), "24 Stunden"), (timedelta(hours=2), "2 Stunden"),
    (timedelta(hours=1), "60 Minuten"), (timedelta(minutes=90), "90 Minuten"),
    (timedelta(minutes=1), "1 Minute")])
def test_a_links_validity_is_said_in_german_with_its_unit(span: timedelta, said: str) -> None:
    assert duration(span) == said


def test_the_email_change_mail_names_the_configured_validity_in_good_german(
        session: Session, store: MemoryThrottleStore) -> None:
    citizen = add_citizen(session)
    ctx = context(session)
    ctx.settings = AccountSettings(email_change_valid=timedelta(hours=1))

    selfservice.request_email_change(ctx, holder(citizen, store), "neu@example.org", PASSWORD)

    [mail] = [mail for mail in mails(session) if mail.recipient == "neu@example.org"]
    assert "Der Link gilt nur 60 Minuten" in mail.body_text
    assert "Der Link gilt nur 60 Minuten" in mail.body_html


def test_a_request_that_cannot_be_answered_is_dropped_without_logging_what_was_typed(
        session: Session, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    add_citizen(session)

    def broken(_ctx: AccountContext, key: str) -> None:
        raise RuntimeError(f"kaputt bei {key}")  # an error whose text quotes the input

    monkeypatch.setattr(forgotten, "_mail_username", broken)
    forgotten.send_username_reminder(context(session), "erika@example.org")
    forgotten.request_password_reset(context(session), "ErikaM")
    answered(session)

    # The reset link still went out; the broken request is gone, and the log names neither.
    assert [mail.subject for mail in mails(session)] == ["Servicekonto: Neues Passwort vergeben"]
    assert session.scalar(select(ForgottenRequest.id)) is None
    assert "could not be answered (RuntimeError)" in caplog.text
    assert "erika@example.org" not in caplog.text
