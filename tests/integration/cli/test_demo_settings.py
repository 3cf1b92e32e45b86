"""``servicekonto demo`` takes the mail server, the hash cost and the development clock from the
environment, and nothing else: where the demo's data lives and what it is stay its own."""

from __future__ import annotations

from pathlib import Path

from idp.broker.upstreams import load_upstreams
from idp.portals.policy import load_portal_policies
from sp_client.demo import (
    MUSTERLAND_NAME,
    build_idp,
    build_portals,
    passed_on,
    write_musterland_policies,
    write_policies,
)


def test_the_demo_takes_mail_hash_cost_and_clock_from_the_environment_and_nothing_else() -> None:
    environ = {"IDP_MAIL_SERVER": "127.0.0.1", "IDP_MAIL_PORT": "2525",
               "IDP_ARGON2_TIME_COST": "1", "IDP_CLOCK_OFFSET_HOURS": "25",
               "IDP_ENV": "production", "IDP_DATABASE_URL": "postgresql://elsewhere/db",
               "IDP_BASE_URL": "https://idp.example.org", "IDP_SECRET_KEY_FILE": "/run/secret",
               "HOME": "/root"}
    assert passed_on(environ) == {"IDP_MAIL_SERVER": "127.0.0.1", "IDP_MAIL_PORT": "2525",
                                  "IDP_ARGON2_TIME_COST": "1", "IDP_CLOCK_OFFSET_HOURS": "25"}


def test_the_demo_idp_mails_over_the_smtp_server_named_in_the_environment(tmp_path: Path) -> None:
    policy_dir = write_policies(tmp_path, {"dueren": 1, "mags": 2})  # portals not running: fine
    app = build_idp(tmp_path, 3, policy_dir, {
        "IDP_MAIL_SERVER": "127.0.0.1", "IDP_MAIL_PORT": "2525",
        "IDP_ENV": "production", "IDP_DATABASE_URL": "postgresql://elsewhere/db"})
    config = app.config["SERVICEKONTO"]
    assert (config.mail_server, config.mail_port) == ("127.0.0.1", 2525)
    assert not config.uses_dev_mailbox
    assert config.environment == "development"
    assert config.database_url == f"sqlite:///{tmp_path / 'idp' / 'servicekonto.sqlite3'}"
    assert config.base_url == "http://127.0.0.1:3"


def test_the_demo_idp_is_a_development_system_without_idp_env(tmp_path: Path) -> None:
    policy_dir = write_policies(tmp_path, {"dueren": 1, "mags": 2})
    app = build_idp(tmp_path, 3, policy_dir, {})
    config = app.config["SERVICEKONTO"]
    assert config.is_development and config.uses_dev_mailbox
    assert not config.development_remote  # the mailbox answers this machine only


def test_a_demo_listening_beyond_loopback_opens_its_mailbox_to_other_machines(
        tmp_path: Path) -> None:
    policy_dir = write_policies(tmp_path, {"dueren": 1, "mags": 2})
    app = build_idp(tmp_path, 3, policy_dir, {}, remote=True)
    response = app.test_client().get("/entwicklung/postfach/", base_url="http://127.0.0.1:3",
                                     environ_base={"REMOTE_ADDR": "172.17.0.1"})
    assert response.status_code == 200


def test_a_demo_listening_beyond_loopback_shows_the_postal_outbox_to_other_machines(
        tmp_path: Path) -> None:
    """In a container the browser's requests come from the bridge: the letters with the
    Bestätigungscode must still be readable there, as the mailbox is."""
    for remote, expected in ((False, 404), (True, 200)):
        [(mags, _)] = build_portals(tmp_path / str(remote), 3, {"mags": 2}, remote=remote)
        response = mags.test_client().get("/post", base_url="http://127.0.0.1:2",
                                          environ_base={"REMOTE_ADDR": "172.17.0.1"})
        assert response.status_code == expected


def test_the_demo_names_musterland_as_upstream_and_musterland_our_broker_as_its_portal(
        tmp_path: Path) -> None:
    ours = write_policies(tmp_path, {"dueren": 1, "mags": 2}, musterland_port=4)
    [upstream] = load_upstreams(ours)
    assert upstream.display_name == MUSTERLAND_NAME and upstream.bpk2_prefix == "MU:"
    assert upstream.entity_id == upstream.metadata == "http://127.0.0.1:4/saml/metadata"
    [broker] = load_portal_policies(write_musterland_policies(tmp_path, 3))
    assert broker.entity_id == broker.metadata == "http://127.0.0.1:3/extern/metadata"
    assert broker.name_id_format == "persistent" and broker.consent_required
    assert "bPK2" in broker.attributes
    # Musterland's folder is its own: our personas are not its accounts.
    assert not (tmp_path / "musterland" / "policies" / "personas").exists()
    # Without Musterland's port, no upstream is left from an earlier start.
    assert load_upstreams(write_policies(tmp_path, {"dueren": 1, "mags": 2})) == []
