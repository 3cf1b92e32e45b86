"""Reading the BundID extension akdb:AuthenticationRequest out of an AuthnRequest."""

from __future__ import annotations

import json

import pytest

from idp.saml.akdb import (
    MAX_REQUESTED_ATTRIBUTES,
    AuthenticationRequest,
    AuthnMethod,
    DisplayInformation,
    ExtensionError,
    RequestedAttribute,
    read_extension,
)

SURNAME = "urn:oid:2.5.4.4"
GIVEN_NAME = "urn:oid:2.5.4.42"
BPK2 = "urn:oid:1.3.6.1.4.1.25484.494450.3"


def authn_request(extension: str, *, akdb_ns: str = "https://www.akdb.de/request/2018/09",
                  wrapper: bool = True) -> bytes:
    """An AuthnRequest carrying ``extension`` (with the akdb and classic-ui prefixes bound)."""
    inner = (f'<samlp:Extensions>{extension}</samlp:Extensions>' if wrapper else extension)
    return (
        '<samlp:AuthnRequest xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" '
        'xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" '
        f'xmlns:akdb="{akdb_ns}" '
        'xmlns:classic-ui="https://www.akdb.de/request/2018/09/classic-ui/v1" '
        'ID="_r1" Version="2.0" IssueInstant="2026-11-23T10:00:00Z">'
        '<saml:Issuer>https://portal.example/saml/metadata</saml:Issuer>'
        f'{inner}</samlp:AuthnRequest>').encode()


FULL = """
<akdb:AuthenticationRequest Version="2" EnableStatusDetail="true">
  <akdb:AuthnMethods>
    <akdb:Benutzername><akdb:Enabled>true</akdb:Enabled></akdb:Benutzername>
    <akdb:eID><akdb:Enabled>true</akdb:Enabled></akdb:eID>
    <akdb:Elster><akdb:Enabled>false</akdb:Enabled></akdb:Elster>
  </akdb:AuthnMethods>
  <akdb:RequestedAttributes>
    <akdb:RequestedAttribute Name="urn:oid:2.5.4.4" RequiredAttribute="true"/>
    <akdb:RequestedAttribute Name="urn:oid:2.5.4.42" RequiredAttribute="false"/>
    <akdb:RequestedAttribute Name="urn:oid:1.3.6.1.4.1.25484.494450.3"/>
  </akdb:RequestedAttributes>
  <akdb:DisplayInformation>
    <classic-ui:Version>
      <classic-ui:OrganizationDisplayName><![CDATA[Stadt Musterstadt – Bürgerbüro]]>
      </classic-ui:OrganizationDisplayName>
      <classic-ui:Purpose>Antrag auf Anwohnerparkausweis</classic-ui:Purpose>
      <classic-ui:Lang>de</classic-ui:Lang>
      <classic-ui:OnlineServiceId>musterstadt-parken-01</classic-ui:OnlineServiceId>
    </classic-ui:Version>
  </akdb:DisplayInformation>
</akdb:AuthenticationRequest>
"""


def test_a_full_bundid_extension_is_read_completely() -> None:
    extension = read_extension(authn_request(FULL))
    assert extension == AuthenticationRequest(
        requested_attributes=(RequestedAttribute(SURNAME, True),
                              RequestedAttribute(GIVEN_NAME, False),
                              RequestedAttribute(BPK2, False)),
        authn_methods=("Benutzername", "eID"),
        display=DisplayInformation(
            organization_display_name="Stadt Musterstadt – Bürgerbüro",
            purpose="Antrag auf Anwohnerparkausweis", lang="de",
            online_service_id="musterstadt-parken-01"),
        enable_status_detail=True)


def test_it_survives_the_round_trip_through_json() -> None:
    extension = read_extension(authn_request(FULL))
    assert extension is not None
    assert AuthenticationRequest.from_dict(json.loads(json.dumps(extension.to_dict()))) == \
        extension


def test_a_request_without_extension_has_none() -> None:
    assert read_extension(authn_request("", wrapper=False)) is None
    assert read_extension(authn_request("<other:Thing xmlns:other='urn:x'/>")) is None


def test_an_authentication_request_in_another_namespace_is_not_ours() -> None:
    xml = authn_request('<akdb:AuthenticationRequest Version="2"/>',
                        akdb_ns="https://www.akdb.de/request/2017/01")
    assert read_extension(xml) is None


def test_an_extension_outside_samlp_extensions_does_not_count() -> None:
    xml = authn_request('<akdb:AuthenticationRequest Version="2"><akdb:RequestedAttributes/>'
                        '</akdb:AuthenticationRequest>', wrapper=False)
    assert read_extension(xml) is None


def test_absent_parts_mean_no_restriction_and_empty_ones_mean_nothing() -> None:
    bare = read_extension(authn_request('<akdb:AuthenticationRequest Version="2"/>'))
    assert bare == AuthenticationRequest()
    assert bare.allows(AuthnMethod.BENUTZERNAME)
    empty = read_extension(authn_request(
        '<akdb:AuthenticationRequest Version="2"><akdb:RequestedAttributes/><akdb:AuthnMethods/>'
        '</akdb:AuthenticationRequest>'))
    assert empty is not None and empty.requested_attributes == ()
    assert not empty.allows(AuthnMethod.BENUTZERNAME)


def test_only_methods_enabled_with_true_count() -> None:
    extension = read_extension(authn_request(
        '<akdb:AuthenticationRequest Version="2"><akdb:AuthnMethods>'
        '<akdb:eID><akdb:Enabled>true</akdb:Enabled></akdb:eID>'
        '<akdb:Benutzername><akdb:Enabled>false</akdb:Enabled></akdb:Benutzername>'
        '<akdb:FINK/></akdb:AuthnMethods></akdb:AuthenticationRequest>'))
    assert extension is not None and extension.authn_methods == ("eID",)
    assert not extension.allows(AuthnMethod.BENUTZERNAME)


