"""The IdP's configuration: one typed object, read from ``IDP_*`` environment variables.

Each setting is declared on the field it fills (:func:`idp.settings.setting`: its variable,
reader, description, whether it is a secret or for development only); :data:`SETTINGS` collects
them into the one table that :func:`load_config`, ``servicekonto config show`` and the reference
in docs/configuration.md are made from. Everything is validated when the app starts, so that a
wrong setting stops the start with a clear message instead of failing at the first login; every
problem is named at once, a misspelt variable too.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field, fields, replace
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from idp.settings import (
    Reading,
    boolean,
    names,
    path,
    positive_number,
    read,
    setting,
    table,
    text,
    url,
    whole_number,
    without_password,
    word,
)
from idp.shipped import SOURCE_TREE, default_instance_folder, shipped_folder

# The repository (a checkout); in an installed wheel, site-packages. The shipped templates and
# policies are found by shipped_folder(), in either case.
PROJECT_ROOT = SOURCE_TREE


class ConfigError(Exception):
    """A setting is missing or wrong; the message tells the operator which and why (one line
    per problem when there are several)."""


class PolicyError(ConfigError):
    """A policy file (password rules, a portal) is missing or broken."""


@dataclass(frozen=True)
class Argon2Parameters:
    """argon2id cost parameters (argon2-cffi's RFC 9106 low-memory profile by default)."""

    time_cost: int = setting("IDP_ARGON2_TIME_COST", 3, parse=whole_number(1),
                             about="argon2id time cost; stored hashes are upgraded at the next "
                                   "login")
    memory_cost_kib: int = setting("IDP_ARGON2_MEMORY_KIB", 65536, parse=whole_number(8),
                                   about="argon2id memory cost in KiB")
    parallelism: int = setting("IDP_ARGON2_PARALLELISM", 4, parse=whole_number(1),
                               about="argon2id parallelism (lanes)")


@dataclass(frozen=True)
class RequestLimit:
    """At most ``per_address`` requests from one client address and ``overall`` from all
    clients together within each ``window`` (a fixed window that starts with its first request).
    """

    per_address: int
    overall: int
    window: timedelta

    def __str__(self) -> str:
        """As the variable is written: ``PER_CLIENT/OVERALL/WINDOW_SECONDS``."""
        return f"{self.per_address}/{self.overall}/{int(self.window.total_seconds())}"


def request_limit(raw: str) -> RequestLimit:
    """``PER_CLIENT/OVERALL/WINDOW_SECONDS``, e.g. ``20/1000/3600``."""
    parts = raw.split("/")
    if len(parts) != 3:
        raise ValueError(f"expected PER_CLIENT/OVERALL/WINDOW_SECONDS, e.g. 20/1000/3600, "
                         f"got {raw!r}")
    per_client, overall, seconds = (whole_number(1)(part.strip()) for part in parts)
    return RequestLimit(per_client, overall, timedelta(seconds=seconds))


_LIMITS = "([security.md](security.md#limits-on-the-anonymous-forms))"


@dataclass(frozen=True)
class FormLimits:
    """Limits on the forms anyone may send without logging in (docs/security.md).

    Per address, so that one client cannot flood the IdP; overall, so that many clients
    together cannot make it send unlimited mail. An office behind one NAT address shares the
    per-address counts, hence the room above what one citizen needs. Over a limit: a German 429
    with ``Retry-After``.
    """

    # "Daten speichern": each one writes an account and queues an activation mail.
    register: RequestLimit = setting(
        "IDP_LIMIT_REGISTER", RequestLimit(20, 1000, timedelta(hours=1)), parse=request_limit,
        about=f"limit on \"Daten speichern\" of the registration, as "
              f"`PER_CLIENT/OVERALL/WINDOW_SECONDS` {_LIMITS}")
    # "nächster Schritt": an argon2 hash, and the answer tells whether a username is taken
    # (room for a few corrections per registration).
    register_form: RequestLimit = setting(
        "IDP_LIMIT_REGISTER_FORM", RequestLimit(60, 3000, timedelta(hours=1)),
        parse=request_limit, about="limit on \"nächster Schritt\" of the registration")
    # "Passwort vergessen", "Benutzernamen vergessen", "Aktivierungslink erneut senden": each
    # may send a mail; they share one count, so switching forms gains nothing.
    mail_request: RequestLimit = setting(
        "IDP_LIMIT_MAIL_REQUEST", RequestLimit(10, 1000, timedelta(minutes=15)),
        parse=request_limit, about="limit on the \"vergessen\" forms and the activation resend "
                                   "together")
    # A new password set through a reset link: an argon2 hash.
    password_reset: RequestLimit = setting(
        "IDP_LIMIT_PASSWORD_RESET", RequestLimit(10, 1000, timedelta(minutes=15)),
        parse=request_limit, about="limit on a new password set through a reset link")

    @property
    def longest_window(self) -> timedelta:
        """The longest window of any form (its counters may go only once it has ended)."""
        return max(limit.window for limit in (self.register, self.register_form,
                                              self.mail_request, self.password_reset))


_DEVELOPMENT = "[below](#development-is-chosen-explicitly)"


@dataclass(frozen=True)
class Config:
    """All settings of one IdP instance. Build it with :func:`load_config`."""

    # "production" (the default: an installed IdP is never a development system by accident)
    # insists on an explicit secret, an https base URL and a real SMTP server. "development"
    # allows the embedded defaults (SQLite, generated secret and key, the development mailbox,
    # a moved clock); `servicekonto run` and `servicekonto demo` choose it (docs/configuration.md).
    environment: str = setting(
        "IDP_ENV", "production", parse=word,
        about=f"`production` or `development` ({_DEVELOPMENT})",
        default_text="`production` (`servicekonto run`: `development`)")
    # Development only: the development mailbox answers clients beyond this machine's loopback
    # addresses too (it shows every activation and reset link). Off unless the operator opts in
    # (`IDP_DEVELOPMENT_REMOTE`, or `servicekonto demo --host 0.0.0.0` inside a container).
    development_remote: bool = setting(
        "IDP_DEVELOPMENT_REMOTE", False, parse=boolean, development_only=True,
        about="the development mailbox answers clients beyond this machine's loopback "
              "addresses too",
        default_text="`false` (`demo --host` beyond loopback: `true`)")
    # The public URL. Links in mails and SAML endpoints are built from it, never from the Host
    # header, so a forged Host cannot redirect a citizen's activation link elsewhere.
    base_url: str = setting(
        "IDP_BASE_URL", "http://127.0.0.1:5000", parse=url,
        about="public URL; every link in mails and every SAML endpoint is built from it, never "
              "from the Host header; `https://` in production")
    # May hold the database password: it may come from a file too (Docker secrets).
    database_url: str = setting(
        "IDP_DATABASE_URL", "", parse=text, secret=True, show=without_password,
        about="SQLAlchemy URL, e.g. `postgresql+psycopg://user@host/db` (from a file when it "
              "holds a password)",
        default_text="SQLite in the instance folder")
    secret_key: str = setting(
        "IDP_SECRET_KEY", "", parse=text, secret=True,
        about="signs sessions and keys the audit pseudonyms; at least 32 characters",
        default_text="required in production; generated into the instance folder in "
                     "development")
    redis_url: str = setting(
        "IDP_REDIS_URL", "", parse=text, show=without_password,
        about="Redis for the counters of the login throttle and the form limits, shared by all "
              "workers and hosts (without it, or while it is away, they are kept in the "
              "database)")
    instance_path: Path = setting(
        "IDP_INSTANCE_PATH", parse=path, factory=default_instance_folder,
        about="folder for SQLite, the development secret and key, and the metadata cache",
        default_text="`instance/` in a checkout; `<prefix>/var/servicekonto-instance` for an "
                     "installed wheel")
    policy_dir: Path = setting(
        "IDP_POLICY_DIR", parse=path, factory=lambda: shipped_folder("policies"),
        about="folder with `password.yaml`, `portals/*.yaml` and (development) "
              "`personas/*.yaml`",
        default_text="`policies/` of the checkout; installed from the wheel, "
                     "`<venv>/share/servicekonto/policies`")
    template_dir: Path = field(default_factory=lambda: shipped_folder("templates"))
    key_file: Path | None = setting(
        "IDP_KEY_FILE", None, parse=path,
        about="the IdP's signing key (PEM); set together with `IDP_CERT_FILE`",
        default_text="`keys/idp-signing.key` in the instance folder")
    cert_file: Path | None = setting(
        "IDP_CERT_FILE", None, parse=path, about="the IdP's signing certificate (PEM)",
        default_text="`keys/idp-signing.crt` in the instance folder")
    # Hosts accepted in the Host header besides the base URL's own (anything else gets a 400).
    trusted_hosts: tuple[str, ...] = setting(
        "IDP_TRUSTED_HOSTS", (), parse=names,
        about="further host names accepted in the Host header (comma-separated)")
    # How many reverse proxies in front of us set X-Forwarded-For; 0 trusts none of it, so a
    # client cannot pick its own address for the per-address login throttle.
    proxy_count: int = setting(
        "IDP_PROXY_COUNT", 0, parse=whole_number(0),
        about="number of reverse proxies whose X-Forwarded-For/Proto to trust")
    # Operator logs: "json" (one object per line) or "text"; empty means json in production,
    # text in development. The audit trail is JSON either way.
    log_format: str = setting(
        "IDP_LOG_FORMAT", "", parse=word,
        about="`json` (one object per line) or `text`; the audit trail is JSON either way",
        default_text="`json` in production, `text` in development")
    # /metrics answers only when enabled; the proxy must not pass it on from the internet
    # (docker/Caddyfile refuses it), it is for the internal network.
    metrics_enabled: bool = setting(
        "IDP_METRICS_ENABLED", True, parse=boolean,
        about="whether `/metrics` answers (keep it off the internet either way, see "
              "[operations.md](operations.md#health-metrics-and-logs))")
    # A port of its own for /metrics (like Keycloak's management port 9000): the public port
    # then answers /metrics with 404, so the proxy needs no rule to keep it in.
    metrics_port: int | None = setting(
        "IDP_METRICS_PORT", None, parse=whole_number(1, 65535),
        about="serve `/metrics` on this port instead (each gunicorn worker and `servicekonto "
              "run` listen on it; every answer adds up all workers); the public port then "
              "answers `/metrics` with 404",
        default_text="– (on the public port)")
    metrics_host: str = setting(
        "IDP_METRICS_HOST", "0.0.0.0", parse=text,  # noqa: S104 (a container's scraper)
        about="the address `IDP_METRICS_PORT` listens on")

    mail_server: str = setting(
        "IDP_MAIL_SERVER", "", parse=text,
        about="SMTP server; without it mails go to the development mailbox (development only)",
        default_text="development mailbox (development only)")
    mail_port: int = setting("IDP_MAIL_PORT", 25, parse=whole_number(1, 65535),
                             about="SMTP port")
    mail_use_tls: bool = setting("IDP_MAIL_USE_TLS", False, parse=boolean,
                                 about="STARTTLS (verifies the server's certificate)")
    mail_use_ssl: bool = setting("IDP_MAIL_USE_SSL", False, parse=boolean,
                                 about="SMTPS (verifies the server's certificate)")
    mail_username: str = setting(
        "IDP_MAIL_USERNAME", "", parse=text,
        about="SMTP login; in production only with `IDP_MAIL_USE_TLS` or `IDP_MAIL_USE_SSL`")
    mail_password: str = setting("IDP_MAIL_PASSWORD", "", parse=text, secret=True,
                                 about="SMTP password; in production only with TLS or SSL")
    mail_sender: str = setting("IDP_MAIL_SENDER", "Servicekonto <noreply@servicekonto.invalid>",
                               parse=text, about="the From of every mail")
    mail_timeout_seconds: float = 10.0
    mail_retry_base_seconds: float = setting(
        "IDP_MAIL_RETRY_BASE_SECONDS", 30.0, parse=positive_number,
        about="first retry delay of a failed mail (doubles up to an hour)")
    mail_retry_max_seconds: float = 3600.0
    mail_max_attempts: int = 20
    # Delivered (or given-up) mails stay this long for the operator, then `purge` removes them.
    mail_keep_days: int = 30

    argon2: Argon2Parameters = Argon2Parameters()
    # At most this many argon2 hashes or verifications run at once in one process (each holds
    # the argon2 memory cost, 64 MiB by default); a login or registration that waits longer than
    # argon2_wait_seconds for its turn gets "zurzeit überlastet" (503) instead.
    argon2_concurrency: int = setting(
        "IDP_ARGON2_CONCURRENCY", 4, parse=whole_number(1),
        about="at most this many argon2 hashes at once per process (bounded memory under a "
              "flood)")
    argon2_wait_seconds: float = setting(
        "IDP_ARGON2_WAIT_SECONDS", 10.0, parse=positive_number,
        about="a request waiting longer for its turn to hash gets a German 503 with "
              "`Retry-After`")
    # How much lower the CPU priority of the threads that hash is (Linux nice, 0-19), so that
    # cheap requests (SSO, pages) never queue behind hashes for the CPU; 0 hashes in the
    # request's thread at its priority.
    argon2_nice: int = setting(
        "IDP_ARGON2_NICE", 19, parse=whole_number(0, 19),
        about="how much lower (Linux nice, 0–19) the CPU priority of the threads that hash is "
              "than that of the request threads: an SSO round trip or a page gets a core ahead "
              f"of the running hashes {_LIMITS}; `0` hashes in the request's own thread at its "
              "priority")
    form_limits: FormLimits = FormLimits()
    # How long the links sent by mail work.
    activation_hours: int = setting("IDP_ACTIVATION_HOURS", 24, parse=whole_number(1),
                                    about="how long an activation link works")
    password_reset_minutes: int = setting("IDP_PASSWORD_RESET_MINUTES", 60,
                                          parse=whole_number(1),
                                          about="how long a password reset link works")
    email_change_hours: int = setting("IDP_EMAIL_CHANGE_HOURS", 24, parse=whole_number(1),
                                      about="how long the link confirming a new e-mail address "
                                            "works")
    # Sessions by the trust level of the login (TR-03160-1; docs/architecture.md, "Trust
    # levels"): the higher the level, the shorter, and never longer than a lower level's.
    session_absolute_minutes: int = setting(
        "IDP_SESSION_ABSOLUTE_MINUTES", 12 * 60, parse=whole_number(1),
        about="a session of a password login (levels 1 and 2) ends this long after the login")
    session_idle_minutes: int = setting(
        "IDP_SESSION_IDLE_MINUTES", 60, parse=whole_number(1),
        about="a session of a password login (levels 1 and 2) ends this long after its last "
              "request")
    session_level3_absolute_minutes: int = setting(
        "IDP_SESSION_LEVEL3_ABSOLUTE_MINUTES", 2 * 60, parse=whole_number(1),
        about="a session of a login at level 3 (substantiell) ends this long after the login")
    session_level3_idle_minutes: int = setting(
        "IDP_SESSION_LEVEL3_IDLE_MINUTES", 30, parse=whole_number(1),
        about="a session of a login at level 3 ends this long after its last request")
    session_level4_absolute_minutes: int = setting(
        "IDP_SESSION_LEVEL4_ABSOLUTE_MINUTES", 30, parse=whole_number(1),
        about="a session of a login at level 4 (hoch: the Online-Ausweisfunktion) ends this "
              "long after the login")
    session_level4_idle_minutes: int = setting(
        "IDP_SESSION_LEVEL4_IDLE_MINUTES", 5, parse=whole_number(1),
        about="a session of a login at level 4 ends this long after its last request")
    # The login throttle's counters (per account and per address) start anew this long after
    # their first failure (docs/security.md).
    login_throttle_window_minutes: int = setting(
        "IDP_LOGIN_THROTTLE_WINDOW_MINUTES", 60, parse=whole_number(1),
        about="the login throttle counts the failures of an account and of an address within "
              "this window, from its first failure ([security.md](security.md))")
    # Requests larger than this are refused with 413 before any parsing.
    max_request_bytes: int = 256 * 1024
    privacy_version: str = "2026-11"
    # Development only, for QA of expiry (activation links, sessions, pending logins): the
    # IdP's clock runs this many hours ahead of the machine's.
    clock_offset_hours: float = setting(
        "IDP_CLOCK_OFFSET_HOURS", 0.0, parse=positive_number, development_only=True,
        about="the IdP's clock runs this many hours ahead, for QA of expiry (e.g. `25` makes a "
              "fresh activation link expired)")
    # Development only: the bearer token of the test-control API (/testing/api/, see
    # docs/qa-workbench.md). Without it the API refuses every call; it opens accounts, mails
    # and the clock to whoever holds it, hence at least 32 characters.
    testing_api_token: str = setting(
        "IDP_TESTING_API_TOKEN", "", parse=text, secret=True,
        why_development_only="production has no test-control API",
        about="the bearer token of the test-control API under `/testing/api/`, at least 32 "
              "characters; without it the API refuses every call with 403 "
              "([qa-workbench.md](qa-workbench.md)); `servicekonto demo` makes one per start "
              "unless it is set")
    # Development only: the SAML tracer (/entwicklung/saml/) keeps at most this many messages,
    # none older than this many hours by the IdP's clock; the oldest go at each new one.
    trace_keep_messages: int = setting(
        "IDP_TRACE_KEEP_MESSAGES", 500, parse=whole_number(1), development_only=True,
        about="how many SAML messages the SAML tracer (`/entwicklung/saml/`, "
              "[qa-workbench.md](qa-workbench.md#the-saml-tracer)) keeps at most")
    trace_keep_hours: int = setting(
        "IDP_TRACE_KEEP_HOURS", 24, parse=whole_number(1), development_only=True,
        about="for how many hours by the IdP's clock the SAML tracer keeps a message")
    # "Anmelden mit der Online-Ausweisfunktion" through the simulated eID service and its test
    # cards (docs/architecture.md, "The Online-Ausweisfunktion"). None: on in development.
    # Refused in production: it logs anyone in who knows a test card's published PIN at level
    # "hoch".
    eid_simulation: bool | None = setting(
        "IDP_EID_SIMULATION", None, parse=boolean,
        why_development_only="its test cards log in anyone who knows their published PINs at "
                             "level hoch",
        about="\"Anmelden mit der Online-Ausweisfunktion\" through the simulated eID service and "
              "the personas' test cards ([architecture.md](architecture.md"
              "#the-online-ausweisfunktion-simulated))",
        default_text="`true` in development, `false` in production")

    @property
    def is_development(self) -> bool:
        return self.environment == "development"

    @property
    def uses_https(self) -> bool:
        return self.base_url.startswith("https://")

    @property
    def base_host(self) -> str:
        return urlsplit(self.base_url).netloc

    @property
    def uses_dev_mailbox(self) -> bool:
        """Without an SMTP server (development only) mails go to the development mailbox page;
        it answers loopback clients only unless :attr:`development_remote` is set."""
        return not self.mail_server

    @property
    def sqlite_database_path(self) -> Path:
        return self.instance_path / "servicekonto.sqlite3"

    @property
    def session_minutes(self) -> dict[int, tuple[int, int]]:
        """(absolute, idle) minutes of a session by the trust level of its login (1 to 4)."""
        password = (self.session_absolute_minutes, self.session_idle_minutes)
        return {1: password, 2: password,
                3: (self.session_level3_absolute_minutes, self.session_level3_idle_minutes),
                4: (self.session_level4_absolute_minutes, self.session_level4_idle_minutes)}


# The one table of settings (docs/configuration.md is made from it: `servicekonto config
# reference`).
SETTINGS = table(Config)

# IDP_* names that other tools read, never the IdP: in the environment of a test run, they are
# no misspelt settings.
OTHER_TOOLS = {
    "IDP_TEST_POSTGRES_URL": "the test suite's PostgreSQL server (tests/conftest.py)",
    "IDP_TEST_REDIS_URL": "the test suite's Redis server (tests/conftest.py)",
    "IDP_TEST_CHROMIUM": "the browser of the end-to-end tests (tests/e2e)",
}

# Said with each requirement of production: the mode may have been chosen by default.
PRODUCTION_HINT = (" (IDP_ENV is production unless set otherwise; IDP_ENV=development for a test "
                   "system on this machine)")


@dataclass(frozen=True)
class ConfigReading:
    """The configuration an environment gives (defaults where a setting is wrong), where each
    setting came from, and every problem, one line each (none: the IdP may start)."""

    config: Config
    sources: dict[str, str]
    problems: list[str]


def value_at(config: Config, field_path: str) -> Any:
    """The value of a setting's field (``argon2.time_cost``) in ``config``."""
    value: Any = config
    for name in field_path.split("."):
        value = getattr(value, name)
    return value


def read_config(env: Mapping[str, str] | None = None, from_env_file: Collection[str] = (),
                **overrides: Any) -> ConfigReading:
    """Read ``env`` (default: ``os.environ``) and check everything, writing nothing: the
    development secret is made by :func:`load_config` only. ``overrides`` are fields' values
    (tests); ``from_env_file`` the names ``--env-file`` set (for the sources)."""
    env = os.environ if env is None else env
    reading = read(SETTINGS, env, OTHER_TOOLS, from_env_file)
    unknown = set(overrides) - {item.name for item in fields(Config)}
    if unknown:
        raise ConfigError(f"unknown settings: {', '.join(sorted(unknown))}")
    config = _derived(Config(**(_assembled(reading) | overrides)))
    return ConfigReading(config, reading.sources, reading.problems + _problems(config))


def load_config(env: Mapping[str, str] | None = None, **overrides: Any) -> Config:
    """Read and validate the configuration from ``env`` (default: ``os.environ``); a
    :class:`ConfigError` names every problem, one per line."""
    reading = read_config(env, **overrides)
    if reading.problems:
        raise ConfigError("\n".join(reading.problems))
    config = reading.config
    if not config.secret_key:  # development: production requires one (see _problems)
        config = replace(config, secret_key=_development_secret(config.instance_path))
    return config


def _assembled(reading: Reading) -> dict[str, Any]:
    """The Config fields the variables give: parts (``argon2.time_cost``) into their part."""
    values = {key: value for key, value in reading.values.items() if "." not in key}
    defaults = {item.name: item.default for item in fields(Config)}
    for key, value in reading.values.items():
        if "." in key:
            part, _, name = key.partition(".")
            values[part] = replace(values.get(part, defaults[part]), **{name: value})
    return values


def _derived(config: Config) -> Config:
    """The defaults that depend on the mode or the instance folder."""
    return replace(
        config,
        log_format=config.log_format or ("text" if config.is_development else "json"),
        eid_simulation=config.is_development if config.eid_simulation is None
        else config.eid_simulation,
        database_url=config.database_url or f"sqlite:///{config.sqlite_database_path}")


def _problems(config: Config) -> list[str]:
    """What is wrong with ``config`` as a whole, each in a line naming the variable."""
    problems = []
    if config.environment not in ("development", "production"):
        problems.append(
            f"IDP_ENV: expected development or production, got {config.environment!r}")
    parts = urlsplit(config.base_url)
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.query or parts.fragment:
        problems.append(f"IDP_BASE_URL: expected an http(s) URL without query, got "
                        f"{config.base_url!r}")
    if config.log_format not in ("json", "text"):
        problems.append(f"IDP_LOG_FORMAT: expected json or text, got {config.log_format!r}")
    if not config.secret_key and not config.is_development:
        problems.append("IDP_SECRET_KEY (or IDP_SECRET_KEY_FILE) is required in production"
                        + PRODUCTION_HINT)
    if config.secret_key and len(config.secret_key) < 32:
        problems.append("IDP_SECRET_KEY: must be at least 32 characters long")
    if not config.is_development:
        problems.extend(_production_problems(config))
    if config.testing_api_token and len(config.testing_api_token) < 32:
        problems.append("IDP_TESTING_API_TOKEN: must be at least 32 characters long")
    if config.mail_use_tls and config.mail_use_ssl:
        problems.append("IDP_MAIL_USE_TLS and IDP_MAIL_USE_SSL exclude each other")
    if not config.policy_dir.is_dir():
        problems.append(f"IDP_POLICY_DIR: {config.policy_dir} is not a directory")
    if config.metrics_port is not None and not config.metrics_enabled:
        problems.append("IDP_METRICS_PORT is set but IDP_METRICS_ENABLED is false: "
                        "nothing would answer there")
    return problems + _session_problems(config)


def _production_problems(config: Config) -> list[str]:
    problems = []
    if not config.uses_https:
        problems.append("IDP_BASE_URL: must be an https URL in production" + PRODUCTION_HINT)
    if not config.mail_server:
        problems.append("IDP_MAIL_SERVER is required in production (no development mailbox)"
                        + PRODUCTION_HINT)
    for item in SETTINGS:
        value = value_at(config, item.field)
        if item.development_only and value and value != item.default:
            problems.append(f"{item.name} is for development only" + (
                f": {item.why_development_only}" if item.why_development_only else ""))
    # The password would cross the network in the clear (SMTP AUTH PLAIN/LOGIN).
    if (config.mail_username or config.mail_password) and not (
            config.mail_use_tls or config.mail_use_ssl):
        problems.append("IDP_MAIL_USERNAME/IDP_MAIL_PASSWORD need IDP_MAIL_USE_TLS=true or "
                        "IDP_MAIL_USE_SSL=true in production: the mail password must not "
                        "travel unencrypted")
    return problems


def _session_problems(config: Config) -> list[str]:
    """A session never lasts longer idle than in all, nor at a higher level than at a lower
    one (a level-4 login would otherwise outlive the password login it stepped up from)."""
    problems = []
    names = {1: "IDP_SESSION", 3: "IDP_SESSION_LEVEL3", 4: "IDP_SESSION_LEVEL4"}
    minutes = config.session_minutes
    for level, name in names.items():
        absolute, idle = minutes[level]
        if idle > absolute:
            problems.append(f"{name}_IDLE_MINUTES ({idle}) is longer than "
                            f"{name}_ABSOLUTE_MINUTES ({absolute})")
    for lower, higher in ((1, 3), (3, 4)):
        for index, kind in enumerate(("ABSOLUTE", "IDLE")):
            if minutes[higher][index] > minutes[lower][index]:
                problems.append(
                    f"{names[higher]}_{kind}_MINUTES ({minutes[higher][index]}) is longer than "
                    f"{names[lower]}_{kind}_MINUTES ({minutes[lower][index]}): a login at a "
                    f"higher trust level must not last longer")
    return problems


def _development_secret(instance_path: Path) -> str:
    """A per-installation secret kept in the instance folder, created on first use (0600)."""
    path = instance_path / "secret_key"
    if path.exists():
        return path.read_text(encoding="utf-8").strip()
    instance_path.mkdir(parents=True, exist_ok=True)
    # Workers may start together: each writes a file of its own, the first link wins, and
    # everyone reads the winner's (a link is atomic; the file is complete before it).
    draft = instance_path / f".secret_key.{os.getpid()}.{secrets.token_hex(4)}"
    fd = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(secrets.token_urlsafe(48))
    try:
        os.link(draft, path)
    except FileExistsError:
        pass
    finally:
        draft.unlink()
    return path.read_text(encoding="utf-8").strip()
