"""The SAML tracer: every SAML message in and out, kept in the database for the page
``/entwicklung/saml/`` and ``GET /testing/api/saml/messages`` (docs/qa-workbench.md, "The SAML
tracer"). Development only: :func:`idp.testing.workbench.init_app` installs a
:class:`DatabaseTracer` as the SAML runtime's ``trace``; in production it is None.

Recording must never change a login: each message is written in a transaction of its own, on a
connection of its own (never the flow's session, whose commits and rollbacks are the flow's),
and a failure is logged and swallowed. The flows commit each of their writes at once
(idp/saml/state.py), so when they tell the tracer they hold no write lock that would keep
SQLite from taking this write.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from flask import Flask
from lxml import etree  # type: ignore[import-untyped]  # no stubs installed
from sqlalchemy import delete, select
from sqlalchemy.orm import Session, sessionmaker

from idp.config import Config
from idp.container import app_parts
from idp.db import Database
from idp.portals.registry import PortalRegistry
from idp.saml.workbench_hooks import TracedMessage
from idp.testing.errors import WorkbenchError
from idp.testing.portal_names import registered_portal
from idp.testing.records import instant
from idp.testing.trace_models import TracedSamlMessage

log = logging.getLogger(__name__)

# What one page or API call shows at most.
MESSAGES_MAX = 500
# A fingerprint long enough to tell a handful of test browsers apart, too short to be worth
# anything else (and keyed: it cannot be computed without the app's secret).
FINGERPRINT_HEX = 12


def browser_fingerprint(secret_key: str, session_id: str | None) -> str | None:
    """What the tracer keeps of a browser's session id: 12 hex digits of an HMAC-SHA256 under
    the app's secret. The session id itself is a credential and never stored or shown."""
    if not session_id:
        return None
    digest = hmac.new(secret_key.encode("utf-8"), b"saml-tracer\x00" +
                      session_id.encode("utf-8", "surrogatepass"), hashlib.sha256)
    return digest.hexdigest()[:FINGERPRINT_HEX]


@dataclass(frozen=True)
class Retention:
    """How many messages the tracer keeps, and for how long (by the IdP's clock)."""

    messages: int
    age: timedelta


class DatabaseTracer:
    """A :class:`idp.saml.workbench_hooks.Tracer` that keeps the messages in the database, so
    that every worker's messages show on one page; the oldest are pruned at each write."""

    def __init__(self, sessions: sessionmaker[Session], registry: PortalRegistry,
                 secret_key: str, retention: Retention) -> None:
        self._sessions = sessions
        self._registry = registry
        self._secret_key = secret_key
        self._retention = retention

    def record(self, message: TracedMessage, now: datetime) -> None:
        try:
            with self._sessions.begin() as session:
                self._write(session, message, now)
        except Exception:  # whatever it is, the login goes on without its trace
            log.warning("SAML tracer: %s %s not recorded", message.direction, message.kind,
                        exc_info=True)

    def _write(self, session: Session, message: TracedMessage, now: datetime) -> None:
        session.add(TracedSamlMessage(
            recorded_at=now, direction=message.direction[:3], kind=message.kind[:40],
            binding=message.binding[:20],
            portal_entity_id=message.portal[:1024] if message.portal else None,
            portal_name=self._name_of(message.portal),
            browser=browser_fingerprint(self._secret_key, message.browser_session),
            xml=message.xml, signature=message.signature,
            checks=json.dumps(list(message.checks), ensure_ascii=False),
            decision=message.decision, fault=message.fault[:64] if message.fault else None))
        session.flush()
        prune(session, now, self._retention)

    def _name_of(self, entity_id: str | None) -> str | None:
        """The portal's name in the registry (also a disabled one's); None if it has none."""
        if entity_id is None:
            return None
        return next((portal.name for portal in self._registry.portals()
                     if portal.entity_id == entity_id), None)


def database_tracer(app: Flask) -> DatabaseTracer:
    """The tracer of a development IdP: its database, its registry, its secret and the
    retention its settings give (``IDP_TRACE_KEEP_MESSAGES``, ``IDP_TRACE_KEEP_HOURS``)."""
    config: Config = app.config["SERVICEKONTO"]
    return DatabaseTracer(Database.bound(app).sessionmaker, app_parts(app).saml.registry,
                          config.secret_key,
                          Retention(config.trace_keep_messages,
                                    timedelta(hours=config.trace_keep_hours)))


def prune(session: Session, now: datetime, retention: Retention) -> None:
    """Delete the messages older than the retention's age and all but its newest count."""
    session.execute(delete(TracedSamlMessage).where(
        TracedSamlMessage.recorded_at < now - retention.age))
    # The id of the oldest message to keep (None while there are fewer: nothing goes).
    oldest_kept = select(TracedSamlMessage.id).order_by(TracedSamlMessage.id.desc()) \
        .offset(retention.messages - 1).limit(1).scalar_subquery()
    session.execute(delete(TracedSamlMessage).where(TracedSamlMessage.id < oldest_kept))


def newest_messages(session: Session, limit: int, portal_entity_id: str | None = None,
                    browser: str | None = None) -> list[TracedSamlMessage]:
    """The newest ``limit`` messages (at most :data:`MESSAGES_MAX`), newest first; only those
    of one portal (by entity ID) or one browser (by fingerprint) if given."""
    query = select(TracedSamlMessage).order_by(TracedSamlMessage.id.desc()) \
        .limit(max(1, min(limit, MESSAGES_MAX)))
    if portal_entity_id is not None:
        query = query.where(TracedSamlMessage.portal_entity_id == portal_entity_id)
    if browser is not None:
        query = query.where(TracedSamlMessage.browser == browser)
    return list(session.scalars(query))


def traced_messages(session: Session, registry: PortalRegistry, portal_name: str | None,
                    limit: int) -> list[dict[str, Any]]:
    """The newest ``limit`` messages as records, newest first; of the portal registered as
    ``portal_name`` only, if given (:class:`NotFound` if there is none)."""
    if not 1 <= limit <= MESSAGES_MAX:
        raise WorkbenchError(f"limit muss eine Zahl von 1 bis {MESSAGES_MAX} sein.")
    entity_id = None
    if portal_name is not None:
        entity_id = registered_portal(registry, portal_name).entity_id
    return [message_record(message)
            for message in newest_messages(session, limit, entity_id)]


def checks_of(message: TracedSamlMessage) -> list[str]:
    checks: list[str] = json.loads(message.checks)
    return checks


def message_record(message: TracedSamlMessage) -> dict[str, Any]:
    """A message as the test-control API answers it (the XML as it travelled)."""
    return {"id": message.id, "time": instant(message.recorded_at),
            "direction": message.direction, "kind": message.kind, "binding": message.binding,
            "portal": message.portal_name, "portal_entity_id": message.portal_entity_id,
            "browser": message.browser, "signature": message.signature,
            "checks": checks_of(message), "decision": message.decision, "fault": message.fault,
            "xml": message.xml}


def pretty_xml(xml: str) -> str:
    """``xml`` indented for reading; as it is if it does not parse. Parsed without DTDs,
    entities or network: a message is untrusted input, also on this page."""
    if not xml.strip() or "<!DOCTYPE" in xml or "<!ENTITY" in xml:
        return xml
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False,
                             huge_tree=False, remove_blank_text=True)
    try:
        root = etree.fromstring(xml.encode("utf-8"), parser)
    except (etree.XMLSyntaxError, ValueError):
        return xml
    return str(etree.tostring(root, pretty_print=True, encoding="unicode"))
