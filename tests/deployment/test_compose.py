"""docker/compose.yaml: valid by the Compose specification, started in the right order, secrets
made by a one-shot into volumes (never values in the file), the demo portals in the profile
demo, and URLs, host names and ports that agree between the IdP, the portals' policies, the
portals themselves and the proxy (docker/Caddyfile).

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
from idp.portals.policy import load_portal_files
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
DEMO = "demo"
# The demo portals' files, which the profile demo registers (`portal import --from`).
DEMO_PORTALS = DOCKER / "demo-portals"
CREDENTIALS = "credentials"
# What docker/credentials.py makes: (in its first folder, in its second), tested below.
MADE_BY_CREDENTIALS = ({"idp_secret_key", "idp_database_url"}, {"postgres_password"})


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


def docker_compose_model(*profiles: str) -> dict[str, Any]:
    """The file as Docker Compose itself resolves it (`docker compose config`) with these
    profiles: anchors, merge keys, defaults and paths worked out, and errors Compose would stop
    `up` with."""
    docker = shutil.which("docker")
    if docker is None or subprocess.run([docker, "compose", "version"], capture_output=True,
                                        timeout=60, check=False).returncode != 0:
        pytest.skip("no docker command with the Compose plugin (tests/system-packages.sh "
                    "installs the plugin where the docker command is)")
    chosen = [word for profile in profiles for word in ("--profile", profile)]
    result = subprocess.run([docker, "compose", "--file", str(COMPOSE), *chosen, "config",
                             "--format", "json"], capture_output=True, text=True, timeout=120,
                            check=False)
    assert result.returncode == 0, result.stderr
    model: dict[str, Any] = json.loads(result.stdout)
    return model


def test_docker_compose_accepts_the_file_and_reads_it_as_these_tests_do() -> None:
    model = docker_compose_model(DEMO)

    assert set(model["services"]) == set(services())
    for name, service in services().items():
        resolved = model["services"][name]
        assert resolved.get("command") == service.get("command"), name
        assert resolved.get("entrypoint") == service.get("entrypoint"), name
        assert set(resolved.get("depends_on", {})) == set(service.get("depends_on", {})), name
        assert resolved.get("environment", {}) == {
            key: None if value is None else str(value)
            for key, value in service.get("environment", {}).items()}, name
        assert not resolved.get("secrets"), f"{name}: secrets come from the volumes"
    assert not model.get("secrets")


def test_without_the_demo_profile_compose_starts_the_idp_alone_in_production_shape() -> None:
    model = docker_compose_model()
    demo = {name for name, service in services().items() if DEMO in service.get("profiles", [])}

    assert set(model["services"]) == set(services()) - demo
    assert {"dueren", "mags", "dueren-keys", "mags-keys"} <= demo
    for name, service in model["services"].items():
        needed = {other for other, how in service.get("depends_on", {}).items()
                  if how.get("required", True)}
        assert not needed & demo, f"{name} needs {needed & demo} of the demo"
    assert model["services"][IDP]["environment"]["IDP_ENV"] == "production"


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

def secret_readers() -> dict[str, list[PurePosixPath]]:
    """Each service and the files it reads its secrets from (``*_FILE`` variables)."""
    found: dict[str, list[PurePosixPath]] = {}
    for name, service in services().items():
        for key, value in service.get("environment", {}).items():
            if key.endswith("_FILE") and re.search(r"SECRET|PASSWORD|DATABASE_URL", key):
                found.setdefault(name, []).append(PurePosixPath(str(value)))
    return found


def test_secrets_reach_the_containers_as_files_never_as_values_in_the_compose_file() -> None:
    for name, service in services().items():
        for key in service.get("environment", {}):
            if re.search(r"SECRET|PASSWORD", key) or key == "IDP_DATABASE_URL":
                assert key.endswith("_FILE"), f"{name}: {key} holds a secret as a value"
    assert "secrets" not in compose()  # nothing for an operator to create by hand
    assert idp_environment()["IDP_SECRET_KEY_FILE"].startswith(f"{SECRETS}/")
    assert idp_environment()["IDP_DATABASE_URL_FILE"].startswith(f"{SECRETS}/")


def test_every_secret_is_read_read_only_from_a_volume_the_credentials_one_shot_fills_first(
        ) -> None:
    maker = services()[CREDENTIALS]
    written = {target: source for target, (source, read_only)
               in volume_mounts(maker).items() if not read_only}
    readers = secret_readers()

    assert maker["restart"] == "no"
    assert {IDP, "mailer", "purge", "migrate", "postgres"} <= set(readers)
    for name, files in readers.items():
        mounts = volume_mounts(services()[name])
        for file in files:
            source, read_only = mounts[str(file.parent)]
            assert read_only, f"{name} may write {file.parent}"
            assert source in written.values(), f"{name}: {file} is not made by {CREDENTIALS}"
            # A file the one-shot makes, in the folder it is told to make it in.
            target = next(target for target, volume in written.items() if volume == source)
            assert target in maker["command"], name
            assert file.name in MADE_BY_CREDENTIALS[target == maker["command"][-1]], name
        assert services()[name]["depends_on"][CREDENTIALS]["condition"] == \
            "service_completed_successfully", name
    # PostgreSQL sees its password only, not the IdP's secret key.
    postgres = {source for source, _ in volume_mounts(services()["postgres"]).values()}
    idp_secrets = volume_mounts(services()[IDP])[str(SECRETS)][0]
    assert idp_secrets not in postgres


def run_credentials(idp: Path, postgres: Path) -> subprocess.CompletedProcess[str]:
    command = services()[CREDENTIALS]["command"]
    assert command[:2] == ["python", "/app/docker/credentials.py"]
    return subprocess.run([sys.executable, str(DOCKER / "credentials.py"), str(idp),
                           str(postgres)], capture_output=True, text=True, timeout=60,
                          check=False)


def test_a_fresh_stack_gets_its_secrets_made_once_and_a_second_start_keeps_them(
        tmp_path: Path) -> None:
    idp, postgres = tmp_path / "idp", tmp_path / "postgres"
    idp.mkdir()
    postgres.mkdir()
    first = run_credentials(idp, postgres)
    made = {path.name: path.read_text(encoding="utf-8") for path in (*idp.iterdir(),
                                                                       *postgres.iterdir())}
    second = run_credentials(idp, postgres)

    assert first.returncode == second.returncode == 0, first.stderr + second.stderr
    assert set(made) == {"idp_secret_key", "idp_database_url", "postgres_password"}
    assert made["idp_database_url"] == (f"postgresql+psycopg://servicekonto:"
                                        f"{made['postgres_password']}@postgres:5432/servicekonto")
    assert len(made["idp_secret_key"]) >= 48 and len(made["postgres_password"]) >= 32
    assert {path.name: path.read_text(encoding="utf-8") for path in (
        *idp.iterdir(), *postgres.iterdir())} == made, "a second start must keep every secret"
    assert "every secret was there already" in second.stdout
    for value in made.values():
        assert value not in first.stdout + first.stderr, "never printed"
    assert (postgres / "postgres_password").stat().st_mode & 0o777 == 0o644  # the db's own user
    assert (idp / "idp_secret_key").stat().st_mode & 0o777 == 0o600


def test_an_operators_own_database_password_goes_into_the_database_url_made_for_it(
        tmp_path: Path) -> None:
    idp, postgres = tmp_path / "idp", tmp_path / "postgres"
    idp.mkdir()
    postgres.mkdir()
    (postgres / "postgres_password").write_text("mein/Pass@wort", encoding="utf-8")
    (idp / "idp_secret_key").write_text("mine", encoding="utf-8")

    assert run_credentials(idp, postgres).returncode == 0
    assert (idp / "idp_database_url").read_text(encoding="utf-8") == (
        "postgresql+psycopg://servicekonto:mein%2FPass%40wort@postgres:5432/servicekonto")
    assert (idp / "idp_secret_key").read_text(encoding="utf-8") == "mine"
    assert (postgres / "postgres_password").read_text(encoding="utf-8") == "mein/Pass@wort"


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

def demo_portal_folder() -> tuple[str, Path]:
    """The service that registers the demo portals, and the folder of files it imports."""
    importers = {name: service for name, service in ours().items()
                 if service.get("command", [])[:4] == ["servicekonto", "portal", "import",
                                                       "--from"]}
    assert len(importers) == 1
    (name, service), = importers.items()
    source, read_only = volume_mounts(service)[service["command"][4]]
    assert read_only and source.startswith("./")
    return name, DOCKER / source


def test_the_idp_would_start_with_the_settings_and_no_portal_files_of_the_compose_file(
        tmp_path: Path) -> None:
    policy_dir = tmp_path / "policies"
    # The operator's portal folder is mounted over the image's demo portals, where its IdP
    # looks for them.
    image_portals = f"{image_env()['IDP_POLICY_DIR']}/portals"
    for name in (IDP, "mailer", "purge"):
        assert image_portals in volume_mounts(services()[name]), name
    portal_mount = volume_mounts(services()[IDP])[image_portals]
    shutil.copytree(COMPOSE.parent / portal_mount[0], policy_dir / "portals")
    shutil.copy(PROJECT_ROOT / "policies" / "password.yaml", policy_dir / "password.yaml")
    (tmp_path / "idp_secret_key").write_text("s" * 48, encoding="ascii")
    (tmp_path / "idp_database_url").write_text(
        "postgresql+psycopg://servicekonto:s3cr3t@postgres/servicekonto", encoding="ascii")
    env = {key: value.replace(f"{SECRETS}/", f"{tmp_path}/")
           for key, value in idp_environment().items()}
    env.update(IDP_POLICY_DIR=str(policy_dir), IDP_INSTANCE_PATH=str(tmp_path / "instance"))

    config = load_config(env)

    assert config.environment == "production" and config.uses_https
    assert config.proxy_count == 1  # Caddy, and nothing else, sets X-Forwarded-For
    assert config.database_url.startswith("postgresql+psycopg://")  # from the secret file
    # Production shape: no portal until the operator adds one (or the profile demo does).
    assert load_portal_files(policy_dir / "portals") == []


def test_the_demo_profile_registers_exactly_the_portals_it_runs(tmp_path: Path) -> None:
    importer, folder = demo_portal_folder()
    # The pinned certificates are in a volume at run time: here, files in the same place.
    copied = tmp_path / "demo-portals"
    shutil.copytree(folder, copied)
    for policy_file in copied.glob("*.yaml"):
        text = policy_file.read_text(encoding="utf-8").replace(CERTIFICATES, str(tmp_path))
        policy_file.write_text(text, encoding="utf-8")
        (tmp_path / f"{policy_file.stem}.crt").write_text("pinned", encoding="ascii")

    policies = load_portal_files(copied)

    assert sorted(policy.name for policy in policies) == sorted(portals())
    assert DEMO in services()[importer]["profiles"]
    for name in portals():
        assert DEMO in services()[name]["profiles"], name
        # Registered once the portal answers, so that the IdP's first fetch finds it.
        assert services()[importer]["depends_on"][name]["condition"] == "service_healthy"


def test_the_compose_portals_ask_for_what_the_shipped_portals_ask_for() -> None:
    for name in portals():
        shipped = yaml.safe_load((PROJECT_ROOT / "policies" / "portals" / f"{name}.yaml")
                                 .read_text(encoding="utf-8"))
        composed = yaml.safe_load((DEMO_PORTALS / f"{name}.yaml").read_text(encoding="utf-8"))
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
        policy = yaml.safe_load((DEMO_PORTALS / f"{arguments.profile}.yaml")
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
    policy: dict[str, Any] = yaml.safe_load((DEMO_PORTALS / f"{profile}.yaml")
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
        # The service that registers the demo portals finds the certificate, read-only, after
        # it was written (a missing certificate stops the import); the registry keeps it for
        # every IdP process from then on.
        reader, _ = demo_portal_folder()
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
