"""BundID portals send akdb:AuthenticationRequest: what they ask for is what they get (if signed).

The portal's policy here allows every attribute but the Anrede (gender), so the tests can ask
for more than the policy allows.
"""

from __future__ import annotations

import base64
from typing import Any

import pytest
from flask import Flask
from lxml import etree
from saml2 import BINDING_HTTP_POST, BINDING_HTTP_REDIRECT, extension_element_from_string
from saml2.response import StatusNoAuthnContext, StatusRequestDenied, StatusRequestUnsupported
from saml2.samlp import Extensions
from saml2.xmldsig import SIG_RSA_SHA256

from idp.consent.records import consents_of
from idp.db import db
from tests.conftest import Browser, activate, log_in, register
from tests.flows.conftest import FORM_FIELD, Portal, b64, decide, field_value, logged_in
from tests.flows.test_sso_attacks import assert_refused_at_the_idp, post_sso

GENDER = "urn:oid:1.3.6.1.4.1.33592.1.3.5"
GIVEN_NAME = "urn:oid:2.5.4.42"
SURNAME = "urn:oid:2.5.4.4"
BIRTH_NAME = "urn:oid:1.2.40.0.10.2.1.1.225566"
MAIL = "urn:oid:0.9.2342.19200300.100.1.3"
BPK2 = "urn:oid:1.3.6.1.4.1.25484.494450.3"
AKDB = "https://www.akdb.de/request/2018/09"
SAMLP = "urn:oasis:names:tc:SAML:2.0:protocol"


ATTRIBUTES = {"attributes": ["givenName", "surname", "birthName", "mail", "bPK2",
                             "EID-CITIZEN-QAA-LEVEL", "AssertionProvedBy"]}


@pytest.fixture
def portal_changes() -> dict[str, Any]:
    return ATTRIBUTES


def bundid(*, attributes: dict[str, bool] | None = None, methods: dict[str, bool] | None = None,
           organization: str | None = None, purpose: str | None = None,
           service_id: str | None = None, status_detail: bool = False,
           version: str = "2") -> Extensions:
    """samlp:Extensions with an akdb:AuthenticationRequest as a BundID portal sends it."""
    parts = []
    if methods is not None:
        parts.append("<akdb:AuthnMethods>" + "".join(
            f"<akdb:{name}><akdb:Enabled>{str(on).lower()}</akdb:Enabled></akdb:{name}>"
            for name, on in methods.items()) + "</akdb:AuthnMethods>")
    if attributes is not None:
        parts.append("<akdb:RequestedAttributes>" + "".join(
            f'<akdb:RequestedAttribute Name="{name}" RequiredAttribute="{str(req).lower()}"/>'
            for name, req in attributes.items()) + "</akdb:RequestedAttributes>")
    display = [f"<ui:{tag}>{value}</ui:{tag}>" for tag, value in (
        ("OrganizationDisplayName", organization), ("Purpose", purpose),
        ("OnlineServiceId", service_id)) if value is not None]
    if display:
        parts.append('<akdb:DisplayInformation><ui:Version '
                     'xmlns:ui="https://www.akdb.de/request/2018/09/classic-ui/v1">'
                     + "".join(display) + "</ui:Version></akdb:DisplayInformation>")
    xml = (f'<akdb:AuthenticationRequest xmlns:akdb="{AKDB}" Version="{version}" '
           f'EnableStatusDetail="{str(status_detail).lower()}">{"".join(parts)}'
           "</akdb:AuthenticationRequest>")
    return Extensions(extension_elements=[extension_element_from_string(xml)])


def start(visitor: Browser, portal: Portal, extensions: Extensions, *, signed: bool = True,
          binding: str = BINDING_HTTP_REDIRECT, follow: bool = True) -> Any:
    """The portal sends the request; the browser follows to the page it lands on."""
    path, form = portal.login_url(binding, extensions=extensions, sign=signed)
    response = visitor.client.get(path) if form is None else visitor.client.post(path, data=form)
    if response.status_code == 302 and follow:
        response = visitor.client.get(response.location)
    visitor.last_html = response.get_data(as_text=True)
    return response


def released(portal: Portal, page: str) -> dict[str, list[str]]:
    assertion = portal.receive(page).assertion
    return {a.name: [v.text for v in a.attribute_value]
            for statement in assertion.attribute_statement for a in statement.attribute}


def status_of(page: str) -> tuple[list[str], list[str]]:
    """The StatusCode values and akdb:StatusDetail codes of the Response on an auto-POST page."""
    fields = dict(FORM_FIELD.findall(page))
    root = etree.fromstring(base64.b64decode(fields["SAMLResponse"]))
    codes = [code.get("Value") for code in root.iter(f"{{{SAMLP}}}StatusCode")]
    details = [detail.text for detail in root.iter(f"{{{AKDB}}}StatusDetail")]
    return codes, details


