"""Every broken answer of the QA workbench's fault injection (idp/testing/faults.py) is refused
by the SP's checks (idp.samlkit.sp_response), each for its own problem.

The broken answers are made as the workbench makes them for a portal, from the same parts as
the right one; only the replay is left out: remembering assertions is the caller's part.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from saml2 import BINDING_HTTP_POST
from saml2.saml import NAMEID_FORMAT_PERSISTENT

from idp.saml.messages import ParsedAuthnRequest
from idp.saml.response import EncryptionKey, Signing
from idp.saml.workbench_hooks import PlannedAnswer
from idp.samlkit.bundid import GIVEN_NAME, SURNAME
from idp.samlkit.sp_response import Problem, ResponseRejected, check
from idp.testing.faults import BROKEN, broken_answer
from tests.unit.samlkit.answering_idp import (
    ACS,
    IDP_ID,
    RELEASED,
    REQUEST_ID,
    SP_ID,
    AnsweringIdp,
    answering_idp,
    envelope,
    expected,
)

REFUSED_AS = {
    "unsigned": Problem.UNSIGNED,
    "wrong-key": Problem.BAD_SIGNATURE,
    "tampered": Problem.BAD_SIGNATURE,
    "sha1": Problem.BAD_SIGNATURE,
    "expired": Problem.EXPIRED,
    "not-yet-valid": Problem.EXPIRED,
    "wrong-audience": Problem.WRONG_AUDIENCE,
    "wrong-recipient": Problem.WRONG_RECIPIENT,
    "wrong-destination": Problem.WRONG_RECIPIENT,
    "wrong-in-response-to": Problem.UNKNOWN_REQUEST,
    # The other IdP is in no metadata the client has: no key can vouch for it.
    "wrong-issuer": Problem.BAD_SIGNATURE,
    "xsw": Problem.UNSIGNED,
    "missing-attribute": Problem.MISSING_ATTRIBUTE,
    "lower-trust-level": Problem.LEVEL_TOO_LOW,
}

# Both assertions encrypted, the unsigned twin is out of sight of the first check; two
# assertions are one too many.
ENCRYPTED_REFUSED_AS = {"xsw": Problem.MALFORMED}


@pytest.fixture
def idp(tmp_path: Path) -> AnsweringIdp:
    return answering_idp(tmp_path)


def planned(idp: AnsweringIdp) -> PlannedAnswer:
    """The right answer to our request for level 3 with given name and surname required."""
    request = ParsedAuthnRequest(
        request_id=REQUEST_ID, issuer=SP_ID, issue_instant=idp.now, destination=IDP_ID,
        acs_url=ACS, acs_binding=BINDING_HTTP_POST, force_authn=False, is_passive=False,
        name_id_format=NAMEID_FORMAT_PERSISTENT, allow_create=True,
        requested_contexts=("STORK-QAA-Level-3",), comparison="minimum", signed=True)
    return PlannedAnswer(
        request=request, recipient=idp.recipient(), name_id="persistent-1",
        name_id_format=NAMEID_FORMAT_PERSISTENT, released=RELEASED,
        required=(GIVEN_NAME, SURNAME), authentication=idp.authentication(),
        signing=Signing(), encryption=None, now=idp.now)


def test_every_broken_answer_but_the_replay_has_its_problem_here() -> None:
    assert set(REFUSED_AS) == {fault.name for fault in BROKEN} - {"replayed"}


@pytest.mark.parametrize("fault", list(REFUSED_AS))
def test_a_broken_answer_is_refused_for_its_fault(idp: AnsweringIdp, fault: str) -> None:
    xml = broken_answer(fault, planned(idp), idp.builder).encode("utf-8")
    with pytest.raises(ResponseRejected) as refused:
        check(idp.client, envelope(xml), expected(), idp.now)
    assert refused.value.problem is REFUSED_AS[fault]


@pytest.mark.parametrize("fault", list(REFUSED_AS))
def test_a_broken_answer_is_refused_with_its_assertion_encrypted(idp: AnsweringIdp,
                                                                fault: str) -> None:
    """Encrypted, the assertion is out of sight of the checks before pysaml2 decrypts it."""
    answer = replace(planned(idp), encryption=EncryptionKey(idp.sp_certificate))
    xml = broken_answer(fault, answer, idp.builder).encode("utf-8")
    with pytest.raises(ResponseRejected) as refused:
        check(idp.client, envelope(xml), expected(encrypted=True), idp.now)
    assert refused.value.problem is ENCRYPTED_REFUSED_AS.get(fault, REFUSED_AS[fault])
