"""Whom an answer is about, and by which identifier: the portal's registered NameID format
decides (a transient portal cannot ask for the stable pairwise identifier), and a request that
names a citizen in its <Subject> is answered about that citizen or not at all (SAML profiles
§4.1.4.1)."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask
from saml2.response import (
    StatusAuthnFailed,
    StatusInvalidNameidPolicy,
    StatusUnknownPrincipal,
)
from saml2.saml import NAMEID_FORMAT_PERSISTENT, NAMEID_FORMAT_TRANSIENT, NameID, Subject
from saml2.samlp import NameIDPolicy

from tests.conftest import GOOD_PASSWORD, Browser
from tests.flows.conftest import Portal, answer_to, logged_in

SHA256 = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"
UNSPECIFIED = "urn:oasis:names:tc:SAML:1.1:nameid-format:unspecified"
# AllowCreate="false" without a Format: "the identifier you already gave me, if any".
NO_CREATE = NameIDPolicy(allow_create="false")
TRANSIENT_POLICY = {"name_id_format": "transient",
                    "attributes": ["gender", "givenName", "surname", "mail"]}


# --- the NameID format -------------------------------------------------------------------

@pytest.mark.parametrize("portal_changes", [TRANSIENT_POLICY])
@pytest.mark.parametrize("signed", [False, True])
def test_a_transient_portal_asking_for_a_persistent_name_id_gets_invalid_name_id_policy(
        sso_app: Flask, visitor: Browser, portal: Portal, signed: bool) -> None:
    logged_in(sso_app, visitor)
    signing = {"sign": True, "sigalg": SHA256} if signed else {}
    page = answer_to(visitor, portal, nameid_format=NAMEID_FORMAT_PERSISTENT, **signing)
    with pytest.raises(StatusInvalidNameidPolicy):
        portal.receive(page)


@pytest.mark.parametrize("portal_changes", [TRANSIENT_POLICY])
def test_a_transient_portal_asking_for_any_format_gets_a_new_transient_name_id(
        sso_app: Flask, visitor: Browser, portal: Portal) -> None:
    logged_in(sso_app, visitor)
    first = portal.receive(answer_to(visitor, portal, nameid_format=UNSPECIFIED)).name_id
    second = portal.receive(answer_to(visitor, portal)).name_id
    assert first.format == second.format == NAMEID_FORMAT_TRANSIENT
    assert first.text != second.text


def test_a_persistent_portal_asking_for_a_transient_name_id_gets_invalid_name_id_policy(
        sso_app: Flask, visitor: Browser, portal: Portal) -> None:
    logged_in(sso_app, visitor)
    with pytest.raises(StatusInvalidNameidPolicy):
        portal.receive(answer_to(visitor, portal, nameid_format=NAMEID_FORMAT_TRANSIENT))


def test_allow_create_false_without_an_identifier_there_gets_invalid_name_id_policy(
        sso_app: Flask, visitor: Browser, portal: Portal) -> None:
    logged_in(sso_app, visitor)
    with pytest.raises(StatusInvalidNameidPolicy):
        portal.receive(answer_to(visitor, portal, name_id_policy=NO_CREATE))
    # Once the citizen has an identifier there, the same request gets it.
    made = portal.receive(answer_to(visitor, portal)).name_id.text
    assert portal.receive(answer_to(visitor, portal, name_id_policy=NO_CREATE)).name_id.text == made


@pytest.mark.parametrize("portal_changes", [{"attributes": ["givenName", "surname"]}])
def test_the_consent_page_names_the_stable_identifier_a_portal_gets(
        sso_app: Flask, visitor: Browser, portal: Portal) -> None:
    logged_in(sso_app, visitor)
    path, _ = portal.login_url()
    page = visitor.client.get(path).get_data(as_text=True)
    assert "Dauerhafte Kennung (Pseudonym)" in page


@pytest.mark.parametrize("portal_changes", [TRANSIENT_POLICY])
def test_the_consent_page_of_a_transient_portal_names_no_stable_identifier(
        sso_app: Flask, visitor: Browser, portal: Portal) -> None:
    logged_in(sso_app, visitor)
    path, _ = portal.login_url()
    assert "Dauerhafte Kennung" not in visitor.client.get(path).get_data(as_text=True)


# --- the Subject ---------------------------------------------------------------------------

def naming(name_id: Any) -> Subject:
    return Subject(name_id=NameID(text=name_id.text, format=name_id.format))


@pytest.fixture
def erikas_name_id(sso_app: Flask, portal: Portal) -> Any:
    """Erika has logged in at the portal once (in a browser of her own), which knows her by
    her pairwise identifier."""
    erika = logged_in(sso_app, Browser(sso_app.test_client()))
    portal.receive(answer_to(erika, portal))
    return portal.name_id


def test_a_request_naming_erika_is_not_answered_about_max_who_is_logged_in(
        sso_app: Flask, visitor: Browser, portal: Portal, erikas_name_id: Any) -> None:
    max_ = logged_in(sso_app, visitor, username="MaxM", email="max.mustermann@example.org")
    path, _ = portal.login_url(subject=naming(erikas_name_id))
    to_login = max_.client.get(path)
    assert to_login.status_code == 302 and "/anmelden?anfrage=" in to_login.location
    # Max logs in again (as himself): the portal learns that the named citizen did not.
    max_.get(to_login.location)
    answer = max_.submit(to_login.location, {"username": "MaxM", "password": GOOD_PASSWORD})
    with pytest.raises(StatusAuthnFailed):
        portal.receive(max_.client.get(answer.location).get_data(as_text=True))


def test_a_request_naming_erika_is_answered_once_erika_logs_in(
        sso_app: Flask, visitor: Browser, portal: Portal, erikas_name_id: Any) -> None:
    path, _ = portal.login_url(subject=naming(erikas_name_id))
    to_login = visitor.client.get(path)
    visitor.get(to_login.location)
    answer = visitor.submit(to_login.location, {"username": "ErikaM", "password": GOOD_PASSWORD})
    page = visitor.client.get(answer.location).get_data(as_text=True)
    assert portal.receive(page).name_id.text == erikas_name_id.text


def test_a_request_naming_erika_is_answered_at_once_in_her_own_session(
        sso_app: Flask, visitor: Browser, portal: Portal) -> None:
    logged_in(sso_app, visitor)
    name_id = portal.receive(answer_to(visitor, portal)).name_id
    assert portal.receive(answer_to(visitor, portal, subject=naming(name_id))).name_id.text == \
        name_id.text


def test_a_request_naming_nobody_known_gets_unknown_principal(
        sso_app: Flask, visitor: Browser, portal: Portal) -> None:
    logged_in(sso_app, visitor)
    stranger = NameID(text="niemand-bekanntes", format=NAMEID_FORMAT_PERSISTENT)
    with pytest.raises(StatusUnknownPrincipal):
        portal.receive(answer_to(visitor, portal, subject=Subject(name_id=stranger)))
