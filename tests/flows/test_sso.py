"""Single sign-on end to end: a real pysaml2 SP against the IdP, over both bindings."""

from __future__ import annotations

from typing import Any

import lxml.html
import pytest
from flask import Flask
from saml2 import BINDING_HTTP_POST, BINDING_HTTP_REDIRECT

from tests.conftest import Browser, activate, log_in, register
from tests.flows.conftest import SP_ENTITY, Portal, answer_to, field_value, logged_in
from tests.saml_support import abbrechen_target

GIVEN_NAME = "urn:oid:2.5.4.42"
SURNAME = "urn:oid:2.5.4.4"
BPK2 = "urn:oid:1.3.6.1.4.1.25484.494450.3"
GENDER = "urn:oid:1.3.6.1.4.1.33592.1.3.5"


def _start(visitor: Browser, portal: Portal, binding: str, **kwargs: Any) -> Any:
    path, form = portal.login_url(binding, **kwargs)
    if form is None:
        return visitor.client.get(path)
    return visitor.client.post(path, data=form)


def _follow(visitor: Browser, response: Any) -> str:
    """The page the browser ends on (following one redirect)."""
    if response.status_code == 302:
        response = visitor.get(response.location)
    visitor.last_html = response.get_data(as_text=True)
    return visitor.last_html


def _registered(app: Flask, visitor: Browser) -> None:
    register(visitor)
    activate(visitor, app)


@pytest.mark.parametrize("binding", [BINDING_HTTP_REDIRECT, BINDING_HTTP_POST])
def test_a_citizen_logs_in_agrees_and_the_portal_gets_a_signed_assertion(
        sso_app: Flask, visitor: Browser, portal: Portal, binding: str) -> None:
    _registered(sso_app, visitor)
    to_login = _start(visitor, portal, binding, relay_state="/formulare/42")
    assert to_login.status_code == 302 and "/anmelden?anfrage=" in to_login.location
    visitor.get(to_login.location)
    back = visitor.submit(to_login.location, {"username": "ErikaM",
                                             "password": "Kräftig-Grün 42"})
    consent = visitor.get(back.location)
    page = consent.get_data(as_text=True)
    assert "Zustimmung zur Weitergabe an ein Fachverfahren" in page
    assert "Bürgerportal Musterstadt" in page and "Mustermann" in page
    answer = visitor.submit("/saml/zustimmung", {
        "transaction": field_value(page, "transaction"), "decision": "agree"})
    response = portal.receive(answer.get_data(as_text=True))
    assert response.relay_state == "/formulare/42"
    assertion = response.assertion
    assert response.response.signature is not None and assertion.signature is not None
    attributes = {a.name: [v.text for v in a.attribute_value]
                  for a in assertion.attribute_statement[0].attribute}
    assert attributes[GIVEN_NAME] == ["Erika"] and attributes[SURNAME] == ["Mustermann"]
    assert attributes[GENDER] == ["2"]
    assert attributes[BPK2] == [assertion.subject.name_id.text]
    assert assertion.authn_statement[0].authn_context.authn_context_class_ref.text == \
        "STORK-QAA-Level-1"
    assert assertion.conditions.audience_restriction[0].audience[0].text == SP_ENTITY


def test_the_second_login_at_the_same_portal_needs_no_consent_again(
        sso_app: Flask, visitor: Browser, portal: Portal) -> None:
    _registered(sso_app, visitor)
    log_in(visitor)
    page = _follow(visitor, _start(visitor, portal, BINDING_HTTP_REDIRECT))
    visitor.submit("/saml/zustimmung", {"transaction": field_value(page, "transaction"),
                                        "decision": "agree"})
    response = portal.receive(_follow(visitor, _start(visitor, portal, BINDING_HTTP_REDIRECT)))
    assert response.assertion is not None


def test_declining_consent_tells_the_portal_request_denied_and_sends_no_data(
        sso_app: Flask, visitor: Browser, portal: Portal) -> None:
    _registered(sso_app, visitor)
    log_in(visitor)
    page = _follow(visitor, _start(visitor, portal, BINDING_HTTP_REDIRECT))
    answer = visitor.submit("/saml/zustimmung", {"transaction": field_value(page, "transaction"),
                                                 "decision": "decline"})
    text = answer.get_data(as_text=True)
    assert "Mustermann" not in text
    from saml2.response import StatusRequestDenied

    with pytest.raises(StatusRequestDenied):
        portal.receive(text)


