"""The service provider's side of a login: every check a careful SP makes on an IdP's Response.

One piece of code for every SP we run: the demo portals towards the IdP, and the IdP as a broker
towards an upstream IdP (docs/architecture.md, "The parts"). Two steps, with the caller's own
bookkeeping between them:

1. :func:`read_envelope` decodes the HTTP-POST form within our bounds and parses the XML as
   untrusted; its ``in_response_to`` tells the caller which of its requests to look up.
2. :func:`check` refuses an unsigned Response or Assertion (and a clear assertion where an
   encrypted one is agreed), lets pysaml2 verify the signatures (with the keys in the IdP's
   metadata only) and the structure, and then checks what pysaml2 leaves to us (it compares
   Recipient only when told to, times only with its own clock): Issuer, Destination,
   InResponseTo, IssueInstant, exactly one assertion, Audience, Conditions, the bearer
   SubjectConfirmation, NameID, AuthnStatement, trust level, SessionNotOnOrAfter and the
   required attributes.

What stays with the caller, because it needs storage: finding its outstanding request (and the
browser that sent it), the replay cache of assertion IDs (:class:`VerifiedResponse`), and using
the request up once answered, by a login or by the IdP's refusal (:class:`LoginNotGranted`).
Each refusal names its :class:`Problem`; :func:`message` says it in neutral German, and a caller
may say it in its own words.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from lxml import etree  # type: ignore[import-untyped]  # no stubs installed
from saml2.response import IncorrectlySigned, StatusError, UnsolicitedResponse
from saml2.saml import SCM_BEARER
from saml2.sigver import SignatureError, SigverError
from saml2.validate import ResponseLifetimeExceed, ToEarly

from idp.samlkit.bindings import BindingError, decode_post
from idp.samlkit.bundid import AKDB_NAMESPACE
from idp.samlkit.instants import parse_instant
from idp.samlkit.untrusted_xml import DSIG, RefusedDocument, parse_xml

SAMLP = "urn:oasis:names:tc:SAML:2.0:protocol"
SAML = "urn:oasis:names:tc:SAML:2.0:assertion"
AKDB_TRUST_LEVEL = f"{{{AKDB_NAMESPACE}}}TrustLevel"
# A Response is sent on at once by the citizen's browser; an older one was kept somewhere.
RESPONSE_MAX_AGE_SECONDS = 5 * 60
# How far an IdP's clock may be from ours, unless the caller says otherwise.
CLOCK_SKEW = timedelta(minutes=1)


class Problem(enum.StrEnum):
    """Why a Response was refused (neutral: each SP may say it in its own words)."""

    MALFORMED = enum.auto()  # not a Response, or incomplete (no NameID, no bearer, …)
    UNSIGNED = enum.auto()  # the Response or an Assertion carries no signature of its own
    UNENCRYPTED = enum.auto()  # a clear assertion where an encrypted one is agreed
    BAD_SIGNATURE = enum.auto()  # not the IdP's key, or changed on the way
    WRONG_ISSUER = enum.auto()
    UNKNOWN_REQUEST = enum.auto()  # answers no request of ours (InResponseTo)
    WRONG_AUDIENCE = enum.auto()
    WRONG_RECIPIENT = enum.auto()  # Destination or Recipient is not our ACS
    EXPIRED = enum.auto()  # too old, or not yet valid
    REPLAYED = enum.auto()  # for the caller's replay cache and its used-up requests
    LEVEL_TOO_LOW = enum.auto()
    MISSING_ATTRIBUTE = enum.auto()  # a required attribute has no value


_MESSAGES = {
    Problem.MALFORMED: "Die Antwort ist unvollständig oder fehlerhaft.",
    Problem.UNSIGNED: "Die Antwort ist nicht signiert.",
    Problem.UNENCRYPTED: "Die Anmeldedaten kamen unverschlüsselt, obwohl Verschlüsselung "
                         "vereinbart ist.",
    Problem.BAD_SIGNATURE: ("Die Signatur der Antwort ist ungültig: Die Antwort stammt nicht "
                            "von dem Dienst, bei dem Sie sich angemeldet haben, oder wurde "
                            "unterwegs verändert."),
    Problem.WRONG_ISSUER: ("Die Antwort stammt nicht von dem Dienst, bei dem Sie sich "
                           "angemeldet haben."),
    Problem.UNKNOWN_REQUEST: ("Zu dieser Antwort gibt es keine offene Anmeldung in diesem "
                              "Browser. Vielleicht wurde die Anmeldung schon abgeschlossen, ist "
                              "abgelaufen oder wurde in einem anderen Browser begonnen."),
    Problem.WRONG_AUDIENCE: "Die Anmeldedaten sind für einen anderen Empfänger bestimmt.",
    Problem.WRONG_RECIPIENT: "Die Antwort ist an eine andere Adresse gerichtet.",
    Problem.EXPIRED: "Die Anmeldung ist abgelaufen oder noch nicht gültig.",
    Problem.REPLAYED: "Diese Anmeldung wurde bereits verwendet.",
    Problem.LEVEL_TOO_LOW: "Das Vertrauensniveau der Anmeldung reicht nicht aus.",
    Problem.MISSING_ATTRIBUTE: ("Es wurden nicht alle Angaben übermittelt, die für die Anmeldung "
                                "gebraucht werden."),
}


def message(problem: Problem) -> str:
    """The problem in the citizen's words, one German sentence naming neither side."""
    return _MESSAGES[problem]


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
    """The IdP answered with a signed error status (declined consent, cancelled, …): nobody is
    logged in, and the request is answered all the same."""

    def __init__(self, refusal: Refusal) -> None:
        super().__init__(refusal.sub_status or refusal.status)
        self.refusal = refusal


