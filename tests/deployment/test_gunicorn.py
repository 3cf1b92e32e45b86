"""The IdP under gunicorn with the project's settings (idp/gunicorn_conf.py), as in production.

A real gunicorn with two workers on a loopback port, in production mode behind a (simulated)
proxy, on SQLite and on PostgreSQL: migrated first, then asked for its metadata, its login page
and a Redirect-binding request near the 64 KiB cap; its access log is read afterwards.
"""

from __future__ import annotations

import http.client
import os
import secrets
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from flask import Flask
from gunicorn.config import Config as GunicornConfig
from saml2 import BINDING_HTTP_REDIRECT, ExtensionElement
from saml2.samlp import Extensions
from saml2.xmldsig import SIG_RSA_SHA256

from idp.config import PROJECT_ROOT, ConfigError
from idp.gunicorn_conf import RouteAccessLog, check_argon2_budget, default_size
from idp.saml.configuration import METADATA_PATH, SSO_REDIRECT_PATH
from idp.samlkit.bindings import MAX_ENCODED_BYTES
from tests.deployment.gunicorn_process import (
    BASE_URL,
    CLIENT_ADDRESS,
    RunningIdp,
    free_port,
    json_lines,
    migrate,
    portal_config,
    portal_policies,
    production_env,
    running_gunicorn,
    start_gunicorn,
)
from tests.saml_support import sp_client

# gunicorn's largest request-line limit short of "unlimited".
GUNICORN_MAX_LIMITED_LINE = 8190


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def gunicorn_idp(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
        signing_keys: tuple[Path, Path]) -> Iterator[RunningIdp]:
    folder = tmp_path_factory.mktemp(f"gunicorn-{request.param}")
    database_url = (f"sqlite:///{folder / 'servicekonto.sqlite3'}" if request.param == "sqlite"
                    else request.getfixturevalue("postgres_database"))
    env = production_env(folder, database_url, signing_keys, portal_policies(folder))
    migrate(env)
    with running_gunicorn(env, folder) as (running, _):
        yield running


def redirect_request_of_size(folder: Path, encoded_bytes: int) -> str:
    """The query string of an AuthnRequest from the test portal whose base64 SAMLRequest is
    about ``encoded_bytes`` long: random text in an extension element deflates poorly."""
    client = sp_client(portal_config(folder))
    padding_chars = encoded_bytes * 3 // 4
    for _ in range(20):
        padding = ExtensionElement("Padding", namespace="urn:test:padding",
                                   text=secrets.token_urlsafe(padding_chars)[:padding_chars])
        _, request = client.create_authn_request(
            BASE_URL + SSO_REDIRECT_PATH, binding=BINDING_HTTP_REDIRECT,
            extensions=Extensions(extension_elements=[padding]))
        # Signed on the query, as every portal registered with the defaults must.
        info = client.apply_binding(BINDING_HTTP_REDIRECT, str(request),
                                    BASE_URL + SSO_REDIRECT_PATH, "relay-marker-7f3a",
                                    sign=True, sigalg=SIG_RSA_SHA256)
        query = urlsplit(dict(info["headers"])["Location"]).query
        encoded = parse_qs(query)["SAMLRequest"][0]
        if abs(len(encoded) - encoded_bytes) < 512:
            return query
        padding_chars = padding_chars * encoded_bytes // len(encoded)
    raise AssertionError("could not size the request")


# --- the running IdP ----------------------------------------------------------------------------

def test_gunicorn_serves_the_signed_metadata_and_the_login_page(gunicorn_idp: RunningIdp) -> None:
    metadata = gunicorn_idp.get(METADATA_PATH)
    login = gunicorn_idp.get("/anmelden")

    assert metadata.status == 200
    assert metadata.headers["Content-Type"].startswith("application/samlmetadata+xml")
    assert login.status == 200
    assert login.headers["Strict-Transport-Security"]  # it knows it is served over https


def test_gunicorn_runs_the_two_workers_asked_for_and_says_how_much_argon2_memory_they_need(
        gunicorn_idp: RunningIdp) -> None:
    log = gunicorn_idp.error_log.read_text(encoding="utf-8")

    assert log.count("Booting worker") == 2
    assert "Using worker: gthread" in log
    assert "servicekonto: 2 workers x 4 threads" in log


