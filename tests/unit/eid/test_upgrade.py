"""The name-matching rules of "Konto hochstufen" (docs/architecture.md, "Konto hochstufen")."""

from __future__ import annotations

import pytest

from idp.accounts.models import Citizen
from idp.eid.upgrade import name_problems
from idp.testing.models import EidTestCard


def problems(account: tuple[str, str], card: tuple[str, str]) -> list[str]:
    return name_problems(Citizen(given_name=account[0], surname=account[1]),
                         EidTestCard(given_name=card[0], surname=card[1]))


@pytest.mark.parametrize(("account", "card"), [
    (("Erika", "Mustermann"), ("Erika", "Mustermann")),
    (("erika", "MUSTERMANN"), ("Erika", "Mustermann")),  # case
    (("Erika", "Mustermann"), ("Erika Maria", "Mustermann")),  # one of the given names
    (("Hans-Jürgen", "Müller-Lüdenscheidt"), ("Hans Jürgen", "Müller Lüdenscheidt")),
    (("Jörg", "Strauß"), ("JÖRG", "STRAUSS")),  # ß is ss in capitals
    (("Ｅｒｉｋａ", "Mustermann"), ("Erika", "Mustermann")),  # full-width (NFKC)
])
def test_names_match_regardless_of_case_width_hyphens_and_further_given_names(
        account: tuple[str, str], card: tuple[str, str]) -> None:
    assert problems(account, card) == []


@pytest.mark.parametrize(("account", "card", "count"), [
    (("Erik", "Mustermann"), ("Erika", "Mustermann"), 1),  # no prefix matching
    (("Erika", "Mustermann"), ("Erika", "Gabler"), 1),  # the Geburtsname is not the surname
    (("Maria", "Musterfrau"), ("Erika", "Mustermann"), 2),
    (("Erika Maria Luise", "Mustermann"), ("Erika Maria", "Mustermann"), 1),
])
def test_names_that_differ_are_each_named(account: tuple[str, str], card: tuple[str, str],
                                          count: int) -> None:
    assert len(problems(account, card)) == count
