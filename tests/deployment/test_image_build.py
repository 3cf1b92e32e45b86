"""The image (docker/Dockerfile) built and run for real, the way docker/compose.yaml runs it:
the one-shot `keys` and `migrate` services, then the IdP with its image's own command, its
environment, secrets, volumes and hardening from the compose file.

No Docker engine is needed: podman builds and runs the image as root, on a stand-in for
python:3.11-slim-bookworm made with debootstrap (tests/deployment/image_build.py).
tests/system-packages.sh installs podman, runc, catatonit, slirp4netns and debootstrap; the
check is skipped, with podman's or debootstrap's own words, only where those are missing or
cannot run. The first run takes about a minute and a half (debootstrap 50 s, the build with
pip from PyPI 25 s); the base is cached in /var/cache/servicekonto-image-check, so later runs
take 30 to 60 s.

The database is a throwaway one on IDP_TEST_POSTGRES_URL's server when that is set, else SQLite
in the instance volume; Redis is IDP_TEST_REDIS_URL's when that is set. The container reaches
the host's loopback as 10.0.2.2 (slirp4netns) and publishes its port 8000 on a free loopback
port, so the image's health check asks the port the image exposes, as under Docker.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import re
import stat
import subprocess
import time
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import yaml
from packaging.utils import canonicalize_name
from packaging.version import Version
from saml2 import BINDING_HTTP_POST, BINDING_HTTP_REDIRECT
from saml2.client import Saml2Client
from saml2.xmldsig import SIG_RSA_SHA256
from sqlalchemy import make_url

from idp.config import PROJECT_ROOT
from idp.portals.live import CHECK_EVERY
from idp.samlkit.crypto import install_backend
from idp.testing.browser import Response, Send, WebBrowser, trace
from tests.conftest import GOOD_PASSWORD
from tests.deployment.gunicorn_process import free_port
from tests.deployment.image_build import (
    BASE_IMAGE,
    HOST_LOOPBACK,
    IMAGE,
    NETWORK,
    Built,
    Podman,
    Unavailable,
    build_all,
    host_ca_bundle,
)
from tests.deployment.test_image import pinned_versions
from tests.postgres import temporary_database
from tests.saml_support import key_pair, metadata_of, sp_config

pytestmark = pytest.mark.slow

COMPOSE = PROJECT_ROOT / "docker" / "compose.yaml"
SECRET_FILE = re.compile(r"(\.(key|pem|crt|p12|env)$|^\.env|^secret_key$)")  # test_image.py
UID = 10001
CLIENT_ADDRESS = "203.0.113.9"  # what Caddy says the citizen's address is
PORTAL = "https://portal.test/saml/metadata"
PORTAL_ACS = "https://portal.test/saml/acs"
STARTUP_SECONDS = 90
POSTGRES_URL = os.environ.get("IDP_TEST_POSTGRES_URL", "")


def compose_services() -> dict[str, dict[str, Any]]:
    services: dict[str, dict[str, Any]] = yaml.safe_load(
        COMPOSE.read_text(encoding="utf-8"))["services"]
    return services


def via_host_loopback(url: str) -> str:
    """A URL of a server on this host's loopback, as the container reaches it."""
    parsed = make_url(url)
    if parsed.host in ("127.0.0.1", "localhost", "::1"):
        parsed = parsed.set(host=HOST_LOOPBACK)
    return parsed.render_as_string(hide_password=False)


def sha256_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Built]:
    try:
        result = build_all(tmp_path_factory.mktemp("podman"))
    except Unavailable as reason:
        pytest.skip(str(reason))
    try:
        yield result
    finally:
        result.podman.remove_everything()


@dataclass
class Deployment:
    podman: Podman
    container: str
    port: int
    host: str  # IDP_BASE_URL's host and port, as Caddy forwards them
    keys_runs: list[subprocess.CompletedProcess[str]]
    migrate_runs: list[subprocess.CompletedProcess[str]]
    keys_volume: Path
    credentials_runs: list[subprocess.CompletedProcess[str]]
    secrets_volume: Path
    postgres_secrets_volume: Path
    database_url: str  # the one the test put into the secrets volume first
    # The IdP's environment as podman flags (and the SQLite volume when there is no PostgreSQL).
    idp_flags: list[str]

    def get(self, target: str, host: str | None = None) -> tuple[int, str, str]:
        """A GET as Caddy would send it: status, content type, body."""
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=15)
        try:
            connection.request("GET", target, headers={
                "Host": host or self.host, "X-Forwarded-For": CLIENT_ADDRESS,
                "X-Forwarded-Proto": "https"})
            response = connection.getresponse()
            return (response.status, response.getheader("Content-Type", ""),
                    response.read().decode(errors="replace"))
        finally:
            connection.close()