def test_a_redirect_request_near_the_64_kib_cap_reaches_the_idp_and_is_taken(
        gunicorn_idp: RunningIdp) -> None:
    query = redirect_request_of_size(gunicorn_idp.folder, MAX_ENCODED_BYTES - 2048)
    target = f"{SSO_REDIRECT_PATH}?{query}"
    assert len(f"GET {target} HTTP/1.1") > GUNICORN_MAX_LIMITED_LINE

    response = gunicorn_idp.get(target)

    # Not 414/400 from gunicorn: the IdP read the whole request and sends the citizen to log in.
    assert response.status == 302, response.status
    assert response.headers["Location"].startswith("/anmelden?")


def test_metrics_add_up_the_requests_of_both_workers_at_every_scrape(
        gunicorn_idp: RunningIdp) -> None:
    for _ in range(12):
        gunicorn_idp.get("/hilfe-zaehlen")
    sample = 'servicekonto_http_request_duration_seconds_count{method="GET",route="<unmatched>"}'

    def scraped() -> float:
        connection = http.client.HTTPConnection("127.0.0.1", gunicorn_idp.port, timeout=10)
        connection.request("GET", "/metrics")
        text = connection.getresponse().read().decode()
        connection.close()
        return float(next(line.split()[-1] for line in text.splitlines()
                          if line.startswith(sample)))

    # Each scrape may reach either worker; each must see all requests of both.
    counts = {scraped() for _ in range(6)}
    assert len(counts) == 1 and counts.pop() >= 12


def test_the_access_log_holds_routes_but_no_query_string_token_or_saml_message(
        gunicorn_idp: RunningIdp) -> None:
    token = secrets.token_urlsafe(32)
    gunicorn_idp.get(f"/aktivieren/{token}?utm_source=mail")
    gunicorn_idp.get(f"{SSO_REDIRECT_PATH}?{redirect_request_of_size(gunicorn_idp.folder, 4096)}")
    gunicorn_idp.get("/nirgendwo/" + token)

    log = gunicorn_idp.access_log_once("GET /aktivieren/<token> ", f"GET {SSO_REDIRECT_PATH} ",
                                       "GET /nirgendwo/… ")

    lines = "\n".join(entry["message"] for entry in json_lines(log))  # production: JSON
    assert '"GET /aktivieren/<token> HTTP/1.1"' in lines
    assert f'"GET {SSO_REDIRECT_PATH} HTTP/1.1" 302' in lines
    assert '"GET /nirgendwo/… HTTP/1.1" 404' in lines
    for secret in (token, "SAMLRequest", "relay-marker-7f3a", "utm_source", "?"):
        assert secret not in log  # nor in any other field of a line


def test_the_access_log_names_the_citizen_the_proxy_forwarded_not_the_proxy(
        gunicorn_idp: RunningIdp) -> None:
    gunicorn_idp.get("/datenschutz")

    log = gunicorn_idp.access_log_once("GET /datenschutz ")

    line = next(entry["message"] for entry in json_lines(log)
                if "/datenschutz" in entry["message"])
    assert line.startswith(CLIENT_ADDRESS + " ")


def test_the_image_health_check_tells_a_running_idp_from_a_missing_one(
        gunicorn_idp: RunningIdp) -> None:
    def health_check(port: int) -> int:
        return subprocess.run(
            [sys.executable, str(PROJECT_ROOT / "docker" / "healthcheck.py"),
             f"http://127.0.0.1:{port}{METADATA_PATH}"],
            env={**os.environ, "IDP_BASE_URL": BASE_URL}, timeout=30, check=False).returncode

    assert health_check(gunicorn_idp.port) == 0
    assert health_check(free_port()) == 1


# --- refusing to start --------------------------------------------------------------------------

