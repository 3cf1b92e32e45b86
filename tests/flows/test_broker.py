"""'Login mit externem Servicekonto': our IdP as a broker to a second instance of itself,
"Servicekonto Musterland", both in process (docs/broker.md).

The portal (a pysaml2 SP) asks us; the citizen chooses Musterland, logs in there with Musterland's
own account, agrees there, and comes back; we answer the portal with AssertionProvedBy FINK,
Musterland's attributes at their (capped) levels, and a bPK2 with Musterland's prefix.
"""

from __future__ import annotations

import base64
import html
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import yaml
from flask import Flask
from lxml import etree
from saml2.response import StatusAuthnFailed, StatusRequestDenied
from sqlalchemy import select

from idp import create_app
from idp.broker.models import ExternalLink
from idp.broker.runtime import broker
from idp.cli import main
from idp.db import db
from idp.samlkit.bindings import decode_redirect
from tests.conftest import GOOD_PASSWORD, Browser, Clock, activate, log_in, register
from tests.flows.conftest import Portal, answer_to, decide, field_value, hop_from
from tests.flows.test_akdb import bundid
from tests.flows.test_single_logout import go
from tests.saml_support import key_pair

MUSTERLAND = "http://localhost:5003"
SAML = "urn:oasis:names:tc:SAML:2.0:assertion"
AKDB = "https://www.akdb.de/request/2018/09"
PROVED_BY = "urn:oid:1.3.6.1.4.1.25484.494450.2"
QAA_LEVEL = "urn:oid:1.2.40.0.10.2.1.1.261.94"
BPK2 = "urn:oid:1.3.6.1.4.1.25484.494450.3"
GIVEN_NAME, SURNAME = "urn:oid:2.5.4.42", "urn:oid:2.5.4.4"
ACTION = re.compile(r'<form id="saml-weiter" method="post" action="([^"]+)"')


def upstream_file(policy_dir: Path, metadata: Path, name: str = "musterland",
                  **changes: Any) -> None:
    folder = policy_dir / "upstreams"
    folder.mkdir(exist_ok=True)
    entry = {"display_name": "Servicekonto Musterland", "entity_id": f"{MUSTERLAND}/saml/metadata",
             "metadata": str(metadata), "maximum_trust_level": "STORK-QAA-Level-3",
             "bpk2_prefix": "MU:"} | changes
    (folder / f"{name}.yaml").write_text(yaml.safe_dump(entry, allow_unicode=True),
                                         encoding="utf-8")


@pytest.fixture
def portal_changes(tmp_path: Path, policy_dir: Path) -> dict[str, Any]:
    """Our IdP gets Musterland as its upstream (its metadata file is written once it runs)."""
    upstream_file(policy_dir, tmp_path / "musterland-metadata.xml")
    return {}


@pytest.fixture
def musterland(sso_app: Flask, tmp_path: Path, sqlite_template: Path,
               settings: dict[str, Any]) -> Iterator[Flask]:
    """The upstream: a second instance of our IdP on its own database, keys and URL, with our
    broker registered as one of its portals; its metadata written where our registry reads it."""
    folder = tmp_path / "musterland"
    policies = folder / "policies"
    (policies / "portals").mkdir(parents=True)
    shutil.copy(settings["policy_dir"] / "password.yaml", policies / "password.yaml")
    ours = folder / "broker-metadata.xml"
    ours.write_text(broker(sso_app).clients.metadata_xml(), encoding="utf-8")
    (policies / "portals" / "nrw.yaml").write_text(yaml.safe_dump({
        "display_name": "Servicekonto (Vermittlung)", "entity_id": "http://localhost/extern/metadata",
        "metadata": str(ours), "name_id_format": "persistent",
        "attributes": ["gender", "givenName", "surname", "birthName", "mail", "bPK2"]},
        allow_unicode=True), encoding="utf-8")
    database = folder / "musterland.sqlite3"
    shutil.copy(sqlite_template, database)
    key, cert = key_pair(folder / "keys", "musterland")
    application = create_app(test_config=settings | {
        "database_url": f"sqlite:///{database}", "base_url": MUSTERLAND,
        "instance_path": folder / "instance", "policy_dir": policies, "key_file": key,
        "cert_file": cert}, env={})
    application.config["TESTING"] = True
    (tmp_path / "musterland-metadata.xml").write_text(
        application.test_client().get("/saml/metadata").get_data(as_text=True),
        encoding="utf-8")
    yield application
    db.bound(application).engine.dispose()


