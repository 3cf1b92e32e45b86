"""Taking the IdP's answer to a login: every check a careful service provider makes.

pysaml2 verifies the signatures (with the key from the IdP's metadata only) and the structure.
What it leaves to us (it compares Recipient only when told to, times only with its own clock, and
keeps neither requests nor assertions anywhere but in memory) is checked here, on the objects it
verified: Issuer, Destination, InResponseTo against our own outstanding requests in the database,
Audience, Recipient, NotBefore/NotOnOrAfter, the trust level asked for, and a replay cache of
assertion IDs. Each refusal names its :class:`Problem`, which the portal shows in German.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from saml2.response import IncorrectlySigned, StatusError, UnsolicitedResponse
from saml2.saml import SCM_BEARER
from saml2.sigver import SignatureError, SigverError
from saml2.validate import ResponseLifetimeExceed, ToEarly
from sqlalchemy.orm import Session

from idp.samlkit.bindings import BindingError, decode_post
from idp.samlkit.bundid import AKDB_NAMESPACE
from idp.samlkit.instants import parse_instant
from idp.samlkit.untrusted_xml import DSIG, RefusedDocument, parse_xml
from sp_client.profiles import trust_level_of
from sp_client.saml import state
from sp_client.saml.provider import CLOCK_SKEW, ServiceProvider
from sp_client.sessions import Login

SAMLP = "urn:oasis:names:tc:SAML:2.0:protocol"
SAML = "urn:oasis:names:tc:SAML:2.0:assertion"
AKDB_TRUST_LEVEL = f"{{{AKDB_NAMESPACE}}}TrustLevel"
# A Response is sent on at once by the citizen's browser; an older one was kept somewhere.
RESPONSE_MAX_AGE_SECONDS = 5 * 60


class Problem(enum.Enum):
    """Why an answer was refused, in the citizen's words."""

    MALFORMED = "Die Antwort des Servicekonto.NRW ist unvollständig oder fehlerhaft."
    UNSIGNED = "Die Antwort des Servicekonto.NRW ist nicht signiert."
    BAD_SIGNATURE = ("Die Signatur der Antwort ist ungültig: Die Antwort stammt nicht vom "
                     "Servicekonto.NRW oder wurde unterwegs verändert.")
    WRONG_ISSUER = "Die Antwort stammt nicht vom Servicekonto.NRW."
    UNKNOWN_REQUEST = ("Zu dieser Antwort gibt es keine offene Anmeldung in diesem Browser. "
                       "Vielleicht wurde die Anmeldung schon abgeschlossen, ist abgelaufen oder "
                       "wurde in einem anderen Browser begonnen.")
    WRONG_AUDIENCE = "Die Anmeldedaten sind für ein anderes Portal bestimmt."
    WRONG_RECIPIENT = "Die Antwort ist an eine andere Adresse gerichtet als an dieses Portal."
    EXPIRED = "Die Anmeldung ist abgelaufen oder noch nicht gültig."
    REPLAYED = "Diese Anmeldung wurde bereits verwendet."
    LEVEL_TOO_LOW = "Das Vertrauensniveau der Anmeldung reicht für dieses Portal nicht aus."
    MISSING_ATTRIBUTE = ("Das Servicekonto.NRW hat nicht alle Angaben übermittelt, die dieses "
                         "Portal für die Anmeldung braucht.")


class ResponseRejected(Exception):
    """The answer cannot be trusted; nobody is logged in. ``detail`` is for the log."""

    def __init__(self, problem: Problem, detail: str = "") -> None:
        super().__init__(f"{problem.name}: {detail}")
        self.problem = problem
        self.detail = detail


@dataclass(frozen=True)
class Refusal:
    """The IdP's (signed) answer that the citizen is not logged in, and why."""

    status: str
    sub_status: str | None
    message: str | None
    # akdb:StatusDetail (e.g. IDP_REQUIRED_ATTRIBUTES_MISSING), when the IdP sends one.
    detail: str | None


class LoginNotGranted(Exception):
    """The IdP answered with an error status (declined consent, cancelled, …)."""

    def __init__(self, refusal: Refusal) -> None:
        super().__init__(refusal.sub_status or refusal.status)
        self.refusal = refusal


