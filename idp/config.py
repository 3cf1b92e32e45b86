"""The IdP's configuration: one typed object, read from ``IDP_*`` environment variables.

Everything is validated when the app starts, so that a wrong setting stops the start with a clear
message instead of failing at the first login.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from idp.shipped import SOURCE_TREE, default_instance_folder, shipped_folder

# The repository (a checkout); in an installed wheel, site-packages. The shipped templates and
# policies are found by shipped_folder(), in either case.
PROJECT_ROOT = SOURCE_TREE


class ConfigError(Exception):
    """A setting is missing or wrong; the message tells the operator which and why."""


class PolicyError(ConfigError):
    """A policy file (password rules, a portal) is missing or broken."""


@dataclass(frozen=True)
class Argon2Parameters:
    """argon2id cost parameters (argon2-cffi's RFC 9106 low-memory profile by default)."""

    time_cost: int = 3
    memory_cost_kib: int = 65536
    parallelism: int = 4


@dataclass(frozen=True)
class RequestLimit:
    """At most ``per_address`` requests from one client address and ``overall`` from all
    clients together within each ``window`` (a fixed window that starts with its first request).
    """

    per_address: int
    overall: int
    window: timedelta


@dataclass(frozen=True)
class FormLimits:
    """Limits on the forms anyone may send without logging in (docs/security.md).

    Per address, so that one client cannot flood the IdP; overall, so that many clients
    together cannot make it send unlimited mail. An office behind one NAT address shares the
    per-address counts, hence the room above what one citizen needs.
    """

    # "Daten speichern": each one writes an account and queues an activation mail.
    register: RequestLimit = RequestLimit(20, 1000, timedelta(hours=1))
    # "nächster Schritt": an argon2 hash, and the answer tells whether a username is taken
    # (room for a few corrections per registration).
    register_form: RequestLimit = RequestLimit(60, 3000, timedelta(hours=1))
    # "Passwort vergessen", "Benutzernamen vergessen", "Aktivierungslink erneut senden": each
    # may send a mail; they share one count, so switching forms gains nothing.
    mail_request: RequestLimit = RequestLimit(10, 1000, timedelta(minutes=15))
    # A new password set through a reset link: an argon2 hash.
    password_reset: RequestLimit = RequestLimit(10, 1000, timedelta(minutes=15))

    @property
    def longest_window(self) -> timedelta:
        """The longest window of any form (its counters may go only once it has ended)."""
        return max(limit.window for limit in (self.register, self.register_form,
                                              self.mail_request, self.password_reset))


@dataclass(frozen=True)
class Config:
    """All settings of one IdP instance. Build it with :func:`load_config`."""

    # "production" (the default: an installed IdP is never a development system by accident)
    # insists on an explicit secret, an https base URL and a real SMTP server. "development"
    # allows the embedded defaults (SQLite, generated secret and key, the development mailbox,
    # a moved clock); `servicekonto run` and `servicekonto demo` choose it (docs/configuration.md).
    environment: str = "production"
    # Development only: the development mailbox answers clients beyond this machine's loopback
    # addresses too (it shows every activation and reset link). Off unless the operator opts in
    # (`IDP_DEVELOPMENT_REMOTE`, or `servicekonto demo --host 0.0.0.0` inside a container).
    development_remote: bool = False
    # The public URL. Links in mails and SAML endpoints are built from it, never from the Host
    # header, so a forged Host cannot redirect a citizen's activation link elsewhere.
    base_url: str = "http://127.0.0.1:5000"
    database_url: str = ""
    secret_key: str = ""
    redis_url: str = ""
    instance_path: Path = field(default_factory=default_instance_folder)
    policy_dir: Path = field(default_factory=lambda: shipped_folder("policies"))
    template_dir: Path = field(default_factory=lambda: shipped_folder("templates"))
    key_file: Path | None = None
    cert_file: Path | None = None
    # Hosts accepted in the Host header besides the base URL's own (anything else gets a 400).
    trusted_hosts: tuple[str, ...] = ()
    # How many reverse proxies in front of us set X-Forwarded-For; 0 trusts none of it, so a
    # client cannot pick its own address for the per-address login throttle.
    proxy_count: int = 0
    # Operator logs: "json" (one object per line) or "text"; empty means json in production,
    # text in development. The audit trail is JSON either way.
    log_format: str = ""
    # /metrics answers only when enabled; the proxy must not pass it on from the internet
    # (docker/Caddyfile refuses it), it is for the internal network.
    metrics_enabled: bool = True

    mail_server: str = ""
    mail_port: int = 25
    mail_use_tls: bool = False
    mail_use_ssl: bool = False
    mail_username: str = ""
    mail_password: str = ""
    mail_sender: str = "Servicekonto <noreply@servicekonto.invalid>"
    mail_timeout_seconds: float = 10.0
    mail_retry_base_seconds: float = 30.0
    mail_retry_max_seconds: float = 3600.0
    mail_max_attempts: int = 20
    # Delivered (or given-up) mails stay this long for the operator, then `purge` removes them.
    mail_keep_days: int = 30

    argon2: Argon2Parameters = field(default_factory=Argon2Parameters)
    # At most this many argon2 hashes or verifications run at once in one process (each holds
    # the argon2 memory cost, 64 MiB by default); a login or registration that waits longer than
    # argon2_wait_seconds for its turn gets "zurzeit überlastet" (503) instead.
    argon2_concurrency: int = 4
    argon2_wait_seconds: float = 10.0
    # How much lower the CPU priority of the threads that hash is (Linux nice, 0-19), so that
    # cheap requests (SSO, pages) never queue behind hashes for the CPU; 0 hashes in the
    # request's thread at its priority.
    argon2_nice: int = 19
    form_limits: FormLimits = field(default_factory=FormLimits)
    activation_hours: int = 24
    password_reset_minutes: int = 60
    email_change_hours: int = 24
    # Sessions for level 1/2 logins (TR-03160-1): 12 h absolute, 60 min idle.
    session_absolute_minutes: int = 12 * 60
    session_idle_minutes: int = 60
    # Requests larger than this are refused with 413 before any parsing.
    max_request_bytes: int = 256 * 1024
    privacy_version: str = "2026-11"
    # Development only, for QA of expiry (activation links, sessions, pending logins): the
    # IdP's clock runs this many hours ahead of the machine's.
    clock_offset_hours: float = 0.0
    # Development only: the bearer token of the test-control API (/testing/api/, see
    # docs/qa-workbench.md). Without it the API refuses every call; it opens accounts, mails
    # and the clock to whoever holds it, hence at least 32 characters.
    testing_api_token: str = ""
    # Development only: the SAML tracer (/entwicklung/saml/) keeps at most this many messages,
    # none older than this many hours by the IdP's clock; the oldest go at each new one.
    trace_keep_messages: int = 500
    trace_keep_hours: int = 24
    # "Anmelden mit der Online-Ausweisfunktion" through the simulated eID service and its test
    # cards (docs/architecture.md, "The Online-Ausweisfunktion"). None: on in development.
    # Refused in production: it logs anyone in who knows a test card's published PIN at level
    # "hoch".
    eid_simulation: bool | None = None

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


# Said with each requirement of production: the mode may have been chosen by default.
PRODUCTION_HINT = (" (IDP_ENV is production unless set otherwise; IDP_ENV=development for a test "
                   "system on this machine)")

_BOOL_WORDS = {"1": True, "true": True, "yes": True, "on": True,
               "0": False, "false": False, "no": False, "off": False, "": False}


def _as_bool(name: str, raw: str) -> bool:
    try:
        return _BOOL_WORDS[raw.strip().lower()]
    except KeyError:
        raise ConfigError(f"{name}: expected true or false, got {raw!r}") from None


def _as_int(name: str, raw: str, minimum: int = 0) -> int:
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name}: expected a whole number, got {raw!r}") from None
    if value < minimum:
        raise ConfigError(f"{name}: must be at least {minimum}, got {value}")
    return value