def container_url_of_the_database(stack: ExitStack, instance: str) -> str:
    """A throwaway PostgreSQL database on IDP_TEST_POSTGRES_URL's server, else SQLite in the
    instance volume (which the migration then needs as well)."""
    if not POSTGRES_URL:
        return f"sqlite:///{instance}/servicekonto.sqlite3"
    return via_host_loopback(stack.enter_context(
        temporary_database(POSTGRES_URL, "servicekonto_image")))


def hardening(service: dict[str, Any]) -> list[str]:
    """compose's read_only, tmpfs, cap_drop, security_opt, init, mem_limit and a disabled
    healthcheck as podman flags."""
    flags = ["--read-only"] if service.get("read_only") else []
    flags += ["--no-healthcheck"] if service.get("healthcheck", {}).get("disable") else []
    flags += [f"--tmpfs={path}" for path in service.get("tmpfs", [])]
    flags += [f"--cap-drop={cap}" for cap in service.get("cap_drop", [])]
    flags += [f"--security-opt={option.replace(':true', '')}"
              for option in service.get("security_opt", [])]
    flags += ["--init"] if service.get("init") else []
    flags += [f"--memory={service['mem_limit']}"] if "mem_limit" in service else []
    return flags


def compose_volume_flags(service: dict[str, Any], prefix: str) -> list[str]:
    """compose's volumes of ``service`` as podman flags: bind mounts from docker/, named
    volumes as ``<prefix>-<name>``."""
    flags = []
    for spec in service.get("volumes", []):
        source, _, target = spec.partition(":")
        source = (str(PROJECT_ROOT / "docker" / source) if source.startswith("./")
                  else f"{prefix}-{source}")
        flags.append(f"--volume={source}:{target}")
    return flags


@pytest.fixture(scope="module")
def deployment(built: Built, tmp_path_factory: pytest.TempPathFactory,
               ) -> Iterator[Deployment]:
    podman = built.podman
    services = compose_services()
    idp, keys, migrate = services["idp"], services["keys"], services["migrate"]
    credentials = services["credentials"]
    volumes = {spec.split(":")[1]: spec.split(":")[0] for spec in idp["volumes"]}
    instance = next(path for path, name in volumes.items() if name == "idp-instance")
    with ExitStack() as stack:
        # Named volumes: a fresh one takes over the owner and mode of the image's folder.
        prefix = f"imagecheck-{os.getpid()}"
        for name in {spec.split(":")[0] for service in services.values()
                     for spec in service.get("volumes", [])
                     if not spec.startswith((".", "/")) and service.get("image") == idp["image"]}:
            podman("volume", "create", f"{prefix}-{name}")

        def volume_flags(service: dict[str, Any]) -> list[str]:
            return compose_volume_flags(service, prefix)

        one_shot = ["run", "--rm", f"--network={NETWORK}"]
        # The database is this test's, not the compose file's PostgreSQL: its URL goes into the
        # secrets volume first, as docs/deployment.md tells an operator with a database of
        # their own; the one-shot `credentials` then makes only what is missing.
        own_url = container_url_of_the_database(stack, instance)
        supplied = podman(*one_shot, *hardening(credentials), *volume_flags(credentials),
                          f"--env=URL={own_url}", IMAGE, "sh", "-c",
                          'umask 077 && printf %s "$URL" > /run/secrets/idp_database_url',
                          check=False)
        assert supplied.returncode == 0, supplied.stderr
        credentials_runs = [podman(*one_shot, *hardening(credentials),
                                   *volume_flags(credentials), IMAGE, *credentials["command"],
                                   check=False) for _ in range(2)]
        environment = {name: str(value) for name, value in idp["environment"].items()}
        if redis := os.environ.get("IDP_TEST_REDIS_URL"):
            environment["IDP_REDIS_URL"] = via_host_loopback(redis)
        else:
            environment.pop("IDP_REDIS_URL", None)
        env_flags = [f"--env={name}={value}" for name, value in environment.items()]

        keys_runs = [podman(*one_shot, *hardening(keys), *volume_flags(keys), IMAGE,
                            *keys["command"], check=False) for _ in range(2)]
        sqlite_volume = [] if POSTGRES_URL else [f"--volume={prefix}-idp-instance:{instance}"]
        migrate_runs = [podman(*one_shot, *hardening(migrate), *env_flags,
                               *volume_flags(migrate), *sqlite_volume, IMAGE,
                               *migrate["command"], check=False)
                        for _ in range(2)]
        port = free_port()
        started = podman("run", "--detach", "--name", prefix, f"--network={NETWORK}",
                         f"--publish=127.0.0.1:{port}:8000", *hardening(idp), *env_flags,
                         *volume_flags(idp), IMAGE, check=False)
        stack.callback(lambda: podman("rm", "--force", "--time=0", prefix, check=False))
        assert started.returncode == 0, started.stderr
        mountpoints = {name: Path(podman("volume", "inspect", "--format", "{{.Mountpoint}}",
                                         f"{prefix}-{name}").stdout.strip())
                       for name in ("idp-keys", "idp-secrets", "postgres-secrets")}
        running = Deployment(podman, prefix, port, urlsplit(environment["IDP_BASE_URL"]).netloc,
                             keys_runs, migrate_runs, mountpoints["idp-keys"],
                             credentials_runs, mountpoints["idp-secrets"],
                             mountpoints["postgres-secrets"], own_url,
                             [*env_flags, *sqlite_volume])
        deadline = time.monotonic() + STARTUP_SECONDS
        while True:
            try:
                if running.get("/healthz")[0] == 200:
                    break
            except OSError:
                pass
            state = podman("inspect", "--format", "{{.State.Status}}", prefix).stdout.strip()
            if state != "running" or time.monotonic() > deadline:
                logs = podman("logs", prefix, check=False)
                migrated = "\n".join(run.stdout + run.stderr for run in migrate_runs)
                pytest.fail(f"the IdP is {state} and did not answer /healthz within "
                            f"{STARTUP_SECONDS} s:\n{(logs.stdout + logs.stderr)[-3000:]}\n"
                            f"migration: {migrated[-2000:]}")
            time.sleep(0.5)
        yield running