def musterland_citizen(app: Flask, username: str = "MaxMuster",
                       email: str = "max.muster@example.org") -> Browser:
    """A citizen of Musterland with an account there, logged in there."""
    made = app.test_cli_runner().invoke(main, args=[
        "user", "create", "--username", username, "--email", email, "--given-name", "Max",
        "--surname", "Muster", "--password", GOOD_PASSWORD])
    assert made.exit_code == 0, made.output
    browser = Browser(app.test_client())
    assert log_in(browser, username).status_code == 302
    return browser


def upstream_answer(visitor: Browser, there: Browser, portal: Portal,
                    **request: Any) -> tuple[str, str]:
    """The portal asks us, the citizen chooses Musterland on our login page and agrees there:
    (the portal's login reference with us, Musterland's SAMLResponse to our ACS), not yet
    posted."""
    path, _ = portal.login_url(**request)
    login_page = visitor.client.get(path).location
    reference = parse_qs(urlsplit(login_page).query)["anfrage"][0]
    visitor.get(login_page)
    assert 'id="anmelden-extern"' in visitor.last_html
    visitor.get(f"/extern?anfrage={reference}")
    assert "Servicekonto Musterland" in visitor.last_html
    sent = hop_from(visitor.submit(f"/extern/musterland?anfrage={reference}")).url
    assert sent.startswith(MUSTERLAND + "/saml/sso/")
    answer = there.get(sent)
    while answer.status_code == 302:
        answer = there.get(answer.location)
    if "Zustimmung zur Weitergabe" in there.last_html:
        answer = decide(there)
    page = answer.get_data(as_text=True)
    assert html.unescape(ACTION.search(page).group(1)) == "http://localhost/extern/acs", page
    return reference, field_value(page, "SAMLResponse")


def through_musterland(visitor: Browser, there: Browser, portal: Portal,
                       link: dict[str, str] | None = None, **request: Any) -> str:
    """:func:`upstream_answer`, posted, and at the first login continuing without an account
    of ours, or linking the one ``link`` names; where our IdP sends the browser next."""
    _, response = upstream_answer(visitor, there, portal, **request)
    back = visitor.client.post("/extern/acs", data={
        "SAMLResponse": response, "servicekonto_resubmitted": "1"})
    assert back.status_code == 303, back.get_data(as_text=True)
    if back.location.endswith("/extern/erste-anmeldung"):
        visitor.get(back.location)
        assert "Erste Anmeldung mit Ihrem externen Servicekonto" in visitor.last_html
        back = visitor.submit("/extern/erste-anmeldung", {"aktion": "neu"} if link is None
                              else {"aktion": "verknuepfen"} | link)
        assert back.status_code == 303, visitor.last_html
    return str(back.location)


def finish(visitor: Browser, location: str, source: str = "Servicekonto Musterland") -> str:
    response = visitor.get(location)
    while response.status_code in (302, 303):
        response = visitor.get(response.location)
    if "Zustimmung zur Weitergabe" in visitor.last_html:
        # Consent as today, naming where the data came from.
        assert f"Die Daten stammen aus Ihrem {source}" in visitor.last_html
        # The upstream's values in the citizen's words, as for our own logins.
        if "<dt>Anrede</dt>" in visitor.last_html:
            assert re.search(r"<dt>Anrede</dt>\s*<dd>[^<]+ \(Code \d\)</dd>", visitor.last_html)
        response = decide(visitor)
    page = response.get_data(as_text=True)
    assert "SAMLResponse" in page, page
    return str(page)


def attributes_of(page: str) -> dict[str, tuple[str, str | None]]:
    root = etree.fromstring(base64.b64decode(field_value(page, "SAMLResponse")))
    return {attribute.get("Name"): (attribute.find(f"{{{SAML}}}AttributeValue").text,
                                    attribute.get(f"{{{AKDB}}}TrustLevel"))
            for attribute in root.iter(f"{{{SAML}}}Attribute")}


def test_a_citizen_of_musterland_logs_in_at_our_portal_through_the_broker(
        sso_app: Flask, musterland: Flask, visitor: Browser, portal: Portal) -> None:
    there = musterland_citizen(musterland)
    page = finish(visitor, through_musterland(visitor, there, portal))
    response = portal.receive(page)
    assert str(response.authn_info()[0][0]) == "STORK-QAA-Level-1"
    released = attributes_of(page)
    assert released[PROVED_BY][0] == "FINK"
    assert released[QAA_LEVEL][0] == "STORK-QAA-Level-1"
    # Musterland's values at Musterland's levels (a typed name stays UNTERGEORDNET).
    assert released[GIVEN_NAME] == ("Max", "UNTERGEORDNET")
    assert released[SURNAME] == ("Muster", "UNTERGEORDNET")
    assert released[BPK2][0].startswith("MU:")
    with sso_app.app_context():
        link = db.session.scalar(select(ExternalLink))
        assert link is not None and link.upstream == "musterland" and link.made_for_it


