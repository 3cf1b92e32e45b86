"""Kassenzeichen and Bestätigungscodes at the mags portal, as a service on a real database."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from idp.db import make_engine
from sp_client import kassenzeichen as service
from sp_client.models import ConfirmationCode, PortalBase, PostalLetter
from sp_client.register import seed_register

SECRET = "s" * 40
NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
ERIKA = service.Citizen(key="bpk2-erika", given_name="Erika", surname="Mustermann")
CODE_IN_LETTER = re.compile(r"lautet:\s+([A-Z0-9]{4} [A-Z0-9]{4} [A-Z0-9]{4})")


@pytest.fixture
def session(portal_database_url: str) -> Iterator[Session]:
    engine = make_engine(portal_database_url)
    PortalBase.metadata.create_all(engine)
    with Session(engine, expire_on_commit=False) as db_session:
        seed_register(db_session)
        yield db_session
    engine.dispose()


def request(session: Session, kassenzeichen: str = "1500.0001.0001",
            citizen: service.Citizen = ERIKA, now: datetime = NOW) -> str:
    """Ask for a code; the code as printed in the newest letter."""
    service.request_code(session, citizen, kassenzeichen, SECRET, "mags Bürgerportal",
                         "02161 49 10 10", now)
    letter = service.letters(session)[0]
    match = CODE_IN_LETTER.search(letter.body)
    assert match, letter.body
    return match.group(1)


def confirm(session: Session, code: str, citizen: service.Citizen = ERIKA,
            now: datetime = NOW) -> service.Confirmed:
    return service.confirm_code(session, citizen, code, SECRET, now)


def refusal(call: object) -> service.KassenzeichenError:
    assert callable(call)
    with pytest.raises(service.KassenzeichenError) as caught:
        call()
    return caught.value


@pytest.mark.parametrize("typed, stored", [
    ("1500.0001.0001", "1500.0001.0001"), ("150000010001", "1500.0001.0001"),
    (" 1500.0001.0001 ", "1500.0001.0001"), ("1500 0001 0001", "1500.0001.0001")])
def test_a_kassenzeichen_may_be_typed_with_or_without_dots(typed: str, stored: str) -> None:
    assert service.normalised_kassenzeichen(typed) == stored


@pytest.mark.parametrize("typed", ["", "1500.0001", "1500-0001-0001", "15OO.0001.0001",
                                   "1500.0001.00011", "١٥٠٠.٠٠٠١.٠٠٠١"])
def test_a_kassenzeichen_in_another_format_is_refused_with_the_format_named(typed: str) -> None:
    error = refusal(lambda: service.normalised_kassenzeichen(typed))
    assert "1500.0000.0000" in error.message


def test_asking_for_a_code_writes_a_letter_to_the_owner(session: Session) -> None:
    code = request(session)
    letter = service.letters(session)[0]
    assert letter.recipient == "Erika Mustermann"
    assert "Bismarckstraße 12" in letter.address and "41061 Mönchengladbach" in letter.address
    assert "1500.0001.0001" in letter.subject
    assert "01.04.2026" in letter.body  # valid 30 days
    stored = session.scalars(select(ConfirmationCode.code_hash)).one()
    assert code.replace(" ", "") not in stored and len(stored) == 64


def test_an_unknown_kassenzeichen_gets_no_letter(session: Session) -> None:
    error = refusal(lambda: request(session, "1500.9999.9999"))
    assert error.refused is service.Refused.UNKNOWN
    assert session.scalar(select(func.count()).select_from(PostalLetter)) == 0


def test_a_second_letter_is_not_sent_while_the_first_code_is_open(session: Session) -> None:
    request(session)
    assert refusal(lambda: request(session)).refused is service.Refused.LETTER_PENDING
    assert session.scalar(select(func.count()).select_from(PostalLetter)) == 1


def test_the_right_code_assigns_the_kassenzeichen_and_the_owners_others(
        session: Session) -> None:
    confirmed = confirm(session, request(session).lower())
    assert confirmed.kassenzeichen == "1500.0001.0001"
    assert confirmed.automatic == ("1500.0001.0002", "1500.0001.0003")
    assert [r.kassenzeichen for r in service.assigned(session, ERIKA.key)] == [
        "1500.0001.0001", "1500.0001.0002", "1500.0001.0003"]


def test_owner_names_are_matched_regardless_of_case_and_spacing(session: Session) -> None:
    erika = service.Citizen(key="bpk2-2", given_name="  erika ", surname="MUSTERMANN")
    assert len(confirm(session, request(session, citizen=erika), erika).automatic) == 2


def test_a_representative_gets_only_the_confirmed_kassenzeichen(session: Session) -> None:
    # Erika confirms Max's object (she is his Zustellvertreterin): nothing else comes along.
    confirmed = confirm(session, request(session, "1500.0002.0001"))
    assert confirmed.automatic == ()
    assert [r.kassenzeichen for r in service.assigned(session, ERIKA.key)] == ["1500.0002.0001"]


def test_a_code_can_be_used_only_once(session: Session) -> None:
    code = request(session)
    confirm(session, code)
    assert refusal(lambda: confirm(session, code)).refused is service.Refused.CODE_USED


def test_an_assigned_kassenzeichen_cannot_be_asked_for_again(session: Session) -> None:
    confirm(session, request(session))
    assert refusal(lambda: request(session, "1500.0001.0002")).refused is \
        service.Refused.ALREADY_ASSIGNED


def test_a_wrong_code_counts_and_tells_the_attempts_left(session: Session) -> None:
    request(session)
    error = refusal(lambda: confirm(session, "AAAA AAAA AAAA"))
    assert error.refused is service.Refused.CODE_WRONG
    assert error.message.endswith("Sie haben noch 4 Versuche.")
    for left in (3, 2, 1):
        assert f"noch {left} " in refusal(lambda: confirm(session, "AAAA-AAAA-AAAA")).message


def test_after_five_wrong_codes_the_right_one_is_void_too(session: Session) -> None:
    code = request(session)
    for _ in range(4):
        refusal(lambda: confirm(session, "falsch"))
    assert refusal(lambda: confirm(session, "falsch")).refused is service.Refused.CODE_VOID
    assert refusal(lambda: confirm(session, code)).refused is service.Refused.CODE_VOID
    assert service.assigned(session, ERIKA.key) == []
    # A new letter may be asked for now, and its code works.
    assert confirm(session, request(session)).kassenzeichen == "1500.0001.0001"


def test_an_expired_code_is_refused(session: Session) -> None:
    code = request(session)
    later = NOW + service.CODE_VALIDITY + timedelta(minutes=1)
    assert refusal(lambda: confirm(session, code, now=later)).refused is \
        service.Refused.CODE_EXPIRED
    assert service.assigned(session, ERIKA.key) == []


def test_another_citizens_code_does_not_work(session: Session) -> None:
    code = request(session)
    max_ = service.Citizen(key="bpk2-max", given_name="Max", surname="Mustermann")
    assert refusal(lambda: confirm(session, code, max_)).refused is service.Refused.CODE_WRONG
    assert confirm(session, code).kassenzeichen == "1500.0001.0001"


def test_an_empty_code_asks_for_the_code(session: Session) -> None:
    assert refusal(lambda: confirm(session, "  ")).refused is service.Refused.CODE_EMPTY
