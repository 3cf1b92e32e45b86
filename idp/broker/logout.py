"""Single logout with an upstream (docs/broker.md, "Single logout"). No Flask here.

- **Ours first, then the upstream's**: when a session that logged in through an upstream ends
  (our "Abmelden", or a portal's LogoutRequest), the portals are told as always; then, before
  our last page or the answer to the portal that asked, the browser takes our signed
  LogoutRequest to the upstream, whose LogoutResponse comes back to ``/extern/slo``. What was
  to happen then waits server-side with the request (``BrokerRequest.after``).
- **The upstream's first**: its LogoutRequest at ``/extern/slo`` ends our session of the
  account it names and the portals are told; the upstream gets its LogoutResponse at the end.

Both directions check the upstream's messages with the kit (:mod:`idp.samlkit.sp_logout`).
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from cryptography import x509
from saml2 import BINDING_HTTP_POST, BINDING_HTTP_REDIRECT
from saml2.saml import NAMEID_FORMAT_PERSISTENT, Issuer, NameID
from saml2.samlp import LogoutRequest, Status, StatusCode
from sqlalchemy import update
from sqlalchemy.orm import Session

from idp.broker.models import BrokerRequest
from idp.broker.sp import SIGN_ALG, UpstreamClients
from idp.broker.upstreams import Upstream
from idp.consent.attributes import UPSTREAM_KEY
from idp.samlkit import sp_logout
from idp.samlkit.bindings import IncomingMessage
from idp.samlkit.untrusted_xml import RefusedDocument, parse_xml

# The upstream's part of a session's identity (idp.broker.views: set at login).
NAME_ID_KEY = "upstream_name_id"
SESSION_INDEX_KEY = "upstream_session_index"
# The upstream has this long to answer our LogoutRequest.
LOGOUT_LIFETIME = timedelta(minutes=5)
SAML = "urn:oasis:names:tc:SAML:2.0:assertion"
STATUS_SUCCESS = "urn:oasis:names:tc:SAML:2.0:status:Success"
STATUS_RESPONDER = "urn:oasis:names:tc:SAML:2.0:status:Responder"
STATUS_PARTIAL = "urn:oasis:names:tc:SAML:2.0:status:PartialLogout"
STATUS_UNKNOWN_PRINCIPAL = "urn:oasis:names:tc:SAML:2.0:status:UnknownPrincipal"


def upstream_login(identity: Mapping[str, str] | None) -> dict[str, str] | None:
    """The upstream login a session's identity records (name, NameID, SessionIndex), if any."""
    if identity is None or UPSTREAM_KEY not in identity or NAME_ID_KEY not in identity:
        return None
    return {"upstream": identity[UPSTREAM_KEY], "name_id": identity[NAME_ID_KEY],
            "session_index": identity.get(SESSION_INDEX_KEY, "")}


@dataclass(frozen=True)
class Outgoing:
    """A message to the upstream: a redirect to ``url``, or a form POSTed to ``url``."""

    url: str
    fields: tuple[tuple[str, str], ...] = ()


def request_logout(session: Session, clients: UpstreamClients, upstream: Upstream,
                   login: Mapping[str, str], after: dict[str, Any],
                   now: datetime) -> Outgoing | None:
    """Our signed LogoutRequest for the upstream login, on the Redirect binding of the
    upstream's metadata; ``after`` (JSON) waits with it. None when the upstream has no
    Redirect SingleLogoutService (it is then not told)."""
    client = clients.client(upstream, now)
    services = client.metadata.single_logout_service(upstream.entity_id, BINDING_HTTP_REDIRECT,
                                                     "idpsso")
    if not services:
        return None
    destination = services[0]["location"]
    request_id, request = client.create_logout_request(
        destination, upstream.entity_id,
        name_id=NameID(format=NAMEID_FORMAT_PERSISTENT, text=login["name_id"]),
        session_indexes=[login["session_index"]] if login.get("session_index") else None,
        sign=False)
    # The RelayState binds the answer to this request (the session has ended already).
    token = secrets.token_urlsafe(24)
    info = client.apply_binding(BINDING_HTTP_REDIRECT, str(request), destination, token,
                                sign=True, sigalg=SIGN_ALG)
    session.add(BrokerRequest(
        request_id=request_id, upstream=upstream.name, browser_session_hash=_hash(token),
        reference=None, requested_level=0, created_at=now, expires_at=now + LOGOUT_LIFETIME,
        after=json.dumps(after)))
    session.commit()
    return Outgoing(dict(info["headers"])["Location"])


