"""The load benchmark (benchmarks/load.py) runs end to end and prints its figures."""

from __future__ import annotations

import subprocess
import sys

import pytest

from idp.config import PROJECT_ROOT
from tests.conftest import POSTGRES_URL


def test_the_load_benchmark_runs_a_short_mix_without_errors_and_prints_its_ratio() -> None:
    if not POSTGRES_URL:
        pytest.skip("IDP_TEST_POSTGRES_URL is not set")
    result = subprocess.run(
        [sys.executable, "-m", "benchmarks.load", "--postgres-url", POSTGRES_URL,
         "--seconds", "1", "--clients", "2", "--reference-seconds", "0.2",
         "--idp-key-bits", "2048"],
        cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=120, check=False)

    assert result.returncode == 0, result.stderr
    assert "that argon2 and RSA allow for this mix" in result.stdout
    assert "raw RSA-2048 signatures/s" in result.stdout
    assert "accounts stored: " in result.stdout  # and as many mails (else the exit code is 1)
    for line in result.stdout.splitlines():
        if "errors" in line:
            assert line.endswith("errors 0"), result.stdout