def image_config(built: Built, image: str = IMAGE) -> dict[str, Any]:
    config: dict[str, Any] = json.loads(built.podman(
        "image", "inspect", "--format", "{{json .Config}}", image).stdout)
    return config


def file_in(built: Built, image: str, path: str) -> bytes | None:
    """A file's content in an image, or None when it has none."""
    result = built.podman("run", "--rm", "--network=none", "--no-healthcheck", "--user=0",
                          "--entrypoint=cat", image, path, check=False)
    return result.stdout.encode() if result.returncode == 0 else None


# --- the build -----------------------------------------------------------------------------------

def test_the_image_builds_from_the_working_tree_on_python_3_11_bookworm(
        built: Built, record_property: Any) -> None:
    for step, seconds in built.seconds.items():  # shown by pytest -rP, kept in --junitxml
        record_property(step, round(seconds))
        print(f"{step}: {seconds:.0f} s")
    record_property("image size (MB)", round(built.size_bytes / 1e6))
    print(f"{IMAGE}: {built.size_bytes / 1e6:.0f} MB")
    version = built.podman("run", "--rm", "--network=none", "--no-healthcheck", IMAGE,
                           "python", "-c",
                           "import sys; print(sys.version_info[:2], sys.prefix)").stdout

    assert version.strip() == "(3, 11) /opt/venv", built.build_log[-3000:]
    assert built.size_bytes < 600e6, built.size_bytes


def test_the_image_holds_exactly_the_versions_pinned_in_docker_constraints(built: Built) -> None:
    listed = built.podman("run", "--rm", "--network=none", "--no-healthcheck", IMAGE, "python",
                          "-c", "import importlib.metadata as m; print('\\n'.join("
                          "f\"{d.metadata['Name']}=={d.version}\" for d in m.distributions()))"
                          ).stdout
    installed = {canonicalize_name(name): Version(version) for name, _, version in
                 (line.partition("==") for line in listed.split())}
    pinned = pinned_versions()

    # Everything installed is pinned (servicekonto itself and the pip that came with the venv
    # aside), at the pinned version; the build tools (setuptools, wheel) stay in the build.
    for name, version in installed.items():
        if name not in ("servicekonto", "pip"):
            assert pinned.get(name) == version, f"{name} {version}, pinned {pinned.get(name)}"


