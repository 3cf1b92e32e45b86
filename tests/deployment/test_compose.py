"""docker/compose.yaml: valid by the Compose specification, started in the right order, secrets
only from files, and URLs, host names and ports that agree between the IdP, the portals'
policies, the portals themselves and the proxy (docker/Caddyfile).

No Docker engine is needed: the files are read, and the IdP's own configuration loader and the
portals' own command-line parser judge the settings they would be given.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from idp.config import PROJECT_ROOT, load_config
from idp.gunicorn_conf import check_argon2_budget, default_size
from idp.portals.policy import load_portal_policies
from idp.samlkit.bindings import MAX_ENCODED_BYTES
from sp_client import MAX_REQUEST_BYTES
from sp_client.__main__ import parse_arguments
from tests.deployment.dockerfile import folders_made_for_the_user, image_command, image_env

DOCKER = PROJECT_ROOT / "docker"
# Where the demo portals' signing certificates lie in the containers that read them.
CERTIFICATES = "/var/lib/portal-certificates"
COMPOSE = DOCKER / "compose.yaml"
SECRETS = PurePosixPath("/run/secrets")
IDP = "idp"


def compose() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))
    return document


def services() -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = compose()["services"]
    return found


def our_image() -> str:
    image: str = services()[IDP]["image"]
    return image


def ours() -> dict[str, dict[str, Any]]:
    """The services that run the Servicekonto image."""
    return {name: service for name, service in services().items()
            if service.get("image") == our_image()}


def portal_commands() -> dict[str, Any]:
    """Each service that runs ``python -m sp_client``, its command line read by the portal's
    own parser."""
    found = {}
    for name, service in ours().items():
        command = service.get("command") or []
        if command[:3] == ["python", "-m", "sp_client"]:
            found[name] = parse_arguments(command[3:])
    return found


def portals() -> dict[str, Any]:
    """Each demo portal service (not the one-shots exporting their certificates)."""
    return {name: arguments for name, arguments in portal_commands().items()
            if arguments.export_certificate is None}


def volume_mounts(service: dict[str, Any]) -> dict[str, tuple[str, bool]]:
    """Mount target → (source, read-only) for the short volume syntax."""
    mounts = {}
    for entry in service.get("volumes", []):
        source, target, *mode = entry.split(":")
        mounts[target] = (source, mode == ["ro"])
    return mounts


def caddy_sites() -> dict[str, list[str]]:
    """Site address → the directives inside its block (the global options block aside), with
    the directives of an imported snippet (``(name) { … }``) in place of ``import name``."""
    blocks = caddy_blocks()
    return {address: [line for directive in directives
                      for line in (blocks[f"({directive.split()[1]})"]
                                   if directive.startswith("import ") else [directive])]
            for address, directives in blocks.items() if not address.startswith("(")}


def caddy_blocks() -> dict[str, list[str]]:
    """Site address or snippet name → the directives inside its block, as written."""
    sites: dict[str, list[str]] = {}
    current: str | None = None
    depth = 0
    for line in (DOCKER / "Caddyfile").read_text(encoding="utf-8").splitlines():
        text = line.split("#", 1)[0].strip()
        if not text:
            continue
        if depth == 0 and text.endswith("{"):
            current = text[:-1].strip() or None
            if current:
                sites[current] = []
        elif current:
            sites[current].append(text)
        depth += text.count("{") - text.count("}")
        if depth == 0:
            current = None
    return sites


def upstream(site: list[str]) -> str:
    """Where Caddy sends a site's requests: ``service:port``."""
    for directive in site:
        words = directive.split()
        if words[:2] == ["dynamic", "a"]:
            return f"{words[2]}:{words[3]}"
        if words[0] == "reverse_proxy" and len(words) > 1 and words[1] != "{":
            return words[1]
    raise AssertionError(f"no upstream in {site}")


def idp_environment() -> dict[str, str]:
    return {key: str(value) for key, value in services()[IDP]["environment"].items()}


def idp_port() -> str:
    """The port gunicorn binds in the image."""
    command = image_command()
    return command[command.index("--bind") + 1].rsplit(":", 1)[1]


def seconds(duration: str) -> float:
    match = re.fullmatch(r"(\d+)(ms|s|m)", duration)
    assert match, duration
    return int(match.group(1)) * {"ms": 0.001, "s": 1, "m": 60}[match.group(2)]


# --- the specification and the order of things --------------------------------------------------