def test_the_portal_sees_the_same_bpk2_on_every_login_through_the_same_upstream_account(
        sso_app: Flask, musterland: Flask, visitor: Browser, portal: Portal) -> None:
    there = musterland_citizen(musterland)
    first = attributes_of(finish(visitor, through_musterland(visitor, there, portal)))[BPK2]
    visitor.client.get("/abmelden")
    again = Browser(sso_app.test_client())
    second = attributes_of(finish(again, through_musterland(again, there, portal)))[BPK2]
    assert first == second
    with sso_app.app_context():
        assert len(db.session.scalars(select(ExternalLink)).all()) == 1


def test_another_upstream_account_gets_another_bpk2(
        sso_app: Flask, musterland: Flask, visitor: Browser, portal: Portal) -> None:
    max_there = musterland_citizen(musterland)
    first = attributes_of(finish(visitor, through_musterland(visitor, max_there, portal)))[BPK2]
    eva_there = musterland_citizen(musterland, "EvaMuster", "eva.muster@example.org")
    other = Browser(sso_app.test_client())
    second = attributes_of(finish(other, through_musterland(other, eva_there, portal)))[BPK2]
    assert first[0] != second[0] and second[0].startswith("MU:")


def test_an_answer_replayed_to_our_acs_logs_nobody_in(
        sso_app: Flask, musterland: Flask, visitor: Browser, portal: Portal) -> None:
    there = musterland_citizen(musterland)
    _, response = upstream_answer(visitor, there, portal)
    fields = {"SAMLResponse": response, "servicekonto_resubmitted": "1"}
    assert visitor.client.post("/extern/acs", data=fields).status_code == 303
    replayed = Browser(sso_app.test_client())
    refused = replayed.client.post("/extern/acs", data=fields)
    assert refused.status_code == 400
    assert "keine offene Anmeldung in diesem Browser" in refused.get_data(as_text=True)


def test_a_refusal_of_the_upstream_reaches_the_portal_with_its_status(
        sso_app: Flask, musterland: Flask, visitor: Browser, portal: Portal) -> None:
    there = musterland_citizen(musterland)
    path, _ = portal.login_url()
    login_page = visitor.client.get(path).location
    reference = parse_qs(urlsplit(login_page).query)["anfrage"][0]
    visitor.get(f"/extern?anfrage={reference}")
    there.get(hop_from(visitor.submit(f"/extern/musterland?anfrage={reference}")).url)
    declined = decide(there, "decline").get_data(as_text=True)
    refused = visitor.client.post("/extern/acs", data={
        "SAMLResponse": field_value(declined, "SAMLResponse"), "servicekonto_resubmitted": "1"})
    assert refused.status_code == 403
    visitor.last_html = refused.get_data(as_text=True)
    assert "Das externe Servicekonto hat die Anmeldung nicht bestätigt." in visitor.last_html
    back = visitor.submit(f"/extern/zurueck/{reference}")
    with pytest.raises(StatusRequestDenied):
        portal.receive(back.get_data(as_text=True))


def test_zurueck_zum_portal_after_an_unusable_answer_tells_the_portal_authn_failed(
        sso_app: Flask, musterland: Flask, visitor: Browser, portal: Portal) -> None:
    path, _ = portal.login_url()
    login_page = visitor.client.get(path).location
    reference = parse_qs(urlsplit(login_page).query)["anfrage"][0]
    visitor.get(f"/extern?anfrage={reference}")
    visitor.submit(f"/extern/musterland?anfrage={reference}")
    broken = visitor.client.post("/extern/acs", data={"SAMLResponse": "kaputt",
                                                        "servicekonto_resubmitted": "1"})
    assert broken.status_code == 400
    visitor.last_html = broken.get_data(as_text=True)
    back = visitor.submit(f"/extern/zurueck/{reference}")
    with pytest.raises(StatusAuthnFailed):
        portal.receive(back.get_data(as_text=True))


