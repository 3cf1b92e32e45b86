"""The test-control API's plumbing: the blueprint, the bearer token, JSON in and out, errors.

Every answer is JSON; every refusal is ``{"error": "<German message>"}`` (with ``fields`` when
input fields were refused) and its status code, also for paths and methods the API does not
have. The endpoints are in :mod:`idp.testing.views` (one function each), described in
``openapi.yaml`` beside this file; docs/qa-workbench.md shows them with curl.
"""

from __future__ import annotations

import hmac
import json
import logging
from functools import cache
from pathlib import Path
from typing import Any

import yaml
from flask import Blueprint, Response, current_app, request
from sqlalchemy.exc import OperationalError
from werkzeug.exceptions import HTTPException

from idp.config import Config
from idp.testing.errors import WorkbenchError
from idp.web.errors import MESSAGES

log = logging.getLogger(__name__)

PREFIX = "/testing/api"
api = Blueprint("testing_api", __name__, url_prefix=PREFIX)
OPENAPI_FILE = Path(__file__).with_name("openapi.yaml")

NO_TOKEN = ("Die Test-Schnittstelle ist gesperrt, weil kein Token eingerichtet ist: "
            "IDP_TESTING_API_TOKEN setzen (docs/qa-workbench.md).")
BAD_TOKEN = ("Für die Test-Schnittstelle ist ein gültiges Token nötig: "
             "Authorization: Bearer <IDP_TESTING_API_TOKEN>.")
NOT_AN_OBJECT = "Der Anfragekörper muss ein JSON-Objekt sein."


def answer(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    """A JSON answer (UTF-8, German text as it is)."""
    response = Response(json.dumps(body, ensure_ascii=False), status=status,
                        mimetype="application/json", headers=headers)
    # Answers hold passwords and links: never kept by a cache.
    response.headers["Cache-Control"] = "no-store"
    return response


def refusal(status: int, message: str, fields: dict[str, list[str]] | None = None,
            headers: dict[str, str] | None = None) -> Response:
    body: dict[str, Any] = {"error": message}
    if fields:
        body["fields"] = fields
    return answer(body, status, headers)


def json_object() -> dict[str, Any]:
    """The request's body as a JSON object; :class:`WorkbenchError` (400) otherwise."""
    body = request.get_json(force=True, silent=True)
    if not isinstance(body, dict):
        raise WorkbenchError(NOT_AN_OBJECT)
    return body


def _unauthorised() -> Response | None:
    """None if the request carries the configured token; else the refusal."""
    config: Config = current_app.config["SERVICEKONTO"]
    if not config.testing_api_token:
        return refusal(403, NO_TOKEN)
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    # Constant time: the comparison must not tell how much of a guessed token was right.
    if scheme.lower() != "bearer" or not hmac.compare_digest(
            token.strip().encode(), config.testing_api_token.encode()):
        return refusal(401, BAD_TOKEN, headers={
            "WWW-Authenticate": 'Bearer realm="servicekonto-testing"'})
    return None


@api.before_request
def _authorise() -> Response | None:
    return _unauthorised()


def unrouted() -> Response | None:
    """Paths and methods the API does not have: JSON too, and only after the token (a caller
    without it learns nothing of the API). Runs for every request of the app."""
    error = request.routing_exception
    if not (request.path == PREFIX or request.path.startswith(PREFIX + "/")):
        return None
    if not isinstance(error, HTTPException) or error.code is None or error.code < 400:
        return None
    return _unauthorised() or _http_error(error)


@api.errorhandler(WorkbenchError)
def _workbench_error(error: WorkbenchError) -> Response:
    return refusal(error.status, error.message, error.fields)


@api.errorhandler(HTTPException)
def _http_error(error: HTTPException) -> Response:
    code = error.code or 500
    title, message = MESSAGES.get(code, MESSAGES[400 if code < 500 else 500])
    # Keep the headers the error defines (Allow on 405).
    headers = {name: value for name, value in error.get_headers()
               if name.lower() != "content-type"}
    return refusal(code, f"{title}: {message}", headers=headers)


@api.errorhandler(OperationalError)
def _database_away(error: OperationalError) -> Response:
    log.error("database unavailable", exc_info=error)
    return refusal(503, " ".join(MESSAGES[503]), headers={"Retry-After": "30"})


@api.errorhandler(Exception)
def _unexpected(error: Exception) -> Response:
    # A defect: logged with its traceback; the caller gets JSON, not an HTML page.
    log.error("testing API failed", exc_info=error)
    return refusal(500, " ".join(MESSAGES[500]))


@cache
def openapi_document() -> dict[str, Any]:
    """The OpenAPI 3.1 description of the API (``openapi.yaml``), read once."""
    document: dict[str, Any] = yaml.safe_load(OPENAPI_FILE.read_text(encoding="utf-8"))
    return document


@api.get("/openapi.json")
def openapi() -> Response:
    config: Config = current_app.config["SERVICEKONTO"]
    return answer(openapi_document() | {"servers": [{"url": config.base_url + PREFIX}]})