class ResponseParser(Protocol):
    """What :func:`check` needs of pysaml2: a ``Saml2Client`` with the IdP's metadata,
    ``only_use_keys_in_metadata``, ``want_response_signed``, ``want_assertions_signed``,
    ``allow_unsolicited: False``, and ``accepted_time_diff`` equal to
    :attr:`Expected.clock_skew`."""

    def parse_authn_request_response(self, xmlstr: Any, binding: Any,
                                     outstanding: Any = ...) -> Any: ...


@dataclass(frozen=True)
class Envelope:
    """A Response as it arrived, decoded within our bounds and parsed as untrusted XML; nothing
    in it is verified yet."""

    xml: bytes
    root: etree._Element

    @property
    def in_response_to(self) -> str | None:
        """The request it claims to answer, for the caller to look up (unverified)."""
        value = self.root.get("InResponseTo")
        return str(value) if value is not None else None


@dataclass(frozen=True, kw_only=True)
class Expected:
    """What the Response must say to be taken: from whom, to whom, answering which request."""

    # The IdP's entity ID, as its metadata names it: Issuer of Response and Assertion.
    issuer: str
    # Our entity ID: the Audience.
    audience: str
    # Our ACS: the Destination and the bearer confirmation's Recipient.
    acs_url: str
    # Our outstanding request's ID: InResponseTo of Response and bearer confirmation.
    request_id: str
    # The least level our request asked for (Comparison="minimum"): a weaker login is refused,
    # never taken silently.
    trust_level: int
    # AuthnContextClassRef → trust level; None for a class we do not know (refused).
    level_of: Callable[[str], int | None]
    # The attributes (Names) asked for as required: a login without a value for one is refused.
    required: tuple[str, ...] = ()
    # The IdP encrypts its assertions to us: a clear one is refused (it may have been read or
    # put there on the way).
    encrypted: bool = False
    # How far the IdP's clock may be from ours; the client's accepted_time_diff as well.
    clock_skew: timedelta = CLOCK_SKEW


@dataclass(frozen=True)
class AssertedLogin:
    """What the IdP vouches for in a verified Response."""

    name_id: str
    name_id_format: str
    name_qualifier: str | None
    sp_name_qualifier: str | None
    session_index: str | None
    # Attribute Name → values, Name → akdb:TrustLevel, Name → FriendlyName, as sent.
    attributes: dict[str, list[str]]
    attribute_trust: dict[str, str]
    friendly_names: dict[str, str]
    class_ref: str
    # The trust level of class_ref (Expected.level_of), at least the one asked for.
    level: int
    # AuthnInstant (None when missing or unreadable), the Response's IssueInstant, and the
    # IdP's SessionNotOnOrAfter if it sent one.
    authenticated_at: datetime | None
    issued_at: datetime
    session_until: datetime | None


@dataclass(frozen=True)
class VerifiedResponse:
    """A Response that passed every check: its login, and what the caller's replay cache keeps
    (the assertion's ID, until the assertion could no longer be accepted anyway)."""

    login: AssertedLogin
    assertion_id: str
    keep_until: datetime


def read_envelope(form: dict[str, list[str]]) -> Envelope:
    """The ``SAMLResponse`` of an HTTP-POST form, decoded and parsed within our bounds, with
    samlp:Response as its root; :class:`ResponseRejected` (MALFORMED) otherwise."""
    try:
        xml = decode_post(form, "SAMLResponse").xml
        root = parse_xml(xml)
    except (BindingError, RefusedDocument) as error:
        raise ResponseRejected(Problem.MALFORMED, str(error)) from None
    if root.tag != f"{{{SAMLP}}}Response":
        raise ResponseRejected(Problem.MALFORMED, f"root element is {root.tag}")
    return Envelope(xml, root)


