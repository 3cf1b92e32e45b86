"""A real gunicorn with the project's settings (idp/gunicorn_conf.py), for the tests that need
the production shape: migrated first, started on a free loopback port behind a (simulated)
proxy, stopped with SIGTERM afterwards."""

from __future__ import annotations

import http.client
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from saml2.config import SPConfig

from idp.config import PROJECT_ROOT
from idp.saml.configuration import METADATA_PATH
from tests.saml_support import key_pair, sp_config, sp_metadata

BIN = Path(sys.executable).parent
HOST = "servicekonto.test"
BASE_URL = f"https://{HOST}"
PORTAL = "https://portal.test/saml/metadata"
PORTAL_ACS = "https://portal.test/saml/acs"
CLIENT_ADDRESS = "203.0.113.9"  # what the proxy says the citizen's address is


@dataclass
class RunningIdp:
    port: int
    access_log: Path
    error_log: Path
    folder: Path

    def get(self, target: str, headers: dict[str, str] | None = None) -> http.client.HTTPResponse:
        """A GET as the proxy in front of the IdP would send it."""
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        connection.request("GET", target, headers={
            "Host": HOST, "X-Forwarded-For": CLIENT_ADDRESS, "X-Forwarded-Proto": "https",
            **(headers or {})})
        response = connection.getresponse()
        response.read()
        connection.close()
        return response

    def access_log_once(self, *expected: str, seconds: float = 5.0) -> str:
        """The access log, as soon as it holds every ``expected`` text (gunicorn writes a line
        after the response has gone out)."""
        deadline = time.monotonic() + seconds
        while True:
            text = self.access_log.read_text(encoding="utf-8")
            if all(item in text for item in expected) or time.monotonic() > deadline:
                return text
            time.sleep(0.05)


def json_lines(text: str) -> list[dict[str, Any]]:
    """Each line of a log written in JSON, parsed (an error on a line that is not JSON)."""
    return [json.loads(line) for line in text.splitlines()]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def production_env(folder: Path, database_url: str, signing_keys: tuple[Path, Path],
                   policy_dir: Path) -> dict[str, str]:
    """The environment of a production IdP behind one proxy, secrets from files."""
    secret_file = folder / "secret_key"
    secret_file.write_text(secrets.token_urlsafe(48), encoding="ascii")
    env = {key: value for key, value in os.environ.items()
           if not key.startswith(("IDP_", "SERVICEKONTO_", "GUNICORN_", "WEB_CONCURRENCY"))}
    env.update({
        "IDP_ENV": "production", "IDP_BASE_URL": BASE_URL, "IDP_PROXY_COUNT": "1",
        "IDP_SECRET_KEY_FILE": str(secret_file), "IDP_DATABASE_URL": database_url,
        "IDP_MAIL_SERVER": "mail.invalid",  # only the mail sender talks to it
        "IDP_KEY_FILE": str(signing_keys[0]), "IDP_CERT_FILE": str(signing_keys[1]),
        "IDP_POLICY_DIR": str(policy_dir), "IDP_INSTANCE_PATH": str(folder / "instance"),
        # The same sizing on every machine: 2 workers × 4 threads × 64 MiB fit exactly.
        "SERVICEKONTO_ARGON2_BUDGET_MIB": "512",
    })
    return env


def portal_policies(folder: Path, portal: SPConfig | None = None) -> Path:
    """The shipped password policy and one portal (file metadata) to send requests from:
    ``portal``, or one with throw-away keys."""
    policy_dir = folder / "policies"
    (policy_dir / "portals").mkdir(parents=True)
    shutil.copy(PROJECT_ROOT / "policies" / "password.yaml", policy_dir / "password.yaml")
    (policy_dir / "portals" / "portal-metadata.xml").write_text(
        sp_metadata(portal or portal_config(folder)), encoding="utf-8")
    (policy_dir / "portals" / "portal.yaml").write_text(
        f"display_name: Testportal\nentity_id: {PORTAL}\nmetadata: portal-metadata.xml\n"
        "attributes: [givenName, surname]\n", encoding="utf-8")
    return policy_dir


def portal_config(folder: Path) -> SPConfig:
    """The test portal of ``folder``: its keys are made once, so that the portal signing
    requests is the one whose metadata the IdP has."""
    keys = folder / "portal-keys"
    key, cert = keys / "portal.key", keys / "portal.crt"
    if not key.exists():
        key, cert = key_pair(keys, "portal")
    return sp_config(PORTAL, PORTAL_ACS, key, cert)


def migrate(env: dict[str, str]) -> None:
    """As the compose file's one-shot `migrate` does before the IdP starts."""
    migrated = subprocess.run([str(BIN / "servicekonto"), "db", "upgrade"], env=env,
                              capture_output=True, text=True, timeout=60, check=False)
    assert migrated.returncode == 0, migrated.stderr


def start_gunicorn(env: dict[str, str], folder: Path, *extra: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [str(BIN / "gunicorn"), "--config", "python:idp.gunicorn_conf", *extra,
         "idp:create_app()"],
        cwd=folder, env=env, stdout=(folder / "access.log").open("wb"),
        stderr=(folder / "error.log").open("wb"))


@contextmanager
def running_gunicorn(env: dict[str, str], folder: Path, *extra: str,
                     workers: int = 2) -> Iterator[tuple[RunningIdp, subprocess.Popen[bytes]]]:
    """gunicorn with ``workers`` workers on a free port, answering; stopped with SIGTERM."""
    port = free_port()
    process = start_gunicorn(env, folder, "--bind", f"127.0.0.1:{port}",
                             "--workers", str(workers), *extra)
    running = RunningIdp(port, folder / "access.log", folder / "error.log", folder)
    try:
        wait_until_ready(running, process, workers)
        yield running, process
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=25)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def wait_until_ready(running: RunningIdp, process: subprocess.Popen[bytes],
                     workers: int = 2) -> None:
    deadline = time.monotonic() + 40
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail("gunicorn stopped: " + running.error_log.read_text(encoding="utf-8"))
        booted = running.error_log.read_text(encoding="utf-8").count("Booting worker")
        try:
            if running.get(METADATA_PATH).status == 200 and booted >= workers:
                return
        except OSError:
            pass
        time.sleep(0.1)
    pytest.fail("gunicorn did not answer: " + running.error_log.read_text(encoding="utf-8"))
