"""The code stays as STYLE.md asks: ruff (lint) and mypy (strict types) report nothing."""

from __future__ import annotations

import subprocess
import sys

from idp.config import PROJECT_ROOT


def _run(*command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", *command], cwd=PROJECT_ROOT,
                          capture_output=True, text=True, timeout=300, check=False)


def test_ruff_finds_nothing_to_complain_about() -> None:
    result = _run("ruff", "check", "idp", "sp_client", "tests", "benchmarks")
    assert result.returncode == 0, result.stdout + result.stderr


def test_mypy_finds_no_type_errors() -> None:
    result = _run("mypy")
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_login_benchmark_runs_and_prints_its_ratio() -> None:
    result = _run("benchmarks.login", "--seconds", "0.2", "--rounds", "1")
    assert "ratio: " in result.stdout, result.stdout + result.stderr
