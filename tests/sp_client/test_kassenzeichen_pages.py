"""The mags guide, screen by screen: log in, "Kassenzeichen hinzufügen", a letter in the post,
"Bestätigungscode eingeben" → OK → "Kassenzeichen hinzugefügt" → Beenden."""

from __future__ import annotations

import re

import pytest

from tests.sp_client.conftest import Journey

MAGS = "http://127.0.0.1:5002"
CODE = re.compile(r"lautet:\s+([A-Z0-9]{4} [A-Z0-9]{4} [A-Z0-9]{4})")


@pytest.fixture
def portal_profile() -> str:
    return "mags"


def add(journey: Journey, kassenzeichen: str) -> object:
    journey.open(MAGS + "/kassenzeichen/hinzufuegen")
    return journey.submit(MAGS + "/kassenzeichen/hinzufuegen", {"kassenzeichen": kassenzeichen})


def code_from_the_post(journey: Journey) -> str:
    """Open the newest letter in the postal outbox and read the code off it."""
    journey.open(MAGS + "/post")
    letter = re.search(r'href="(/post/\d+)"', journey.page)
    assert letter, journey.page
    journey.open(MAGS + letter.group(1))
    found = CODE.search(journey.page)
    assert found, journey.page
    return found.group(1)


def enter(journey: Journey, code: str) -> object:
    journey.open(MAGS + "/kassenzeichen/bestaetigungscode")
    return journey.submit(MAGS + "/kassenzeichen/bestaetigungscode", {"code": code})


def table_rows(journey: Journey) -> list[tuple[str, ...]]:
    journey.open(MAGS + "/kassenzeichen")
    return re.findall(r"<tr><td[^>]*>([\d.]+)</td><td[^>]*>([^<]*)</td><td[^>]*>([^<]*)</td>"
                      r"<td[^>]*>([^<]*)</td>", journey.page)


def test_erika_adds_her_first_kassenzeichen_and_gets_the_other_two(logged_in: Journey) -> None:
    assert table_rows(logged_in) == []
    assert "Zuordnung Kassenzeichen" in logged_in.page
    for button in ("Zurück zu den Services", "Kassenzeichen hinzufügen",
                   "Bestätigungscode eingeben"):
        assert button in logged_in.page
    add(logged_in, "1500.0001.0001")
    assert logged_in.url.startswith(MAGS + "/kassenzeichen/brief-versandt")
    assert "Bestätigungscode angefordert" in logged_in.page
    code = code_from_the_post(logged_in)
    assert "Erika Mustermann" in logged_in.page and "Bismarckstraße 12" in logged_in.page
    enter(logged_in, code)
    assert logged_in.url == MAGS + "/kassenzeichen/hinzugefuegt"
    assert "Kassenzeichen hinzugefügt" in logged_in.page
    # As in the guide: the code as twelve characters, without the letter's grouping.
    assert f"Der von Ihnen eingegebene Bestätigungscode <span class=\"code\">" \
           f"{code.replace(' ', '')}</span> " \
           f"ist erfolgreich geprüft worden." in logged_in.page
    assert "1500.0001.0002" in logged_in.page and "1500.0001.0003" in logged_in.page
    logged_in.submit(MAGS + "/kassenzeichen/beenden")
    assert logged_in.url == MAGS + "/kassenzeichen"
    assert table_rows(logged_in) == [
        ("1500.0001.0001", "Bismarckstraße", "12", ""),
        ("1500.0001.0002", "Hindenburgstraße", "101", "Hinterhaus"),
        ("1500.0001.0003", "Waldhausener Straße", "7", "a")]


def test_a_kassenzeichen_in_the_wrong_format_is_explained_at_the_field(
        logged_in: Journey) -> None:
    response = add(logged_in, "1500-1-1")
    assert response.status_code == 422  # type: ignore[attr-defined]
    page = logged_in.page
    assert "Bitte geben Sie das Kassenzeichen im Format 1500.0000.0000 ein." in page
    assert 'aria-invalid="true"' in page
    assert 'aria-describedby="kassenzeichen-hinweis kassenzeichen-fehler"' in page
    assert 'value="1500-1-1"' in page  # the input stays for correction
    logged_in.open(MAGS + "/post")
    assert "Es wurden noch keine Briefe verschickt." in logged_in.page