def _as_float(name: str, raw: str) -> float:
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name}: expected a number, got {raw!r}") from None
    if value <= 0:
        raise ConfigError(f"{name}: must be positive, got {value}")
    return value


def _read_secret(env: Mapping[str, str], name: str) -> str:
    """A secret comes from ``NAME`` or from the file named by ``NAME_FILE`` (Docker secrets)."""
    if path := env.get(f"{name}_FILE"):
        try:
            return Path(path).read_text(encoding="utf-8").strip()
        except OSError as error:
            raise ConfigError(f"{name}_FILE: cannot read {path}: {error.strerror}") from None
    return env.get(name, "")


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


def _form_limits(env: Mapping[str, str]) -> dict[str, RequestLimit]:
    """``IDP_LIMIT_<FORM>=PER_CLIENT/OVERALL/WINDOW_SECONDS`` for each form of FormLimits
    (e.g. ``IDP_LIMIT_REGISTER=20/1000/3600``), the forms not named keep their defaults."""
    limits = {}
    for form in (f.name for f in fields(FormLimits)):
        name = f"IDP_LIMIT_{form.upper()}"
        if raw := env.get(name):
            parts = raw.split("/")
            if len(parts) != 3:
                raise ConfigError(f"{name}: expected PER_CLIENT/OVERALL/WINDOW_SECONDS, e.g. "
                                  f"20/1000/3600, got {raw!r}")
            per_client, overall, seconds = (_as_int(name, part.strip(), minimum=1)
                                            for part in parts)
            limits[form] = RequestLimit(per_client, overall, timedelta(seconds=seconds))
    return limits


