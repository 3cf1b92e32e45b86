"""The wheel, as the image installs it: built from what ``docker build`` sends, installed (not
editable) into a venv of its own, and run far from the repository. The templates, the policies,
the migrations and the static files must all come with it.

The venv borrows the dependencies of the running one through a .pth file, so nothing is
downloaded but the build backend pip asks for (as it does in the image).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import venv
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pytest

from idp.config import PROJECT_ROOT
from idp.shipped import INSTALLED_FOLDER
from tests.deployment.build_context import build_context

PAGES_SCRIPT = Path(__file__).with_name("installed_wheel_pages.py")
SHIPPED = ("templates/", "policies/")


@dataclass(frozen=True)
class InstalledWheel:
    wheel: Path
    venv: Path
    context: list[str]  # the files docker build would send, relative to the repository

    @property
    def bin(self) -> Path:
        return self.venv / "bin"


def run(command: list[str | Path], cwd: Path | None = None,
        env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([str(word) for word in command], cwd=cwd, env=env,
                            capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, f"{command}: {result.stdout}{result.stderr}"
    return result


@pytest.fixture(scope="module")
def installed_wheel(tmp_path_factory: pytest.TempPathFactory) -> InstalledWheel:
    folder = tmp_path_factory.mktemp("wheel")
    # A copy of the build context: the wheel is built from what the image is built from, and
    # the build leaves nothing (build/, *.egg-info) in the working tree.
    context = build_context(PROJECT_ROOT)
    for path in context:
        (folder / "context" / path).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(PROJECT_ROOT / path, folder / "context" / path)
    run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps",
         "--wheel-dir", folder / "dist", folder / "context"])
    (wheel,) = (folder / "dist").glob("servicekonto-*.whl")

    environment = folder / "venv"
    venv.create(environment, with_pip=False)
    site_packages = Path(run([environment / "bin" / "python", "-c",
                              "import sysconfig; print(sysconfig.get_path('purelib'))"]
                             ).stdout.strip())
    # The dependencies: this venv's site-packages, after the new one's own. A plain path in a
    # .pth file: the editable install's own .pth files there are not run, so the repository
    # stays out of reach.
    (site_packages / "dependencies.pth").write_text(
        "\n".join(sorted({sysconfig.get_path("purelib"), sysconfig.get_path("platlib")})) + "\n",
        encoding="utf-8")
    run([sys.executable, "-m", "pip", "--python", environment / "bin" / "python", "install",
         "--quiet", "--no-deps", "--no-index", wheel])
    return InstalledWheel(wheel, environment, context)


def test_the_wheel_carries_every_template_and_policy_of_the_repository(
        installed_wheel: InstalledWheel) -> None:
    name_and_version = "-".join(installed_wheel.wheel.name.split("-")[:2])
    data = f"{name_and_version}.data/data/{INSTALLED_FOLDER}/"
    with zipfile.ZipFile(installed_wheel.wheel) as wheel:
        shipped = {name.removeprefix(data) for name in wheel.namelist()
                   if name.startswith(data)}
        names = set(wheel.namelist())

    assert shipped == {path for path in installed_wheel.context if path.startswith(SHIPPED)}
    assert {"idp/static/servicekonto.css", "sp_client/static/portal.css",
            "idp/migrations/env.py", "idp/migrations/versions/0001_initial.py"} <= names


def test_the_installed_wheel_serves_pages_without_the_source_tree(
        installed_wheel: InstalledWheel, tmp_path: Path) -> None:
    env = {key: value for key, value in os.environ.items()
           if not key.startswith(("IDP_", "PYTHON", "VIRTUAL_ENV", "SERVICEKONTO_"))}
    # A development system on this machine (http, no SMTP), chosen explicitly as an operator must.
    env.update(IDP_ENV="development", IDP_BASE_URL="http://localhost",
               IDP_INSTANCE_PATH=str(tmp_path / "instance"),
               IDP_DATABASE_URL=f"sqlite:///{tmp_path / 'servicekonto.sqlite3'}")
    servicekonto = installed_wheel.bin / "servicekonto"

    run([servicekonto, "db", "upgrade"], cwd=tmp_path, env=env)
    run([servicekonto, "keys", "generate"], cwd=tmp_path, env=env)
    answer = json.loads(run([installed_wheel.bin / "python", "-I", PAGES_SCRIPT, tmp_path],
                            cwd=tmp_path, env=env).stdout)

    shipped = installed_wheel.venv / INSTALLED_FOLDER
    assert all(Path(module).is_relative_to(installed_wheel.venv) for module in answer["modules"])
    assert Path(answer["policy_dir"]) == shipped / "policies"
    assert Path(answer["template_dir"]) == shipped / "templates"
    # Without IDP_INSTANCE_PATH, SQLite and secrets would go next to the venv, never into
    # site-packages.
    assert Path(answer["instance_default"]) == installed_wheel.venv / "var/servicekonto-instance"
    pages = answer["pages"]
    assert {name: status for name, (status, _) in pages.items()} == dict.fromkeys(pages, 200)
    assert "Anmelden" in pages["idp /anmelden"][1]
    assert "Registrierung" in pages["idp /registrieren"][1]
    # The password rules of the installed policies/password.yaml, on the registration form.
    assert "mindestens 8 Zeichen" in pages["idp /registrieren/benutzername"][1]
    assert "Bürgerportal der Stadt Düren" in pages["portal /"][1]
