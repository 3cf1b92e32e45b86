"""Pin what the image installs: writes docker/constraints.txt, the exact versions of setup.cfg's
install_requires and of the build requirements in pyproject.toml, with everything they pull in,
as pip resolves them today for the image's Python (3.11 on Linux; wheels only but zxcvbn).

    .venv/bin/python docker/update_constraints.py

The Dockerfile installs with these constraints (PIP_CONSTRAINT), so an image built next month
holds the versions the image check (tests/deployment/test_image_build.py) ran. Run this after
changing a requirement, or to take newer releases; commit the file with the change.
"""

from __future__ import annotations

import configparser
import json
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path
from typing import Any

from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parent.parent
CONSTRAINTS = ROOT / "docker" / "constraints.txt"
IMAGE_PYTHON = (3, 11)
HEADER = """\
# Exact versions for the image (docker/Dockerfile sets PIP_CONSTRAINT to this file): setup.cfg's
# install_requires and pyproject.toml's build requirements, with all they pull in.
# Made by `.venv/bin/python docker/update_constraints.py`; do not edit by hand.
"""


def requirements() -> list[str]:
    setup = configparser.ConfigParser()
    setup.read(ROOT / "setup.cfg", encoding="utf-8")
    runtime = [line.strip() for line in setup["options"]["install_requires"].splitlines()
               if line.strip() and not line.strip().startswith("#")]
    build = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    return runtime + list(build["build-system"]["requires"])


def resolve(wanted: list[str]) -> list[dict[str, Any]]:
    """The metadata of everything pip would install for ``wanted`` into an empty venv."""
    with tempfile.TemporaryDirectory() as folder:
        report = Path(folder) / "report.json"
        subprocess.run(  # noqa: S603  (this interpreter's pip, our own arguments)
            [sys.executable, "-m", "pip", "install", "--quiet", "--dry-run", "--ignore-installed",
             "--only-binary=:all:", "--no-binary=zxcvbn", "--report", str(report), *wanted],
            check=True)
        installed: list[dict[str, Any]] = json.loads(report.read_text(encoding="utf-8"))["install"]
    return [item["metadata"] for item in installed]


def for_early_releases(resolved: list[dict[str, Any]]) -> list[str]:
    """Dependencies that the resolved packages need on an early 3.11 release only, such as
    Debian's 3.11.2, on which the image check builds (redis: async-timeout below 3.11.3). pip
    judges markers by the Python it runs under, so these are asked for by name."""
    early = {**default_environment(), "python_full_version": "3.11.0", "extra": ""}
    now = {**default_environment(), "extra": ""}
    found = []
    for metadata in resolved:
        for line in metadata.get("requires_dist", []):
            requirement = Requirement(line)
            marker = requirement.marker
            if marker is not None and "extra" not in str(marker) \
                    and marker.evaluate(early) and not marker.evaluate(now):
                found.append(f"{requirement.name}{requirement.specifier}")
    return found


def main() -> None:
    # pip resolves for the interpreter it runs under: the image's Python, on Linux.
    if sys.version_info[:2] != IMAGE_PYTHON or not sys.platform.startswith("linux"):
        sys.exit(f"run this with Python {'.'.join(map(str, IMAGE_PYTHON))} on Linux, as in the "
                 "image (docker/Dockerfile, PYTHON_IMAGE)")
    wanted = requirements()
    resolved = resolve(wanted)
    if early := for_early_releases(resolved):
        resolved = resolve(wanted + early)
    pins = {canonicalize_name(item["name"]): item["version"] for item in resolved}
    CONSTRAINTS.write_text(HEADER + "".join(f"{name}=={version}\n"
                                            for name, version in sorted(pins.items())),
                           encoding="utf-8")
    print(f"{len(pins)} versions pinned in {CONSTRAINTS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