def test_the_image_keeps_nothing_of_the_build_host_neither_ca_bundle_nor_pip_settings(
        built: Built) -> None:
    config = image_config(built)
    env = dict(item.split("=", 1) for item in config.get("Env", []))
    bundle = "/etc/ssl/certs/ca-certificates.crt"

    assert not [name for name in env if name.startswith("PIP_") and name not in (
        "PIP_DISABLE_PIP_VERSION_CHECK", "PIP_NO_CACHE_DIR")]
    assert not [name for name in env if "PROXY" in name.upper() or "CERT" in name.upper()]
    for path in ("/etc/pip.conf", "/etc/xdg/pip/pip.conf", "/root/.config/pip/pip.conf"):
        assert file_in(built, IMAGE, path) is None, path
    in_image, in_base = file_in(built, IMAGE, bundle), file_in(built, BASE_IMAGE, bundle)
    assert in_image is not None and in_image == in_base
    if host_ca_bundle().read_bytes() != in_base:
        assert sha256_of(in_image) != sha256_of(host_ca_bundle().read_bytes())


def working_tree_secrets() -> dict[str, str]:
    """The contents (by hash) of what must never reach an image: the instance folder, the
    compose secrets, keys, certificates and .env files of this working tree."""
    found = {}
    for folder, subfolders, files in os.walk(PROJECT_ROOT):
        subfolders[:] = [name for name in subfolders
                         if name not in (".git", ".venv", "node_modules", ".mypy_cache")]
        for name in files:
            path = Path(folder, name)
            relative = path.relative_to(PROJECT_ROOT).as_posix()
            if (relative.startswith(("instance/", "docker/secrets/")) or SECRET_FILE.search(name)
                    ) and path.is_file() and path.stat().st_size:
                found[sha256_of(path.read_bytes())] = relative
    return found


def test_no_key_secret_or_instance_file_of_the_working_tree_is_in_the_image(
        built: Built) -> None:
    listed = built.podman("run", "--rm", "--network=none", "--no-healthcheck", "--user=0",
                          IMAGE, "find", "/app", "/opt",
                          "/var/lib", "/etc", "-xdev", "-type", "f", "-size", "+0",
                          "-exec", "sha256sum", "{}", "+", timeout=300).stdout
    in_image = dict(line.split(None, 1) for line in listed.splitlines())
    secrets = working_tree_secrets()

    assert "/app/docker/healthcheck.py" in in_image.values()
    assert not [path for path in in_image.values() if "/.git/" in path or "/.venv/" in path]
    assert not {secrets[digest]: in_image[digest] for digest in secrets.keys() & in_image}


# --- the one-shot services ---------------------------------------------------------------------

def test_the_keys_one_shot_writes_a_signing_key_only_the_image_user_can_read_and_keeps_it(
        deployment: Deployment) -> None:
    first, second = deployment.keys_runs
    key = deployment.keys_volume / "idp-signing.key"
    cert = deployment.keys_volume / "idp-signing.crt"

    assert first.returncode == 0, first.stdout + first.stderr
    assert second.returncode == 0 and second.stdout == "", "a second run must keep the key"
    assert key.stat().st_uid == UID and stat.S_IMODE(key.stat().st_mode) == 0o600
    assert cert.stat().st_uid == UID
    folder = deployment.keys_volume.stat()
    assert folder.st_uid == UID and stat.S_IMODE(folder.st_mode) == 0o700


def test_the_migration_one_shot_brings_the_schema_up_to_date_and_may_run_again(
        deployment: Deployment) -> None:
    for run in deployment.migrate_runs:
        assert run.returncode == 0, (run.stdout + run.stderr)[-3000:]
    assert "Datenbankschema ist auf Stand" in deployment.migrate_runs[1].stdout


def test_the_credentials_one_shot_makes_the_missing_secrets_once_and_keeps_the_operators(
        deployment: Deployment) -> None:
    first, second = deployment.credentials_runs
    secret_key = deployment.secrets_volume / "idp_secret_key"
    url = deployment.secrets_volume / "idp_database_url"
    password = deployment.postgres_secrets_volume / "postgres_password"

    assert first.returncode == 0, first.stdout + first.stderr
    assert "idp_secret_key" in first.stdout and "idp_database_url" not in first.stdout
    assert second.returncode == 0 and "every secret was there already" in second.stdout
    assert url.read_text(encoding="utf-8") == deployment.database_url  # the operator's own
    assert len(secret_key.read_text(encoding="utf-8")) >= 48
    assert secret_key.stat().st_uid == UID and stat.S_IMODE(secret_key.stat().st_mode) == 0o600
    # PostgreSQL's own user (not ours) reads its password: readable, in a volume of its own.
    assert stat.S_IMODE(password.stat().st_mode) == 0o644 and password.stat().st_size >= 32
    assert stat.S_IMODE(deployment.secrets_volume.stat().st_mode) == 0o700