def test_a_wrong_code_counts_and_the_fifth_makes_the_code_void(logged_in: Journey) -> None:
    add(logged_in, "1500.0001.0001")
    code = code_from_the_post(logged_in)
    response = enter(logged_in, "ABCD EFGH JKMN" if code != "ABCD EFGH JKMN" else "NMKJ")
    assert response.status_code == 422  # type: ignore[attr-defined]
    assert "Der Bestätigungscode ist nicht richtig. Sie haben noch 4 Versuche." in logged_in.page
    for _ in range(4):
        enter(logged_in, "falsch")
    assert "5-mal falsch eingegeben" in logged_in.page
    enter(logged_in, code)
    assert "5-mal falsch eingegeben" in logged_in.page
    assert table_rows(logged_in) == []


def test_a_code_works_only_once(logged_in: Journey) -> None:
    add(logged_in, "1500.0002.0001")
    code = code_from_the_post(logged_in)
    enter(logged_in, code)
    assert "ist erfolgreich geprüft worden" in logged_in.page
    enter(logged_in, code)
    assert "Dieser Bestätigungscode wurde bereits verwendet." in logged_in.page


def test_the_kassenzeichen_pages_need_a_login(journey: Journey) -> None:
    journey.open(MAGS + "/kassenzeichen")
    assert journey.url == MAGS + "/anmelden"
    assert "Servicekonto.NRW erforderlich!" in journey.page


def test_the_forms_need_their_csrf_token(logged_in: Journey) -> None:
    response = logged_in.open(MAGS + "/kassenzeichen/hinzufuegen",
                              {"kassenzeichen": "1500.0001.0001"})
    assert response.status_code == 400
    assert "Das Formular ist abgelaufen" in logged_in.page
    logged_in.open(MAGS + "/post")
    assert "Es wurden noch keine Briefe verschickt." in logged_in.page


@pytest.mark.parametrize("portal_options", [{"show_postal_outbox": False}])
def test_outside_the_demo_the_postal_outbox_is_not_shown(journey: Journey) -> None:
    assert journey.open(MAGS + "/post").status_code == 404
    assert "Seite nicht gefunden" in journey.page


def test_the_postal_outbox_is_not_shown_to_another_machine(journey: Journey) -> None:
    """Behind a proxy or in a container every client would read every Bestätigungscode."""
    response = journey.portal.get("/post", base_url=MAGS,
                                  environ_base={"REMOTE_ADDR": "172.18.0.4"})
    assert response.status_code == 404
    journey.page = response.get_data(as_text=True)
    assert "Postausgang" not in journey.page
    letter = journey.portal.get("/post/1", base_url=MAGS,
                                environ_base={"REMOTE_ADDR": "172.18.0.4"})
    assert letter.status_code == 404


@pytest.mark.parametrize("portal_options", [{"postal_outbox_remote": True}])
def test_the_postal_outbox_is_shown_to_another_machine_when_asked_to(journey: Journey) -> None:
    response = journey.portal.get("/post", base_url=MAGS,
                                  environ_base={"REMOTE_ADDR": "172.18.0.4"})
    assert response.status_code == 200
    assert "Es wurden noch keine Briefe verschickt." in response.get_data(as_text=True)


@pytest.mark.parametrize("form", ["/kassenzeichen/hinzufuegen", "/kassenzeichen/bestaetigungscode"])
def test_screen_readers_hear_what_the_star_of_the_required_fields_means(
        logged_in: Journey, form: str) -> None:
    logged_in.open(MAGS + form)
    note = re.search(r'<p class="hint">(.*?Pflichtfelder)</p>', logged_in.page)
    assert note, logged_in.page
    read_aloud = re.sub(r'<span aria-hidden="true">[^<]*</span>|<[^>]+>', "", note.group(1))
    assert read_aloud == "Felder mit Stern sind Pflichtfelder"