def test_is_passive_without_a_session_answers_no_passive(
        sso_app: Flask, visitor: Browser, portal: Portal) -> None:
    from saml2.response import StatusNoPassive

    answer = _start(visitor, portal, BINDING_HTTP_REDIRECT, is_passive="true")
    with pytest.raises(StatusNoPassive):
        portal.receive(answer.get_data(as_text=True))


def test_a_portal_sends_the_citizen_to_the_guides_servicekonto_page_with_the_password_login_open(
        sso_app: Flask, visitor: Browser, portal: Portal) -> None:
    to_login = _start(visitor, portal, BINDING_HTTP_REDIRECT, relay_state="/formulare/42")
    page = lxml.html.fromstring(visitor.get(to_login.location).get_data(as_text=True))

    assert page.xpath("normalize-space(//h1)") == "Melden Sie sich hier an"
    (opened,) = page.xpath("//section[contains(@class, 'open')]")
    assert opened.xpath("normalize-space(h2)") == "Anmelden mit Benutzername und Passwort"
    assert opened.xpath(".//form//input[@name='username']") and \
        opened.xpath(".//form//input[@name='password']")
    methods = [" ".join(item.text_content().split())
               for item in page.xpath("//ul[@class='options']/li[not(section)]")]
    assert methods == ["Anmelden mit der Online-Ausweisfunktion (Simulation – kein echter Ausweis)",
                       "Login mit externem Servicekonto (noch nicht verfügbar)"]
    assert page.xpath("normalize-space(//section[@class='aside']/h2)") == \
        "Noch kein Servicekonto?"
    assert page.xpath("//section[@class='aside']//a[normalize-space()='Registrieren']")


def test_a_replayed_request_gets_an_error_page_at_the_idp(
        sso_app: Flask, visitor: Browser, portal: Portal) -> None:
    path, _ = portal.login_url(BINDING_HTTP_REDIRECT)
    assert visitor.client.get(path).status_code == 302
    replay = visitor.client.get(path)
    assert replay.status_code == 400
    assert "konnte nicht angenommen werden" in replay.get_data(as_text=True)


def test_the_metadata_is_signed_and_names_both_sso_bindings(
        sso_app: Flask, signing_keys: tuple[Any, Any]) -> None:
    from idp.saml.sp_metadata import check_signature, verifier_from_backend
    from idp.samlkit.crypto import InProcessCryptoBackend
    from idp.samlkit.metadata import MetadataError

    xml = sso_app.test_client().get("/saml/metadata").get_data()
    verifier = verifier_from_backend(InProcessCryptoBackend())
    check_signature(xml, signing_keys[1].read_bytes(), verifier)  # raises if not signed by us
    with pytest.raises(MetadataError):
        check_signature(xml.replace(b"/saml/sso/post", b"/saml/sso/poxt"),
                        signing_keys[1].read_bytes(), verifier)
    assert b"/saml/sso/redirect" in xml and b"/saml/sso/post" in xml


def test_a_cross_site_post_without_the_session_cookie_is_resubmitted_same_site(
        sso_app: Flask, visitor: Browser, portal: Portal) -> None:
    """SameSite=Lax keeps the cookie off the portal's POST; our own form brings it back."""
    _registered(sso_app, visitor)
    log_in(visitor)
    path, form = portal.login_url(BINDING_HTTP_POST)
    assert form is not None
    cookieless = sso_app.test_client()  # the browser as seen on the cross-site POST
    page = cookieless.post(path, data=form).get_data(as_text=True)
    assert "Anmeldung wird fortgesetzt" in page
    resubmitted = {"SAMLRequest": field_value(page, "SAMLRequest"),
                   "RelayState": field_value(page, "RelayState"),
                   "servicekonto_resubmitted": "1"}
    consent = _follow(visitor, visitor.client.post(path, data=resubmitted))
    assert "Zustimmung zur Weitergabe an ein Fachverfahren" in consent


