"""The Response as a careful SP (OpenSAML, python3-saml, pysaml2) examines it, element by element.

Beyond what pysaml2 accepts: the assertion is signed first and the Response signature covers
it; an assertion taken out of the Response stands alone; it is valid for a few minutes only.
"""

from __future__ import annotations

import base64
import re
from datetime import datetime, timedelta

from flask import Flask

from idp.container import app_parts
from idp.saml.response import ASSERTION_LIFETIME
from tests.conftest import Browser
from tests.flows.conftest import SP_ACS, SP_ENTITY, Portal, consent_page, decide, logged_in
from tests.unit.saml import forgery

XS = "http://www.w3.org/2001/XMLSchema"


def response_xml(sso_app: Flask, visitor: Browser, portal: Portal) -> forgery.Element:
    consent_page(logged_in(sso_app, visitor), portal)
    page = decide(visitor).get_data(as_text=True)
    portal.receive(page)  # pysaml2 accepts it: signatures, audience, recipient, time
    encoded = page.split('name="SAMLResponse" value="', 1)[1].split('"', 1)[0]
    return forgery.parse(base64.b64decode(encoded))


def instant(value: str | None) -> datetime:
    assert value is not None
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def test_the_response_signature_covers_the_already_signed_assertion(
        sso_app: Flask, visitor: Browser, portal: Portal) -> None:
    root = response_xml(sso_app, visitor, portal)
    assertion = forgery.first(root, "saml:Assertion")
    response_reference = forgery.first(root, "ds:Signature/ds:SignedInfo/ds:Reference")
    assertion_reference = forgery.first(assertion, "ds:Signature/ds:SignedInfo/ds:Reference")
    assert response_reference.get("URI") == f"#{root.get('ID')}"
    assert assertion_reference.get("URI") == f"#{assertion.get('ID')}"
    assert root.get("ID") != assertion.get("ID")
    # Verifies only if the assertion's signature was in place when the Response was signed.
    key = forgery.xmlsec.Key.from_file(str(app_parts(sso_app).saml.keys.cert_file),
                                       forgery.T.KeyDataFormatCertPem)
    for element in (assertion, root):
        context = forgery.xmlsec.SignatureContext()
        context.key = key
        context.register_id(element, "ID")
        context.verify(forgery.own_signature(element))


def test_each_attribute_value_declares_the_xs_prefix_its_type_uses(
        sso_app: Flask, visitor: Browser, portal: Portal) -> None:
    """Exclusive c14n leaves declarations used only in attribute values out of the signed form;
    declared on the value itself, the prefix survives any copying of the assertion."""
    text = forgery.text(response_xml(sso_app, visitor, portal))
    values = re.findall(r"<saml:AttributeValue[^>]*>", text)
    assert values and all('xsi:type="xs:string"' in value and f'xmlns:xs="{XS}"' in value
                          for value in values)


def test_the_assertion_is_valid_for_a_few_minutes_for_this_portal_only(
        sso_app: Flask, visitor: Browser, portal: Portal) -> None:
    root = response_xml(sso_app, visitor, portal)
    conditions = forgery.first(root, "saml:Assertion/saml:Conditions")
    lifetime = instant(conditions.get("NotOnOrAfter")) - instant(conditions.get("NotBefore"))
    assert lifetime == ASSERTION_LIFETIME <= timedelta(minutes=5)
    assert forgery.first(conditions, "saml:AudienceRestriction/saml:Audience").text == SP_ENTITY
    data = forgery.first(root, "saml:Assertion/saml:Subject/saml:SubjectConfirmation/"
                               "saml:SubjectConfirmationData")
    assert data.get("Recipient") == SP_ACS == root.get("Destination")
    assert data.get("InResponseTo") == root.get("InResponseTo") is not None
    assert instant(data.get("NotOnOrAfter")) == instant(conditions.get("NotOnOrAfter"))
