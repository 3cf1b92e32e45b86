"""The page a citizen lands on after login: in her words at the top (mags' "Übersicht der
Services", Düren's "Mein Bereich"), everything received for QA in "Technische Angaben"."""

from __future__ import annotations

import re

import pytest

from idp.samlkit.bundid import GENDER
from sp_client.received import german_time, shown_value
from tests.sp_client.conftest import Journey, visible_and_technical
from tests.sp_client.test_kassenzeichen_pages import MAGS, add, code_from_the_post, enter

GERMAN_DATE = re.compile(r"\d{1,2}\. (Januar|Februar|März|April|Mai|Juni|Juli|August|September|"
                         r"Oktober|November|Dezember) \d{4}, \d{2}:\d{2} Uhr")
ISO_INSTANT = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}")


def test_times_are_shown_as_german_local_time() -> None:
    assert german_time("2026-12-01T10:03:12Z") == "1. Dezember 2026, 11:03 Uhr"
    assert german_time("2026-07-01T22:30:00Z") == "2. Juli 2026, 00:30 Uhr"  # summer time
    assert german_time("2026-03-05T08:00:00") == "5. März 2026, 09:00 Uhr"  # no zone: UTC
    assert german_time(None) == german_time("kein Datum") == ""


def test_the_salutation_reads_as_on_the_servicekontos_consent_page() -> None:
    assert shown_value(GENDER, "2") == "Frau (Code 2)"
    assert shown_value(GENDER, "1") == "Herr (Code 1)"
    assert shown_value(GENDER, "9") == "keine Angabe (Code 9)"


def test_at_dueren_the_citizen_is_greeted_by_name_with_german_dates_and_salutation(
        logged_in: Journey) -> None:
    visible, technical = visible_and_technical(logged_in.page)
    assert "<h1>Mein Bereich</h1>" in visible
    assert "Guten Tag, Frau Erika Mustermann! Sie sind angemeldet." in visible
    assert "<dt>Anrede</dt><dd>Frau (Code 2)</dd>" in visible and "weiblich" not in visible
    assert re.search(r"<dt>Angemeldet beim Servicekonto.NRW</dt><dd>" + GERMAN_DATE.pattern,
                     visible)
    assert not ISO_INSTANT.search(visible)
    # Düren's services are hers to use now.
    assert 'href="/services/meldebescheinigung"' in visible
    # The details keep the instant as received, with the German time beside it.
    assert re.search(r"AuthnInstant</th><td><span class=\"code\">" + ISO_INSTANT.pattern,
                     technical)


@pytest.mark.parametrize("portal_profile", ["mags"])
def test_at_mags_the_services_overview_asks_for_a_kassenzeichen_first(
        logged_in: Journey) -> None:
    visible, _ = visible_and_technical(logged_in.page)
    assert "<h1>Übersicht der Services</h1>" in visible
    assert "Guten Tag, Erika Mustermann! Sie sind angemeldet." in visible
    assert "Um die anmeldepflichtigen Services nutzen zu können, müssen Sie nun Ihr " \
           "Kassenzeichen hinterlegen. (Beispiel: 1500.0000.0000)" in visible
    assert '<a class="button" href="/kassenzeichen">Kassenzeichen hinzufügen</a>' in visible
    # The services that need a Kassenzeichen are listed, not linked, and say why.
    assert "<strong>Abfallgebühren einsehen</strong><br>" in visible
    assert 'href="/services/abfallgebuehren"' not in visible
    assert "anmeldepflichtig, bestätigtes Kassenzeichen erforderlich" in visible
    # Typed in by hand, such a service sends her to add a Kassenzeichen.
    logged_in.open(MAGS + "/services/sperrmuell")
    assert "müssen Sie zuerst Ihr Kassenzeichen hinterlegen" in logged_in.page
    assert 'href="/kassenzeichen"' in logged_in.page


@pytest.mark.parametrize("portal_profile", ["mags"])
def test_at_mags_a_confirmed_kassenzeichen_opens_the_services(logged_in: Journey) -> None:
    add(logged_in, "1500.0001.0001")
    enter(logged_in, code_from_the_post(logged_in))
    logged_in.open(MAGS + "/uebersicht")
    visible, _ = visible_and_technical(logged_in.page)
    assert "müssen Sie nun Ihr Kassenzeichen hinterlegen" not in visible
    assert "Bestätigte Kassenzeichen: 1500.0001.0001, 1500.0001.0002, 1500.0001.0003." \
           in visible
    assert 'href="/services/abfallgebuehren"><strong>Abfallgebühren einsehen</strong>' in visible
    assert "bestätigtes Kassenzeichen erforderlich" not in visible
    logged_in.open(MAGS + "/services/abfallgebuehren")
    assert "<h1>Abfallgebühren einsehen</h1>" in logged_in.page
    assert "Kassenzeichen hinterlegen" not in logged_in.page


@pytest.mark.parametrize("portal_profile", ["mags"])
def test_the_technical_details_hold_the_name_id_and_every_attribute_as_received(
        logged_in: Journey) -> None:
    visible, technical = visible_and_technical(logged_in.page)
    assert "Technische Angaben (für Test und Entwicklung)" in technical
    name_id = re.search(r'NameID</th><td class="code">([^<]+)<', technical)
    assert name_id and name_id.group(1) not in visible
    for shown in ("urn:oasis:names:tc:SAML:2.0:nameid-format:transient", "STORK-QAA-Level-1",
                  "SessionIndex", "IssueInstant der Response", "SessionNotOnOrAfter"):
        assert shown in technical
    rows = re.findall(r'<tr><th scope="row">([^<]+)</th><td data-label="FriendlyName"[^>]*>'
                      r'([^<]+)</td><td data-label="Name"[^>]*>([^<]+)</td>'
                      r'<td data-label="Wert"[^>]*>([^<]*)</td>'
                      r'<td data-label="akdb:TrustLevel"[^>]*>([^<]+)</td>', technical)
    by_friendly_name = {friendly: (label, name, value, trust)
                        for label, friendly, name, value, trust in rows}
    assert set(by_friendly_name) == {"givenName", "surname", "birthName", "mail", "bPK2"}
    assert by_friendly_name["givenName"] == ("Vorname", "urn:oid:2.5.4.42", "Erika",
                                             "UNTERGEORDNET")
    assert by_friendly_name["birthName"][2] == "Gabler"
    assert by_friendly_name["mail"][2:] == ("erika.mustermann@example.org", "NORMAL")
    assert by_friendly_name["bPK2"][2] and by_friendly_name["bPK2"][3] == "NORMAL"


def test_a_service_without_login_needs_none_and_one_with_login_asks_for_it(
        journey: Journey) -> None:
    journey.open("/services/buergerbuero")
    assert "<h1>Termin im Bürgerbüro</h1>" in journey.page
    journey.open("/services/anwohnerparkausweis")
    assert journey.url.endswith("/anmelden")
    # One that needs level "hoch" offers the login with the Online-Ausweisfunktion.
    journey.open("/services/meldebescheinigung")
    assert "Mit der Online-Ausweisfunktion anmelden" in journey.page
    assert journey.open("/services/unbekannt").status_code == 404