@pytest.mark.parametrize("binding", [BINDING_HTTP_REDIRECT, BINDING_HTTP_POST])
def test_only_the_requested_attributes_are_listed_and_sent(
        sso_app: Flask, visitor: Browser, portal: Portal, binding: str) -> None:
    logged_in(sso_app, visitor)
    start(visitor, portal, bundid(attributes={SURNAME: True, BPK2: False}), binding=binding)
    page = visitor.last_html
    assert "Zustimmung zur Weitergabe an ein Fachverfahren" in page
    assert "Nachname" in page and "bPK2" in page
    assert "Vorname" not in page and "E-Mail-Adresse" not in page
    assert set(released(portal, decide(visitor).get_data(as_text=True))) == {SURNAME, BPK2}


def test_an_attribute_the_policy_does_not_allow_is_not_sent_even_if_requested(
        sso_app: Flask, visitor: Browser, portal: Portal) -> None:
    logged_in(sso_app, visitor)
    start(visitor, portal, bundid(attributes={GENDER: False, GIVEN_NAME: False}))
    assert "Anrede" not in visitor.last_html
    assert set(released(portal, decide(visitor).get_data(as_text=True))) == {GIVEN_NAME}


def test_a_required_attribute_the_policy_does_not_allow_is_denied_before_login(
        visitor: Browser, portal: Portal) -> None:
    response = start(visitor, portal, bundid(attributes={GENDER: True}, status_detail=True))
    page = response.get_data(as_text=True)
    assert "SAMLResponse" in page  # answered at once, nobody had to log in
    with pytest.raises(StatusRequestDenied):
        portal.receive(page)
    assert status_of(page)[1] == ["IDP_REQUIRED_ATTRIBUTES_NOT_ALLOWED"]


def test_a_required_attribute_the_account_lacks_is_denied_with_status_detail(
        sso_app: Flask, visitor: Browser, portal: Portal) -> None:
    register(visitor, birth_name="")
    activate(visitor, sso_app)
    log_in(visitor)
    response = start(visitor, portal, bundid(attributes={BIRTH_NAME: True, SURNAME: False},
                                             status_detail=True))
    page = response.get_data(as_text=True)
    assert "Mustermann" not in page
    codes, details = status_of(page)
    assert codes == ["urn:oasis:names:tc:SAML:2.0:status:Requester",
                     "urn:oasis:names:tc:SAML:2.0:status:RequestDenied"]
    assert details == ["IDP_REQUIRED_ATTRIBUTES_MISSING"]
    with pytest.raises(StatusRequestDenied):
        portal.receive(page)


def test_without_enable_status_detail_an_error_carries_no_detail(
        sso_app: Flask, visitor: Browser, portal: Portal) -> None:
    register(visitor, birth_name="")
    activate(visitor, sso_app)
    log_in(visitor)
    page = start(visitor, portal, bundid(attributes={BIRTH_NAME: True})).get_data(as_text=True)
    assert status_of(page) == (["urn:oasis:names:tc:SAML:2.0:status:Requester",
                                "urn:oasis:names:tc:SAML:2.0:status:RequestDenied"], [])


def test_declining_consent_is_reported_as_consent_declined(
        sso_app: Flask, visitor: Browser, portal: Portal) -> None:
    logged_in(sso_app, visitor)
    start(visitor, portal, bundid(attributes={SURNAME: False}, status_detail=True))
    page = decide(visitor, "decline").get_data(as_text=True)
    assert status_of(page)[1] == ["IDP_CONSENT_DECLINED"]


def test_organization_and_purpose_are_shown_on_the_consent_page_as_plain_text(
        sso_app: Flask, visitor: Browser, portal: Portal) -> None:
    logged_in(sso_app, visitor)
    start(visitor, portal, bundid(
        organization="&lt;script&gt;alert(1)&lt;/script&gt;Stadt Musterstadt, Bürgerbüro "
                     "für Anwohnerparken und Sondernutzung",
        purpose="Antrag auf &lt;b&gt;Anwohnerparkausweis&lt;/b&gt;"))
    page = visitor.last_html
    assert "<script>alert(1)" not in page and "<b>Anwohnerparkausweis" not in page
    # The first 50 characters, as text.
    assert "<dd>&lt;script&gt;alert(1)&lt;/script&gt;Stadt Musterstadt, Bürger</dd>" in page
    assert "Antrag auf &lt;b&gt;Anwohnerparkausweis&lt;/b&gt;" in page


def test_the_online_service_id_is_kept_with_the_consent(
        sso_app: Flask, visitor: Browser, portal: Portal) -> None:
    logged_in(sso_app, visitor)
    start(visitor, portal, bundid(attributes={SURNAME: False}, service_id="parken-01"))
    released(portal, decide(visitor).get_data(as_text=True))
    with sso_app.app_context():
        [consent] = consents_of(db.session, 1)
    assert consent.online_service_id == "parken-01"