# --- the running IdP -----------------------------------------------------------------------------

def test_the_idp_answers_healthz_and_readyz_on_its_published_port(
        deployment: Deployment) -> None:
    alive = deployment.get("/healthz", host="10.89.0.7:8000")  # a platform's probe, any Host
    ready = deployment.get("/readyz", host="10.89.0.7:8000")

    assert alive[0] == 200 and json.loads(alive[2]) == {"status": "alive"}
    assert ready[0] == 200, ready[2]
    assert json.loads(ready[2])["status"] == "ready"
    assert set(json.loads(ready[2])["checks"].values()) == {"ok"}


def test_every_process_of_the_idp_container_runs_as_uid_10001_behind_an_init(
        deployment: Deployment) -> None:
    top = deployment.podman("top", deployment.container, "huser", "args").stdout
    processes = [line.split(None, 1) for line in top.splitlines()[1:] if line.strip()]

    assert processes and {uid for uid, _ in processes} == {str(UID)}, top
    assert processes[0][1].startswith("/run/podman-init"), "compose's init: true"
    assert sum("gunicorn" in args for _, args in processes[1:]) >= 2, top


def test_the_image_health_check_passes_in_the_running_container(
        built: Built, deployment: Deployment) -> None:
    check = json.loads(built.podman("image", "inspect", "--format", "{{json .HealthCheck}}",
                                    IMAGE).stdout)
    result = deployment.podman("healthcheck", "run", deployment.container, check=False)
    health = json.loads(deployment.podman("inspect", "--format", "{{json .State.Health}}",
                                          deployment.container).stdout)

    assert check["Test"] == ["CMD", "python", "/app/docker/healthcheck.py"], check
    assert result.returncode == 0, result.stdout + result.stderr
    assert health["Status"] == "healthy", health


def test_the_idp_runs_without_capabilities_on_a_read_only_file_system(
        deployment: Deployment) -> None:
    probe = ("import pathlib; status = pathlib.Path('/proc/self/status').read_text();"
             "print([l.split()[1] for l in status.splitlines() if l.startswith('CapEff')][0]);"
             "pathlib.Path('/tmp/probe').write_text('x');"
             "pathlib.Path('/app/probe').write_text('x')")
    result = deployment.podman("exec", deployment.container, "python", "-c", probe,
                               check=False)

    assert result.stdout.strip() == "0000000000000000", result.stdout + result.stderr
    assert "Read-only file system: '/app/probe'" in result.stderr


def test_the_start_page_renders_in_german_behind_the_proxy(deployment: Deployment) -> None:
    status, content_type, body = deployment.get("/anmelden")

    assert status == 200, body[-2000:]
    assert content_type.startswith("text/html")
    assert '<html lang="de">' in body and "Anmelden" in body and "Passwort" in body


def test_the_saml_metadata_answers_the_portals_inside_the_network(
        deployment: Deployment) -> None:
    # The portals ask for it as http://idp:8000/saml/metadata (compose: IDP_TRUSTED_HOSTS=idp).
    status, content_type, body = deployment.get("/saml/metadata", host="idp:8000")

    assert status == 200, body[-2000:]
    assert "xml" in content_type
    assert f'entityID="https://{deployment.host}/saml/metadata"' in body
    assert "SignatureValue" in body and "X509Certificate" in body


def through_the_proxy(deployment: Deployment, acs_posts: list[dict[str, list[str]]]) -> Send:
    """The citizen's browser's way to the sites: the IdP's public URL as Caddy forwards it,
    and the portal's ACS, which keeps what it was sent."""
    def send(url: str, method: str, body: bytes | None, headers: dict[str, str]) -> Response:
        parts = urlsplit(url)
        if parts.netloc != deployment.host:
            acs_posts.append(parse_qs((body or b"").decode()))
            return Response(200, [], "<p>Bürgerportal</p>")
        connection = http.client.HTTPConnection("127.0.0.1", deployment.port, timeout=30)
        try:
            connection.request(method, (parts.path or "/") + (f"?{parts.query}" if parts.query
                                                               else ""), body=body, headers={
                **headers, "Host": deployment.host, "X-Forwarded-For": CLIENT_ADDRESS,
                "X-Forwarded-Proto": "https"})
            answer = connection.getresponse()
            return Response(answer.status, answer.getheaders(),
                            answer.read().decode("utf-8", errors="replace"))
        finally:
            connection.close()
    return send


