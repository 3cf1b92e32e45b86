"""The SAML tracer (docs/qa-workbench.md, "The SAML tracer"): a real pysaml2 portal logs in
through the IdP, and the messages show on /entwicklung/saml/, through
GET /testing/api/saml/messages and `servicekonto testing messages`; retention, secrets, and
production without any of it."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from flask import Flask
from saml2 import BINDING_HTTP_POST

from idp.cli import main
from idp.clock import utcnow
from idp.container import app_parts
from idp.saml.workbench_hooks import IN, OUT, POST, TracedMessage
from idp.testing.tracer import DatabaseTracer
from tests.conftest import Browser, Clock, app_with
from tests.flows import conftest as flows
from tests.flows.conftest import SP_ENTITY, Portal, consent_page, decide, logged_in
from tests.integration.testing.conftest import Api
from tests.integration.testing.test_api_access import PRODUCTION

# The fixtures of tests/flows: a real pysaml2 portal ("musterstadt") federated with the IdP.
sso_app, portal, portal_keys, portal_changes, visitor = (
    flows.sso_app, flows.portal, flows.portal_keys, flows.portal_changes, flows.visitor)

PAGE = "/entwicklung/saml/"
REJECTED = "Die Anmeldeanfrage des Portals konnte nicht angenommen werden"


@pytest.fixture
def api(sso_app: Flask) -> Api:
    return Api(sso_app.test_client())


def messages(api: Api, query: str = "?portal=musterstadt") -> list[dict[str, Any]]:
    response = api.get("/saml/messages" + query)
    assert response.status_code == 200, response.get_data(as_text=True)
    found: list[dict[str, Any]] = response.json["messages"]  # type: ignore[index]
    return found


def logged_in_at_portal(app: Flask, visitor: Browser, portal: Portal) -> Browser:
    """Erika registers, logs in, agrees at the portal and the portal takes the Response."""
    consent_page(logged_in(app, visitor), portal)
    portal.receive(decide(visitor).get_data(as_text=True))
    return visitor


def traced(direction: str = IN, xml: str = "<samlp:AuthnRequest/>", **changes: Any) -> Any:
    fields = {"direction": direction, "kind": "AuthnRequest", "binding": POST,
              "portal": SP_ENTITY, "xml": xml, "browser_session": None,
              "signature": "keine Signatur", "checks": ("Binding",), "decision": "angenommen"}
    return TracedMessage(**(fields | changes))


# --- what is recorded ---------------------------------------------------------------------

def test_a_login_leaves_the_authn_request_in_and_the_response_out_in_order(
        sso_app: Flask, visitor: Browser, portal: Portal, api: Api) -> None:
    logged_in_at_portal(sso_app, visitor, portal)

    response, request = messages(api)
    assert (request["direction"], request["kind"], request["binding"]) == \
        ("in", "AuthnRequest", "HTTP-Redirect")
    assert (response["direction"], response["kind"], response["binding"]) == \
        ("out", "Response", "HTTP-POST")
    assert request["portal"] == response["portal"] == "musterstadt"
    assert request["portal_entity_id"] == SP_ENTITY
    assert request["signature"].startswith("gültig (Redirect-Binding")
    assert request["checks"][0].startswith("Binding")
    assert "Replay-Cache: (Issuer, ID) zum ersten Mal gesehen" in request["checks"]
    assert request["decision"] == "angenommen"
    assert "<samlp:AuthnRequest" in request["xml"] or "AuthnRequest" in request["xml"]
    assert response["decision"].startswith("Erfolg, Attribute: gender, givenName")
    assert response["signature"].startswith("signiert")
    assert response["fault"] is None
    assert ":Assertion" in response["xml"] and ":Signature" in response["xml"]
    assert response["id"] > request["id"]


def test_a_replayed_request_is_recorded_with_its_reason_and_the_citizen_gets_the_error_page(
        sso_app: Flask, visitor: Browser, portal: Portal, api: Api) -> None:
    logged_in(sso_app, visitor)
    path, _ = portal.login_url()
    visitor.client.get(path)

    again = visitor.client.get(path)

    assert again.status_code == 400 and REJECTED in again.get_data(as_text=True)
    replayed = messages(api)[0]
    assert replayed["kind"] == "AuthnRequest"
    assert replayed["decision"] == "abgelehnt, Fehlerseite beim IdP: replayed request ID"
    assert "Replay-Cache: (Issuer, ID) zum ersten Mal gesehen" not in replayed["checks"]


def test_an_unsigned_request_where_the_portal_must_sign_is_recorded_as_refused(
        sso_app: Flask, visitor: Browser, portal: Portal, api: Api) -> None:
    path, _ = portal.login_url(sign=False)

    page = visitor.client.get(path)

    assert page.status_code == 400 and REJECTED in page.get_data(as_text=True)
    (refused,) = messages(api)
    assert refused["signature"] == "keine Signatur"
    assert refused["decision"] == ("abgelehnt, Fehlerseite beim IdP: unsigned request where "
                                   "the portal must sign")
    assert refused["checks"][-1] == "Portal bekannt: musterstadt"


def test_an_error_status_sent_to_the_portal_is_recorded_with_its_status(
        sso_app: Flask, visitor: Browser, portal: Portal, api: Api) -> None:
    consent_page(logged_in(sso_app, visitor), portal)
    decide(visitor, "decline")

    declined = messages(api)[0]
    assert (declined["direction"], declined["kind"]) == ("out", "Response")
    assert declined["decision"].startswith(
        "Fehlerstatus urn:oasis:names:tc:SAML:2.0:status:RequestDenied")


def test_a_message_that_cannot_be_decoded_is_recorded_without_a_portal(
        sso_app: Flask, visitor: Browser, api: Api) -> None:
    page = visitor.client.get("/saml/sso/redirect?SAMLRequest=nicht-base64!")

    assert page.status_code == 400
    (undecodable,) = messages(api, "")
    assert undecodable["portal"] is None and undecodable["xml"] == ""
    assert undecodable["decision"].startswith("abgelehnt, nicht lesbar")


# --- the API and the command line -------------------------------------------------------

@pytest.mark.parametrize("query", ["?limit=0", "?limit=501", "?limit=viele", "?limit=²",
                                   "?limit=-1"])
def test_a_limit_outside_1_to_500_is_refused(api: Api, query: str) -> None:
    response = api.get("/saml/messages" + query)

    assert response.status_code == 400
    assert "limit" in response.json["error"]  # type: ignore[index]


def test_an_unknown_portal_is_a_404_naming_the_registered_ones(api: Api) -> None:
    response = api.get("/saml/messages?portal=gibtsnicht")

    assert response.status_code == 404
    assert "musterstadt" in response.json["error"]  # type: ignore[index]


def test_the_limit_takes_the_newest_messages(sso_app: Flask, api: Api) -> None:
    tracer = app_parts(sso_app).saml.trace
    assert tracer is not None
    for number in range(4):
        tracer.record(traced(decision=f"Nachricht {number}"), utcnow())

    newest = messages(api, "?limit=2")

    assert [message["decision"] for message in newest] == ["Nachricht 3", "Nachricht 2"]


def test_the_command_line_lists_the_messages_as_text_and_as_json(
        sso_app: Flask, visitor: Browser, portal: Portal) -> None:
    logged_in_at_portal(sso_app, visitor, portal)
    runner = sso_app.test_cli_runner()

    as_text = runner.invoke(main, args=["testing", "messages", "--portal", "musterstadt"])
    as_json = runner.invoke(main, args=["testing", "messages", "--limit", "1", "--json"])
    unknown = runner.invoke(main, args=["testing", "messages", "--portal", "gibtsnicht"])

    assert as_text.exit_code == 0, as_text.output
    assert "IdP →  Response (HTTP-POST)  musterstadt" in as_text.output
    assert "→ IdP  AuthnRequest (HTTP-Redirect)  musterstadt" in as_text.output
    assert [message["kind"] for message in json.loads(as_json.output)["messages"]] == \
        ["Response"]
    assert unknown.exit_code == 1 and "gibtsnicht" in unknown.output


# --- the page ---------------------------------------------------------------------------

def test_the_page_shows_each_message_with_its_checks_and_xml_newest_first(
        sso_app: Flask, visitor: Browser, portal: Portal) -> None:
    logged_in_at_portal(sso_app, visitor, portal)

    page = visitor.get(PAGE).get_data(as_text=True)

    assert page.index("Ausgehend: Response") < page.index("Eingehend: AuthnRequest")
    assert "<li>Replay-Cache: (Issuer, ID) zum ersten Mal gesehen</li>" in page
    assert "<summary>XML der Nachricht</summary>" in page
    assert "AuthnRequest" in page and "&lt;/ns0:AuthnRequest&gt;" in page
    assert "musterstadt – " + SP_ENTITY in page


def test_the_page_shows_the_xml_as_text_never_as_markup(sso_app: Flask, visitor: Browser) -> None:
    tracer = app_parts(sso_app).saml.trace
    assert tracer is not None
    tracer.record(traced(xml='<Attribute><AttributeValue>&lt;script&gt;alert(1)&lt;/script&gt;'
                             '</AttributeValue><script>alert(2)</script></Attribute>',
                         decision="<b>fett</b>"), utcnow())
    tracer.record(traced(xml="<kein xml"), utcnow())

    page = visitor.get(PAGE).get_data(as_text=True)

    assert "<script>" not in page and "<b>fett" not in page
    assert "&amp;lt;script&amp;gt;alert(1)" in page  # the XML's own escape, shown as text
    assert "&lt;script&gt;alert(2)&lt;/script&gt;" in page
    assert "&lt;kein xml" in page  # unparsable: shown as it came


def test_the_page_filters_by_portal_and_by_this_browser(
        sso_app: Flask, visitor: Browser, portal: Portal) -> None:
    logged_in_at_portal(sso_app, visitor, portal)
    tracer = app_parts(sso_app).saml.trace
    assert tracer is not None
    tracer.record(traced(portal="https://fremd.example/saml", decision="Fremde Nachricht"),
                  utcnow())
    stranger = Browser(sso_app.test_client())

    all_of_them = visitor.get(PAGE).get_data(as_text=True)
    of_musterstadt = visitor.get(PAGE + "?portal=musterstadt").get_data(as_text=True)
    of_this_browser = visitor.get(PAGE + "?browser=1").get_data(as_text=True)
    of_another_browser = stranger.get(PAGE + "?browser=1").get_data(as_text=True)

    assert "Fremde Nachricht" in all_of_them
    assert "Fremde Nachricht" not in of_musterstadt and "Ausgehend: Response" in of_musterstadt
    # The Response was sent in Erika's session; the stranger's browser sent nothing.
    assert "Ausgehend: Response" in of_this_browser and "Fremde Nachricht" not in of_this_browser
    assert "Noch keine SAML-Nachrichten für diese Auswahl" in of_another_browser
    assert visitor.get(PAGE + "?portal=gibtsnicht").status_code == 404
    assert visitor.get(PAGE + "?limit=²&browser=ja").status_code == 200


def test_the_page_answers_only_this_machine_unless_remote_is_allowed(
        sso_app: Flask, settings: dict[str, Any]) -> None:
    remote = {"REMOTE_ADDR": "203.0.113.7"}

    assert sso_app.test_client().get(PAGE, environ_base=remote).status_code == 404
    assert sso_app.test_client().get(PAGE, environ_base={
        "REMOTE_ADDR": "::ffff:127.0.0.1"}).status_code == 200


def test_the_session_id_appears_nowhere_only_a_fingerprint_of_it(
        sso_app: Flask, visitor: Browser, portal: Portal, api: Api) -> None:
    logged_in_at_portal(sso_app, visitor, portal)
    cookie = visitor.client.get_cookie(sso_app.config["SESSION_COOKIE_NAME"])
    assert cookie is not None and len(cookie.value) >= 32

    page = visitor.get(PAGE).get_data(as_text=True)
    answer = api.get("/saml/messages").get_data(as_text=True)
    cli = sso_app.test_cli_runner().invoke(main, args=["testing", "messages", "--json"]).output

    for shown in (page, answer, cli):
        assert cookie.value not in shown
    fingerprint = messages(api)[0]["browser"]
    assert len(fingerprint) == 12 and fingerprint in page


# --- retention ------------------------------------------------------------------------------

def test_the_oldest_messages_go_beyond_the_count_kept(settings: dict[str, Any]) -> None:
    with app_with(settings, trace_keep_messages=3) as app:
        tracer = app_parts(app).saml.trace
        assert tracer is not None
        for number in range(5):
            tracer.record(traced(decision=f"Nachricht {number}"), utcnow())

        assert [message["decision"] for message in messages(Api(app.test_client()), "")] == \
            ["Nachricht 4", "Nachricht 3", "Nachricht 2"]


def test_messages_older_than_the_hours_kept_go(sso_app: Flask, api: Api, clock: Clock) -> None:
    tracer = app_parts(sso_app).saml.trace
    assert tracer is not None
    tracer.record(traced(decision="zuerst"), utcnow())
    clock.advance(hours=23)
    tracer.record(traced(decision="23 Stunden später"), utcnow())
    clock.advance(hours=1, seconds=1)
    tracer.record(traced(direction=OUT, kind="Response", decision="einen Tag später"), utcnow())

    # Kept 24 hours by default (IDP_TRACE_KEEP_HOURS), by the IdP's clock.
    assert [message["decision"] for message in messages(api, "")] == \
        ["einen Tag später", "23 Stunden später"]


# --- never in the way -----------------------------------------------------------------------

def test_a_failing_tracer_does_not_break_a_login(
        sso_app: Flask, visitor: Browser, portal: Portal, api: Api,
        monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    def broken(*_: Any) -> None:
        raise RuntimeError("Datenbank weg")

    monkeypatch.setattr(DatabaseTracer, "_write", broken)

    logged_in_at_portal(sso_app, visitor, portal)

    assert portal.name_id is not None  # the portal took its Response
    assert "SAML tracer: in AuthnRequest not recorded" in caplog.text
    assert "SAML tracer: out Response not recorded" in caplog.text
    assert messages(api) == []


def test_a_post_binding_request_is_recorded_with_its_embedded_signature(
        sso_app: Flask, visitor: Browser, portal: Portal, api: Api) -> None:
    logged_in(sso_app, visitor)
    path, form = portal.login_url(BINDING_HTTP_POST)
    visitor.client.post(path, data=form)

    (request,) = messages(api)
    assert (request["kind"], request["binding"]) == ("AuthnRequest", "HTTP-POST")
    assert request["signature"] == "gültig (eingebettet, Schlüssel aus den Metadaten)"


def test_production_has_no_tracer_and_no_page(settings: dict[str, Any]) -> None:
    with app_with(settings, **PRODUCTION) as production:
        page = production.test_client().get(PAGE, base_url="https://servicekonto.test")

        assert page.status_code == 404
        assert app_parts(production).saml.trace is None


def test_retention_settings_come_from_the_environment() -> None:
    from idp.config import ConfigError, load_config

    config = load_config({"IDP_ENV": "development", "IDP_TRACE_KEEP_MESSAGES": "20",
                          "IDP_TRACE_KEEP_HOURS": "2"})
    assert (config.trace_keep_messages, config.trace_keep_hours) == (20, 2)
    with pytest.raises(ConfigError, match="IDP_TRACE_KEEP_MESSAGES"):
        load_config({"IDP_ENV": "development", "IDP_TRACE_KEEP_MESSAGES": "0"})
    assert timedelta(hours=config.trace_keep_hours) == timedelta(hours=2)