def _refused_start(tmp_path: Path, signing_keys: tuple[Path, Path],
                   **changes: str | None) -> subprocess.CompletedProcess[bytes]:
    env = production_env(tmp_path, f"sqlite:///{tmp_path / 'db.sqlite3'}", signing_keys,
                         PROJECT_ROOT / "policies")
    for key, value in changes.items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    process = start_gunicorn(env, tmp_path, "--bind", f"127.0.0.1:{free_port()}")
    try:
        process.wait(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    return subprocess.CompletedProcess(process.args, process.returncode,
                                       b"", (tmp_path / "error.log").read_bytes())


def test_gunicorn_refuses_to_start_in_production_without_a_secret_key_and_says_so(
        tmp_path: Path, signing_keys: tuple[Path, Path]) -> None:
    result = _refused_start(tmp_path, signing_keys, IDP_SECRET_KEY_FILE=None)

    assert result.returncode == 2
    assert b"Servicekonto kann nicht starten: IDP_SECRET_KEY" in result.stderr
    assert b"Booting worker" not in result.stderr


def test_gunicorn_refuses_more_workers_and_threads_than_the_argon2_budget_allows(
        tmp_path: Path, signing_keys: tuple[Path, Path]) -> None:
    result = _refused_start(tmp_path, signing_keys, SERVICEKONTO_ARGON2_BUDGET_MIB="256",
                            GUNICORN_CMD_ARGS="--workers 3 --threads 2")

    assert result.returncode == 2
    assert b"3 Worker \xc3\x97 2 Threads \xc3\x97 64 MiB argon2id = 384 MiB" in result.stderr


# --- the settings, one by one -------------------------------------------------------------------

def test_a_worker_per_cpu_with_four_threads_when_memory_allows() -> None:
    assert default_size(cpus=4, budget_mib=4096, hash_mib=64) == (4, 4)
    assert default_size(cpus=1, budget_mib=4096, hash_mib=64) == (2, 4)  # never one alone


def test_threads_then_workers_shrink_until_concurrent_argon2_hashes_fit_the_budget() -> None:
    assert default_size(cpus=4, budget_mib=512, hash_mib=64) == (4, 2)
    assert default_size(cpus=4, budget_mib=128, hash_mib=64) == (2, 1)


def test_an_explicit_size_beyond_the_budget_is_refused_with_the_numbers() -> None:
    with pytest.raises(ConfigError, match="8 Worker × 8 Threads × 64 MiB argon2id = 4096 MiB"):
        check_argon2_budget(8, 8, 64, 1024)
    assert "at most 512 MiB" in check_argon2_budget(2, 4, 64, 1024)


def _access_log_for(app: Flask | None) -> RouteAccessLog:
    logger = RouteAccessLog(GunicornConfig())
    logger.use_routes_of(app)
    return logger


def test_the_access_log_writes_a_route_for_a_known_path_and_one_segment_for_an_unknown() -> None:
    app = Flask(__name__)
    app.add_url_rule("/aktivieren/<token>", "activate", lambda token: token)
    logger = _access_log_for(app)

    assert logger.route_of("/aktivieren/abc123", "GET") == "/aktivieren/<token>"
    assert logger.route_of("/aktivieren/abc123/", "GET") == "/aktivieren/…"
    assert logger.route_of("/wp-login.php", "GET") == "/wp-login.php"
    assert logger.route_of("/" + "x" * 500, "GET") == "/" + "x" * 64 + "/…"
    assert _access_log_for(None).route_of("/aktivieren/abc123", "GET") == "/aktivieren/…"


def test_gunicorns_own_error_messages_lose_the_request_target_and_query(
        caplog: pytest.LogCaptureFixture) -> None:
    app = Flask(__name__)
    app.add_url_rule("/saml/sso", "sso", lambda: "")
    logger = _access_log_for(app)
    logger.error_log.propagate = True

    with caplog.at_level("INFO", logger="gunicorn.error"):
        try:
            raise OSError("client went away")
        except OSError:
            logger.exception("Error handling request %s %s", "GET", "/saml/sso?SAMLRequest=abc")
        logger.warning("Invalid request from ip=1.2.3.4: Invalid Request Line "
                       "'GET /saml/sso?SAMLRequest=abc HTTP/1.1'")

    assert "SAMLRequest" not in caplog.text
    assert "Error handling request GET /saml/sso" in caplog.text
