"""A portal whose policy asks for encrypted assertions gets them (AES-256-GCM, RSA-OAEP)."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import func, select

from idp import create_app
from idp.db import db
from idp.saml.models import PortalSession
from tests.conftest import Browser
from tests.flows.conftest import (
    SP_ACS,
    SP_ENTITY,
    Portal,
    connect_portal,
    consent_page,
    decide,
    field_value,
    logged_in,
    portal_policy,
)
from tests.saml_support import metadata_of, sp_config


@pytest.fixture
def portal_changes() -> dict[str, Any]:
    return {"encrypt_assertion": True}


def test_the_assertion_travels_encrypted_and_the_portal_can_read_it(
        sso_app: Flask, visitor: Browser, portal: Portal) -> None:
    consent_page(logged_in(sso_app, visitor), portal)
    answer = decide(visitor).get_data(as_text=True)
    raw = base64.b64decode(field_value(answer, "SAMLResponse"))
    assert b"EncryptedAssertion" in raw
    assert b"Mustermann" not in raw and b"Erika" not in raw
    assert b"aes256-gcm" in raw and b"rsa-oaep" in raw
    response = portal.receive(answer)
    assert response.assertion.signature is not None  # signed before it was encrypted
    names = {a.friendly_name: [v.text for v in a.attribute_value]
             for a in response.assertion.attribute_statement[0].attribute}
    assert names["surname"] == ["Mustermann"]


def test_without_an_encryption_key_in_metadata_the_portal_gets_nothing_and_no_login_is_recorded(
        settings: dict[str, Any], policy_dir: Path, tmp_path: Path,
        portal_keys: tuple[Path, Path]) -> None:
    """Never the assertion in clear by mistake: the citizen sees an error page at the IdP, and
    single logout knows of no login at the portal."""
    metadata = tmp_path / "metadata-without-encryption.xml"
    metadata.write_text(metadata_of(sp_config(SP_ENTITY, SP_ACS, *portal_keys, encryption=False)),
                        encoding="utf-8")
    portal_policy(policy_dir, metadata, encrypt_assertion=True)
    app = create_app(test_config=settings, env={})
    try:
        portal = connect_portal(app, SP_ENTITY, SP_ACS, portal_keys)
        visitor = Browser(app.test_client())
        consent_page(logged_in(app, visitor), portal)
        answer = decide(visitor)
        page = answer.get_data(as_text=True)
        assert answer.status_code == 400
        assert "SAMLResponse" not in page and "Mustermann" not in page
        with app.app_context():
            assert db.session.scalar(select(func.count()).select_from(PortalSession)) == 0
    finally:
        db.bound(app).engine.dispose()
