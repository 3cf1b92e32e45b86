"""The audit trail through a whole flow: the security events are there, and no password,
token, SAML message or attribute value is in any log line."""

from __future__ import annotations

from urllib.parse import unquote

from flask import Flask
from saml2 import BINDING_HTTP_REDIRECT

from idp.consent.models import Consent
from idp.db import db
from tests.conftest import GOOD_PASSWORD, Browser, link_in, log_in, outbox, path_of, register
from tests.flows.conftest import (
    SP_ENTITY,
    Portal,
    consent_page,
    decide,
    field_value,
    hop_on,
    logged_in,
)
from tests.observability_support import captured_logs, grew, scrape

NEW_PASSWORD = "Neues-Gelb 2027 Fluss"
SURNAME = "urn:oid:2.5.4.4"
PERSISTENT = "urn:oasis:names:tc:SAML:2.0:nameid-format:persistent"


def test_a_citizens_way_through_sso_leaves_an_audit_trail_without_secrets(
        sso_app: Flask, visitor: Browser, portal: Portal) -> None:
    with captured_logs() as logs:
        register(visitor)
        activation_path = path_of(link_in(outbox(sso_app)[-1]))
        visitor.get(activation_path)
        visitor.submit(activation_path)
        log_in(visitor, password="Falsches Passwort 1")
        log_in(visitor)
        sso_path, _ = portal.login_url(BINDING_HTTP_REDIRECT)
        consent_page(visitor, portal)
        answer = decide(visitor).get_data(as_text=True)
        saml_response = field_value(answer, "SAMLResponse")
        portal.receive(answer)
        with sso_app.app_context():
            consent_id = db.session.query(Consent.id).scalar()
        visitor.get("/konto/zustimmungen")
        visitor.submit(f"/konto/zustimmungen/{consent_id}/widerrufen")
        visitor.get("/konto/passwort")
        visitor.submit("/konto/passwort", {"current_password": GOOD_PASSWORD,
                                           "password": NEW_PASSWORD,
                                           "password_confirm": NEW_PASSWORD})
        visitor.get("/konto")
        to_portal = hop_on(visitor.submit("/abmelden").get_data(as_text=True))
        path, form = portal.answer_logout(to_portal)
        assert (visitor.client.get(path) if form is None
                else visitor.client.post(path, data=form)).status_code == 200

    events = logs.events()
    for event in ("registered", "activated", "login_failed", "login_succeeded", "consent_given",
                  "assertion_issued", "consent_revoked", "password_changed", "logout"):
        assert event in events, events
    issued = next(entry for entry in logs.audit() if entry["event"] == "assertion_issued")
    assert issued["portal"] == SP_ENTITY and issued["name_id_format"] == PERSISTENT
    # The surname's attribute name is there, its value (Mustermann, below) is not.
    assert SURNAME in issued["attributes"] and issued["citizen_id"] == 1
    logout = next(entry for entry in logs.audit() if entry["event"] == "logout")
    assert logout["outcome"] == "complete" and logout["portals_logged_out"] == [SP_ENTITY]
    failed = next(entry for entry in logs.audit() if entry["event"] == "login_failed")
    assert len(failed["username_hash"]) == 16 and failed["citizen_id"] == 1

    everything = "\n".join(logs.lines)
    activation_token = activation_path.rsplit("/", 1)[-1]
    saml_request = unquote(sso_path.split("SAMLRequest=", 1)[1].split("&", 1)[0])
    for secret in (GOOD_PASSWORD, "Falsches Passwort 1", NEW_PASSWORD, activation_token,
                   saml_response[:40], saml_request[:40], "Mustermann", "ErikaM",
                   "erika.mustermann@example.org"):
        assert secret not in everything, secret


def test_sso_responses_are_counted_by_portal_and_status(
        sso_app: Flask, visitor: Browser, portal: Portal) -> None:
    before = scrape(visitor.client)
    path, _ = portal.login_url(BINDING_HTTP_REDIRECT, is_passive="true")
    visitor.client.get(path)  # no session: answered NoPassive at once
    logged_in(sso_app, visitor)
    consent_page(visitor, portal)
    portal.receive(decide(visitor).get_data(as_text=True))
    after = scrape(visitor.client)
    assert grew(before, after, "servicekonto_sso_responses_total", portal=SP_ENTITY,
                status="NoPassive") == 1
    assert grew(before, after, "servicekonto_sso_responses_total", portal=SP_ENTITY,
                status="Success") == 1
