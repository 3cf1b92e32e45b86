"""Every answer of the test-control API against its OpenAPI 3.1 document (idp/testing/openapi.yaml).

OpenAPI 3.1 schemas are JSON Schema 2020-12: the document is registered as one resource, so that
its "#/components/…" references resolve, and each answer's body is validated against the schema
its operation and status document. An answer whose status the operation does not document fails.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import cache
from typing import Any

from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from idp.testing.api import PREFIX, openapi_document

DOCUMENT_URI = "urn:servicekonto:testing-api"
METHODS = ("get", "put", "post", "delete", "patch")


@dataclass(frozen=True)
class Operation:
    method: str
    template: str
    pattern: re.Pattern[str]


def _pointer(*parts: str) -> str:
    return "/".join(part.replace("~", "~0").replace("/", "~1") for part in parts)


@cache
def _registry() -> Registry[Any]:
    resource = Resource.from_contents(openapi_document(), default_specification=DRAFT202012)
    return Registry().with_resource(DOCUMENT_URI, resource)


def operations() -> list[Operation]:
    """Every (method, path template) the document describes, paths with the API's prefix."""
    found = []
    for template, item in openapi_document()["paths"].items():
        regex = re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(template))
        for method in METHODS:
            if method in item:
                found.append(Operation(method, template, re.compile(f"^{PREFIX}{regex}$")))
    return found


def _resolve(node: dict[str, Any]) -> tuple[dict[str, Any], str]:
    """An OpenAPI object behind its "$ref" (responses are not JSON Schema), and its pointer."""
    pointer = ""
    while "$ref" in node:
        pointer = node["$ref"].removeprefix("#")
        node = openapi_document()
        for part in pointer.strip("/").split("/"):
            node = node[part.replace("~1", "/").replace("~0", "~")]
    return node, pointer


def check_answer(method: str, path: str, status: int, content_type: str, body: bytes) -> None:
    """Fail (AssertionError) unless the document allows this answer."""
    method = method.lower()
    matching = [op for op in operations() if op.pattern.match(path)]
    if not any(op.method == method for op in matching):
        # A path or method the API does not have: still the API's JSON refusal.
        assert status in (401, 403, 404, 405), (method, path, status)
        _validate(json.loads(body), "#/components/schemas/Error")
        return
    operation = next(op for op in matching if op.method == method)
    responses = openapi_document()["paths"][operation.template][method]["responses"]
    assert str(status) in responses, (
        f"{method.upper()} {operation.template} answered {status}, which the document does "
        f"not describe (it describes {', '.join(responses)})")
    response, pointer = _resolve(responses[str(status)])
    if not pointer:
        pointer = "/" + _pointer("paths", operation.template, method, "responses", str(status))
    if "content" not in response:
        assert body == b"", f"{status} must have no body, got {body[:200]!r}"
        return
    assert content_type.startswith("application/json"), content_type
    _validate(json.loads(body), f"#{pointer}/content/application~1json/schema")


def _validate(instance: Any, pointer: str) -> None:
    schema = {"$ref": f"{DOCUMENT_URI}{pointer}"}
    Draft202012Validator(schema, registry=_registry(),
                         format_checker=Draft202012Validator.FORMAT_CHECKER).validate(instance)