def test_a_citizen_logs_in_through_a_portal_added_to_the_running_container(
        deployment: Deployment, tmp_path: Path) -> None:
    container, podman = deployment.container, deployment.podman
    status, _, idp_metadata = deployment.get("/saml/metadata")
    keys = key_pair(tmp_path / "portal", "portal")
    podman("exec", f"--env=METADATA={metadata_of(sp_config(PORTAL, PORTAL_ACS, *keys))}",
           container, "sh", "-c", 'printf %s "$METADATA" > /tmp/portal.xml')
    # The policy folder is read-only in the container: the portal goes into the database.
    added = podman("exec", container, "servicekonto", "portal", "add", "--name", "testportal",
                   "--metadata", "/tmp/portal.xml",  # noqa: S108 (the container's tmpfs)
                   "--attributes", "givenName,surname",
                   check=False)
    created = podman("exec", container, "servicekonto", "user", "create", "--username",
                     "ErikaM", "--email", "erika@example.org", "--given-name", "Erika",
                     "--surname", "Mustermann", "--password", GOOD_PASSWORD, check=False)
    time.sleep(CHECK_EVERY + 0.5)  # both workers look at the registry's version
    client = Saml2Client(config=sp_config(PORTAL, PORTAL_ACS, *keys, idp_metadata))
    install_backend(client)
    request_id, info = client.prepare_for_authenticate(
        entityid=f"https://{deployment.host}/saml/metadata", binding=BINDING_HTTP_REDIRECT,
        relay_state="/antrag", sign=True, sigalg=SIG_RSA_SHA256)
    posted: list[dict[str, list[str]]] = []
    browser = WebBrowser(through_the_proxy(deployment, posted))

    login = browser.open(dict(info["headers"])["Location"])
    consent = browser.submit(login, login.form("username"), username="ErikaM",
                             password=GOOD_PASSWORD)
    browser.submit(consent, consent.form("transaction"), button=("decision", "agree"))

    assert status == 200
    assert added.returncode == 0, added.stdout + added.stderr
    assert created.returncode == 0, created.stdout + created.stderr
    assert "Zustimmung zur Weitergabe" in consent.text, consent.text[-2000:]
    assert len(posted) == 1, trace(browser.history)
    response = client.parse_authn_request_response(
        posted[0]["SAMLResponse"][0], BINDING_HTTP_POST, outstanding={request_id: "/antrag"})
    assert posted[0]["RelayState"] == ["/antrag"]
    # The two attributes the portal was registered with, and nothing else.
    assert sorted(value for values in response.ava.values() for value in values) == [
        "Erika", "Mustermann"], response.ava


def test_the_demo_profile_registers_its_portals_with_their_pinned_certificates(
        deployment: Deployment) -> None:
    """The profile demo's one-shots as compose runs them: each portal's keys and certificate,
    then `demo-portals` (its own mounts: docker/demo-portals, the certificates) into the
    registry of the running IdP."""
    services, podman = compose_services(), deployment.podman
    importer = services["demo-portals"]
    one_shot = ["run", "--rm", f"--network={NETWORK}"]
    for name, needed in importer["depends_on"].items():
        if needed["condition"] == "service_completed_successfully" and name.endswith("-keys"):
            made = podman(*one_shot, *hardening(services[name]),
                          *compose_volume_flags(services[name], deployment.container), IMAGE,
                          *services[name]["command"], check=False)
            assert made.returncode == 0, made.stdout + made.stderr

    imported = podman(*one_shot, *hardening(importer), *deployment.idp_flags,
                      *compose_volume_flags(importer, deployment.container), IMAGE,
                      *importer["command"], check=False)
    again = podman(*one_shot, *hardening(importer), *deployment.idp_flags,
                   *compose_volume_flags(importer, deployment.container), IMAGE,
                   *importer["command"], check=False)
    listed = podman("exec", deployment.container, "servicekonto", "portal", "list",
                    check=False)

    assert imported.returncode == 0, imported.stdout + imported.stderr
    assert imported.stdout.strip().endswith("dueren, mags."), imported.stdout
    assert again.stdout.strip().endswith("keine Änderung."), again.stdout + again.stderr
    assert listed.returncode == 0, listed.stderr
    assert "dueren\tBürgerportal der Stadt Düren" in listed.stdout
    assert "mags\tmags Bürgerportal" in listed.stdout


