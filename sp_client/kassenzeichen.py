"""Kassenzeichen at the mags portal: ask for one, get a Bestätigungscode by letter, enter it.

The citizen is known by the bPK2 the IdP released (the NameID is transient at mags). After the
first confirmed Kassenzeichen, the owner's other Kassenzeichen in the property register are
assigned automatically: the owner is matched by the citizen's given name and surname exactly as
released (Unicode-normalised, case and spacing ignored), and only when the confirmed object
belongs to that name (a Zustellvertreter confirming someone else's object gets that one only).

Codes: 12 characters (no 0/O, 1/I/L), valid for 30 days as a letter would be, usable once, void
after 5 wrong entries. Only a keyed hash is stored with the code's state; the letter in the
postal outbox carries the code in clear, as the printed letter does. No Flask here.
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import re
import secrets
import unicodedata
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from sp_client.models import AssignedKassenzeichen, ConfirmationCode, PostalLetter, PropertyRecord

CODE_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"
CODE_LENGTH = 12
CODE_VALIDITY = timedelta(days=30)
MAX_ATTEMPTS = 5
FORMAT_HINT = "Bitte geben Sie das Kassenzeichen im Format 1500.0000.0000 ein."
# [0-9], not \d: \d also takes other scripts' digits, which no letter would print.
_KASSENZEICHEN = re.compile(r"^([0-9]{4})\.?([0-9]{4})\.?([0-9]{4})$")


class Refused(enum.Enum):
    """Why a Kassenzeichen or a code was not taken, in the citizen's words."""

    FORMAT = FORMAT_HINT
    UNKNOWN = ("Dieses Kassenzeichen ist uns nicht bekannt. Bitte prüfen Sie Ihre Eingabe "
               "(z. B. auf Ihrem Grundbesitzabgabenbescheid).")
    ALREADY_ASSIGNED = "Dieses Kassenzeichen ist Ihrem Konto bereits zugeordnet."
    LETTER_PENDING = ("Für dieses Kassenzeichen haben wir Ihnen bereits einen Bestätigungscode "
                      "per Post geschickt. Bitte geben Sie ihn unter „Bestätigungscode "
                      "eingeben“ ein.")
    CODE_EMPTY = "Bitte geben Sie den Bestätigungscode ein, den Sie per Post erhalten haben."
    CODE_WRONG = "Der Bestätigungscode ist nicht richtig."
    CODE_EXPIRED = ("Dieser Bestätigungscode ist abgelaufen (er gilt 30 Tage). Bitte fordern "
                    "Sie über „Kassenzeichen hinzufügen“ einen neuen an.")
    CODE_USED = "Dieser Bestätigungscode wurde bereits verwendet."
    CODE_VOID = (f"Der Bestätigungscode wurde {MAX_ATTEMPTS}-mal falsch eingegeben und ist "
                 "deshalb ungültig. Bitte fordern Sie über „Kassenzeichen hinzufügen“ einen "
                 "neuen an.")


class KassenzeichenError(Exception):
    """The request was refused; ``refused`` says why, ``attempts_left`` after a wrong code."""

    def __init__(self, refused: Refused, attempts_left: int | None = None) -> None:
        super().__init__(refused.name)
        self.refused = refused
        self.attempts_left = attempts_left

    @property
    def message(self) -> str:
        if self.refused is Refused.CODE_WRONG and self.attempts_left:
            word = "Versuch" if self.attempts_left == 1 else "Versuche"
            return f"{self.refused.value} Sie haben noch {self.attempts_left} {word}."
        return self.refused.value


@dataclass(frozen=True)
class Citizen:
    """Who asks: the bPK2 and the names the IdP released."""

    key: str
    given_name: str
    surname: str


@dataclass(frozen=True)
class Confirmed:
    """A code was right: the Kassenzeichen it was for, and those assigned along with it."""

    kassenzeichen: str
    code: str
    automatic: tuple[str, ...]


def normalised_kassenzeichen(raw: str) -> str:
    """``1500.0000.0000`` (dots optional on input, spaces ignored); else KassenzeichenError."""
    match = _KASSENZEICHEN.match(re.sub(r"\s+", "", raw or ""))
    if match is None:
        raise KassenzeichenError(Refused.FORMAT)
    return ".".join(match.groups())


def normalised_code(raw: str) -> str:
    """Upper case, without the spaces and hyphens a letter groups it with."""
    return re.sub(r"[\s-]+", "", raw or "").upper()