def load_config(env: Mapping[str, str] | None = None, **overrides: Any) -> Config:
    """Read and validate the configuration from ``env`` (default: ``os.environ``)."""
    env = os.environ if env is None else env
    values: dict[str, Any] = {}
    if raw := env.get("IDP_ENV"):
        values["environment"] = raw
    if "IDP_DEVELOPMENT_REMOTE" in env:
        values["development_remote"] = _as_bool("IDP_DEVELOPMENT_REMOTE",
                                                env["IDP_DEVELOPMENT_REMOTE"])
    if raw := env.get("IDP_BASE_URL"):
        values["base_url"] = raw.rstrip("/")
    # The URL may hold the database password: it may come from a file too (Docker secrets).
    if raw := _read_secret(env, "IDP_DATABASE_URL"):
        values["database_url"] = raw
    if raw := env.get("IDP_REDIS_URL"):
        values["redis_url"] = raw
    if raw := env.get("IDP_INSTANCE_PATH"):
        values["instance_path"] = Path(raw)
    if raw := env.get("IDP_POLICY_DIR"):
        values["policy_dir"] = Path(raw)
    if raw := env.get("IDP_KEY_FILE"):
        values["key_file"] = Path(raw)
    if raw := env.get("IDP_CERT_FILE"):
        values["cert_file"] = Path(raw)
    if raw := env.get("IDP_TRUSTED_HOSTS"):
        values["trusted_hosts"] = tuple(h.strip() for h in raw.split(",") if h.strip())
    if raw := env.get("IDP_PROXY_COUNT"):
        values["proxy_count"] = _as_int("IDP_PROXY_COUNT", raw)
    if raw := env.get("IDP_LOG_FORMAT"):
        values["log_format"] = raw.strip().lower()
    if "IDP_EID_SIMULATION" in env:
        values["eid_simulation"] = _as_bool("IDP_EID_SIMULATION", env["IDP_EID_SIMULATION"])
    if "IDP_METRICS_ENABLED" in env:
        values["metrics_enabled"] = _as_bool("IDP_METRICS_ENABLED", env["IDP_METRICS_ENABLED"])
    if raw := env.get("IDP_MAIL_SERVER"):
        values["mail_server"] = raw
    if raw := env.get("IDP_MAIL_PORT"):
        values["mail_port"] = _as_int("IDP_MAIL_PORT", raw, minimum=1)
    if "IDP_MAIL_USE_TLS" in env:
        values["mail_use_tls"] = _as_bool("IDP_MAIL_USE_TLS", env["IDP_MAIL_USE_TLS"])
    if "IDP_MAIL_USE_SSL" in env:
        values["mail_use_ssl"] = _as_bool("IDP_MAIL_USE_SSL", env["IDP_MAIL_USE_SSL"])
    if raw := env.get("IDP_MAIL_USERNAME"):
        values["mail_username"] = raw
    if password := _read_secret(env, "IDP_MAIL_PASSWORD"):
        values["mail_password"] = password
    if raw := env.get("IDP_MAIL_SENDER"):
        values["mail_sender"] = raw
    if raw := env.get("IDP_MAIL_RETRY_BASE_SECONDS"):
        values["mail_retry_base_seconds"] = _as_float("IDP_MAIL_RETRY_BASE_SECONDS", raw)
    if raw := env.get("IDP_ARGON2_TIME_COST"):
        values.setdefault("argon2_parts", {})["time_cost"] = _as_int(
            "IDP_ARGON2_TIME_COST", raw, minimum=1)
    if raw := env.get("IDP_ARGON2_MEMORY_KIB"):
        values.setdefault("argon2_parts", {})["memory_cost_kib"] = _as_int(
            "IDP_ARGON2_MEMORY_KIB", raw, minimum=8)
    if raw := env.get("IDP_ARGON2_PARALLELISM"):
        values.setdefault("argon2_parts", {})["parallelism"] = _as_int(
            "IDP_ARGON2_PARALLELISM", raw, minimum=1)
    if raw := env.get("IDP_ARGON2_CONCURRENCY"):
        values["argon2_concurrency"] = _as_int("IDP_ARGON2_CONCURRENCY", raw, minimum=1)
    if raw := env.get("IDP_ARGON2_NICE"):
        values["argon2_nice"] = _as_int("IDP_ARGON2_NICE", raw, minimum=0)
        if values["argon2_nice"] > 19:
            raise ConfigError(f"IDP_ARGON2_NICE: must be at most 19, got {raw}")
    if raw := env.get("IDP_ARGON2_WAIT_SECONDS"):
        values["argon2_wait_seconds"] = _as_float("IDP_ARGON2_WAIT_SECONDS", raw)
    if parts := values.pop("argon2_parts", None):
        values["argon2"] = Argon2Parameters(**parts)
    if limits := _form_limits(env):
        values["form_limits"] = replace(FormLimits(), **limits)
    if raw := env.get("IDP_CLOCK_OFFSET_HOURS"):
        values["clock_offset_hours"] = _as_float("IDP_CLOCK_OFFSET_HOURS", raw)
    if token := _read_secret(env, "IDP_TESTING_API_TOKEN"):
        values["testing_api_token"] = token
    if raw := env.get("IDP_TRACE_KEEP_MESSAGES"):
        values["trace_keep_messages"] = _as_int("IDP_TRACE_KEEP_MESSAGES", raw, minimum=1)
    if raw := env.get("IDP_TRACE_KEEP_HOURS"):
        values["trace_keep_hours"] = _as_int("IDP_TRACE_KEEP_HOURS", raw, minimum=1)
    if secret := _read_secret(env, "IDP_SECRET_KEY"):
        values["secret_key"] = secret
    values.update(overrides)
    known = {f.name for f in fields(Config)}
    unknown = set(values) - known
    if unknown:
        raise ConfigError(f"unknown settings: {', '.join(sorted(unknown))}")
    return _validated(Config(**values))