def test_the_demo_runs_in_a_container_and_answers_the_host_on_its_published_ports(
        built: Built) -> None:
    """`servicekonto demo --host 0.0.0.0` in the image, its four ports published as they are:
    the URLs it prints (http://127.0.0.1:PORT) work from the host."""
    podman, name = built.podman, f"imagecheck-demo-{os.getpid()}"
    ports = {"idp": free_port(), "dueren": free_port(), "mags": free_port(),
             "musterland": free_port()}
    podman("volume", "create", name)
    started = podman(
        "run", "--detach", "--name", name, f"--network={NETWORK}", "--read-only",
        "--tmpfs=/tmp", "--cap-drop=ALL", f"--volume={name}:/var/lib/servicekonto",
        *[f"--publish=127.0.0.1:{port}:{port}" for port in ports.values()],
        IMAGE, "servicekonto", "demo", "--host", "0.0.0.0",  # noqa: S104 (in its container)
        "--idp-port", str(ports["idp"]),
        "--dueren-port", str(ports["dueren"]), "--mags-port", str(ports["mags"]),
        "--musterland-port", str(ports["musterland"]), check=False)
    try:
        assert started.returncode == 0, started.stderr

        def get(port: int, path: str) -> tuple[int, str, str]:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=15)
            try:
                connection.request("GET", path, headers={"Host": f"127.0.0.1:{port}"})
                answer = connection.getresponse()
                return (answer.status, answer.getheader("Location", ""),
                        answer.read().decode(errors="replace"))
            finally:
                connection.close()

        deadline = time.monotonic() + STARTUP_SECONDS
        while True:
            try:
                if get(ports["idp"], "/anmelden")[0] == 200:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                logs = podman("logs", name, check=False)
                pytest.fail(f"the demo did not answer:\n{(logs.stdout + logs.stderr)[-3000:]}")
            time.sleep(0.5)
        mailbox = get(ports["idp"], "/entwicklung/postfach/")
        portal = get(ports["dueren"], "/")
        # "Zum Servicekonto.NRW" at Düren, in a browser on the host: the IdP's login page.
        browser = WebBrowser()
        start = browser.open(f"http://127.0.0.1:{ports['dueren']}/anmelden")
        login = browser.submit(start, start.forms[0])
        # The banner comes once every part runs (Musterland, the broker's upstream, starts
        # last, after the IdP already answers).
        printed = ""
        while f"http://127.0.0.1:{ports['musterland']}/" not in printed \
                and time.monotonic() < deadline + STARTUP_SECONDS:
            printed = podman("logs", name, check=False).stdout
            time.sleep(0.5)
    finally:
        podman("rm", "--force", "--time=0", name, check=False)
        podman("volume", "rm", "--force", name, check=False)

    # From the host the requests come from beyond the container's loopback: the mailbox
    # answers them all the same (the demo says so when it starts).
    assert mailbox[0] == 200, mailbox[2][-1000:]
    assert portal[0] == 200 and "Düren" in portal[2]
    assert login.status == 200 and login.url.startswith(
        f"http://127.0.0.1:{ports['idp']}/anmelden"), trace(browser.history)
    assert "Passwort" in login.text
    assert f"http://127.0.0.1:{ports['idp']}/" in printed
    assert f"http://127.0.0.1:{ports['musterland']}/" in printed


def test_the_idp_stops_cleanly_within_the_compose_grace_period(
        deployment: Deployment) -> None:
    # Last: it stops the container. compose: stop_grace_period 25s, gunicorn's graceful 20 s.
    grace = compose_services()["idp"]["stop_grace_period"].removesuffix("s")
    start = time.monotonic()
    deployment.podman("stop", f"--time={grace}", deployment.container, timeout=60)
    taken = time.monotonic() - start
    state = json.loads(deployment.podman("inspect", "--format", "{{json .State}}",
                                         deployment.container).stdout)

    assert taken < int(grace), f"took {taken:.0f} s: killed, not stopped"
    assert state["ExitCode"] == 0, state