def _code_hash(secret: str, code: str) -> str:
    # Keyed: the database alone does not let anyone try all codes offline.
    return hmac.new(secret.encode(), code.encode(), hashlib.sha256).hexdigest()


def _same_person(given_name: str, surname: str, record: PropertyRecord) -> bool:
    def norm(text: str) -> str:
        return " ".join(unicodedata.normalize("NFC", text).casefold().split())

    return (norm(given_name), norm(surname)) == (norm(record.owner_given_name),
                                                 norm(record.owner_surname))


def assigned(session: Session, citizen_key: str) -> list[PropertyRecord]:
    """The citizen's Kassenzeichen with their objects, in order."""
    return list(session.scalars(
        select(PropertyRecord).join(AssignedKassenzeichen,
                                    AssignedKassenzeichen.kassenzeichen ==
                                    PropertyRecord.kassenzeichen)
        .where(AssignedKassenzeichen.citizen_key == citizen_key)
        .order_by(PropertyRecord.kassenzeichen)))


def _open_codes(session: Session, citizen_key: str, now: datetime) -> list[ConfirmationCode]:
    return list(session.scalars(select(ConfirmationCode).where(
        ConfirmationCode.citizen_key == citizen_key, ConfirmationCode.used_at.is_(None),
        ConfirmationCode.expires_at > now, ConfirmationCode.failed_attempts < MAX_ATTEMPTS)))


def request_code(session: Session, citizen: Citizen, raw_kassenzeichen: str, secret: str,
                 portal_name: str, phone: str | None, now: datetime) -> PropertyRecord:
    """Send a letter with a new code for a Kassenzeichen (code and letter in one transaction).

    Returns the object; raises :class:`KassenzeichenError` (format, unknown, assigned, pending).
    """
    kassenzeichen = normalised_kassenzeichen(raw_kassenzeichen)
    record = session.get(PropertyRecord, kassenzeichen)
    if record is None:
        raise KassenzeichenError(Refused.UNKNOWN)
    if any(item.kassenzeichen == kassenzeichen for item in assigned(session, citizen.key)):
        raise KassenzeichenError(Refused.ALREADY_ASSIGNED)
    # One letter at a time per object: letters cost postage and a second one confuses.
    if any(code.kassenzeichen == kassenzeichen
           for code in _open_codes(session, citizen.key, now)):
        raise KassenzeichenError(Refused.LETTER_PENDING)
    code = "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))
    expires_at = now + CODE_VALIDITY
    session.add(ConfirmationCode(citizen_key=citizen.key, kassenzeichen=kassenzeichen,
                                 code_hash=_code_hash(secret, code), created_at=now,
                                 expires_at=expires_at))
    session.add(_letter(record, citizen, code, expires_at, portal_name, phone, now))
    session.commit()
    return record


def _letter(record: PropertyRecord, citizen: Citizen, code: str, expires_at: datetime,
            portal_name: str, phone: str | None, now: datetime) -> PostalLetter:
    grouped = " ".join(code[i:i + 4] for i in range(0, CODE_LENGTH, 4))
    address = f"{record.street} {record.house_number}{record.suffix and ' ' + record.suffix}"
    call = f" oder rufen Sie uns an: {phone}" if phone else ""
    body = (
        f"Guten Tag {record.owner_given_name} {record.owner_surname},\n\n"
        f"im {portal_name} wurde beantragt, das Kassenzeichen {record.kassenzeichen} "
        f"(Objekt {address}) dem Servicekonto von {citizen.given_name} {citizen.surname} "
        f"zuzuordnen.\n\n"
        f"Ihr Bestätigungscode lautet:\n\n    {grouped}\n\n"
        f"Bitte melden Sie sich im {portal_name} an, wählen Sie „Kassenzeichen hinzufügen“ und "
        f"dann „Bestätigungscode eingeben“. Der Code gilt bis zum {expires_at:%d.%m.%Y} und "
        f"kann nur einmal verwendet werden.\n\n"
        f"Wenn Sie diese Zuordnung nicht beantragt haben, vernichten Sie diesen Brief bitte"
        f"{call}.\n\n"
        f"Mit freundlichen Grüßen\nIhr {portal_name}")
    return PostalLetter(
        recipient=f"{record.owner_given_name} {record.owner_surname}",
        address=f"{address}\n{record.postcode} {record.city}",
        subject=f"Ihr Bestätigungscode für das Kassenzeichen {record.kassenzeichen}",
        body=body, created_at=now)


