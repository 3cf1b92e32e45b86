"""The endpoints of the test-control API: each parses its request, calls one service of
:mod:`idp.testing` and answers JSON. Described in ``openapi.yaml`` (same order)."""

from __future__ import annotations

from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any

from flask import Response, request

from idp.clock import utcnow
from idp.db import db
from idp.security.throttle import Throttle
from idp.testing import citizens, clock_store, records
from idp.testing.api import answer, api, json_object
from idp.testing.errors import WorkbenchError
from idp.testing.personas import persona_spec
from idp.web.context import accounts, services

MAILS_LIMIT = 50


def _throttle() -> Throttle:
    return services().throttle(db.session)


# --- citizens ------------------------------------------------------------------------------

@api.post("/citizens")
def create_citizen() -> Response:
    body = json_object()
    spec = _persona_spec(body) if "persona" in body else citizens.spec_from_fields(body)
    created = citizens.create_citizen(accounts(), _throttle(), spec)
    return answer(asdict(created), 201)


def _persona_spec(body: dict[str, Any]) -> citizens.CitizenSpec:
    """``{"persona": NAME}``, optionally with ``"activated"``."""
    name, activated = body["persona"], body.get("activated")
    if not isinstance(name, str) or set(body) - {"persona", "activated"} or (
            activated is not None and not isinstance(activated, bool)):
        raise WorkbenchError("Mit „persona“ (dem Namen einer Persona) ist nur noch "
                             "„activated“ (true oder false) erlaubt.")
    return persona_spec(services().config.policy_dir, services().policy, name, activated)


@api.delete("/citizens/<username>")
def delete_citizen(username: str) -> Response:
    citizens.delete_citizen(accounts(), _throttle(), username)
    return Response(status=204)


@api.delete("/citizens/<username>/consents")
def revoke_consents(username: str) -> Response:
    return answer({"revoked": citizens.revoke_consents(db.session, username, utcnow())})


@api.post("/citizens/<username>/unlock")
def unlock(username: str) -> Response:
    citizens.unlock(db.session, _throttle(), username)
    return Response(status=204)


@api.delete("/citizens/<username>/sessions")
def end_sessions(username: str) -> Response:
    return answer({"ended": citizens.end_sessions(db.session, username)})


# --- mails ---------------------------------------------------------------------------------

@api.get("/mails")
def mails() -> Response:
    limit = request.args.get("limit", str(MAILS_LIMIT))
    if not limit.isdecimal() or not limit.isascii():
        raise WorkbenchError("limit muss eine ganze Zahl sein.")
    return answer({"mails": records.mails_to_address(db.session, request.args.get("to", ""),
                                                     int(limit))})


# --- the clock -----------------------------------------------------------------------------

@api.get("/clock")
def clock() -> Response:
    return answer(records.clock_record(clock_store.current(db.session)))


@api.put("/clock")
def move_clock() -> Response:
    body = json_object()
    if set(body) != {"offset_seconds"}:
        raise WorkbenchError("Erwartet wird genau {\"offset_seconds\": SEKUNDEN}.")
    return answer(records.clock_record(clock_store.set_offset(
        db.session, body["offset_seconds"], datetime.now(UTC))))


@api.delete("/clock")
def reset_clock() -> Response:
    return answer(records.clock_record(clock_store.reset_offset(db.session)))