def receive_logout_response(session: Session, clients: UpstreamClients,
                            upstream_named: Callable[[str], Upstream | None],
                            message: IncomingMessage, now: datetime) -> dict[str, Any]:
    """The upstream's answer to our LogoutRequest: what was to happen after it. Raises
    :class:`sp_logout.LogoutRefused` for an answer we cannot trust or did not wait for."""
    waiting = _pending(session, _in_response_to(message), now)
    if waiting is None or _hash(message.relay_state or "") != waiting.browser_session_hash:
        raise sp_logout.LogoutRefused("answers no logout request of ours")
    upstream = upstream_named(waiting.upstream)
    if upstream is None:
        raise sp_logout.LogoutRefused(f"upstream {waiting.upstream} is gone")
    sp_logout.read_logout_response(clients.client(upstream, now), message,
                                   _expected(clients, upstream, now), now)
    used = session.execute(update(BrokerRequest).where(
        BrokerRequest.request_id == waiting.request_id, BrokerRequest.used_at.is_(None)).values(
        used_at=now))
    session.commit()
    if used.rowcount != 1:  # type: ignore[attr-defined]
        raise sp_logout.LogoutRefused("answered already")
    after: dict[str, Any] = json.loads(waiting.after or "{}")
    return after


@dataclass(frozen=True)
class UpstreamOrder:
    """An upstream's checked LogoutRequest and the upstream it came from."""

    upstream: Upstream
    order: sp_logout.LogoutOrder

    def as_initiator(self) -> dict[str, str]:
        """What the answer at the end of our logout needs (kept with the chain as JSON)."""
        order = self.order
        return {"upstream": self.upstream.name, "request_id": order.message.id,
                "relay_state": order.relay_state or "", "binding": order.binding}


def receive_logout_request(clients: UpstreamClients,
                           upstream_by_entity: Callable[[str], Upstream | None],
                           message: IncomingMessage, now: datetime) -> UpstreamOrder:
    """An upstream's LogoutRequest, checked; :class:`sp_logout.LogoutRefused` otherwise."""
    upstream = upstream_by_entity(_issuer(message))
    if upstream is None:
        raise sp_logout.LogoutRefused("not from an upstream of ours")
    order = sp_logout.read_logout_request(clients.client(upstream, now), message,
                                          _expected(clients, upstream, now), now)
    return UpstreamOrder(upstream, order)


def answer_upstream(clients: UpstreamClients, upstream: Upstream, initiator: Mapping[str, str],
                    status: str, sub_status: str | None, now: datetime) -> Outgoing:
    """Our signed LogoutResponse to the upstream's LogoutRequest, over the binding it came by,
    to the upstream's SingleLogoutService from its metadata."""
    client = clients.client(upstream, now)
    binding = initiator["binding"]
    services = client.metadata.single_logout_service(upstream.entity_id, binding, "idpsso")
    if not services:
        raise sp_logout.LogoutRefused(f"the upstream has no SingleLogoutService for {binding}")
    destination = services[0].get("response_location") or services[0]["location"]
    inner = StatusCode(value=sub_status) if sub_status else None
    # The request as pysaml2 needs it to address the answer (its ID and Issuer).
    request = LogoutRequest(id=initiator["request_id"], issuer=Issuer(text=upstream.entity_id))
    response = client.create_logout_response(
        request, bindings=[binding],
        status=Status(status_code=StatusCode(value=status, status_code=inner)),
        sign=binding == BINDING_HTTP_POST, sign_alg=SIGN_ALG)
    relay_state = initiator.get("relay_state") or ""
    if binding == BINDING_HTTP_REDIRECT:
        info = client.apply_binding(binding, str(response), destination, relay_state,
                                    response=True, sign=True, sigalg=SIGN_ALG)
        return Outgoing(dict(info["headers"])["Location"])
    fields = [("SAMLResponse", base64.b64encode(str(response).encode()).decode("ascii"))]
    if relay_state:
        fields.append(("RelayState", relay_state))
    return Outgoing(destination, tuple(fields))


def certificates(clients: UpstreamClients, upstream: Upstream,
                 now: datetime) -> list[x509.Certificate]:
    """The upstream's signing certificates from its metadata (for Redirect signatures)."""
    return sp_logout.idp_signing_certificates(clients.client(upstream, now), upstream.entity_id)


def _expected(clients: UpstreamClients, upstream: Upstream, now: datetime) -> sp_logout.Expected:
    return sp_logout.Expected(issuer=upstream.entity_id,
                              certificates=certificates(clients, upstream, now),
                              slo_url=lambda _binding: clients.endpoints.slo_url)


def _issuer(message: IncomingMessage) -> str:
    try:
        root = parse_xml(message.xml)
    except RefusedDocument:
        return ""
    issuer = root.find(f"{{{SAML}}}Issuer")
    return (issuer.text or "").strip() if issuer is not None else ""


def _in_response_to(message: IncomingMessage) -> str | None:
    try:
        value = parse_xml(message.xml).get("InResponseTo")
    except RefusedDocument:
        return None
    return str(value) if value is not None else None


def _pending(session: Session, request_id: str | None, now: datetime) -> BrokerRequest | None:
    if not request_id or len(request_id) > 64:
        return None
    found = session.get(BrokerRequest, request_id)
    if found is None or found.used_at is not None or found.expires_at <= now \
            or found.after is None:
        return None
    return found


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()