def test_the_list_of_upstreams_is_searchable(sso_app: Flask, visitor: Browser) -> None:
    assert "Servicekonto Musterland" in visitor.get("/extern?suche=muster").get_data(as_text=True)
    page = visitor.get("/extern?suche=bayern").get_data(as_text=True)
    assert "Servicekonto Musterland" not in page and "Kein externes Servicekonto passt" in page


# Musterland's QA workbench breaks its next answer to us (idp/testing/faults.py); each must be
# refused. "missing-attribute" and "lower-trust-level" are left out: the broker requires no
# attribute and asks for level 1 (nothing lies below it).
REFUSED_FAULTS = ["unsigned", "wrong-key", "tampered", "sha1", "expired", "not-yet-valid",
                  "wrong-audience", "wrong-recipient", "wrong-destination",
                  "wrong-in-response-to", "wrong-issuer", "xsw", "replayed"]


@pytest.mark.parametrize("fault", REFUSED_FAULTS)
def test_a_broken_answer_of_the_upstream_logs_nobody_in_and_leaves_the_way_back(
        sso_app: Flask, musterland: Flask, visitor: Browser, portal: Portal,
        fault: str) -> None:
    there = musterland_citizen(musterland)
    if fault == "replayed":  # there must be an earlier answer to replay
        finish(visitor, through_musterland(visitor, there, portal))
        visitor = Browser(sso_app.test_client())
    made = musterland.test_cli_runner().invoke(main, args=[
        "testing", "fault", "set", "--portal", "nrw", fault])
    assert made.exit_code == 0, made.output
    reference, response = upstream_answer(visitor, there, portal)
    refused = visitor.client.post("/extern/acs", data={
        "SAMLResponse": response, "servicekonto_resubmitted": "1"})
    page = refused.get_data(as_text=True)
    assert refused.status_code == 400, page
    assert "Anmeldung nicht möglich" in page and "ZURÜCK ZUM PORTAL" in page
    assert visitor.client.get("/konto").status_code == 302  # nobody logged in
    visitor.last_html = page
    with pytest.raises(StatusAuthnFailed):
        portal.receive(visitor.submit(f"/extern/zurueck/{reference}").get_data(as_text=True))


def test_an_upstream_that_never_answers_leaves_the_citizen_a_way_back_to_the_portal(
        sso_app: Flask, musterland: Flask, visitor: Browser, portal: Portal,
        clock: Clock) -> None:
    there = musterland_citizen(musterland)
    reference, response = upstream_answer(visitor, there, portal)
    clock.advance(minutes=16)  # our request to Musterland has expired meanwhile
    late = visitor.client.post("/extern/acs", data={"SAMLResponse": response,
                                                     "servicekonto_resubmitted": "1"})
    assert late.status_code == 400
    visitor.last_html = late.get_data(as_text=True)
    assert "keine offene Anmeldung" in visitor.last_html
    assert "ZURÜCK ZUM PORTAL" in visitor.last_html
    back = visitor.submit(f"/extern/zurueck/{reference}")
    clock.advance(minutes=-16)  # the portal reads the answer at its own (the machine's) time
    with pytest.raises(StatusAuthnFailed):
        portal.receive(back.get_data(as_text=True))


def test_an_answer_from_an_idp_not_in_the_registry_is_refused(
        sso_app: Flask, musterland: Flask, visitor: Browser, portal: Portal) -> None:
    there = musterland_citizen(musterland)
    _, response = upstream_answer(visitor, there, portal)
    # The operator removes Musterland while the citizen is there.
    broker(sso_app).upstreams.pop("musterland")
    refused = visitor.client.post("/extern/acs", data={"SAMLResponse": response,
                                                        "servicekonto_resubmitted": "1"})
    assert refused.status_code == 400
    assert "nicht (mehr) eingetragen" in refused.get_data(as_text=True)


def test_a_citizen_links_musterland_to_the_account_they_have_with_us_after_logging_in(
        sso_app: Flask, musterland: Flask, visitor: Browser, portal: Portal) -> None:
    ours = Browser(sso_app.test_client())
    register(ours, username="MaxHier", email="max.hier@example.org")
    activate(ours, sso_app, recipient="max.hier@example.org")
    log_in(ours, "MaxHier")
    by_password = attributes_of(answer_to(ours, portal))[BPK2]
    there = musterland_citizen(musterland)
    page = finish(visitor, through_musterland(
        visitor, there, portal, link={"username": "MaxHier", "password": GOOD_PASSWORD}))
    released = attributes_of(page)
    # One identity whatever the way in: the portal sees our account's bPK2, without prefix.
    assert released[BPK2] == by_password
    assert released[PROVED_BY][0] == "FINK"
    account = visitor.get("/konto").get_data(as_text=True)
    assert "Servicekonto Musterland" in account and "Verknüpfung mit" in account
    with sso_app.app_context():
        link = db.session.scalar(select(ExternalLink))
        assert link is not None and not link.made_for_it
    visitor.submit(f"/konto/extern/{link.id}/loesen")
    assert "Die Verknüpfung ist gelöst" in visitor.get("/konto").get_data(as_text=True)
    with sso_app.app_context():
        assert db.session.scalar(select(ExternalLink)) is None


