"""The mails a test reads without SMTP, bounces, and the clock moved at run time."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from flask import Flask

from idp.db import db
from idp.mail.models import OutboxMail
from idp.mail.transport import BOUNCING_DOMAIN
from tests.conftest import Browser, run_mail_sender
from tests.integration.testing.conftest import Api

ACTIVATION_SUBJECT = "Servicekonto: Bitte aktivieren Sie Ihr Konto"


def _at(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def test_the_mails_to_an_address_come_newest_first_with_their_links(api: Api) -> None:
    api.post("/citizens", {"persona": "lieschen"})
    api.post("/citizens", {"persona": "max"})  # another address
    api.delete("/citizens/LieschenM")
    api.post("/citizens", {"persona": "lieschen"})
    api.post("/citizens", {"username": "Zweite", "email": "ZWEITE@example.org",
                           "activated": False})

    mails = api.get("/mails?to=lieschen.mueller@example.org").get_json()["mails"]
    other = api.get("/mails", query_string={"to": "zweite@EXAMPLE.org"}).get_json()["mails"]

    assert [mail["subject"] for mail in mails] == [ACTIVATION_SUBJECT]  # the first went with
    [mail] = mails                                                      # the deleted account
    assert mail["to"] == "lieschen.mueller@example.org" and mail["status"] == "waiting"
    assert len(mail["links"]) == 1 and mail["links"][0].startswith("http://localhost/aktivieren/")
    assert mail["links"][0] in mail["text"]
    assert [m["to"] for m in other] == ["ZWEITE@example.org"]  # compared case-blind


def test_mails_are_listed_newest_first_and_limited(api: Api, app: Flask) -> None:
    start = datetime.now(UTC)
    with app.app_context():
        for minutes, subject in ((0, "erste"), (5, "dritte"), (2, "zweite")):
            at = start + timedelta(minutes=minutes)
            db.session.add(OutboxMail(recipient="neu@example.org", subject=subject,
                                      body_text=f"Text der {subject} Mail", body_html="",
                                      message_id=f"<{subject}@test>", created_at=at,
                                      next_attempt_at=at, attempts=0))
        db.session.commit()

    every = api.get("/mails?to=neu@example.org").get_json()["mails"]
    newest = api.get("/mails?to=neu@example.org&limit=1").get_json()["mails"]

    assert [mail["subject"] for mail in every] == ["dritte", "zweite", "erste"]
    assert [mail["subject"] for mail in newest] == ["dritte"] and newest[0]["links"] == []
    assert api.get("/mails?to=niemand@example.org").get_json() == {"mails": []}


def test_a_mail_to_a_bouncing_address_ends_failed_with_the_servers_refusal(
        api: Api, app: Flask) -> None:
    api.post("/citizens", {"persona": "martina", "activated": False})
    assert api.get("/mails?to=martina.musterfrau@" + BOUNCING_DOMAIN).get_json()["mails"][0][
        "status"] == "waiting"

    run_mail_sender(app)

    [mail] = api.get("/mails?to=martina.musterfrau@" + BOUNCING_DOMAIN).get_json()["mails"]
    assert mail["status"] == "failed" and mail["failed_at"] is not None
    assert mail["error"].startswith("Empfänger abgelehnt: 550 5.1.1")


def test_mails_to_other_addresses_are_delivered_into_the_mailbox(api: Api, app: Flask) -> None:
    api.post("/citizens", {"persona": "lieschen"})
    run_mail_sender(app)
    [mail] = api.get("/mails?to=lieschen.mueller@example.org").get_json()["mails"]
    assert mail["status"] == "sent" and mail["error"] is None


def test_the_mails_need_an_address_and_a_sensible_limit(api: Api) -> None:
    assert api.get("/mails").status_code == 400
    assert api.get("/mails?to=a@example.org&limit=0").status_code == 400
    assert api.get("/mails?to=a@example.org&limit=viele").status_code == 400
    assert api.get("/mails?to=a@example.org&limit=201").status_code == 400


def test_the_clock_is_moved_read_and_reset(api: Api) -> None:
    assert api.get("/clock").get_json()["offset_seconds"] == 0

    moved = api.put("/clock", {"offset_seconds": 90_000})
    read = api.get("/clock").get_json()
    reset = api.delete("/clock")

    assert moved.status_code == 200 and moved.get_json()["offset_seconds"] == 90_000
    assert read["offset_seconds"] == 90_000
    ahead = _at(read["now"]) - datetime.now(UTC)
    assert timedelta(hours=24, minutes=59) < ahead < timedelta(hours=25, minutes=1)
    assert reset.get_json()["offset_seconds"] == 0
    assert abs(_at(api.get("/clock").get_json()["now"]) - datetime.now(UTC)) < timedelta(minutes=1)


def test_the_clock_takes_only_whole_seconds_within_ten_years(api: Api) -> None:
    for body in ({"offset_seconds": "3600"}, {"offset_seconds": 1.5},
                 {"offset_seconds": True}, {"offset_seconds": 10 * 366 * 24 * 3600}):
        response = api.put("/clock", body)
        assert response.status_code == 422, body
    assert api.put("/clock", {"offset_seconds": 60, "hours": 1}).status_code == 400
    assert api.put("/clock", {}).status_code == 400
    assert api.get("/clock").get_json()["offset_seconds"] == 0  # nothing half-set


def test_the_clock_moved_through_the_api_makes_an_activation_link_expire(
        api: Api, browser: Browser) -> None:
    api.post("/citizens", {"persona": "lieschen"})
    [mail] = api.get("/mails?to=lieschen.mueller@example.org").get_json()["mails"]
    path = mail["links"][0].removeprefix("http://localhost")
    assert "Servicekonto aktivieren" in browser.get(path).get_data(as_text=True)

    api.put("/clock", {"offset_seconds": 24 * 3600 + 60})

    expired = browser.get(path).get_data(as_text=True)
    assert "Aktivierungslink abgelaufen" in expired and "Aktivierungslink erneut senden" in expired

    api.delete("/clock")
    browser.get(path)
    assert "Sie sind erfolgreich registriert" in browser.submit(path).get_data(as_text=True)


def test_the_clock_moved_back_keeps_a_link_valid_past_its_time(api: Api,
                                                                browser: Browser) -> None:
    api.put("/clock", {"offset_seconds": -3 * 24 * 3600})
    api.post("/citizens", {"persona": "lieschen"})  # its link expires two days ago, real time
    [mail] = api.get("/mails?to=lieschen.mueller@example.org").get_json()["mails"]
    path = mail["links"][0].removeprefix("http://localhost")

    assert "Servicekonto aktivieren" in browser.get(path).get_data(as_text=True)
    api.delete("/clock")
    assert "Aktivierungslink abgelaufen" in browser.get(path).get_data(as_text=True)


def test_the_moved_clock_reaches_the_mail_sender_too(api: Api, app: Flask) -> None:
    """Mails written at the moved time are due for a sender running at the moved time."""
    api.put("/clock", {"offset_seconds": 7 * 24 * 3600})
    api.post("/citizens", {"persona": "lieschen"})

    run_mail_sender(app)

    [mail] = api.get("/mails?to=lieschen.mueller@example.org").get_json()["mails"]
    assert mail["status"] == "sent"
    assert _at(mail["sent_at"]) - datetime.now(UTC) > timedelta(days=6)


@pytest.mark.parametrize("limit", ["²", "-1", "x", ""])
def test_a_limit_that_is_no_plain_number_is_refused_with_a_message(api: Api, limit: str) -> None:
    answer = api.get(f"/mails?to=erika@example.org&limit={limit}")
    assert answer.status_code == 400 and "limit" in answer.get_json()["error"]
