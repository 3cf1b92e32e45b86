"""Production unless development is chosen: an installed IdP never becomes a development system
(generated secret, development mailbox full of links, a moved clock) by a forgotten IDP_ENV."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from idp import create_app
from idp.config import ConfigError, load_config
from sp_client.demo import is_loopback_host

# What production needs, and nothing that names the environment.
PRODUCTION = {"IDP_BASE_URL": "https://konto.example.org", "IDP_SECRET_KEY": "s" * 40,
              "IDP_MAIL_SERVER": "mail.example.org"}


def test_an_idp_without_idp_env_runs_in_production(tmp_path: Path) -> None:
    config = load_config(PRODUCTION | {"IDP_INSTANCE_PATH": str(tmp_path)})
    assert config.environment == "production"
    assert not config.is_development


def test_the_eid_simulation_is_on_in_development_and_refused_in_production(
        tmp_path: Path) -> None:
    production = PRODUCTION | {"IDP_INSTANCE_PATH": str(tmp_path)}
    assert load_config(production).eid_simulation is False
    assert load_config(production | {"IDP_EID_SIMULATION": "false"}).eid_simulation is False
    with pytest.raises(ConfigError, match="IDP_EID_SIMULATION is for development only"):
        load_config(production | {"IDP_EID_SIMULATION": "true"})
    development = {"IDP_ENV": "development", "IDP_INSTANCE_PATH": str(tmp_path)}
    assert load_config(development).eid_simulation is True
    assert load_config(development | {"IDP_EID_SIMULATION": "false"}).eid_simulation is False


@pytest.mark.parametrize(("missing", "message"), [
    ("IDP_SECRET_KEY", "IDP_SECRET_KEY (or IDP_SECRET_KEY_FILE) is required in production"),
    ("IDP_BASE_URL", "IDP_BASE_URL: must be an https URL in production"),
    ("IDP_MAIL_SERVER", "IDP_MAIL_SERVER is required in production"),
])
def test_an_idp_without_idp_env_refuses_to_start_without_what_production_needs(
        tmp_path: Path, missing: str, message: str) -> None:
    env = {name: value for name, value in PRODUCTION.items() if name != missing}
    with pytest.raises(ConfigError) as refused:
        create_app(env=env | {"IDP_INSTANCE_PATH": str(tmp_path)})
    assert message in str(refused.value)
    assert "IDP_ENV=development" in str(refused.value)  # how to get a test system instead
    assert not (tmp_path / "secret_key").exists()  # no development secret was made


def test_the_command_line_without_idp_env_says_what_production_needs(tmp_path: Path) -> None:
    env = {name: value for name, value in os.environ.items() if not name.startswith("IDP_")}
    result = subprocess.run([sys.executable, "-c", "from idp.cli import main; main()",
                             "user", "list"], env=env | {"IDP_INSTANCE_PATH": str(tmp_path)},
                            capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 2
    assert "Servicekonto kann nicht starten: IDP_SECRET_KEY" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("credentials", [{"IDP_MAIL_USERNAME": "servicekonto"},
                                         {"IDP_MAIL_PASSWORD": "Post-Geheimnis"}])
def test_production_refuses_smtp_credentials_without_tls(tmp_path: Path,
                                                         credentials: dict[str, str]) -> None:
    with pytest.raises(ConfigError) as refused:
        load_config(PRODUCTION | credentials | {"IDP_INSTANCE_PATH": str(tmp_path)})
    assert "need IDP_MAIL_USE_TLS=true or IDP_MAIL_USE_SSL=true" in str(refused.value)
    assert "Post-Geheimnis" not in str(refused.value)


@pytest.mark.parametrize("encryption", [{"IDP_MAIL_USE_TLS": "true"},
                                        {"IDP_MAIL_USE_SSL": "true", "IDP_MAIL_PORT": "465"}])
def test_production_takes_smtp_credentials_over_tls_or_ssl(tmp_path: Path,
                                                           encryption: dict[str, str]) -> None:
    config = load_config(PRODUCTION | encryption | {
        "IDP_MAIL_USERNAME": "servicekonto", "IDP_MAIL_PASSWORD": "Post-Geheimnis",
        "IDP_INSTANCE_PATH": str(tmp_path)})
    assert config.mail_username == "servicekonto"


def test_opening_the_development_mailbox_to_other_machines_is_refused_in_production(
        tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="IDP_DEVELOPMENT_REMOTE is for development only"):
        load_config(PRODUCTION | {"IDP_DEVELOPMENT_REMOTE": "true",
                                  "IDP_INSTANCE_PATH": str(tmp_path)})


@pytest.mark.parametrize(("host", "local"), [
    ("127.0.0.1", True), ("localhost", True), ("::1", True), ("127.0.0.2", True),
    ("0.0.0.0", False), ("::", False), ("192.0.2.7", False),  # noqa: S104 (not bound here)
    ("demo.example.org", False)])
def test_the_demo_counts_only_loopback_addresses_as_this_machine(host: str, local: bool) -> None:
    assert is_loopback_host(host) is local
