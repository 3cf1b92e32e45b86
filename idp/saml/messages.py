"""What the SAML adapter (:mod:`idp.saml.server`) hands out and takes: checked, typed messages.

pysaml2's objects never leave the adapter; the flows (:mod:`idp.saml.flow`, :mod:`idp.saml.logout`)
and the views see only these.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from idp.saml.akdb import AuthenticationRequest

STATUS_SUCCESS = "urn:oasis:names:tc:SAML:2.0:status:Success"
STATUS_REQUESTER = "urn:oasis:names:tc:SAML:2.0:status:Requester"
STATUS_RESPONDER = "urn:oasis:names:tc:SAML:2.0:status:Responder"
LOGOUT_REASON_USER = "urn:oasis:names:tc:SAML:2.0:logout:user"


class RequestRejected(ValueError):
    """The request cannot be answered at all (no portal to answer to); show an error page.

    ``str(error)`` is for the log; the citizen sees a German page.
    """


class WrongVersion(RequestRejected):
    """A known portal sent a message of another SAML version: it is answered VersionMismatch
    (SAML core §3.2.2.2) at its ACS from metadata, not with an error page."""

    def __init__(self, issuer: str, request_id: str | None, version: str | None) -> None:
        super().__init__(f"SAML version {version!r} from {issuer!r}")
        self.issuer = issuer
        self.request_id = request_id


@dataclass(frozen=True)
class ParsedAuthnRequest:
    """What we need of an AuthnRequest, checked and typed."""

    request_id: str
    issuer: str
    issue_instant: datetime
    destination: str | None
    # From the portal's metadata, never from the request alone (docs/architecture.md, pysaml2
    # trap 2: the ACS URL).
    acs_url: str
    acs_binding: str
    force_authn: bool
    is_passive: bool
    name_id_format: str | None
    allow_create: bool
    requested_contexts: tuple[str, ...] = ()
    comparison: str = "exact"
    signed: bool = False
    # The BundID extension as found (docs/architecture.md, "The akdb:AuthenticationRequest
    # extension"); idp.saml.sso.receive drops it (and a problem reading it) from unsigned
    # requests, which are answered as plain ones.
    akdb: AuthenticationRequest | None = None
    akdb_problem: str | None = None
    # IdP-initiated: no request behind it, the answer carries no InResponseTo.
    unsolicited: bool = False
    # The principal a <Subject> names (SAML profiles §4.1.4.1): the answer must be about that
    # citizen or be an error. A Subject without a NameID we can read has name_id "".
    subject: RequestedSubject | None = None


@dataclass(frozen=True)
class RequestedSubject:
    """The NameID of an AuthnRequest's <Subject>, as the portal knows the citizen."""

    name_id: str
    name_id_format: str | None = None


@dataclass(frozen=True)
class LogoutSubject:
    """Whom a LogoutRequest is about: the NameID as the portal knows it."""

    name_id: str
    name_id_format: str | None = None
    name_qualifier: str | None = None
    sp_name_qualifier: str | None = None


@dataclass(frozen=True)
class ParsedLogoutRequest:
    """What we need of a portal's LogoutRequest, checked and typed."""

    request_id: str
    issuer: str
    destination: str
    subject: LogoutSubject
    session_indexes: tuple[str, ...]
    # An embedded XML signature was present and verified with the portal's key from metadata.
    signed: bool


@dataclass(frozen=True)
class ParsedLogoutResponse:
    """A portal's answer to our LogoutRequest, checked and typed."""

    issuer: str
    in_response_to: str | None
    status: str
    sub_status: str | None
    signed: bool
    # Our SLO endpoint when given (checked), None when the response names none.
    destination: str | None = None


@dataclass(frozen=True)
class OutgoingMessage:
    """A SAML message on its way through the browser to ``url``.

    HTTP-Redirect: ``url`` is the whole signed address. HTTP-POST: ``url`` is the form's action
    and ``fields`` its hidden fields (SAMLRequest or SAMLResponse, RelayState).
    """

    binding: str
    url: str
    fields: tuple[tuple[str, str], ...] = ()

