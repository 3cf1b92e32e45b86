"""The decisions of single sign-on, one at a time."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

from idp.saml.akdb import AuthnMethod
from idp.saml.flow import (
    INVALID_NAME_ID_POLICY,
    NO_AUTHN_CONTEXT,
    UNKNOWN_PRINCIPAL,
    Next,
    Pending,
    level_needed,
    methods_reaching,
    next_step,
    refusal_before_login,
)
from idp.saml.identifiers import TrustLevel
from idp.saml.messages import ParsedAuthnRequest, RequestedSubject

T0 = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
PERSISTENT = "urn:oasis:names:tc:SAML:2.0:nameid-format:persistent"
TRANSIENT = "urn:oasis:names:tc:SAML:2.0:nameid-format:transient"


@dataclass(frozen=True)
class Portal:
    entity_id: str = "https://portal.example/saml/metadata"
    display_name: str = "Bürgerportal"
    name_id_format: str = "transient"
    minimum_trust_level: int = 1
    consent_required: bool = True
    want_authn_requests_signed: bool = False


REQUEST = ParsedAuthnRequest(
    request_id="_r1", issuer=Portal.entity_id, issue_instant=T0, destination=None,
    acs_url="https://portal.example/acs", acs_binding="post", force_authn=False,
    is_passive=False, name_id_format=None, allow_create=True)
PENDING = Pending(REQUEST, "/start", T0)


def test_a_pending_request_survives_the_database_round_trip() -> None:
    with_context = replace(PENDING, principal_id=7, request=replace(
        REQUEST, requested_contexts=("STORK-QAA-Level-1",), comparison="minimum",
        subject=RequestedSubject("abc", PERSISTENT)))
    assert Pending.from_dict(with_context.to_dict()) == with_context


def test_a_plain_request_is_not_refused() -> None:
    assert refusal_before_login(PENDING, Portal()) is None


def test_an_unknown_name_id_format_gets_invalid_name_id_policy() -> None:
    pending = replace(PENDING, request=replace(
        REQUEST, name_id_format="urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress"))
    refusal = refusal_before_login(pending, Portal())
    assert refusal is not None and refusal.sub_status == INVALID_NAME_ID_POLICY


def test_a_level_above_username_and_password_gets_no_authn_context() -> None:
    pending = replace(PENDING, request=replace(
        REQUEST, requested_contexts=("STORK-QAA-Level-3",), comparison="minimum"))
    refusal = refusal_before_login(pending, Portal())
    assert refusal is not None and refusal.sub_status == NO_AUTHN_CONTEXT


def test_a_portal_demanding_a_higher_level_gets_no_authn_context() -> None:
    refusal = refusal_before_login(PENDING, Portal(minimum_trust_level=3))
    assert refusal is not None and refusal.sub_status == NO_AUTHN_CONTEXT


BOTH = (AuthnMethod.BENUTZERNAME, AuthnMethod.EID)


def test_with_the_eid_a_portal_demanding_level_4_is_not_refused() -> None:
    assert refusal_before_login(PENDING, Portal(minimum_trust_level=4), BOTH) is None


def test_with_the_eid_a_request_above_level_4_still_gets_no_authn_context() -> None:
    pending = replace(PENDING, request=replace(
        REQUEST, requested_contexts=("STORK-QAA-Level-4",), comparison="better"))
    refusal = refusal_before_login(pending, Portal(), BOTH)
    assert refusal is not None and refusal.sub_status == NO_AUTHN_CONTEXT


def test_a_portal_needing_level_3_is_offered_only_the_eid() -> None:
    assert methods_reaching(Portal(minimum_trust_level=3), REQUEST, BOTH) == [AuthnMethod.EID]


def test_a_level_1_portal_is_offered_both_ways_in() -> None:
    assert methods_reaching(Portal(), REQUEST, BOTH) == list(BOTH)


def test_an_exact_level_1_request_is_offered_only_the_password() -> None:
    request = replace(REQUEST, requested_contexts=("STORK-QAA-Level-1",), comparison="exact")
    assert methods_reaching(Portal(), request, BOTH) == [AuthnMethod.BENUTZERNAME]


def test_a_login_below_the_level_needed_logs_in_again_to_step_up() -> None:
    assert next_step(PENDING, 7, T0, consent_needed=False, level_met=False) is Next.LOG_IN
    assert TrustLevel.LEVEL_4.class_ref_for(False) == "STORK-QAA-Level-4"


def test_the_step_up_names_the_lowest_level_that_meets_the_portal_and_its_request() -> None:
    assert level_needed(Portal(), REQUEST) is TrustLevel.LEVEL_1
    assert level_needed(Portal(minimum_trust_level=3), REQUEST) is TrustLevel.LEVEL_3
    at_least_4 = replace(REQUEST, requested_contexts=("STORK-QAA-Level-4",),
                         comparison="minimum")
    assert level_needed(Portal(minimum_trust_level=3), at_least_4) is TrustLevel.LEVEL_4
    assert TrustLevel.LEVEL_3.label == "substantiell"


def test_without_a_login_the_citizen_logs_in_first() -> None:
    assert next_step(PENDING, None, None, consent_needed=True) is Next.LOG_IN


def test_force_authn_asks_for_the_password_again_after_an_earlier_login() -> None:
    forced = replace(PENDING, request=replace(REQUEST, force_authn=True))
    assert next_step(forced, 7, T0 - timedelta(minutes=5), consent_needed=False) is Next.LOG_IN
    assert next_step(forced, 7, T0 + timedelta(seconds=5), consent_needed=False) is Next.ANSWER


def test_consent_comes_before_the_answer() -> None:
    assert next_step(PENDING, 7, T0, consent_needed=True) is Next.CONSENT
    assert next_step(PENDING, 7, T0, consent_needed=False) is Next.ANSWER


def test_a_transient_portal_asking_for_a_persistent_name_id_gets_invalid_name_id_policy() -> None:
    pending = replace(PENDING, request=replace(REQUEST, name_id_format=PERSISTENT))
    refusal = refusal_before_login(pending, Portal(name_id_format="transient"))
    assert refusal is not None and refusal.sub_status == INVALID_NAME_ID_POLICY


def test_a_persistent_portal_asking_for_a_transient_name_id_gets_invalid_name_id_policy() -> None:
    pending = replace(PENDING, request=replace(REQUEST, name_id_format=TRANSIENT))
    refusal = refusal_before_login(pending, Portal(name_id_format="persistent"))
    assert refusal is not None and refusal.sub_status == INVALID_NAME_ID_POLICY


def test_a_request_for_the_portals_own_name_id_format_is_not_refused() -> None:
    pending = replace(PENDING, request=replace(REQUEST, name_id_format=PERSISTENT))
    assert refusal_before_login(pending, Portal(name_id_format="persistent")) is None


def test_a_subject_naming_nobody_known_gets_unknown_principal() -> None:
    pending = replace(PENDING, request=replace(REQUEST, subject=RequestedSubject("who?")))
    refusal = refusal_before_login(pending, Portal())
    assert refusal is not None and refusal.sub_status == UNKNOWN_PRINCIPAL


def test_a_request_naming_another_citizen_asks_for_a_login_as_that_citizen() -> None:
    named = replace(PENDING, principal_id=8)
    assert next_step(named, 7, T0 - timedelta(minutes=5), consent_needed=False) is Next.LOG_IN
    assert next_step(named, 8, T0 - timedelta(minutes=5), consent_needed=False) is Next.ANSWER


def test_someone_else_logging_in_for_a_named_citizen_ends_the_login() -> None:
    named = replace(PENDING, principal_id=8)
    assert next_step(named, 7, T0 + timedelta(seconds=5), consent_needed=False) \
        is Next.WRONG_PRINCIPAL
