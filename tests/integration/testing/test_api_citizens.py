"""Test citizens through the test-control API: created from a persona or from fields, deleted,
their consents revoked, their throttle lifted, their sessions ended — each seen as a citizen
would notice it."""

from __future__ import annotations

from flask import Flask
from sqlalchemy import func, select

from idp.accounts.models import AccountStatus, Citizen
from idp.consent.models import Consent
from idp.consent.records import consents_of
from idp.db import db
from idp.mail.models import OutboxMail
from idp.testing.models import EidTestCard
from sp_client.demo import DEMO_PASSWORD
from tests.conftest import Browser, log_in, outbox
from tests.integration.consent.conftest import DUEREN, MAGS, agree
from tests.integration.testing.conftest import Api

LOGIN_FAILED = "Die Anmeldung ist fehlgeschlagen"


def citizen_named(app: Flask, username_key: str) -> Citizen | None:
    with app.app_context():
        return db.session.scalar(select(Citizen).where(Citizen.username_key == username_key))


def test_a_citizen_made_from_a_persona_logs_in_with_the_password_the_api_returns(
        api: Api, browser: Browser) -> None:
    response = api.post("/citizens", {"persona": "erika"})

    assert response.status_code == 201
    created = response.get_json()
    assert created["username"] == "ErikaM" and created["password"] == DEMO_PASSWORD
    assert created["trust_level"] == "STORK-QAA-Level-4"
    assert log_in(browser, created["username"], created["password"]).status_code == 302


def test_a_persona_of_level_four_gets_its_eid_card(api: Api, app: Flask) -> None:
    created = api.post("/citizens", {"persona": "erika"}).get_json()

    with app.app_context():
        card = db.session.scalar(select(EidTestCard))
        assert card is not None and card.citizen_id == created["id"]
        assert (card.document_type, card.surname, card.birth_name) == ("ID", "Mustermann",
                                                                        "Gabler")
        assert (card.date_of_birth.isoformat(), card.locality, card.state) == (
            "1964-08-12", "Köln", "valid")
        assert db.session.get(Citizen, created["id"]).trust_level == 4  # type: ignore[union-attr]


def test_a_citizen_is_made_from_fields_and_what_is_left_out_is_made_up(
        api: Api, browser: Browser) -> None:
    response = api.post("/citizens", {"given_name": "Max", "surname": "Mustermann",
                                      "trust_level": "STORK-QAA-Level-2"})

    created = response.get_json()
    assert response.status_code == 201 and created["trust_level"] == "STORK-QAA-Level-2"
    assert log_in(browser, created["username"], created["password"]).status_code == 302
    assert "Max" in browser.get("/konto").get_data(as_text=True)


def test_a_citizen_not_activated_waits_for_the_activation_mail(api: Api, app: Flask,
                                                               browser: Browser) -> None:
    created = api.post("/citizens", {"persona": "erika", "activated": False}).get_json()

    answer = log_in(browser, created["username"], created["password"])
    assert answer.status_code == 401 and "noch nicht aktiviert" in answer.get_data(as_text=True)
    mails = api.get("/mails?to=erika.mustermann@example.org").get_json()["mails"]
    assert [mail["subject"] for mail in mails] == ["Servicekonto: Bitte aktivieren Sie Ihr Konto"]


def test_a_taken_username_or_address_is_a_409_and_changes_nothing(api: Api, app: Flask) -> None:
    api.post("/citizens", {"persona": "erika"})
    mails_before = len(outbox(app))

    same_name = api.post("/citizens", {"username": "erikam"})
    same_address = api.post("/citizens", {"email": "Erika.Mustermann@example.org"})

    assert same_name.status_code == same_address.status_code == 409
    assert "ErikaM" in same_address.get_json()["error"]
    assert len(outbox(app)) == mails_before  # the owner got no "already registered" mail
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Citizen)) == 1


def test_values_the_registration_refuses_are_a_422_naming_each(api: Api, app: Flask) -> None:
    response = api.post("/citizens", {"username": "x", "password": "kurz",
                                      "email": "keine-adresse"})

    assert response.status_code == 422
    fields = response.get_json()["fields"]
    assert set(fields) == {"username", "password", "email"}
    assert any("mindestens 8 Zeichen" in message for message in fields["password"])
    assert citizen_named(app, "x") is None