def test_the_compose_file_follows_the_compose_specification() -> None:
    checker = Path(sys.executable).parent / "check-jsonschema"
    assert checker.exists(), "check-jsonschema is missing: pip install -e '.[test]'"

    result = subprocess.run([str(checker), "--builtin-schema", "vendor.compose-spec",
                             str(COMPOSE)], capture_output=True, text=True, timeout=120,
                            check=False)

    assert result.returncode == 0, result.stdout + result.stderr


def docker_compose_model() -> dict[str, Any]:
    """The file as Docker Compose itself resolves it (`docker compose config`): anchors, merge
    keys, defaults and paths worked out, and errors Compose would stop `up` with."""
    docker = shutil.which("docker")
    if docker is None or subprocess.run([docker, "compose", "version"], capture_output=True,
                                        timeout=60, check=False).returncode != 0:
        pytest.skip("no docker command with the Compose plugin (tests/system-packages.sh "
                    "installs the plugin where the docker command is)")
    result = subprocess.run([docker, "compose", "--file", str(COMPOSE), "config", "--format",
                             "json"], capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    model: dict[str, Any] = json.loads(result.stdout)
    return model


def test_docker_compose_accepts_the_file_and_reads_it_as_these_tests_do() -> None:
    model = docker_compose_model()

    assert set(model["services"]) == set(services())
    for name, service in services().items():
        resolved = model["services"][name]
        assert resolved.get("command") == service.get("command"), name
        assert resolved.get("entrypoint") == service.get("entrypoint"), name
        assert set(resolved.get("depends_on", {})) == set(service.get("depends_on", {})), name
        assert resolved.get("environment", {}) == {
            key: None if value is None else str(value)
            for key, value in service.get("environment", {}).items()}, name
        assert [secret["source"] for secret in resolved.get("secrets", [])] == [
            secret if isinstance(secret, str) else secret["source"]
            for secret in service.get("secrets", [])], name
    assert {secret["file"] for secret in model["secrets"].values()} == {
        str(DOCKER / entry["file"]) for entry in compose()["secrets"].values()}


def test_every_service_named_in_depends_on_exists() -> None:
    everything = services()
    for name, service in everything.items():
        for needed in service.get("depends_on", {}):
            assert needed in everything, f"{name} depends on {needed}, which is not defined"


def test_the_schema_is_migrated_before_the_idp_and_the_mail_sender_start() -> None:
    everything = services()
    migrations = [name for name, service in ours().items()
                  if service.get("command") == ["servicekonto", "db", "upgrade"]]
    assert len(migrations) == 1
    migrate = migrations[0]
    assert everything[migrate]["restart"] == "no"
    assert everything[migrate]["depends_on"]["postgres"]["condition"] == "service_healthy"
    for name, service in ours().items():
        if name == IDP or service.get("command", [])[:3] == ["servicekonto", "mail", "send"]:
            condition = service["depends_on"][migrate]["condition"]
            assert condition == "service_completed_successfully", name


def test_the_mail_sender_runs_as_a_process_of_its_own() -> None:
    senders = [name for name, service in ours().items()
               if service.get("command") == ["servicekonto", "mail", "send", "--forever"]]

    assert len(senders) == 1
    assert services()[senders[0]]["restart"] == "unless-stopped"


def test_expired_data_is_purged_every_hour_by_a_process_of_its_own_after_the_migration() -> None:
    purges = {name: service for name, service in ours().items()
              if service.get("command", [])[:3] == ["servicekonto", "purge", "--forever"]}

    assert len(purges) == 1
    (service,) = purges.values()
    assert service["command"][3:] == ["--interval", "3600"]
    assert service["restart"] == "unless-stopped"
    assert service["depends_on"]["migrate"]["condition"] == "service_completed_successfully"


def test_the_signing_key_is_made_once_into_the_volume_the_idp_reads_it_from() -> None:
    key_file = PurePosixPath(idp_environment()["IDP_KEY_FILE"])
    cert_file = PurePosixPath(idp_environment()["IDP_CERT_FILE"])
    assert key_file.parent == cert_file.parent
    makers = {name: service for name, service in ours().items()
              if "keys generate" in " ".join(service.get("command") or [])}
    assert len(makers) == 1
    (maker, service), = makers.items()
    command = " ".join(service["command"])

    assert f"test -s {key_file} ||" in command  # never a second key over the first
    assert f"--out {key_file.parent}" in command
    assert service["restart"] == "no"
    volume, read_only = volume_mounts(service)[str(key_file.parent)]
    assert not read_only
    for name in (IDP, *[n for n, s in ours().items() if "mail" in (s.get("command") or [])]):
        assert volume_mounts(services()[name])[str(key_file.parent)] == (volume, True), name
        assert services()[name]["depends_on"][maker]["condition"] == \
            "service_completed_successfully"


# --- secrets ------------------------------------------------------------------------------------

def test_secrets_reach_the_containers_as_files_never_as_values_in_the_compose_file() -> None:
    declared = compose()["secrets"]
    for name, service in services().items():
        environment = service.get("environment", {})
        for key, value in environment.items():
            if re.search(r"SECRET|PASSWORD", key) or key == "IDP_DATABASE_URL":
                assert key.endswith("_FILE"), f"{name}: {key} holds a secret as a value"
            if key.endswith("_FILE") and str(value).startswith(f"{SECRETS}/"):
                secret = PurePosixPath(value).name
                assert secret in service.get("secrets", []), f"{name}: {secret} not mounted"
                assert secret in declared
    assert idp_environment()["IDP_SECRET_KEY_FILE"].startswith(f"{SECRETS}/")
    assert idp_environment()["IDP_DATABASE_URL_FILE"].startswith(f"{SECRETS}/")


def test_git_ignores_the_secret_files_compose_reads() -> None:
    git = shutil.which("git")
    assert git, "git is needed to ask what it ignores"
    for name, secret in compose()["secrets"].items():
        path = (DOCKER / secret["file"]).resolve().relative_to(PROJECT_ROOT)
        ignored = subprocess.run([git, "check-ignore", "--quiet", "--no-index", str(path)],
                                 cwd=PROJECT_ROOT, timeout=30, check=False)
        assert ignored.returncode == 0, f"{name}: git would commit {path}"


# --- containers of our image --------------------------------------------------------------------

def test_containers_of_our_image_run_unprivileged_read_only_and_without_capabilities() -> None:
    assert len(ours()) >= 6
    for name, service in ours().items():
        assert str(service.get("user", "10001")).split(":")[0] not in ("0", "root"), name
        assert not service.get("privileged"), name
        assert service["read_only"] is True, name
        assert service["cap_drop"] == ["ALL"], name
        assert "no-new-privileges:true" in service["security_opt"], name


def test_what_our_containers_write_lies_on_volumes_their_user_owns() -> None:
    # Root file system read-only: the instance folder (metadata cache) and the portals' folders
    # must be volumes, and a fresh named volume takes its owner from the image's folder.
    writable = folders_made_for_the_user()
    instance = image_env()["IDP_INSTANCE_PATH"]
    for name, service in ours().items():
        for target, (source, _) in volume_mounts(service).items():
            if not source.startswith((".", "/")):  # a named volume, not a bind mount
                assert target in writable, f"{name}: {target} would belong to root"
        if name in (IDP, "mailer"):
            assert instance in volume_mounts(service), name
    for name, arguments in portals().items():
        assert str(arguments.instance) in volume_mounts(services()[name]), name


# --- the IdP's settings -------------------------------------------------------------------------

def test_the_idp_would_start_with_the_settings_and_portals_of_the_compose_file(
        tmp_path: Path) -> None:
    policy_dir = tmp_path / "policies"
    # The portals are mounted over those shipped in the image, where its IdP looks for them.
    image_portals = f"{image_env()['IDP_POLICY_DIR']}/portals"
    for name in (IDP, "mailer"):
        assert image_portals in volume_mounts(services()[name]), name
    portal_mount = volume_mounts(services()[IDP])[image_portals]
    shutil.copytree(COMPOSE.parent / portal_mount[0], policy_dir / "portals")
    # The pinned certificates are in a volume at run time: here, files in the same place.
    for policy_file in (policy_dir / "portals").glob("*.yaml"):
        text = policy_file.read_text(encoding="utf-8").replace(CERTIFICATES, str(tmp_path))
        policy_file.write_text(text, encoding="utf-8")
        (tmp_path / f"{policy_file.stem}.crt").write_text("pinned", encoding="ascii")
    shutil.copy(PROJECT_ROOT / "policies" / "password.yaml", policy_dir / "password.yaml")
    (tmp_path / "idp_secret_key").write_text("s" * 48, encoding="ascii")
    (tmp_path / "idp_database_url").write_text(
        "postgresql+psycopg://servicekonto:s3cr3t@postgres/servicekonto", encoding="ascii")
    env = {key: value.replace(f"{SECRETS}/", f"{tmp_path}/")
           for key, value in idp_environment().items()}
    env.update(IDP_POLICY_DIR=str(policy_dir), IDP_INSTANCE_PATH=str(tmp_path / "instance"))

    config = load_config(env)
    policies = load_portal_policies(policy_dir)

    assert config.environment == "production" and config.uses_https
    assert config.proxy_count == 1  # Caddy, and nothing else, sets X-Forwarded-For
    assert config.database_url.startswith("postgresql+psycopg://")  # from the secret file
    assert sorted(policy.name for policy in policies) == sorted(portals())


def test_the_compose_portals_ask_for_what_the_shipped_portals_ask_for() -> None:
    for name in portals():
        shipped = yaml.safe_load((PROJECT_ROOT / "policies" / "portals" / f"{name}.yaml")
                                 .read_text(encoding="utf-8"))
        composed = yaml.safe_load((DOCKER / "portals" / f"{name}.yaml")
                                  .read_text(encoding="utf-8"))
        for url_key in ("entity_id", "metadata"):
            shipped.pop(url_key)
            composed.pop(url_key)
        composed.pop("metadata_certificate")  # compose's own: its metadata comes over http
        assert composed == shipped, name


def test_the_idp_container_runs_two_workers_whose_concurrent_logins_fit_its_memory() -> None:
    idp = services()[IDP]
    workers = int(idp["environment"]["WEB_CONCURRENCY"])
    memory = re.fullmatch(r"(\d+)([mg])", idp["mem_limit"])
    assert memory
    budget_mib = int(memory.group(1)) * (1024 if memory.group(2) == "g" else 1) / 2

    threads = default_size(workers, budget_mib, 64)[1]

    assert workers >= 2 and threads == 4
    check_argon2_budget(workers, threads, 64, budget_mib)  # gunicorn would start


def test_compose_gives_gunicorn_time_to_finish_running_logins_when_stopping() -> None:
    from idp import gunicorn_conf

    assert seconds(services()[IDP]["stop_grace_period"]) > gunicorn_conf.graceful_timeout


# --- URLs, host names and ports -----------------------------------------------------------------

def test_each_portal_is_reached_where_the_idp_fetches_its_metadata() -> None:
    for name, arguments in portals().items():
        policy = yaml.safe_load((DOCKER / "portals" / f"{arguments.profile}.yaml")
                                .read_text(encoding="utf-8"))
        service = services()[name]
        metadata = urlsplit(policy["metadata"])
        aliases = service["networks"]["default"]["aliases"]

        assert policy["entity_id"] == arguments.base_url + "/saml/metadata"
        # The portal accepts only its own host name: the IdP asks under it, inside the network.
        assert metadata.hostname == urlsplit(arguments.base_url).hostname
        assert metadata.hostname in aliases
        assert metadata.port == arguments.port
        assert str(arguments.port) in service["expose"]
        assert arguments.host == "0.0.0.0"  # noqa: S104 (inside its container)


def test_browsers_reach_each_portal_and_the_idp_through_the_proxy_at_their_public_urls() -> None:
    sites = caddy_sites()
    published = {entry.split(":")[-2]: entry.split(":")[-1]
                 for entry in services()["caddy"]["ports"]}
    public = {IDP: (idp_environment()["IDP_BASE_URL"], idp_port())}
    public |= {name: (arguments.base_url, str(arguments.port))
               for name, arguments in portals().items()}

    for name, (url, port) in public.items():
        parts = urlsplit(url)
        assert parts.scheme == "https", name
        assert parts.netloc in sites, f"{name}: no site {parts.netloc} in the Caddyfile"
        assert upstream(sites[parts.netloc]) == f"{name}:{port}", name
        # Published on the same port as inside, so the URL works from the host.
        assert published[str(parts.port)] == str(parts.port), name
    assert idp_port() in services()[IDP]["expose"]


def test_the_portals_fetch_the_idp_metadata_where_it_listens_under_a_host_it_accepts() -> None:
    trusted = idp_environment()["IDP_TRUSTED_HOSTS"].split(",")
    for name, arguments in portals().items():
        metadata = urlsplit(arguments.idp_metadata)

        assert metadata.hostname == IDP and metadata.hostname in trusted, name
        assert str(metadata.port) == idp_port(), name
        assert metadata.path == "/saml/metadata", name


def test_the_idp_can_be_scaled_out_behind_the_proxy() -> None:
    idp = services()[IDP]

    assert "container_name" not in idp and "ports" not in idp
    site = caddy_sites()[urlsplit(idp_environment()["IDP_BASE_URL"]).netloc]
    assert any(directive.startswith("dynamic a idp ") for directive in site)


def test_the_proxy_lets_through_the_longest_redirect_request_the_idp_accepts() -> None:
    text = (DOCKER / "Caddyfile").read_text(encoding="utf-8")
    match = re.search(r"max_header_size (\d+)KiB", text)
    assert match

    # The bindings take a query string of up to twice MAX_ENCODED_BYTES; headers need room too.
    assert int(match.group(1)) * 1024 >= 2 * MAX_ENCODED_BYTES + 16 * 1024


def test_the_mail_inbox_is_published_on_the_loopback_address_only() -> None:
    # Every activation and reset link of every citizen is in it.
    for entry in services()["mailpit"]["ports"]:
        assert entry.startswith("127.0.0.1:"), entry


# --- what the network and the public site may do -----------------------------------------------

def compose_policy(profile: str) -> dict[str, Any]:
    policy: dict[str, Any] = yaml.safe_load((DOCKER / "portals" / f"{profile}.yaml")
                                            .read_text(encoding="utf-8"))
    return policy


def test_portal_metadata_over_plain_http_counts_only_with_a_pinned_signing_certificate() -> None:
    """Whoever answers on the compose network in a portal's name cannot swap its endpoints or
    keys: the IdP checks the signature with a certificate it got through a volume."""
    exporters = {arguments.profile: (name, arguments)
                 for name, arguments in portal_commands().items()
                 if arguments.export_certificate is not None}
    for name, arguments in portals().items():
        policy = compose_policy(arguments.profile)
        certificate = PurePosixPath(policy["metadata_certificate"])
        exporter, exported = exporters[arguments.profile]
        exporter_service = services()[exporter]

        assert urlsplit(policy["metadata"]).scheme == "http"  # hence the signature
        assert exported.export_certificate == Path(certificate), name
        # The certificate of the keys this portal uses: the same instance volume.
        instance = volume_mounts(services()[name])[str(arguments.instance)][0]
        assert volume_mounts(exporter_service)[str(exported.instance)][0] == instance, name
        volume, read_only = volume_mounts(exporter_service)[str(certificate.parent)]
        assert not read_only and not volume.startswith((".", "/")), name
        assert exporter_service["restart"] == "no"
        assert services()[name]["depends_on"][exporter]["condition"] == \
            "service_completed_successfully"
        # Every process that reads the portal files finds the certificate, read-only, and
        # starts after it was written (a missing certificate stops the start).
        for reader in (IDP, "mailer", "purge"):
            mounts = volume_mounts(services()[reader])
            assert mounts[str(certificate.parent)] == (volume, True), reader
            # The certificate only: the portal's keys and database stay in its own volume.
            assert instance not in {source for source, _ in mounts.values()}, reader
            assert services()[reader]["depends_on"][exporter]["condition"] == \
                "service_completed_successfully", reader


def test_the_portals_are_served_by_gunicorn_not_by_the_development_server() -> None:
    assert portals()
    for name, arguments in portals().items():
        assert arguments.gunicorn, name


def test_the_postal_outbox_and_other_demo_pages_are_not_served_through_the_proxy() -> None:
    """The outbox holds every Bestätigungscode in clear, with no login."""
    sites = caddy_sites()
    for name, arguments in portals().items():
        site = sites[urlsplit(arguments.base_url).netloc]
        refused = {directive.split()[1] for directive in site
                   if directive.split()[0] == "respond" and directive.split()[-1] == "404"}

        assert {"/post", "/post/*"} <= refused, name
        # The portal itself shows it to its own loopback clients only, never to the proxy.
        assert not arguments.postal_outbox_remote, name


def test_the_proxy_refuses_bodies_larger_than_the_portals_take() -> None:
    sites = caddy_sites()
    for name, arguments in portals().items():
        site = sites[urlsplit(arguments.base_url).netloc]
        limits = [directive.split()[1] for directive in site
                  if directive.startswith("max_size ")]
        assert len(limits) == 1, name
        match = re.fullmatch(r"(\d+)KB", limits[0])
        assert match, limits[0]
        # Above the portal's own cap, so that the portal's German 413 page is what one sees.
        assert int(match.group(1)) * 1000 > MAX_REQUEST_BYTES, name