def read_authn_response(provider: ServiceProvider, session: Session,
                        form: dict[str, list[str]], browser_hash: str | None,
                        now: datetime) -> Login:
    """The login the IdP's Response (an HTTP-POST form) vouches for; the request it answers
    is used up. Raises :class:`ResponseRejected` or :class:`LoginNotGranted`."""
    try:
        xml = decode_post(form, "SAMLResponse").xml
        root = parse_xml(xml)
    except (BindingError, RefusedDocument) as error:
        raise ResponseRejected(Problem.MALFORMED, str(error)) from None
    if root.tag != f"{{{SAMLP}}}Response":
        raise ResponseRejected(Problem.MALFORMED, f"root element is {root.tag}")
    request_id = root.get("InResponseTo")
    waiting = state.outstanding(session, request_id, state.LOGIN, now)
    # The browser that sent the request must bring the answer: nobody can push a login of
    # their own into a victim's browser (login CSRF).
    if waiting is None or waiting.browser_hash != browser_hash:
        raise ResponseRejected(Problem.UNKNOWN_REQUEST, f"InResponseTo {request_id!r}")
    if root.find(f"{{{DSIG}}}Signature") is None or any(
            assertion.find(f"{{{DSIG}}}Signature") is None
            for assertion in root.findall(f"{{{SAML}}}Assertion")):
        raise ResponseRejected(Problem.UNSIGNED)
    parsed = _parse(provider, xml, waiting.request_id, now, session)
    expected = _Expected(provider.idp_entity_id(now), provider.entity_id, provider.acs_url,
                         waiting.request_id, waiting.trust_level,
                         tuple(wish.name for wish in provider.settings.profile.attributes
                               if wish.required))
    login, keep_until, assertion_id = _checked(parsed, expected, now)
    if not state.first_sighting(session, expected.issuer, assertion_id, keep_until):
        raise ResponseRejected(Problem.REPLAYED, f"assertion {assertion_id}")
    if not state.use_request(session, waiting.request_id):
        raise ResponseRejected(Problem.REPLAYED, f"request {waiting.request_id} answered")
    return login


def _parse(provider: ServiceProvider, xml: bytes, request_id: str, now: datetime,
           session: Session) -> Any:
    """pysaml2's verification of the XML we decoded and bounded ourselves; its exceptions
    become our problems."""
    client = provider.client(now)
    try:
        # No binding: pysaml2 takes the XML as it is. Told HTTP-POST, it first tries to inflate
        # the message, without a limit, and XML that is a DEFLATE stream as well grows ~1000-fold
        # (a 48 KiB answer to 48 MiB in memory).
        parsed = client.parse_authn_request_response(xml, None,
                                                     outstanding={request_id: "login"})
    except StatusError:
        # Raised only after the signature verified: the refusal is the IdP's own.
        state.use_request(session, request_id)
        raise LoginNotGranted(refusal_of(parse_xml(xml))) from None
    except (SignatureError, SigverError, IncorrectlySigned) as error:
        raise ResponseRejected(Problem.BAD_SIGNATURE, str(error)) from None
    except (ToEarly, ResponseLifetimeExceed) as error:
        raise ResponseRejected(Problem.EXPIRED, str(error)) from None
    except UnsolicitedResponse as error:
        raise ResponseRejected(Problem.UNKNOWN_REQUEST, str(error)) from None
    except Exception as error:  # pysaml2 raises bare Exceptions for some checks
        problem = Problem.WRONG_AUDIENCE if "AudienceRestriction" in str(error) \
            else Problem.MALFORMED
        raise ResponseRejected(problem, f"{type(error).__name__}: {error}") from None
    if parsed is None:
        raise ResponseRejected(Problem.MALFORMED, "pysaml2 returned no response")
    return parsed


def refusal_of(root: Any) -> Refusal:
    """The status of a (verified) Response without assertion."""
    code = root.find(f"{{{SAMLP}}}Status/{{{SAMLP}}}StatusCode")
    inner = code.find(f"{{{SAMLP}}}StatusCode") if code is not None else None
    message = root.find(f"{{{SAMLP}}}Status/{{{SAMLP}}}StatusMessage")
    details = root.findall(f"{{{SAMLP}}}Status/{{{SAMLP}}}StatusDetail//{{{AKDB_NAMESPACE}}}*")
    detail = next((" ".join("".join(element.itertext()).split()) for element in details
                   if "".join(element.itertext()).strip()), None)
    return Refusal(
        status=code.get("Value", "") if code is not None else "",
        sub_status=inner.get("Value") if inner is not None else None,
        message=(message.text or "").strip() or None if message is not None else None,
        detail=detail[:100] if detail else None)


@dataclass(frozen=True)
class _Expected:
    issuer: str
    audience: str
    acs_url: str
    request_id: str
    trust_level: int
    # The attributes (Names) the portal asked for as required: a login without one is refused.
    required: tuple[str, ...] = ()


def _instant(value: Any) -> datetime | None:
    return parse_instant(str(value)) if value else None


