"""What a portal sees of a citizen through the broker (docs/broker.md, "What the portal
receives"): the same bPK2 on every login through the same upstream account, another one through
another upstream, and another one at another portal. Two upstreams at once: "Servicekonto
Musterland" (a second instance of our IdP) and "Servicekonto Fremdland" (a pysaml2 IdP)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from saml2.server import Server

from tests.conftest import Browser
from tests.flows.conftest import Portal, connect_portal, portal_policy
from tests.flows.test_broker import (
    BPK2,
    attributes_of,
    finish,
    musterland,
    musterland_citizen,
    through_musterland,
    upstream_file,
)
from tests.flows.test_broker_pysaml2 import UPSTREAM, answer, encrypted, fremdland, to_fremdland
from tests.saml_support import key_pair, metadata_of, sp_config

# The fixtures this module uses from the others (pytest finds them by these names).
__fixtures__ = (musterland, fremdland, encrypted)

RATHAUS = "https://rathaus.example.org/saml/metadata"
RATHAUS_ACS = "https://rathaus.example.org/saml/acs"


@pytest.fixture
def rathaus_keys(tmp_path: Path) -> tuple[Path, Path]:
    return key_pair(tmp_path / "rathaus", "rathaus")


@pytest.fixture
def portal_changes(tmp_path: Path, policy_dir: Path,
                   rathaus_keys: tuple[Path, Path]) -> dict[str, Any]:
    """Both upstreams, and a second portal that gets bPK2 too."""
    upstream_file(policy_dir, tmp_path / "musterland-metadata.xml")
    upstream_file(policy_dir, tmp_path / "fremdland-metadata.xml", name="fremdland",
                  display_name="Servicekonto Fremdland", entity_id=UPSTREAM,
                  maximum_trust_level="STORK-QAA-Level-4", bpk2_prefix="FL:")
    metadata = tmp_path / "rathaus-metadata.xml"
    metadata.write_text(metadata_of(sp_config(RATHAUS, RATHAUS_ACS, *rathaus_keys)),
                        encoding="utf-8")
    portal_policy(policy_dir, metadata, name="rathaus", entity_id=RATHAUS,
                  display_name="Rathaus Beispielstadt")
    return {}


@pytest.fixture
def rathaus(sso_app: Flask, rathaus_keys: tuple[Path, Path]) -> Portal:
    return connect_portal(sso_app, RATHAUS, RATHAUS_ACS, rathaus_keys)


def through_fremdland(visitor: Browser, server: Server, portal: Portal) -> str:
    _, location = to_fremdland(visitor, portal)
    back = visitor.client.post("/extern/acs", data={
        "SAMLResponse": answer(server, location), "servicekonto_resubmitted": "1"})
    visitor.get(back.location)
    if "Erste Anmeldung" in visitor.last_html:
        back = visitor.submit("/extern/erste-anmeldung", {"aktion": "neu"})
    return finish(visitor, back.location, "Servicekonto Fremdland")


def test_one_upstream_account_is_one_bpk2_per_portal_and_another_upstream_is_another(
        sso_app: Flask, musterland: Flask, fremdland: Server, portal: Portal,
        rathaus: Portal) -> None:
    there = musterland_citizen(musterland)

    def bpk2_through_musterland(at: Portal) -> str:
        visitor = Browser(sso_app.test_client())
        page = finish(visitor, through_musterland(visitor, there, at))
        at.receive(page)
        return attributes_of(page)[BPK2][0]

    def bpk2_through_fremdland(at: Portal) -> str:
        page = through_fremdland(Browser(sso_app.test_client()), fremdland, at)
        at.receive(page)
        return attributes_of(page)[BPK2][0]

    first, again = bpk2_through_musterland(portal), bpk2_through_musterland(portal)
    at_rathaus = bpk2_through_musterland(rathaus)
    from_fremdland = bpk2_through_fremdland(portal)
    assert first == again  # stable across logins
    assert at_rathaus != first and at_rathaus.startswith("MU:")  # pairwise per portal
    assert from_fremdland != first and from_fremdland.startswith("FL:")  # per upstream