def test_an_attribute_asked_for_twice_is_required_if_either_says_so() -> None:
    extension = read_extension(authn_request(
        '<akdb:AuthenticationRequest Version="2"><akdb:RequestedAttributes>'
        f'<akdb:RequestedAttribute Name="{SURNAME}"/>'
        f'<akdb:RequestedAttribute Name="{SURNAME}" RequiredAttribute="1"/>'
        '</akdb:RequestedAttributes></akdb:AuthenticationRequest>'))
    assert extension is not None
    assert extension.requested_attributes == (RequestedAttribute(SURNAME, True),)


def test_the_organization_name_is_cut_to_50_characters_and_markup_stays_text() -> None:
    extension = read_extension(authn_request(
        '<akdb:AuthenticationRequest Version="2"><akdb:DisplayInformation><classic-ui:Version>'
        '<classic-ui:OrganizationDisplayName>&lt;script&gt;alert(1)&lt;/script&gt;'
        + "x" * 80 + '</classic-ui:OrganizationDisplayName>'
        '<classic-ui:Purpose>  Zweck\n  mit\tZeilen  </classic-ui:Purpose>'
        '</classic-ui:Version></akdb:DisplayInformation></akdb:AuthenticationRequest>'))
    assert extension is not None
    name = extension.display.organization_display_name
    assert name is not None and len(name) == 50 and name.startswith("<script>alert(1)")
    assert extension.display.purpose == "Zweck mit Zeilen"


@pytest.mark.parametrize("extension", [
    pytest.param('<akdb:AuthenticationRequest Version="1"/>', id="old version"),
    pytest.param('<akdb:AuthenticationRequest/>', id="no version"),
    pytest.param('<akdb:AuthenticationRequest Version="2"/><akdb:AuthenticationRequest '
                 'Version="2"/>', id="given twice"),
    pytest.param('<akdb:AuthenticationRequest Version="2" EnableStatusDetail="ja"/>',
                 id="flag not boolean"),
    pytest.param('<akdb:AuthenticationRequest Version="2"><akdb:RequestedAttributes>'
                 '<akdb:RequestedAttribute RequiredAttribute="true"/></akdb:RequestedAttributes>'
                 '</akdb:AuthenticationRequest>', id="attribute without Name"),
    pytest.param('<akdb:AuthenticationRequest Version="2"><akdb:RequestedAttributes>'
                 f'<akdb:RequestedAttribute Name="{SURNAME}" RequiredAttribute="maybe"/>'
                 '</akdb:RequestedAttributes></akdb:AuthenticationRequest>',
                 id="RequiredAttribute not boolean"),
    pytest.param('<akdb:AuthenticationRequest Version="2"><akdb:RequestedAttributes/>'
                 '<akdb:RequestedAttributes/></akdb:AuthenticationRequest>',
                 id="two attribute lists"),
    pytest.param('<akdb:AuthenticationRequest Version="2"><akdb:AuthnMethods>'
                 '<x:eID xmlns:x="urn:x"><akdb:Enabled>true</akdb:Enabled></x:eID>'
                 '</akdb:AuthnMethods></akdb:AuthenticationRequest>',
                 id="foreign method element"),
    pytest.param('<akdb:AuthenticationRequest Version="2"><akdb:DisplayInformation>'
                 '<classic-ui:Version><classic-ui:Lang>de"&gt;&lt;b&gt;</classic-ui:Lang>'
                 '</classic-ui:Version></akdb:DisplayInformation></akdb:AuthenticationRequest>',
                 id="Lang not a tag"),
])
def test_a_broken_extension_is_refused(extension: str) -> None:
    with pytest.raises(ExtensionError):
        read_extension(authn_request(extension))


def test_too_many_requested_attributes_are_refused() -> None:
    many = "".join(f'<akdb:RequestedAttribute Name="urn:oid:1.2.{n}"/>'
                   for n in range(MAX_REQUESTED_ATTRIBUTES + 1))
    with pytest.raises(ExtensionError, match="more than"):
        read_extension(authn_request(
            f'<akdb:AuthenticationRequest Version="2"><akdb:RequestedAttributes>{many}'
            '</akdb:RequestedAttributes></akdb:AuthenticationRequest>'))


def test_an_oversized_attribute_name_or_service_id_is_refused() -> None:
    with pytest.raises(ExtensionError):
        read_extension(authn_request(
            '<akdb:AuthenticationRequest Version="2"><akdb:RequestedAttributes>'
            f'<akdb:RequestedAttribute Name="urn:oid:{"1." * 200}1"/>'
            '</akdb:RequestedAttributes></akdb:AuthenticationRequest>'))
    with pytest.raises(ExtensionError, match="OnlineServiceId"):
        read_extension(authn_request(
            '<akdb:AuthenticationRequest Version="2"><akdb:DisplayInformation>'
            f'<classic-ui:Version><classic-ui:OnlineServiceId>{"s" * 201}'
            '</classic-ui:OnlineServiceId></classic-ui:Version></akdb:DisplayInformation>'
            '</akdb:AuthenticationRequest>'))


def test_garbage_is_refused_not_crashed_on() -> None:
    for garbage in (b"", b"not xml", b"<samlp:AuthnRequest", "<a>\u0000</a>".encode(),
                    b'<!DOCTYPE x [<!ENTITY e "boom">]><x>&e;</x>'):
        with pytest.raises(ExtensionError):
            read_extension(garbage)