def test_unknown_or_mistyped_fields_are_a_400(api: Api) -> None:
    unknown = api.post("/citizens", {"nickname": "Maxi", "activated": "ja"})
    persona_plus = api.post("/citizens", {"persona": "erika", "surname": "Anders"})

    assert unknown.status_code == persona_plus.status_code == 400
    assert set(unknown.get_json()["fields"]) == {"nickname", "activated"}


def test_an_unknown_persona_is_a_404(api: Api) -> None:
    response = api.post("/citizens", {"persona": "niemand"})
    assert response.status_code == 404 and "niemand" in response.get_json()["error"]


def test_deleting_a_citizen_removes_account_consents_sessions_and_mails(
        api: Api, app: Flask, browser: Browser) -> None:
    created = api.post("/citizens", {"persona": "lieschen"}).get_json()  # with a mail
    api.post("/citizens", {"persona": "max"})
    max_ = citizen_named(app, "maxm")
    assert max_ is not None
    agree(app, max_.id)
    log_in(browser, "MaxM", DEMO_PASSWORD)

    assert api.delete("/citizens/LieschenM").status_code == 204
    assert api.delete("/citizens/MaxM").status_code == 204
    assert api.delete("/citizens/MaxM").status_code == 404

    assert citizen_named(app, "maxm") is None and citizen_named(app, "lieschenm") is None
    assert browser.get("/konto").status_code == 302  # logged out
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Consent)) == 0
        assert db.session.scalar(select(func.count()).select_from(OutboxMail)) == 0
    assert created["id"] != max_.id


def test_a_deleted_personas_card_stays_for_the_next_account(api: Api, app: Flask) -> None:
    api.post("/citizens", {"persona": "erika"})
    api.delete("/citizens/ErikaM")
    with app.app_context():
        card = db.session.scalar(select(EidTestCard))
        assert card is not None and card.citizen_id is None

    again = api.post("/citizens", {"persona": "erika"})

    assert again.status_code == 201
    with app.app_context():
        assert db.session.scalar(select(EidTestCard.citizen_id)) == again.get_json()["id"]


def test_revoking_the_consents_makes_every_portal_ask_again(api: Api, app: Flask) -> None:
    created = api.post("/citizens", {"persona": "max"}).get_json()
    agree(app, created["id"], DUEREN)
    agree(app, created["id"], MAGS)

    response = api.delete("/citizens/MaxM/consents")

    assert response.status_code == 200 and response.get_json() == {"revoked": 2}
    with app.app_context():
        assert consents_of(db.session, created["id"]) == []
        # Kept as proof, marked revoked.
        assert db.session.scalar(select(func.count()).select_from(Consent)
                                 .where(Consent.revoked_at.is_not(None))) == 2
    assert api.delete("/citizens/Niemand/consents").status_code == 404


def test_unlock_lets_the_citizen_locked_by_the_throttle_log_in(api: Api,
                                                               browser: Browser) -> None:
    api.post("/citizens", {"persona": "otto"})
    refused = log_in(browser, "OttoN", DEMO_PASSWORD)
    assert refused.status_code == 401 and LOGIN_FAILED in refused.get_data(as_text=True)

    assert api.post("/citizens/OttoN/unlock").status_code == 204

    assert log_in(browser, "OttoN", DEMO_PASSWORD).status_code == 302
    assert api.post("/citizens/Niemand/unlock").status_code == 404


def test_ending_the_sessions_logs_the_citizen_out_everywhere(api: Api, app: Flask) -> None:
    api.post("/citizens", {"persona": "max"})
    first, second = Browser(app.test_client()), Browser(app.test_client())
    log_in(first, "MaxM", DEMO_PASSWORD)
    log_in(second, "MaxM", DEMO_PASSWORD)

    response = api.delete("/citizens/MaxM/sessions")

    assert response.status_code == 200 and response.get_json() == {"ended": 2}
    assert first.get("/konto").status_code == second.get("/konto").status_code == 302
    assert api.delete("/citizens/Niemand/sessions").status_code == 404


def test_an_account_made_through_the_api_is_an_ordinary_pending_registration(
        api: Api, app: Flask) -> None:
    api.post("/citizens", {"activated": False, "username": "NeuM"})
    found = citizen_named(app, "neum")
    assert found is not None and found.status == AccountStatus.PENDING
