"""Where the QA workbench looks into single sign-on and single logout (development only).

Two hooks on :class:`idp.saml.runtime.SamlRuntime`, both None in production (the flows then
spend nothing on them):

- a :class:`Tracer` is told every SAML message in and out, with the checks made on it and what
  was decided (the SAML tracer, docs/qa-workbench.md);
- a :class:`FaultInjector` may answer a portal's login with a deliberately broken Response
  instead of the right one (fault injection, docs/qa-workbench.md), to test that the portal
  refuses it.

The flows call them; what they do is :mod:`idp.testing`'s, registered only when
``IDP_ENV=development``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from idp.saml.messages import ParsedAuthnRequest
from idp.saml.response import (
    AttributeRelease,
    Authentication,
    EncryptionKey,
    Recipient,
    ResponseBuilder,
    Signing,
)

IN, OUT = "in", "out"
REDIRECT, POST = "HTTP-Redirect", "HTTP-POST"


@dataclass(frozen=True)
class TracedMessage:
    """One SAML message as the tracer keeps it."""

    direction: str  # IN or OUT
    kind: str  # "AuthnRequest", "Response", "LogoutRequest", "LogoutResponse"
    binding: str  # REDIRECT or POST
    # The portal's entity ID (None when the message names none we know).
    portal: str | None
    # The message as it travelled, decoded (never a key, never a password: SAML carries none).
    xml: str
    # The browser's server-side session (the recorder keeps only a fingerprint of it).
    browser_session: str | None
    # What became of the message's signature, in words ("gültig (Redirect-Binding)", …).
    signature: str
    # The checks made on it, in order, each in words.
    checks: tuple[str, ...]
    # What was decided: accepted, refused and why, answered with which status and data.
    decision: str
    # The fault injected into it (outgoing Responses only).
    fault: str | None = None


class Tracer(Protocol):
    def record(self, message: TracedMessage, now: datetime) -> None: ...


@dataclass
class Inspection:
    """What the checks found out about an incoming message, also when they refused it: the
    Issuer, the signature's verdict and the checks passed, in words (for the tracer; filled in
    by :func:`idp.saml.flow.check_request` and the logout checks)."""

    issuer: str | None = None
    signature: str = "keine Signatur"
    checks: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class PlannedAnswer:
    """The successful Response the flow is about to build for a portal, as its parts."""

    request: ParsedAuthnRequest
    recipient: Recipient
    name_id: str
    name_id_format: str
    released: Sequence[AttributeRelease]
    # The FriendlyName-independent Names of the attributes the request cannot do without.
    required: tuple[str, ...]
    authentication: Authentication
    signing: Signing
    encryption: EncryptionKey | None
    now: datetime


@dataclass(frozen=True)
class InjectedFault:
    """A broken answer in place of the right one."""

    fault: str
    xml: str


class FaultInjector(Protocol):
    def inject(self, portal: str, planned: PlannedAnswer,
               builder: ResponseBuilder) -> InjectedFault | None:
        """The broken answer for ``portal`` if a fault waits for it (taking one of its count),
        else None."""

    def answered(self, portal: str, xml: str) -> None:
        """The right answer (with an assertion) just went to ``portal``."""
