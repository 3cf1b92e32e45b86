"""Who may use the test-control API, where it exists at all, and how it refuses."""

from __future__ import annotations

import re
from typing import Any

import pytest
from flask import Flask

from idp.config import ConfigError, load_config
from idp.testing.api import PREFIX, openapi_document
from tests.conftest import app_with
from tests.integration.testing.conftest import Api
from tests.integration.testing.openapi_check import operations

PRODUCTION = {"environment": "production", "base_url": "https://servicekonto.test",
              "mail_server": "mail.invalid", "testing_api_token": ""}


def test_a_production_idp_has_no_test_control_api_at_all(settings: dict[str, Any]) -> None:
    with app_with(settings, **PRODUCTION) as production:
        client = production.test_client()
        for path in ("/clock", "/openapi.json", "/citizens/ErikaM/sessions"):
            response = client.get(PREFIX + path, base_url="https://servicekonto.test",
                                  headers={"Authorization": "Bearer anything"})
            assert response.status_code == 404
            assert "Seite nicht gefunden" in response.get_data(as_text=True)  # the usual page
        assert not [rule for rule in production.url_map.iter_rules()
                    if rule.rule.startswith(PREFIX)]


def test_production_refuses_to_start_with_a_test_control_token() -> None:
    with pytest.raises(ConfigError, match="IDP_TESTING_API_TOKEN is for development only"):
        load_config({"IDP_ENV": "production", "IDP_BASE_URL": "https://servicekonto.test",
                     "IDP_MAIL_SERVER": "mail.invalid", "IDP_SECRET_KEY": "s" * 40,
                     "IDP_TESTING_API_TOKEN": "t" * 40})


def test_a_short_token_stops_the_start() -> None:
    with pytest.raises(ConfigError, match="at least 32 characters"):
        load_config({"IDP_ENV": "development", "IDP_TESTING_API_TOKEN": "short"})


@pytest.mark.parametrize("header", ["Bearer wrong-token-" + "x" * 30, "Basic dXNlcjpwYXNz", ""])
def test_a_call_without_the_right_token_is_refused_with_401(api: Api, header: str) -> None:
    response = api.get("/clock", headers={"Authorization": header})
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert "Token" in response.get_json()["error"]


def test_without_a_configured_token_the_api_refuses_every_call_with_403(
        settings: dict[str, Any]) -> None:
    with app_with(settings, testing_api_token="") as unlocked:
        api = Api(unlocked.test_client(), token="anything-at-all-" + "x" * 30)
        response = api.get("/clock")
    assert response.status_code == 403
    assert "IDP_TESTING_API_TOKEN" in response.get_json()["error"]


def test_paths_and_methods_the_api_does_not_have_get_json_refusals(api: Api) -> None:
    missing = api.get("/nothing-here")
    wrong_method = api.post("/clock")
    anonymous = Api(api.client, token=None).get("/nothing-here")

    assert missing.status_code == 404 and missing.is_json
    assert wrong_method.status_code == 405 and wrong_method.is_json
    assert set(wrong_method.headers["Allow"].split(", ")) >= {"GET", "PUT", "DELETE"}
    assert anonymous.status_code == 401  # nothing about the API without the token


def test_a_body_that_is_not_a_json_object_is_a_400(api: Api) -> None:
    for body in (b"not json", b"[1, 2]"):
        response = api.put("/clock", data=body, content_type="application/json")
        assert response.status_code == 400
        assert response.get_json()["error"] == "Der Anfragekörper muss ein JSON-Objekt sein."


def test_answers_are_never_cached(api: Api) -> None:
    assert api.get("/clock").headers["Cache-Control"] == "no-store"


def test_the_openapi_document_names_this_idp_as_its_server(api: Api) -> None:
    document = api.get("/openapi.json").get_json()

    assert document["openapi"] == "3.1.0"
    assert document["servers"] == [{"url": "http://localhost/testing/api"}]


def test_the_openapi_document_describes_exactly_the_routes_the_api_has(app: Flask) -> None:
    routes = {(method.lower(), rule.rule) for rule in app.url_map.iter_rules()
              if rule.rule.startswith(PREFIX + "/")
              for method in (rule.methods or set()) - {"HEAD", "OPTIONS"}}
    documented = {(op.method, PREFIX + re.sub(r"\{(\w+)\}", r"<\1>", op.template))
                  for op in operations()}
    assert routes == documented
    assert len({operation["operationId"] for item in openapi_document()["paths"].values()
                for operation in item.values() if isinstance(operation, dict)
                and "operationId" in operation}) == len(documented)