def _validated(config: Config) -> Config:
    if config.environment not in ("development", "production"):
        raise ConfigError(
            f"IDP_ENV: expected development or production, got {config.environment!r}")
    parts = urlsplit(config.base_url)
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.query or parts.fragment:
        raise ConfigError(f"IDP_BASE_URL: expected an http(s) URL without query, got "
                          f"{config.base_url!r}")
    if not config.log_format:
        config = replace(config, log_format="text" if config.is_development else "json")
    if config.log_format not in ("json", "text"):
        raise ConfigError(f"IDP_LOG_FORMAT: expected json or text, got {config.log_format!r}")
    if config.eid_simulation is None:
        config = replace(config, eid_simulation=config.is_development)
    if not config.database_url:
        config = replace(config, database_url=f"sqlite:///{config.sqlite_database_path}")
    if not config.secret_key:
        if not config.is_development:
            raise ConfigError("IDP_SECRET_KEY (or IDP_SECRET_KEY_FILE) is required in production"
                              + PRODUCTION_HINT)
        config = replace(config, secret_key=_development_secret(config.instance_path))
    if len(config.secret_key) < 32:
        raise ConfigError("IDP_SECRET_KEY: must be at least 32 characters long")
    if not config.is_development:
        if not config.uses_https:
            raise ConfigError("IDP_BASE_URL: must be an https URL in production" + PRODUCTION_HINT)
        if not config.mail_server:
            raise ConfigError("IDP_MAIL_SERVER is required in production (no development "
                              "mailbox)" + PRODUCTION_HINT)
        if config.clock_offset_hours:
            raise ConfigError("IDP_CLOCK_OFFSET_HOURS is for development only")
        if config.development_remote:
            raise ConfigError("IDP_DEVELOPMENT_REMOTE is for development only")
        if config.testing_api_token:
            raise ConfigError("IDP_TESTING_API_TOKEN is for development only: production has "
                              "no test-control API")
        if config.eid_simulation:
            raise ConfigError("IDP_EID_SIMULATION is for development only: its test cards log "
                              "in anyone who knows their published PINs at level hoch")
        # The password would cross the network in the clear (SMTP AUTH PLAIN/LOGIN).
        if (config.mail_username or config.mail_password) and not (
                config.mail_use_tls or config.mail_use_ssl):
            raise ConfigError("IDP_MAIL_USERNAME/IDP_MAIL_PASSWORD need IDP_MAIL_USE_TLS=true "
                              "or IDP_MAIL_USE_SSL=true in production: the mail password must "
                              "not travel unencrypted")
    if config.testing_api_token and len(config.testing_api_token) < 32:
        raise ConfigError("IDP_TESTING_API_TOKEN: must be at least 32 characters long")
    if config.mail_use_tls and config.mail_use_ssl:
        raise ConfigError("IDP_MAIL_USE_TLS and IDP_MAIL_USE_SSL exclude each other")
    if not config.policy_dir.is_dir():
        raise ConfigError(f"IDP_POLICY_DIR: {config.policy_dir} is not a directory")
    return config