def test_linking_with_a_wrong_password_links_nothing_and_the_right_one_then_links(
        sso_app: Flask, musterland: Flask, visitor: Browser, portal: Portal) -> None:
    ours = Browser(sso_app.test_client())
    register(ours, username="MaxHier", email="max.hier@example.org")
    activate(ours, sso_app, recipient="max.hier@example.org")
    there = musterland_citizen(musterland)
    _, response = upstream_answer(visitor, there, portal)
    first = visitor.client.post("/extern/acs", data={"SAMLResponse": response,
                                                      "servicekonto_resubmitted": "1"})
    visitor.get(first.location)
    refused = visitor.submit("/extern/erste-anmeldung", {
        "aktion": "verknuepfen", "username": "MaxHier", "password": "falsch"})
    assert refused.status_code == 401
    assert "Die Anmeldung ist fehlgeschlagen" in visitor.last_html
    with sso_app.app_context():
        assert db.session.scalar(select(ExternalLink)) is None
    # The choice still waits: the right password links.
    linked = visitor.submit("/extern/erste-anmeldung", {
        "aktion": "verknuepfen", "username": "MaxHier", "password": GOOD_PASSWORD})
    assert linked.status_code == 303, visitor.last_html
    with sso_app.app_context():
        assert db.session.scalar(select(ExternalLink)) is not None


# --- single logout with the upstream (docs/broker.md, "Single logout") ------------------------

def logged_in_through_musterland(sso_app: Flask, musterland: Flask, visitor: Browser,
                                 portal: Portal) -> Browser:
    """The citizen logged in at the portal through Musterland; the browser at Musterland."""
    there = musterland_citizen(musterland)
    portal.receive(finish(visitor, through_musterland(visitor, there, portal)))
    return there


def test_abmelden_logs_out_at_the_portals_and_then_at_musterland(
        sso_app: Flask, musterland: Flask, visitor: Browser, portal: Portal) -> None:
    there = logged_in_through_musterland(sso_app, musterland, visitor, portal)
    visitor.get("/konto")
    to_portal = hop_from(visitor.submit("/abmelden"))
    answered = go(visitor, *portal.answer_logout(to_portal))
    # After the portals, Musterland: our signed LogoutRequest.
    to_musterland = hop_from(answered)
    assert to_musterland.endpoint == f"{MUSTERLAND}/saml/slo/redirect"
    back = there.get(to_musterland.url)
    assert back.status_code == 302 and back.location.startswith("http://localhost/extern/slo")
    assert there.client.get("/konto").status_code == 302  # logged out at Musterland
    done = visitor.client.get(back.location)
    page = done.get_data(as_text=True)
    assert done.status_code == 200 and "Sie sind abgemeldet" in page, page
    assert "Bürgerportal Musterstadt" in page
    assert visitor.client.get("/konto").status_code == 302


def test_abmelden_at_musterland_ends_our_session_and_tells_our_portals(
        sso_app: Flask, musterland: Flask, visitor: Browser, portal: Portal) -> None:
    there = logged_in_through_musterland(sso_app, musterland, visitor, portal)
    there.get("/konto")
    to_us = hop_from(there.submit("/abmelden"))
    assert to_us.endpoint == "http://localhost/extern/slo"
    to_portal = hop_from(visitor.client.get(to_us.url))
    assert visitor.client.get("/konto").status_code == 302  # our session ended
    assert portal.logout_request(to_portal).message.name_id == portal.name_id
    answered = go(visitor, *portal.answer_logout(to_portal))
    # Then Musterland gets our answer: Success, everyone was told.
    to_musterland = hop_from(answered)
    assert to_musterland.endpoint == f"{MUSTERLAND}/saml/slo/redirect"
    finished = there.get(to_musterland.url)
    assert finished.status_code == 200, there.last_html
    assert "Sie sind abgemeldet" in there.last_html
    # Musterland lists our broker among the portals that confirmed the logout.
    confirmed = there.last_html.split('id="abgemeldet-bei"')[1]
    assert "Servicekonto (Vermittlung)" in confirmed.split('id="nicht-abgemeldet-bei"')[0]


