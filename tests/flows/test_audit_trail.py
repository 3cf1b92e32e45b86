"""The audit trail through a whole flow: the security events are there, and no password,
token, SAML message or attribute value is in any log line."""

from __future__ import annotations

from urllib.parse import unquote

from flask import Flask
from saml2 import BINDING_HTTP_REDIRECT

from idp.consent.models import Consent
from idp.db import db
from tests.conftest import (
    GOOD_PASSWORD,
    REGISTRATION,
    Browser,
    activate,
    link_in,
    log_in,
    outbox,
    path_of,
    register,
    run_mail_sender,
)
from tests.flows.conftest import (
    SP_ENTITY,
    Portal,
    consent_page,
    decide,
    field_value,
    hop_on,
    logged_in,
)
from tests.observability_support import CapturedLogs, captured_logs, grew, scrape

NEW_PASSWORD = "Neues-Gelb 2027 Fluss"
NEW_EMAIL = "erika@neu.example.org"
UNKNOWN_EMAIL = "niemand.bekannt@example.org"
SURNAME = "urn:oid:2.5.4.4"
PERSISTENT = "urn:oasis:names:tc:SAML:2.0:nameid-format:persistent"


def assert_in_no_line(logs: CapturedLogs, *secrets: str) -> None:
    """No password, token, address, name or SAML message in any log line, audit or not."""
    everything = "\n".join(logs.lines)
    for secret in secrets:
        assert secret not in everything, secret


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

    activation_token = activation_path.rsplit("/", 1)[-1]
    saml_request = unquote(sso_path.split("SAMLRequest=", 1)[1].split("&", 1)[0])
    assert_in_no_line(logs, GOOD_PASSWORD, "Falsches Passwort 1", NEW_PASSWORD, activation_token,
                      saml_response[:40], saml_request[:40], "Mustermann", "ErikaM",
                      "erika.mustermann@example.org")


def test_forgotten_password_and_username_and_a_new_address_leave_one_event_each(
        sso_app: Flask, visitor: Browser) -> None:
    register(visitor)
    activate(visitor, sso_app)
    with captured_logs() as logs:
        for username in ("ErikaM", "Niemand99"):
            visitor.get("/passwort-vergessen")
            visitor.submit("/passwort-vergessen", {"username": username})
        run_mail_sender(sso_app)  # the sender answers the requests: their events come from it
        reset_path = path_of(link_in(outbox(sso_app)[-1]))
        for email in (REGISTRATION["email"], UNKNOWN_EMAIL):
            visitor.get("/benutzername-vergessen")
            visitor.submit("/benutzername-vergessen", {"email": email})
        run_mail_sender(sso_app)
        log_in(visitor)
        visitor.get("/konto/email")
        visitor.submit("/konto/email", {"email": NEW_EMAIL, "password": GOOD_PASSWORD})
        confirmation_path = path_of(link_in(outbox(sso_app)[-1]))
        visitor.get(confirmation_path)
        visitor.submit(confirmation_path)

    def the_one(event: str, **fields: object) -> dict[str, object]:
        found = [entry for entry in logs.audit() if entry["event"] == event
                 and all(entry.get(key) == value for key, value in fields.items())]
        assert len(found) == 1, (event, fields, logs.audit())
        return found[0]

    assert logs.events().count("password_reset_requested") == 2
    mailed = the_one("password_reset_requested", outcome="mailed", citizen_id=1)
    unknown = the_one("password_reset_requested", outcome="unknown_account", citizen_id=None)
    # Keyed hashes of the usernames, as for a failed login: repeated requests show, names do not.
    assert len(str(mailed["username_hash"])) == 16
    assert unknown["username_hash"] != mailed["username_hash"]
    assert logs.events().count("username_reminder_requested") == 2
    the_one("username_reminder_requested", outcome="mailed", citizen_id=1)
    unknown_address = the_one("username_reminder_requested", outcome="unknown_account")
    assert unknown_address["citizen_id"] is None
    # Nothing about the address typed: the line's usual keys, the event and its outcome.
    assert set(unknown_address) == {"time", "level", "logger", "message", "pid", "request_id",
                                    "route", "event", "outcome", "citizen_id"}
    the_one("email_change_requested", citizen_id=1)
    the_one("email_changed", citizen_id=1)
    assert logs.events().index("email_change_requested") < logs.events().index("email_changed")

    assert_in_no_line(logs, REGISTRATION["email"], UNKNOWN_EMAIL, NEW_EMAIL, "erika", "ErikaM",
                      "Niemand99", GOOD_PASSWORD, reset_path.rsplit("/", 1)[-1],
                      confirmation_path.rsplit("/", 1)[-1])


def test_sso_responses_are_counted_by_portal_and_status(
        sso_app: Flask, visitor: Browser, portal: Portal) -> None:
    before = scrape(visitor.client)
    path, _ = portal.login_url(BINDING_HTTP_REDIRECT, is_passive="true")
    with captured_logs() as logs:
        visitor.client.get(path)  # no session: answered NoPassive at once
    # The operator finds why a portal got an error status in the audit trail.
    refused = [entry for entry in logs.audit() if entry["event"] == "sso_refused"]
    assert [(entry["portal"], entry["status"]) for entry in refused] == [(SP_ENTITY, "NoPassive")]
    assert refused[0]["reason"]
    logged_in(sso_app, visitor)
    consent_page(visitor, portal)
    portal.receive(decide(visitor).get_data(as_text=True))
    after = scrape(visitor.client)
    assert grew(before, after, "servicekonto_sso_responses_total", portal=SP_ENTITY,
                status="NoPassive") == 1
    assert grew(before, after, "servicekonto_sso_responses_total", portal=SP_ENTITY,
                status="Success") == 1
