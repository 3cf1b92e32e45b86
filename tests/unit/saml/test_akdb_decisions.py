"""What single sign-on decides from a BundID extension, one decision at a time."""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

from idp.saml.akdb import AuthenticationRequest, DisplayInformation, RequestedAttribute
from idp.saml.flow import (
    NO_AUTHN_CONTEXT,
    REQUEST_DENIED,
    REQUEST_UNSUPPORTED,
    Pending,
    attributes_for,
    cancelled,
    refusal_before_login,
    status_detail_for,
)
from idp.saml.messages import ParsedAuthnRequest
from tests.unit.saml import test_sso_decisions as decisions

T0 = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
GIVEN_NAME, SURNAME, MAIL = "urn:oid:2.5.4.42", "urn:oid:2.5.4.4", \
    "urn:oid:0.9.2342.19200300.100.1.3"
GENDER = "urn:oid:1.3.6.1.4.1.33592.1.3.5"


@dataclass(frozen=True)
class Portal(decisions.Portal):
    """The plain-SSO test portal, with the attribute policy the extension narrows."""

    attribute_names: dict[str, str] = field(default_factory=lambda: {
        "givenName": GIVEN_NAME, "surname": SURNAME, "mail": MAIL})
    required_attributes: tuple[str, ...] = ("surname",)
    idp_initiated_allowed: bool = False


REQUEST = replace(decisions.REQUEST, destination="https://idp/sso", signed=True)


def asking(*attributes: RequestedAttribute) -> ParsedAuthnRequest:
    return replace(REQUEST, akdb=AuthenticationRequest(requested_attributes=attributes))


def test_a_pending_request_keeps_its_extension_through_the_database() -> None:
    extension = AuthenticationRequest(
        requested_attributes=(RequestedAttribute(SURNAME, True),),
        authn_methods=("Benutzername",),
        display=DisplayInformation("Stadt", "Zweck", "de", "svc-1"), enable_status_detail=True)
    pending = Pending(replace(REQUEST, akdb=extension), "/start", T0)
    assert Pending.from_dict(json.loads(json.dumps(pending.to_dict()))) == pending


def test_without_extension_the_policy_decides_alone() -> None:
    selection = attributes_for(Portal(), REQUEST)
    assert selection.names == (GIVEN_NAME, SURNAME, MAIL) and selection.required == (SURNAME,)


def test_the_extension_narrows_the_policy_and_never_widens_it() -> None:
    selection = attributes_for(Portal(), asking(RequestedAttribute(MAIL),
                                                RequestedAttribute(GENDER)))
    assert selection.names == (MAIL,) and selection.required == ()
    assert selection.not_allowed == ()


def test_a_policy_required_attribute_counts_only_when_requested() -> None:
    assert attributes_for(Portal(), asking(RequestedAttribute(SURNAME))).required == (SURNAME,)
    assert attributes_for(Portal(), asking(RequestedAttribute(MAIL))).required == ()


def test_requiring_what_the_policy_does_not_allow_is_denied_before_login() -> None:
    pending = Pending(asking(RequestedAttribute(GENDER, True)), None, T0)
    refusal = refusal_before_login(pending, Portal())
    assert refusal is not None and refusal.sub_status == REQUEST_DENIED


def test_a_portal_without_benutzername_among_its_methods_gets_no_authn_context() -> None:
    pending = Pending(replace(REQUEST, akdb=AuthenticationRequest(authn_methods=("eID",))),
                      None, T0)
    refusal = refusal_before_login(pending, Portal())
    assert refusal is not None and refusal.sub_status == NO_AUTHN_CONTEXT


def test_an_unreadable_extension_gets_request_unsupported() -> None:
    pending = Pending(replace(REQUEST, akdb_problem="unsupported Version '1'"), None, T0)
    refusal = refusal_before_login(pending, Portal())
    assert refusal is not None and refusal.sub_status == REQUEST_UNSUPPORTED


def test_status_detail_is_sent_only_when_the_request_enables_it() -> None:
    enabled = Pending(replace(REQUEST, akdb=AuthenticationRequest(enable_status_detail=True)),
                      None, T0)
    assert status_detail_for(enabled, cancelled()) == "IDP_AUTHN_CANCELLED"
    disabled = Pending(replace(REQUEST, akdb=AuthenticationRequest()), None, T0)
    assert status_detail_for(disabled, cancelled()) is None
    assert status_detail_for(Pending(REQUEST, None, T0), cancelled()) is None
