"""The mags demo's property register: which Kassenzeichen belongs to whom.

A real municipality has this in its tax office; the demo portal seeds a few objects on its first
start. The owners are the demo citizens ``servicekonto demo --seed`` creates (Erika Mustermann
owns three objects, so her first confirmed Kassenzeichen brings the other two along).
"""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from sp_client.models import PropertyRecord

# Kassenzeichen, owner's given name, surname, street, house number, suffix, postcode.
SEED: tuple[tuple[str, str, str, str, str, str, str], ...] = (
    ("1500.0001.0001", "Erika", "Mustermann", "Bismarckstraße", "12", "", "41061"),
    ("1500.0001.0002", "Erika", "Mustermann", "Hindenburgstraße", "101", "Hinterhaus", "41061"),
    ("1500.0001.0003", "Erika", "Mustermann", "Waldhausener Straße", "7", "a", "41061"),
    ("1500.0002.0001", "Max", "Mustermann", "Eickener Straße", "45", "", "41063"),
    ("1500.0003.0001", "Jürgen", "Schmitz", "Viersener Straße", "210", "", "41063"),
    ("1500.0003.0002", "Jürgen", "Schmitz", "Viersener Straße", "212", "", "41063"),
    ("1500.0004.0001", "Ayşe", "Yılmaz", "Lürriper Straße", "3", "Whg. 2", "41065"),
)
CITY = "Mönchengladbach"


def seed_register(session: Session) -> int:
    """Fill an empty register with the demo objects; returns how many were added."""
    if session.scalar(select(func.count()).select_from(PropertyRecord)):
        return 0
    for kassenzeichen, given, surname, street, number, suffix, postcode in SEED:
        session.add(PropertyRecord(
            kassenzeichen=kassenzeichen, owner_given_name=given, owner_surname=surname,
            street=street, house_number=number, suffix=suffix, postcode=postcode, city=CITY))
    try:
        session.commit()
    except IntegrityError:  # another worker seeded at the same moment
        session.rollback()
        return 0
    return len(SEED)