def check(client: ResponseParser, envelope: Envelope, expected: Expected,
          now: datetime) -> VerifiedResponse:
    """The Response in ``envelope``, verified by ``client`` and checked against ``expected``.
    Raises :class:`ResponseRejected`, or :class:`LoginNotGranted` for the IdP's signed error
    status."""
    root = envelope.root
    clear = root.findall(f"{{{SAML}}}Assertion")
    # Both signed, whatever the client's configuration says: an unsigned assertion inside a
    # signed Response would be taken on the Response's word alone.
    if root.find(f"{{{DSIG}}}Signature") is None or any(
            assertion.find(f"{{{DSIG}}}Signature") is None for assertion in clear):
        raise ResponseRejected(Problem.UNSIGNED)
    if expected.encrypted and clear:
        raise ResponseRejected(Problem.UNENCRYPTED, f"{len(clear)} clear assertion(s)")
    return _checked(_parse(client, envelope, expected.request_id), expected, now)


def _parse(client: ResponseParser, envelope: Envelope, request_id: str) -> Any:
    """pysaml2's verification of the XML we decoded and bounded ourselves; its exceptions
    become our problems."""
    try:
        # No binding: pysaml2 takes the XML as it is. Told HTTP-POST, it first tries to inflate
        # the message, without a limit, and XML that is a DEFLATE stream as well grows ~1000-fold
        # (a 48 KiB answer to 48 MiB in memory).
        parsed = client.parse_authn_request_response(envelope.xml, None,
                                                     outstanding={request_id: "login"})
    except StatusError:
        # Raised only after the signature verified: the refusal is the IdP's own.
        raise LoginNotGranted(refusal_of(envelope.root)) from None
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


def refusal_of(root: etree._Element) -> Refusal:
    """The status of a (verified) Response without assertion."""
    code = root.find(f"{{{SAMLP}}}Status/{{{SAMLP}}}StatusCode")
    inner = code.find(f"{{{SAMLP}}}StatusCode") if code is not None else None
    status_message = root.find(f"{{{SAMLP}}}Status/{{{SAMLP}}}StatusMessage")
    details = root.findall(f"{{{SAMLP}}}Status/{{{SAMLP}}}StatusDetail//{{{AKDB_NAMESPACE}}}*")
    detail = next((" ".join("".join(element.itertext()).split()) for element in details
                   if "".join(element.itertext()).strip()), None)
    return Refusal(
        status=code.get("Value", "") if code is not None else "",
        sub_status=inner.get("Value") if inner is not None else None,
        message=(status_message.text or "").strip() or None
        if status_message is not None else None,
        detail=detail[:100] if detail else None)


def _instant(value: Any) -> datetime | None:
    return parse_instant(str(value)) if value else None


def _checked(parsed: Any, expected: Expected, now: datetime) -> VerifiedResponse:
    """Our checks on what pysaml2 verified."""
    response, assertion = parsed.response, parsed.assertion
    skew = expected.clock_skew
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
    # One assertion only: with two, which of them the signature vouches for is in doubt.
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
    # Without NotOnOrAfter an assertion would be good forever, and its replay never forgotten.
    if (not_before is not None and now + skew < not_before) or \
            not_on_or_after is None or now - skew >= not_on_or_after:
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
    level = expected.level_of(class_ref)
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
    login = AssertedLogin(
        name_id=subject_name.text.strip(), name_id_format=subject_name.format or "",
        name_qualifier=subject_name.name_qualifier,
        sp_name_qualifier=subject_name.sp_name_qualifier,
        session_index=statement.session_index, attributes=attributes, attribute_trust=trust,
        friendly_names=friendly_names, class_ref=class_ref, level=level,
        authenticated_at=_instant(statement.authn_instant), issued_at=issued,
        session_until=session_until)
    return VerifiedResponse(login, str(assertion.id),
                            max(not_on_or_after, confirmation_until) + skew)


def _bearer_confirmation(assertion: Any, expected: Expected, now: datetime) -> datetime:
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
        elif until is None or now - expected.clock_skew >= until:
            problems.append((Problem.EXPIRED, f"SubjectConfirmationData {data.not_on_or_after}"))
        else:
            return until
    problem, detail = problems[0] if problems else (Problem.MALFORMED, "no bearer confirmation")
    raise ResponseRejected(problem, detail)