def test_force_authn_asks_a_logged_in_citizen_for_the_password_again(
        sso_app: Flask, visitor: Browser, portal: Portal) -> None:
    _registered(sso_app, visitor)
    log_in(visitor)
    forced = _start(visitor, portal, BINDING_HTTP_REDIRECT, force_authn="true")
    assert forced.status_code == 302 and "/anmelden?anfrage=" in forced.location
    visitor.get(forced.location)
    back = visitor.submit(forced.location, {"username": "ErikaM",
                                            "password": "Kräftig-Grün 42"})
    assert "Zustimmung zur Weitergabe" in _follow(visitor, back)


def test_a_level_the_citizen_cannot_reach_answers_no_authn_context(
        sso_app: Flask, visitor: Browser, portal: Portal) -> None:
    from saml2.response import StatusNoAuthnContext
    from saml2.saml import AuthnContextClassRef
    from saml2.samlp import RequestedAuthnContext

    # Nothing is above level 4 ("hoch", the Online-Ausweisfunktion).
    requested = RequestedAuthnContext(
        authn_context_class_ref=[AuthnContextClassRef(text="STORK-QAA-Level-4")],
        comparison="better")
    answer = _start(visitor, portal, BINDING_HTTP_REDIRECT, requested_authn_context=requested)
    with pytest.raises(StatusNoAuthnContext):
        portal.receive(answer.get_data(as_text=True))


def test_a_portal_asking_for_password_protected_transport_gets_it_named_in_the_assertion(
        sso_app: Flask, visitor: Browser, portal: Portal) -> None:
    """What generic SAML SPs (python3-saml by default) ask for, Comparison="exact": a password
    login is that, and the answer names exactly the requested context."""
    from saml2.saml import AuthnContextClassRef
    from saml2.samlp import RequestedAuthnContext

    password = "urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport"
    logged_in(sso_app, visitor)
    requested = RequestedAuthnContext(
        authn_context_class_ref=[AuthnContextClassRef(text=password)], comparison="exact")
    response = portal.receive(answer_to(visitor, portal, requested_authn_context=requested))
    context = response.assertion.authn_statement[0].authn_context
    assert context.authn_context_class_ref.text == password
    levels = [attribute.attribute_value[0].text
              for statement in response.assertion.attribute_statement
              for attribute in statement.attribute if attribute.friendly_name ==
              "EID-CITIZEN-QAA-LEVEL"]
    assert levels == ["STORK-QAA-Level-1"]  # the BundID attribute keeps its own name


def test_abbrechen_on_the_login_page_tells_the_portal_authn_failed(
        sso_app: Flask, visitor: Browser, portal: Portal) -> None:
    from saml2.response import StatusAuthnFailed

    to_login = _start(visitor, portal, BINDING_HTTP_REDIRECT)
    page = visitor.get(to_login.location).get_data(as_text=True)
    cancel = abbrechen_target(page)
    assert cancel.startswith("/saml/abbrechen/")
    answer = visitor.submit(cancel)
    with pytest.raises(StatusAuthnFailed):
        portal.receive(answer.get_data(as_text=True))
    visitor.get(to_login.location)
    assert visitor.submit(cancel).status_code == 410  # answered once only


def test_abbrechen_sends_neither_username_nor_password(
        sso_app: Flask, visitor: Browser, portal: Portal) -> None:
    to_login = _start(visitor, portal, BINDING_HTTP_REDIRECT)
    page = visitor.get(to_login.location).get_data(as_text=True)
    assert "formaction" not in page
    cancel_form = page.split('<form id="abbrechen"', 1)[1].split("</form>", 1)[0]
    assert 'name="username"' not in cancel_form and 'name="password"' not in cancel_form
    assert 'form="abbrechen"' in page.split('id="password"', 1)[1]  # the button beside ANMELDEN


def test_a_cancel_link_to_another_site_is_not_offered(sso_app: Flask, visitor: Browser) -> None:
    page = visitor.get("/anmelden?next=/konto&cancel=https://evil.example/x")
    assert "evil.example" not in page.get_data(as_text=True)
