"""A key rollover as portals live it: the next certificate appears in the metadata first, so a
portal that refreshed its metadata keeps accepting our responses after the switch."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from flask import Flask
from saml2.client import Saml2Client
from saml2.sigver import SignatureError

from idp import create_app
from idp.cli import main
from idp.db import db
from idp.samlkit import keys
from idp.samlkit.crypto import install_backend
from tests.conftest import Browser
from tests.flows.conftest import SP_ACS, SP_ENTITY, Portal, consent_page, decide, logged_in
from tests.saml_support import sp_config


@pytest.fixture
def key_folder(tmp_path: Path, signing_keys: tuple[Path, Path]) -> Path:
    """The session's IdP key as the current pair, in a folder of this test's own."""
    folder = tmp_path / "idp-keys"
    folder.mkdir()
    shutil.copy(signing_keys[0], folder / keys.KEY_NAME)
    shutil.copy(signing_keys[1], folder / keys.CERT_NAME)
    return folder


@pytest.fixture
def settings(settings: dict[str, Any], key_folder: Path) -> dict[str, Any]:
    return settings | {"key_file": key_folder / keys.KEY_NAME,
                       "cert_file": key_folder / keys.CERT_NAME}


def portal_trusting(app: Flask, portal_keys: tuple[Path, Path]) -> Portal:
    """A portal that (re)loaded the IdP's metadata from ``app`` just now."""
    metadata = app.test_client().get("/saml/metadata").get_data(as_text=True)
    client = Saml2Client(config=sp_config(SP_ENTITY, SP_ACS, *portal_keys, metadata))
    install_backend(client)
    return Portal(client)


def restarted(settings: dict[str, Any]) -> Flask:
    """A worker started after the switch (same database, keys read anew)."""
    application = create_app(test_config=settings, env={})
    application.config["TESTING"] = True
    return application


def certificate_text(cert_file: Path) -> str:
    return "".join(cert_file.read_text(encoding="ascii").strip().splitlines()[1:-1])


def test_a_portal_that_refreshed_during_the_rollover_accepts_the_new_key(
        sso_app: Flask, settings: dict[str, Any], key_folder: Path,
        portal_keys: tuple[Path, Path]) -> None:
    result = CliRunner().invoke(main, ["keys", "generate", "--out", str(key_folder), "--next"])
    assert result.exit_code == 0, result.output
    during = restarted(settings)
    metadata = during.test_client().get("/saml/metadata").get_data(as_text=True)
    assert certificate_text(key_folder / keys.CERT_NAME) in metadata
    assert certificate_text(key_folder / keys.NEXT_CERT_NAME) in metadata
    portal = portal_trusting(during, portal_keys)  # refreshed while both were published
    assert CliRunner().invoke(main, ["keys", "rollover", "--out",
                                     str(key_folder)]).exit_code == 0
    after = restarted(settings)
    try:
        metadata = after.test_client().get("/saml/metadata").get_data(as_text=True)
        assert certificate_text(key_folder / keys.PREVIOUS_CERT_NAME) not in metadata
        visitor = logged_in(after, Browser(after.test_client()))
        consent_page(visitor, portal)
        response = portal.receive(decide(visitor).get_data(as_text=True))
        assert response.assertion.subject.name_id.text  # signature and conditions held
    finally:
        for application in (during, after):
            db.bound(application).engine.dispose()


def test_a_portal_that_never_refreshed_refuses_the_new_key(
        sso_app: Flask, settings: dict[str, Any], key_folder: Path,
        portal_keys: tuple[Path, Path]) -> None:
    stale = portal_trusting(sso_app, portal_keys)
    assert CliRunner().invoke(main, ["keys", "generate", "--out", str(key_folder),
                                     "--next"]).exit_code == 0
    assert CliRunner().invoke(main, ["keys", "rollover", "--out",
                                     str(key_folder)]).exit_code == 0
    after = restarted(settings)
    try:
        visitor = logged_in(after, Browser(after.test_client()))
        consent_page(visitor, stale)
        with pytest.raises(SignatureError):
            stale.receive(decide(visitor).get_data(as_text=True))
    finally:
        db.bound(after).engine.dispose()
