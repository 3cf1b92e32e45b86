"""``servicekonto user export``: the operator answering a citizen's request for her data gets
the file "Meine Daten herunterladen" gives her."""

from __future__ import annotations

import json
import stat
from pathlib import Path

from flask import Flask

from idp.cli import main
from tests.conftest import Browser, log_in


def without_time_of_export(text: str) -> dict[str, object]:
    document: dict[str, object] = json.loads(text)
    document.pop("erstellt_am")
    return document


def test_the_operator_exports_the_file_the_citizen_would_download(
        app: Flask, citizen: Browser) -> None:
    result = app.test_cli_runner().invoke(main, args=["user", "export", "ErikaM"])
    assert result.exit_code == 0, result.output
    log_in(citizen)
    downloaded = citizen.get("/konto/daten-herunterladen").get_data(as_text=True)
    exported = without_time_of_export(result.stdout)
    assert exported["format"] == "servicekonto-export/1"
    # The download's own session is the one difference: the operator's export came before.
    assert exported | {"sitzungen": []} == without_time_of_export(downloaded) | {"sitzungen": []}


def test_the_export_goes_into_a_file_only_its_owner_can_read(
        app: Flask, citizen: Browser, tmp_path: Path) -> None:
    target = tmp_path / "erika.json"
    result = app.test_cli_runner().invoke(main, args=["user", "export", "ErikaM",
                                                      "--output", str(target)])
    assert result.exit_code == 0, result.output
    assert result.stdout == ""
    assert f"in {target} geschrieben" in result.stderr
    assert json.loads(target.read_text(encoding="utf-8"))["konto"]["benutzername"] == "ErikaM"
    assert stat.S_IMODE(target.stat().st_mode) == 0o600


def test_exporting_an_unknown_user_fails_with_a_german_message(app: Flask) -> None:
    result = app.test_cli_runner().invoke(main, args=["user", "export", "Niemand"])
    assert result.exit_code == 1
    assert "Kein Konto mit dem Benutzernamen 'Niemand'" in result.output
    assert result.stdout == ""