def _checked(parsed: Any, expected: _Expected, now: datetime) -> tuple[Login, datetime, str]:
    """Our checks on what pysaml2 verified: (the login, how long to remember the assertion,
    its ID)."""
    response, assertion = parsed.response, parsed.assertion
    if response.issuer is not None and (response.issuer.text or "").strip() != expected.issuer:
        raise ResponseRejected(Problem.WRONG_ISSUER, f"Response Issuer {response.issuer.text}")
    # The Response is signed, so its Destination must be there (SAML bindings 3.5.5.2).
    if response.destination != expected.acs_url:
        raise ResponseRejected(Problem.WRONG_RECIPIENT, f"Destination {response.destination}")
    if response.in_response_to != expected.request_id:
        raise ResponseRejected(Problem.UNKNOWN_REQUEST, f"InResponseTo {response.in_response_to}")
    issued = _instant(response.issue_instant)
    if issued is None or abs((now - issued).total_seconds()) > RESPONSE_MAX_AGE_SECONDS:
        raise ResponseRejected(Problem.EXPIRED, f"IssueInstant {response.issue_instant}")
    if assertion is None or len(parsed.assertions) != 1:
        raise ResponseRejected(Problem.MALFORMED, "not exactly one assertion")
    if assertion.issuer is None or (assertion.issuer.text or "").strip() != expected.issuer:
        raise ResponseRejected(Problem.WRONG_ISSUER, "Assertion Issuer")
    conditions = assertion.conditions
    audiences = [audience.text for restriction in
                 (conditions.audience_restriction if conditions is not None else [])
                 for audience in restriction.audience]
    if expected.audience not in audiences:
        raise ResponseRejected(Problem.WRONG_AUDIENCE, f"Audience {audiences}")
    not_before = _instant(conditions.not_before)
    not_on_or_after = _instant(conditions.not_on_or_after)
    if (not_before is not None and now + CLOCK_SKEW < not_before) or \
            not_on_or_after is None or now - CLOCK_SKEW >= not_on_or_after:
        raise ResponseRejected(Problem.EXPIRED, f"Conditions {conditions.not_before} – "
                                                f"{conditions.not_on_or_after}")
    confirmation_until = _bearer_confirmation(assertion, expected, now)
    subject_name = assertion.subject.name_id if assertion.subject is not None else None
    if subject_name is None or not (subject_name.text or "").strip():
        raise ResponseRejected(Problem.MALFORMED, "no NameID")
    statements = assertion.authn_statement
    if len(statements) != 1:
        raise ResponseRejected(Problem.MALFORMED, "not exactly one AuthnStatement")
    statement = statements[0]
    context = statement.authn_context
    class_ref = (context.authn_context_class_ref.text or "").strip() \
        if context is not None and context.authn_context_class_ref is not None else ""
    level = trust_level_of(class_ref)
    # Comparison="minimum": a weaker login than asked for is refused, never taken silently.
    if level is None or level < expected.trust_level:
        raise ResponseRejected(Problem.LEVEL_TOO_LOW, f"AuthnContextClassRef {class_ref!r}")
    session_until = _instant(statement.session_not_on_or_after)
    if session_until is not None and session_until <= now:
        raise ResponseRejected(Problem.EXPIRED, "SessionNotOnOrAfter passed")
    attributes: dict[str, list[str]] = {}
    trust: dict[str, str] = {}
    friendly_names: dict[str, str] = {}
    for attribute_statement in assertion.attribute_statement:
        for attribute in attribute_statement.attribute:
            attributes[attribute.name] = [value.text or "" for value in attribute.attribute_value]
            if attribute.friendly_name:
                friendly_names[attribute.name] = attribute.friendly_name
            if level_text := (attribute.extension_attributes or {}).get(AKDB_TRUST_LEVEL):
                trust[attribute.name] = str(level_text)
    if missing := [name for name in expected.required
                   if not any(value.strip() for value in attributes.get(name, []))]:
        raise ResponseRejected(Problem.MISSING_ATTRIBUTE, f"required {missing}")
    login = Login(
        name_id=subject_name.text.strip(), name_id_format=subject_name.format or "",
        name_qualifier=subject_name.name_qualifier,
        sp_name_qualifier=subject_name.sp_name_qualifier,
        session_index=statement.session_index, attributes=attributes, attribute_trust=trust,
        class_ref=class_ref, authenticated_at=str(statement.authn_instant or ""),
        logged_in_at=now.isoformat(), session_until=session_until.isoformat()
        if session_until else None, friendly_names=friendly_names,
        issued_at=str(response.issue_instant))
    return login, max(not_on_or_after, confirmation_until) + CLOCK_SKEW, str(assertion.id)


def _bearer_confirmation(assertion: Any, expected: _Expected, now: datetime) -> datetime:
    """The bearer SubjectConfirmation must be for our ACS, for our request, and fresh; returns
    its NotOnOrAfter."""
    problems = []
    for confirmation in assertion.subject.subject_confirmation if assertion.subject else []:
        data = confirmation.subject_confirmation_data
        if confirmation.method != SCM_BEARER or data is None:
            continue
        until = _instant(data.not_on_or_after)
        if data.recipient != expected.acs_url:
            problems.append((Problem.WRONG_RECIPIENT, f"Recipient {data.recipient}"))
        elif data.in_response_to != expected.request_id:
            problems.append((Problem.UNKNOWN_REQUEST, f"InResponseTo {data.in_response_to}"))
        elif until is None or now - CLOCK_SKEW >= until:
            problems.append((Problem.EXPIRED, f"SubjectConfirmationData {data.not_on_or_after}"))
        else:
            return until
    problem, detail = problems[0] if problems else (Problem.MALFORMED, "no bearer confirmation")
    raise ResponseRejected(problem, detail)
