"""Trust levels are matched as the request asks, never silently downgraded."""

from __future__ import annotations

import pytest

from idp.saml.identifiers import TrustLevel, satisfiable
from idp.samlkit.ids import new_id

L1, L2, L3, L4 = (f"STORK-QAA-Level-{n}" for n in range(1, 5))


def test_no_requested_context_is_always_met() -> None:
    assert satisfiable((), "exact", TrustLevel.LEVEL_1)


@pytest.mark.parametrize(("requested", "comparison", "met"), [
    ((L1,), "minimum", True),
    ((L2,), "minimum", False),
    ((L1, L3), "minimum", True),
    ((L1,), "exact", True),
    ((L2, L3), "exact", False),
    ((L1,), "better", False),
    ((L2,), "maximum", True),
    (("urn:example:unknown",), "minimum", False),
    (("http://eidas.europa.eu/LoA/substantial",), "minimum", False),
])
def test_a_username_login_meets_only_level_1_requests(requested: tuple[str, ...],
                                                       comparison: str, met: bool) -> None:
    assert satisfiable(requested, comparison, TrustLevel.LEVEL_1) is met


def test_an_eid_login_meets_substantial_and_high() -> None:
    assert satisfiable(("http://eidas.europa.eu/LoA/high",), "minimum", TrustLevel.LEVEL_4)
    assert satisfiable((L3,), "minimum", TrustLevel.LEVEL_4)


def test_transient_identifiers_never_repeat() -> None:
    assert len({new_id() for _ in range(1000)}) == 1000


@pytest.mark.parametrize(("level", "stork", "eidas"), [
    (TrustLevel.LEVEL_1, L1, L1),  # eIDAS has nothing below "low": never an upgrade
    (TrustLevel.LEVEL_2, L2, "http://eidas.europa.eu/LoA/low"),
    (TrustLevel.LEVEL_3, L3, "http://eidas.europa.eu/LoA/substantial"),
    (TrustLevel.LEVEL_4, L4, "http://eidas.europa.eu/LoA/high"),
])
def test_a_portal_choosing_eidas_loa_gets_the_eidas_uri_where_one_exists(
        level: TrustLevel, stork: str, eidas: str) -> None:
    assert level.class_ref_for(eidas_loa=False) == stork
    assert level.class_ref_for(eidas_loa=True) == eidas
    assert TrustLevel.from_class_ref(eidas) is level


PASSWORD_PROTECTED_TRANSPORT = "urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport"


def test_password_protected_transport_is_what_a_password_login_reaches() -> None:
    """Generic SAML SPs (python3-saml by default) ask for it, Comparison="exact"."""
    assert satisfiable((PASSWORD_PROTECTED_TRANSPORT,), "exact", TrustLevel.LEVEL_1)
    assert satisfiable((PASSWORD_PROTECTED_TRANSPORT,), "minimum", TrustLevel.LEVEL_1)
    assert not satisfiable((PASSWORD_PROTECTED_TRANSPORT,), "better", TrustLevel.LEVEL_1)
    assert not satisfiable((PASSWORD_PROTECTED_TRANSPORT,), "exact", TrustLevel.LEVEL_4)


def test_a_password_login_is_named_as_the_portal_asked_for_it() -> None:
    assert TrustLevel.LEVEL_1.class_ref_for(False, (PASSWORD_PROTECTED_TRANSPORT,)) == \
        PASSWORD_PROTECTED_TRANSPORT
    assert TrustLevel.LEVEL_1.class_ref_for(True, (PASSWORD_PROTECTED_TRANSPORT,)) == \
        PASSWORD_PROTECTED_TRANSPORT
    assert TrustLevel.LEVEL_1.class_ref_for(False, ("STORK-QAA-Level-1",)) == "STORK-QAA-Level-1"
    assert TrustLevel.LEVEL_1.class_ref_for(False) == "STORK-QAA-Level-1"