def test_a_logout_request_of_musterland_for_another_browser_ends_nothing_here(
        sso_app: Flask, musterland: Flask, visitor: Browser, portal: Portal) -> None:
    there = logged_in_through_musterland(sso_app, musterland, visitor, portal)
    there.get("/konto")
    to_us = hop_from(there.submit("/abmelden"))
    stranger = Browser(sso_app.test_client())
    answered = stranger.client.get(to_us.url)
    assert answered.status_code == 302 and answered.location.startswith(MUSTERLAND)
    answer = decode_redirect(urlsplit(answered.location).query.encode(), parameter=None)
    assert b"urn:oasis:names:tc:SAML:2.0:status:UnknownPrincipal" in answer.xml
    assert answer.sig_alg  # signed
    assert visitor.client.get("/konto").status_code == 200  # the citizen's session stays


def test_an_unsigned_logout_request_in_musterland_s_name_is_refused(
        sso_app: Flask, musterland: Flask, visitor: Browser, portal: Portal) -> None:
    logged_in_through_musterland(sso_app, musterland, visitor, portal)
    forged = ('<samlp:LogoutRequest xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" '
              'xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="_x" Version="2.0" '
              f'IssueInstant="2026-12-06T00:00:00Z" Destination="http://localhost/extern/slo">'
              f'<saml:Issuer>{MUSTERLAND}/saml/metadata</saml:Issuer>'
              '<saml:NameID>someone</saml:NameID></samlp:LogoutRequest>')
    refused = visitor.client.post("/extern/slo", data={
        "SAMLRequest": base64.b64encode(forged.encode()).decode(),
        "servicekonto_resubmitted": "1"})
    assert refused.status_code == 400
    assert visitor.client.get("/konto").status_code == 200


# --- an external account on "Mein Servicekonto" --------------------------------------------------

def test_an_external_account_says_it_has_no_password_and_deletes_after_a_fresh_upstream_login(
        sso_app: Flask, musterland: Flask, visitor: Browser, portal: Portal,
        clock: Clock) -> None:
    there = logged_in_through_musterland(sso_app, musterland, visitor, portal)
    account = visitor.get("/konto").get_data(as_text=True)
    assert "Sie melden sich über Ihr Servicekonto Musterland an" in account
    assert "/konto/passwort" not in account and "/konto/email" not in account
    # Ten minutes after the login through Musterland, deleting asks for a fresh one.
    clock.advance(minutes=11)
    page = visitor.get("/konto/loeschen").get_data(as_text=True)
    assert "melden Sie sich bitte erneut über Ihr Servicekonto Musterland an" in page
    visitor.last_html = account
    assert visitor.submit("/konto/loeschen").status_code == 403
    with sso_app.app_context():
        assert db.session.scalar(select(ExternalLink)) is not None
    # Logged in through Musterland again (back at the machine's time, which the portal and
    # Musterland keep): one click deletes it, with its link.
    clock.advance(minutes=-11)
    fresh = Browser(sso_app.test_client())
    finish(fresh, through_musterland(fresh, there, portal))
    fresh.get("/konto/loeschen")
    assert "das bestätigt das Löschen" in fresh.last_html
    deleted = fresh.submit("/konto/loeschen")
    assert deleted.status_code == 200 and fresh.client.get("/konto").status_code == 302
    with sso_app.app_context():
        assert db.session.scalar(select(ExternalLink)) is None


def test_a_portal_whose_authn_methods_disable_fink_is_offered_no_external_login(
        sso_app: Flask, musterland: Flask, visitor: Browser, portal: Portal) -> None:
    path, _ = portal.login_url(extensions=bundid(methods={"Benutzername": True, "FINK": False}))
    login_page = visitor.client.get(path).location
    reference = parse_qs(urlsplit(login_page).query)["anfrage"][0]
    page = visitor.get(login_page).get_data(as_text=True)
    assert 'id="anmelden-extern"' not in page
    assert "Login mit externem Servicekonto <small>(für dieses Portal nicht freigegeben)" in page
    assert visitor.get(f"/extern?anfrage={reference}").status_code == 403
    visitor.get("/anmelden")  # a page with a form: the choice cannot be forced by a POST either
    assert visitor.submit(f"/extern/musterland?anfrage={reference}").status_code == 404
