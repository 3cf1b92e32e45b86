"""What an operator notices of the settings: a misspelt variable stops the start with the
nearest setting named, every problem is named at once, and the lifetimes they ask about are
settings with the values they always had as defaults."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

import pytest

from idp.config import OTHER_TOOLS, PROJECT_ROOT, SETTINGS, ConfigError, RequestLimit, load_config

DEVELOPMENT = {"IDP_ENV": "development"}
PRODUCTION = {"IDP_BASE_URL": "https://konto.example.org", "IDP_SECRET_KEY": "s" * 40,
              "IDP_MAIL_SERVER": "mail.example.org"}


def refusal(env: dict[str, str], tmp_path: Path) -> list[str]:
    """The lines of the message that stops the start."""
    with pytest.raises(ConfigError) as refused:
        load_config(env | {"IDP_INSTANCE_PATH": str(tmp_path)})
    return str(refused.value).splitlines()


def test_a_misspelt_variable_stops_the_start_and_names_the_setting_meant(tmp_path: Path) -> None:
    lines = refusal(DEVELOPMENT | {"IDP_MAIL_SERVRE": "mail.example.org"}, tmp_path)

    assert lines == ["IDP_MAIL_SERVRE: no such setting (did you mean IDP_MAIL_SERVER?)"]


def test_an_unknown_variable_far_from_every_setting_is_refused_too(tmp_path: Path) -> None:
    lines = refusal(DEVELOPMENT | {"IDP_FARBSCHEMA": "dunkel"}, tmp_path)

    assert lines == ["IDP_FARBSCHEMA: no such setting (servicekonto config show lists them)"]


def test_every_problem_is_named_at_once_one_per_line(tmp_path: Path) -> None:
    lines = refusal({"IDP_PROXY_COUNT": "zwei", "IDP_LIMIT_REGISTER": "20/1000",
                     "IDP_ARGON2_NICE": "25", "IDP_MAIL_USE_TLS": "vielleicht",
                     "IDP_MIAL_PORT": "587"}, tmp_path)

    assert [line.partition(":")[0] for line in lines[:5]] == [
        "IDP_PROXY_COUNT", "IDP_MAIL_USE_TLS", "IDP_ARGON2_NICE", "IDP_LIMIT_REGISTER",
        "IDP_MIAL_PORT"]
    assert "IDP_MIAL_PORT: no such setting (did you mean IDP_MAIL_PORT?)" in lines
    assert "IDP_ARGON2_NICE: must be at most 19, got 25" in lines
    # Production's requirements come along, each on its own line.
    assert any(line.startswith("IDP_SECRET_KEY (or IDP_SECRET_KEY_FILE) is required")
               for line in lines)
    assert any(line.startswith("IDP_MAIL_SERVER is required in production") for line in lines)


def test_the_variables_of_the_test_suite_are_no_misspelt_settings(tmp_path: Path) -> None:
    env = DEVELOPMENT | {name: "x" for name in OTHER_TOOLS} | {"IDP_INSTANCE_PATH": str(tmp_path)}

    assert load_config(env).is_development


def test_every_idp_variable_the_test_suite_reads_is_listed_as_another_tools() -> None:
    """Else the IdP started by the tests (gunicorn, the command line) would refuse to start in
    an environment that sets it."""
    used = set()
    for folder in ("tests", "benchmarks", "docker", "sp_client"):
        for path in (PROJECT_ROOT / folder).rglob("*.py"):
            used.update(re.findall(r"\bIDP_TEST_[A-Z0-9_]+\b", path.read_text(encoding="utf-8")))

    assert used and used <= set(OTHER_TOOLS)


def test_a_secret_comes_from_the_file_its_file_variable_names(tmp_path: Path) -> None:
    password_file = tmp_path / "mail_password"
    password_file.write_text("Post-Geheimnis\n", encoding="utf-8")

    config = load_config(DEVELOPMENT | {"IDP_MAIL_PASSWORD_FILE": str(password_file),
                                        "IDP_INSTANCE_PATH": str(tmp_path)})

    assert config.mail_password == "Post-Geheimnis"


def test_a_secret_given_directly_and_by_file_is_refused_instead_of_one_winning(
        tmp_path: Path) -> None:
    secret_file = tmp_path / "secret"
    secret_file.write_text("f" * 40, encoding="utf-8")

    lines = refusal(DEVELOPMENT | {"IDP_SECRET_KEY": "d" * 40,
                                   "IDP_SECRET_KEY_FILE": str(secret_file)}, tmp_path)

    assert lines == ["IDP_SECRET_KEY and IDP_SECRET_KEY_FILE are both set: keep one of them"]


def test_the_lifetimes_keep_the_values_they_always_had_by_default(tmp_path: Path) -> None:
    config = load_config(DEVELOPMENT | {"IDP_INSTANCE_PATH": str(tmp_path)})

    assert (config.activation_hours, config.password_reset_minutes,
            config.email_change_hours) == (24, 60, 24)
    assert config.session_minutes == {1: (720, 60), 2: (720, 60), 3: (120, 30), 4: (30, 5)}
    assert config.login_throttle_window_minutes == 60


def test_the_lifetimes_operators_ask_about_are_read_from_the_environment(tmp_path: Path) -> None:
    config = load_config(DEVELOPMENT | {
        "IDP_INSTANCE_PATH": str(tmp_path), "IDP_ACTIVATION_HOURS": "72",
        "IDP_PASSWORD_RESET_MINUTES": "30", "IDP_EMAIL_CHANGE_HOURS": "48",
        "IDP_SESSION_ABSOLUTE_MINUTES": "480", "IDP_SESSION_IDLE_MINUTES": "45",
        "IDP_SESSION_LEVEL3_ABSOLUTE_MINUTES": "90", "IDP_SESSION_LEVEL3_IDLE_MINUTES": "20",
        "IDP_SESSION_LEVEL4_ABSOLUTE_MINUTES": "15", "IDP_SESSION_LEVEL4_IDLE_MINUTES": "3",
        "IDP_LOGIN_THROTTLE_WINDOW_MINUTES": "30",
        "IDP_LIMIT_MAIL_REQUEST": "5/500/600"})

    assert (config.activation_hours, config.password_reset_minutes,
            config.email_change_hours) == (72, 30, 48)
    assert config.session_minutes == {1: (480, 45), 2: (480, 45), 3: (90, 20), 4: (15, 3)}
    assert config.login_throttle_window_minutes == 30
    assert config.form_limits.mail_request == RequestLimit(5, 500, timedelta(minutes=10))


def test_a_login_at_a_higher_level_may_not_last_longer_than_one_at_a_lower(
        tmp_path: Path) -> None:
    lines = refusal(DEVELOPMENT | {"IDP_SESSION_IDLE_MINUTES": "20",
                                   "IDP_SESSION_LEVEL4_ABSOLUTE_MINUTES": "180"}, tmp_path)

    assert lines == [
        "IDP_SESSION_LEVEL3_IDLE_MINUTES (30) is longer than IDP_SESSION_IDLE_MINUTES (20): a "
        "login at a higher trust level must not last longer",
        "IDP_SESSION_LEVEL4_ABSOLUTE_MINUTES (180) is longer than "
        "IDP_SESSION_LEVEL3_ABSOLUTE_MINUTES (120): a login at a higher trust level must not "
        "last longer"]


def test_a_development_only_setting_is_refused_in_production_unless_left_alone(
        tmp_path: Path) -> None:
    assert load_config(PRODUCTION | {"IDP_TRACE_KEEP_MESSAGES": "500",
                                     "IDP_INSTANCE_PATH": str(tmp_path)})
    lines = refusal(PRODUCTION | {"IDP_TRACE_KEEP_MESSAGES": "50"}, tmp_path)

    assert lines == ["IDP_TRACE_KEEP_MESSAGES is for development only"]


def test_a_metrics_port_without_metrics_is_refused(tmp_path: Path) -> None:
    lines = refusal(DEVELOPMENT | {"IDP_METRICS_PORT": "9000", "IDP_METRICS_ENABLED": "false"},
                    tmp_path)

    assert lines == ["IDP_METRICS_PORT is set but IDP_METRICS_ENABLED is false: nothing would "
                     "answer there"]


def test_every_setting_has_a_description_for_the_reference() -> None:
    assert all(item.about and item.name.startswith("IDP_") for item in SETTINGS)
    assert len({item.name for item in SETTINGS}) == len(SETTINGS)