def test_consent_is_asked_again_only_when_a_request_wants_more(
        sso_app: Flask, visitor: Browser, portal: Portal) -> None:
    logged_in(sso_app, visitor)
    start(visitor, portal, bundid(attributes={SURNAME: False, GIVEN_NAME: False}))
    released(portal, decide(visitor).get_data(as_text=True))
    fewer = start(visitor, portal, bundid(attributes={SURNAME: True}))
    assert set(released(portal, fewer.get_data(as_text=True))) == {SURNAME}
    start(visitor, portal, bundid(attributes={SURNAME: False, MAIL: False}))
    assert "Zustimmung zur Weitergabe an ein Fachverfahren" in visitor.last_html
    assert "E-Mail-Adresse" in visitor.last_html


def test_a_portal_that_enables_none_of_our_methods_gets_no_authn_context_without_a_login_page(
        visitor: Browser, portal: Portal) -> None:
    response = start(visitor, portal, bundid(methods={"Elster": True, "eID": False,
                                                      "Benutzername": False},
                                             status_detail=True))
    page = response.get_data(as_text=True)
    assert "Benutzername" not in page  # no login form was shown
    assert status_of(page)[1] == ["IDP_AUTHN_METHOD_NOT_AVAILABLE"]
    with pytest.raises(StatusNoAuthnContext):
        portal.receive(page)


def test_a_portal_that_enables_benutzername_gets_the_login_page(
        visitor: Browser, portal: Portal) -> None:
    start(visitor, portal, bundid(methods={"Benutzername": True, "eID": True}))
    assert "Anmelden mit Benutzername und Passwort" in visitor.last_html


def test_a_signed_extension_the_idp_cannot_read_is_answered_request_unsupported(
        visitor: Browser, portal: Portal) -> None:
    page = start(visitor, portal, bundid(version="1")).get_data(as_text=True)
    with pytest.raises(StatusRequestUnsupported):
        portal.receive(page)


@pytest.mark.parametrize("portal_changes", [ATTRIBUTES | {"want_authn_requests_signed": False}])
def test_an_unsigned_request_with_the_extension_is_answered_as_a_plain_request(
        sso_app: Flask, visitor: Browser, portal: Portal) -> None:
    """Anyone can add an extension to an unsigned request: it neither narrows, nor widens,
    nor refuses anything."""
    register(visitor, birth_name="")
    activate(visitor, sso_app)
    log_in(visitor)
    start(visitor, portal, bundid(attributes={BIRTH_NAME: True, GENDER: True},
                                  methods={"eID": True}, organization="Gefälschte Behörde",
                                  status_detail=True), signed=False)
    page = visitor.last_html
    assert "Gefälschte Behörde" not in page
    assert "Vorname" in page and "E-Mail-Adresse" in page  # everything the policy allows
    attributes = released(portal, decide(visitor).get_data(as_text=True))
    assert {GIVEN_NAME, SURNAME, MAIL, BPK2} <= set(attributes) and GENDER not in attributes
    bad_version = start(visitor, portal, bundid(version="1"), signed=False)
    assert portal.receive(bad_version.get_data(as_text=True)).assertion is not None


def test_the_pending_request_keeps_the_extension_while_the_citizen_logs_in(
        sso_app: Flask, visitor: Browser, portal: Portal) -> None:
    register(visitor)
    activate(visitor, sso_app)
    to_login = start(visitor, portal, bundid(attributes={MAIL: True}, purpose="Parkausweis"),
                     follow=False)
    visitor.get(to_login.location)
    back = visitor.submit(to_login.location, {"username": "ErikaM",
                                             "password": "Kräftig-Grün 42"})
    page = visitor.get(back.location).get_data(as_text=True)
    assert "Parkausweis" in page and "E-Mail-Adresse" in page and "Nachname" not in page
    assert field_value(page, "transaction")
    assert set(released(portal, decide(visitor).get_data(as_text=True))) == {MAIL}


def test_an_extension_slipped_into_a_signed_request_breaks_its_signature(
        visitor: Browser, portal: Portal) -> None:
    """A man in the middle cannot widen what a signed request asks for."""
    _, form = portal.login_url(BINDING_HTTP_POST, sign=True, sigalg=SIG_RSA_SHA256)
    assert form is not None
    root = etree.fromstring(base64.b64decode(form["SAMLRequest"]))
    issuer = root.find("{urn:oasis:names:tc:SAML:2.0:assertion}Issuer")
    extensions = etree.fromstring(
        f'<samlp:Extensions xmlns:samlp="{SAMLP}"><akdb:AuthenticationRequest xmlns:akdb="{AKDB}" '
        f'Version="2"><akdb:RequestedAttributes><akdb:RequestedAttribute Name="{GENDER}"/>'
        "</akdb:RequestedAttributes></akdb:AuthenticationRequest></samlp:Extensions>")
    issuer.addnext(extensions)
    assert_refused_at_the_idp(post_sso(visitor, b64(etree.tostring(root).decode())))
