"""Servicekonto: a SAML 2.0 identity provider for citizens, in the manner of Servicekonto.NRW."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix

from idp.config import Config, load_config
from idp.db import db as database
from idp.extensions import csrf, mailer


def create_app(test_config: Mapping[str, Any] | None = None,
               env: Mapping[str, str] | None = None) -> Flask:
    """Build the IdP. ``test_config`` overrides settings (tests), ``env`` replaces os.environ.

    Raises :class:`idp.config.ConfigError` with a clear message when a setting, a policy file or
    the database schema is not as it must be.
    """
    config = load_config(env, **dict(test_config or {}))
    if config.clock_offset_hours:  # development only (load_config refuses it in production)
        from idp import clock

        clock.clock_offset = timedelta(hours=config.clock_offset_hours)
    app = Flask(__name__, template_folder=str(config.template_dir),
                instance_path=str(config.instance_path.resolve()))
    _configure_flask(app, config)
    from idp import observability

    observability.start_logging(config)

    from idp import schema
    from idp.container import AppParts, Services
    from idp.web import errors, security

    database.init_app(app, config.database_url)
    schema.check_current(database.bound(app).engine)
    services = Services.build(config, database)
    csrf.init_app(app)
    mailer.init_app(app)
    security.init_app(app, config)
    errors.init_app(app)
    if config.proxy_count:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=config.proxy_count,  # type: ignore[method-assign]
                                x_proto=config.proxy_count)

    from idp.accounts.selfservice_views import selfservice
    from idp.accounts.views import accounts
    from idp.consent.views import consent
    from idp.mail.views import mailbox
    from idp.saml.logout_views import slo
    from idp.saml.runtime import SamlRuntime
    from idp.saml.views import saml

    saml_runtime = SamlRuntime.build(config, database.bound(app))
    AppParts(services=services, saml=saml_runtime,
             portal_names=saml_runtime.registry.display_names).install(app)
    app.register_blueprint(saml)
    app.register_blueprint(slo)
    from idp.saml.state import move_portal_sessions
    from idp.security.sessions import DatabaseSessionInterface

    assert isinstance(app.session_interface, DatabaseSessionInterface)
    app.session_interface.on_rotate.append(move_portal_sessions)
    app.register_blueprint(accounts)
    app.register_blueprint(selfservice)
    app.register_blueprint(consent)
    if config.eid_simulation:
        from idp.eid.views import eid

        app.register_blueprint(eid)
    from idp.broker.runtime import Broker

    app.jinja_env.globals["external_login"] = False

    if (broker := Broker.build(config, saml_runtime.keys, saml_runtime.crypto)) is not None:
        from idp.broker.views import external
        from idp.saml.akdb import AuthnMethod
        from idp.saml.identifiers import TrustLevel

        broker.install(app)
        app.register_blueprint(external)
        app.jinja_env.globals["external_login"] = True
        # "Login mit externem Servicekonto", up to the highest level an upstream may reach.
        saml_runtime.methods = (*saml_runtime.methods, AuthnMethod.FINK)
        saml_runtime.method_levels[AuthnMethod.FINK] = TrustLevel(broker.highest_level)
    if config.is_development and config.uses_dev_mailbox:
        app.register_blueprint(mailbox)
    if config.is_development:
        from idp.testing import workbench

        workbench.init_app(app)  # personas, the test-control API, the movable clock

    observability.init_app(app, config, database.bound(app).engine, saml_runtime.keys)
    return app


def _configure_flask(app: Flask, config: Config) -> None:
    app.config.update(
        SECRET_KEY=config.secret_key,
        SERVICEKONTO=config,
        # Cookies: never readable by scripts, only over https when we are served over https;
        # the __Host- prefix pins the cookie to our exact host.
        SESSION_COOKIE_NAME="__Host-servicekonto" if config.uses_https else "servicekonto",
        SESSION_COOKIE_SECURE=config.uses_https,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        PERMANENT_SESSION_LIFETIME=timedelta(minutes=config.session_absolute_minutes),
        PREFERRED_URL_SCHEME="https" if config.uses_https else "http",
        # Anything but our own host name in the Host header gets 400 (no host header poisoning).
        TRUSTED_HOSTS=[config.base_host.split(":")[0], *config.trusted_hosts],
        # Request size limits: whole body, form fields in memory, number of form parts.
        MAX_CONTENT_LENGTH=config.max_request_bytes,
        MAX_FORM_MEMORY_SIZE=64 * 1024,
        MAX_FORM_PARTS=50,
        WTF_CSRF_TIME_LIMIT=None,  # the token lives as long as the server-side session
        MAIL_SERVER=config.mail_server or "localhost",
        MAIL_PORT=config.mail_port,
        MAIL_USE_TLS=config.mail_use_tls,
        MAIL_USE_SSL=config.mail_use_ssl,
        MAIL_USERNAME=config.mail_username or None,
        MAIL_PASSWORD=config.mail_password or None,
        MAIL_DEFAULT_SENDER=config.mail_sender,
    )
