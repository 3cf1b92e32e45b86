"""A development IdP with the shipped personas and a test-control API token, and a client of
the API that checks every answer against the OpenAPI document."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from idp.config import PROJECT_ROOT
from tests.integration.testing.openapi_check import check_answer

TOKEN = "qa-token-" + "k" * 40


@pytest.fixture
def settings(settings: dict[str, Any], policy_dir: Path) -> dict[str, Any]:
    """The test IdP's settings with the API's token and the shipped personas."""
    shutil.copytree(PROJECT_ROOT / "policies" / "personas", policy_dir / "personas")
    return settings | {"testing_api_token": TOKEN}


@dataclass
class Api:
    """The test-control API as a QA script calls it; every answer is checked against the
    OpenAPI document before the test sees it."""

    client: FlaskClient
    token: str | None = TOKEN

    def call(self, method: str, path: str, body: Any = None, **kwargs: Any) -> TestResponse:
        headers = dict(kwargs.pop("headers", {}))
        if self.token is not None:
            headers.setdefault("Authorization", f"Bearer {self.token}")
        if body is not None:
            kwargs["json"] = body
        response = self.client.open(f"/testing/api{path}", method=method, headers=headers,
                                    **kwargs)
        check_answer(method, response.request.path, response.status_code,
                     response.content_type or "", response.get_data())
        return response

    def get(self, path: str, **kwargs: Any) -> TestResponse:
        return self.call("GET", path, **kwargs)

    def post(self, path: str, body: Any = None, **kwargs: Any) -> TestResponse:
        return self.call("POST", path, body, **kwargs)

    def put(self, path: str, body: Any = None, **kwargs: Any) -> TestResponse:
        return self.call("PUT", path, body, **kwargs)

    def delete(self, path: str, **kwargs: Any) -> TestResponse:
        return self.call("DELETE", path, **kwargs)


@pytest.fixture
def api(app: Flask) -> Api:
    return Api(app.test_client())
