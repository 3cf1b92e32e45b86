"""The consent page of the SSO flow ("Zustimmung zur Weitergabe an ein Fachverfahren")."""

from __future__ import annotations

from flask import Flask, render_template

from idp.accounts.models import Citizen, Salutation
from idp.consent.attributes import CATALOGUE, release


def render(app: Flask, **context: object) -> str:
    citizen = Citizen(salutation=Salutation.DIVERS, given_name="Kim <b>", surname="O'Neil & Co",
                      birth_name=None, email="kim@example.org")
    values: dict[str, object] = {
        "portal_name": "Bürgerportal Düren", "organization_display_name": None, "purpose": None,
        "attributes": release(citizen, [entry.name for entry in CATALOGUE], "bpk2-77aa"),
        "transaction": "ref-123", "action_url": "/saml/zustimmung"}
    with app.test_request_context("/saml/weiter/ref-123"):
        html = render_template("idp/consent_request.html", **(values | context))
    return " ".join(html.split())  # line breaks of the template do not matter


def test_the_consent_page_names_the_portal_and_every_value_sent(app: Flask) -> None:
    page = render(app)
    for text in ("Zustimmung zur Weitergabe an ein Fachverfahren",
                 "Sie haben sich erfolgreich mit Ihrem Servicekonto authentifiziert",
                 "Stimmen Sie hier der einmaligen Weitergabe Ihrer im Servicekonto hinterlegten "
                 "Daten an das folgende Portal zu", "Bürgerportal Düren",
                 "kim@example.org", "bpk2-77aa", "STORK-QAA-Level-1", "Benutzername",
                 "Code 9", "Vertrauensniveau", "Art der Anmeldung"):
        assert text in page, text
    assert "Geburtsname" not in page  # Kim has none: nothing is sent, nothing is listed
    assert 'finden Sie in der <a href="/datenschutz"' in page


def test_the_privacy_link_opens_in_a_new_window_and_says_so(app: Flask) -> None:
    """The citizen is in the middle of a login: reading the privacy statement must not end it."""
    page = render(app)
    assert ('<a href="/datenschutz" target="_blank" rel="noopener">Datenschutzerklärung '
            '<span class="small">(öffnet in einem neuen Fenster)</span></a>') in page


def test_the_consent_page_offers_agree_and_decline_in_one_form(app: Flask) -> None:
    page = render(app)
    assert page.count("<form") == 1
    assert 'action="/saml/zustimmung"' in page
    assert 'name="decision" value="agree"' in page and ">ZUSTIMMEN<" in page
    assert 'name="decision" value="decline"' in page and ">ABLEHNEN<" in page
    assert 'name="transaction" value="ref-123"' in page
    assert 'name="csrf_token"' in page


def test_bundid_organisation_and_purpose_are_shown(app: Flask) -> None:
    page = render(app, organization_display_name="Stadt Düren – Amt für Bürgerdienste " * 3,
                  purpose="Antrag auf Bewohnerparkausweis")
    assert "Antrag auf Bewohnerparkausweis" in page
    assert ("Stadt Düren – Amt für Bürgerdienste " * 3)[:50] + "</dd>" in page


def test_values_on_the_consent_page_are_html_escaped(app: Flask) -> None:
    page = render(app, portal_name="<script>alert(1)</script>", transaction='x"><img>')
    assert "<script>alert(1)" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "Kim &lt;b&gt;" in page and "Kim <b>" not in page
    assert "O&#39;Neil &amp; Co" in page
    assert 'value="x&#34;&gt;&lt;img&gt;"' in page
