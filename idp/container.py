"""The long-lived collaborators of one IdP instance, built once at start-up."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from email.utils import parseaddr

from flask import Flask, current_app
from redis import Redis
from sqlalchemy.orm import Session

from idp.accounts.context import AccountContext, AccountSettings
from idp.accounts.passwords import HashingSlots, PasswordHasher, PasswordPolicy
from idp.clock import utcnow
from idp.config import Config
from idp.db import Database
from idp.links import Links
from idp.mail.outbox import MailTemplates
from idp.saml.runtime import SamlRuntime
from idp.security.rate_limits import (
    FormLimiter,
    RedisOrDatabaseCounters,
    RedisRequestCounters,
    SqlRequestCounters,
)
from idp.security.redis_throttle import RedisOrDatabaseThrottleStore, RedisThrottleStore
from idp.security.throttle import (
    ACCOUNT_RULE,
    ADDRESS_RULE,
    SqlThrottleStore,
    Throttle,
    ThrottleStore,
)


@dataclass(frozen=True)
class Services:
    config: Config
    database: Database
    hasher: PasswordHasher
    policy: PasswordPolicy
    templates: MailTemplates
    links: Links
    settings: AccountSettings
    # Throttling and form-limit counters go to Redis when IDP_REDIS_URL is set (shared by all
    # workers and hosts), to the database otherwise.
    redis: Redis | None = None

    @classmethod
    def build(cls, config: Config, database: Database) -> Services:
        """Load the policy and templates; a broken policy file stops the start here."""
        sender_domain = parseaddr(config.mail_sender)[1].rpartition("@")[2] or "servicekonto"
        return cls(
            config=config, database=database,
            # One pool of hashing slots per process (one Services per worker): see HashingSlots.
            hasher=PasswordHasher(config.argon2, HashingSlots(config.argon2_concurrency,
                                                              config.argon2_wait_seconds,
                                                              config.argon2_nice)),
            policy=PasswordPolicy.load(config.policy_dir / "password.yaml"),
            templates=MailTemplates(config.template_dir, sender_domain),
            links=Links(config.base_url),
            settings=AccountSettings(
                activation_valid=timedelta(hours=config.activation_hours),
                password_reset_valid=timedelta(minutes=config.password_reset_minutes),
                email_change_valid=timedelta(hours=config.email_change_hours),
                privacy_version=config.privacy_version),
            # Short timeouts: a Redis that hangs must not hold logins (the database steps in).
            redis=Redis.from_url(config.redis_url, socket_connect_timeout=0.5,
                                 socket_timeout=0.5) if config.redis_url else None,
        )

    def accounts(self, session: Session, now: datetime | None = None) -> AccountContext:
        """A unit of work for the account services."""
        return AccountContext(session=session, now=now or utcnow(), hasher=self.hasher,
                              policy=self.policy, templates=self.templates, links=self.links,
                              settings=self.settings)

    def throttle(self, session: Session) -> Throttle:
        database = SqlThrottleStore(session)
        store: ThrottleStore = database if self.redis is None else \
            RedisOrDatabaseThrottleStore(RedisThrottleStore(self.redis), database)
        # Both counters (account and address) over IDP_LOGIN_THROTTLE_WINDOW_MINUTES.
        window = timedelta(minutes=self.config.login_throttle_window_minutes)
        return Throttle(store, replace(ACCOUNT_RULE, window=window),
                        replace(ADDRESS_RULE, window=window))

    def form_limiter(self, session: Session) -> FormLimiter:
        """The limits of the anonymous forms (database counters commit on ``session``)."""
        database = SqlRequestCounters(session)
        if self.redis is not None:
            return FormLimiter(RedisOrDatabaseCounters(RedisRequestCounters(self.redis),
                                                       database), self.config.form_limits)
        return FormLimiter(database, self.config.form_limits)


# The one key of app.extensions the IdP keeps its parts under (Flask-Mail keeps "mail", the
# database extension "database").
_APP_PARTS = "servicekonto"


@dataclass(frozen=True)
class AppParts:
    """What :func:`idp.create_app` builds once per process, reached through :func:`app_parts`."""

    services: Services
    saml: SamlRuntime
    # Registered portals' display names by entity id ("Meine Zustimmungen", the logout page).
    portal_names: dict[str, str]

    def install(self, app: Flask) -> None:
        app.extensions[_APP_PARTS] = self


def app_parts(app: Flask | None = None) -> AppParts:
    """The parts of ``app`` (default: the current app)."""
    parts: AppParts = (app or current_app).extensions[_APP_PARTS]
    return parts
