"""A portal whose policy asks for encrypted assertions gets them (AES-256-GCM, RSA-OAEP)."""

from __future__ import annotations

import base64
from typing import Any

import pytest
from flask import Flask

from tests.conftest import Browser
from tests.flows.conftest import Portal, consent_page, decide, field_value, logged_in


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