def confirm_code(session: Session, citizen: Citizen, raw_code: str, secret: str,
                 now: datetime) -> Confirmed:
    """Assign the Kassenzeichen whose open code this is (and the owner's others).

    A wrong entry counts against every open code of the citizen (whoever guesses, guesses at
    all of them); raises :class:`KassenzeichenError` with what the citizen should do.
    """
    code = normalised_code(raw_code)
    if not code:
        raise KassenzeichenError(Refused.CODE_EMPTY)
    if len(code) != CODE_LENGTH or set(code) - set(CODE_ALPHABET):
        code = ""  # cannot be one of ours; counts as wrong without a database match
    digest = _code_hash(secret, code) if code else ""
    matching = session.scalars(select(ConfirmationCode).where(
        ConfirmationCode.citizen_key == citizen.key,
        ConfirmationCode.code_hash == digest)).first() if digest else None
    if matching is not None:
        if matching.used_at is not None:
            raise KassenzeichenError(Refused.CODE_USED)
        if matching.failed_attempts >= MAX_ATTEMPTS:
            raise KassenzeichenError(Refused.CODE_VOID)
        if matching.expires_at <= now:
            raise KassenzeichenError(Refused.CODE_EXPIRED)
        # Used up atomically: of two concurrent entries of one code, one wins.
        result = session.execute(update(ConfirmationCode).where(
            ConfirmationCode.id == matching.id, ConfirmationCode.used_at.is_(None),
            ConfirmationCode.failed_attempts < MAX_ATTEMPTS).values(used_at=now))
        if result.rowcount != 1:  # type: ignore[attr-defined]
            session.rollback()
            raise KassenzeichenError(Refused.CODE_USED)
        session.commit()
        automatic = _assign(session, citizen, matching.kassenzeichen, now)
        return Confirmed(matching.kassenzeichen, code, automatic)
    return _count_wrong_entry(session, citizen, now)


def _count_wrong_entry(session: Session, citizen: Citizen, now: datetime) -> Confirmed:
    open_ids = [code.id for code in _open_codes(session, citizen.key, now)]
    if not open_ids:
        raise KassenzeichenError(Refused.CODE_WRONG)
    session.execute(update(ConfirmationCode).where(ConfirmationCode.id.in_(open_ids)).values(
        failed_attempts=ConfirmationCode.failed_attempts + 1))
    session.commit()
    used = max(session.scalars(select(ConfirmationCode.failed_attempts).where(
        ConfirmationCode.id.in_(open_ids))))
    if used >= MAX_ATTEMPTS:
        raise KassenzeichenError(Refused.CODE_VOID)
    raise KassenzeichenError(Refused.CODE_WRONG, attempts_left=MAX_ATTEMPTS - used)


def _assign(session: Session, citizen: Citizen, kassenzeichen: str,
            now: datetime) -> tuple[str, ...]:
    """Assign the confirmed Kassenzeichen and, if the citizen owns it, the owner's others;
    commits. Returns the ones assigned automatically."""
    record = session.get(PropertyRecord, kassenzeichen)
    assert record is not None  # a code exists only for a registered object
    have = {item.kassenzeichen for item in assigned(session, citizen.key)}
    others: list[str] = []
    if _same_person(citizen.given_name, citizen.surname, record):
        others = [item.kassenzeichen for item in session.scalars(
            select(PropertyRecord).where(PropertyRecord.owner_surname == record.owner_surname)
            .order_by(PropertyRecord.kassenzeichen))
            if item.kassenzeichen != kassenzeichen and item.kassenzeichen not in have
            and _same_person(citizen.given_name, citizen.surname, item)]
    if kassenzeichen not in have:
        session.add(AssignedKassenzeichen(citizen_key=citizen.key, kassenzeichen=kassenzeichen,
                                          assigned_at=now))
    for other in others:
        session.add(AssignedKassenzeichen(citizen_key=citizen.key, kassenzeichen=other,
                                          assigned_at=now, automatic=True))
    try:
        session.commit()
    except IntegrityError:
        # Assigned meanwhile by a concurrent entry; the code stays used, the result is the same.
        session.rollback()
    return tuple(others)


def letters(session: Session) -> list[PostalLetter]:
    """The postal outbox, newest first."""
    return list(session.scalars(select(PostalLetter).order_by(PostalLetter.id.desc())))
