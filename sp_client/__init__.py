"""Demo relying portals of the Servicekonto: "Bürgerportal der Stadt Düren" and "mags Bürgerportal".

Each is a small Flask app and a pysaml2 service provider of its own (entity id, keys, database,
colours), run with ``python -m sp_client --profile dueren|mags``.
"""

from __future__ import annotations

import threading
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from flask import Flask

from idp.samlkit.bindings import MAX_ENCODED_BYTES
from sp_client.database import utcnow
from sp_client.files import templates_folder
from sp_client.settings import PortalSettings, build_settings

HOUSEKEEPING_EVERY = timedelta(minutes=10)
# A SAML message is at most MAX_ENCODED_BYTES of base64; in a form, "+" and "/" (together one
# character in 32) take three bytes each, and RelayState comes along: half as much again.
MAX_REQUEST_BYTES = MAX_ENCODED_BYTES * 3 // 2


def create_app(profile: str, *, idp_metadata: str = "", **options: Any) -> Flask:
    """Build one portal. ``idp_metadata`` is the IdP's metadata URL or file; ``options`` are
    those of :func:`sp_client.settings.build_settings` (base_url, instance_path, …).

    Raises :class:`sp_client.settings.PortalConfigError` with a German message when a setting is
    wrong.
    """
    settings = build_settings(profile, idp_metadata=idp_metadata, **options)
    app = Flask(__name__, template_folder=str(templates_folder()),
                static_folder=str(Path(__file__).parent / "static"),
                instance_path=str(settings.instance_path))
    _configure_flask(app, settings)

    from sp_client import web
    from sp_client.extensions import csrf, portal_db
    from sp_client.models import PortalBase
    from sp_client.register import seed_register
    from sp_client.saml.provider import ServiceProvider
    from sp_client.sessions import DatabaseSessionInterface

    portal_db.init_app(app, settings.database_url)
    engine = portal_db.bound(app).engine
    PortalBase.metadata.create_all(engine)
    if settings.profile.kassenzeichen:
        with portal_db.bound(app).sessionmaker() as session:
            seed_register(session)
    app.extensions["service_provider"] = ServiceProvider(settings)
    app.session_interface = DatabaseSessionInterface(portal_db)
    csrf.init_app(app)
    web.init_app(app)
    _housekeeping(app)

    from sp_client.views import portal

    app.register_blueprint(portal)
    if settings.profile.kassenzeichen:
        from sp_client.kassenzeichen_views import kassenzeichen

        app.register_blueprint(kassenzeichen)

    @app.context_processor
    def _portal() -> dict[str, Any]:
        return {"profile": settings.profile, "portal_settings": settings}

    return app


def _configure_flask(app: Flask, settings: PortalSettings) -> None:
    app.config.update(
        PORTAL=settings,
        SECRET_KEY=settings.secret_key,
        # Portals and the IdP may share a host name (127.0.0.1 in the demo) and cookies do
        # not tell ports apart: each portal's cookie has a name of its own.
        SESSION_COOKIE_NAME=("__Host-" if settings.uses_https else "")
        + f"portal-{settings.profile.name}",
        SESSION_COOKIE_SECURE=settings.uses_https,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        PREFERRED_URL_SCHEME="https" if settings.uses_https else "http",
        # Anything but our own host in the Host header gets 400 (no host header poisoning).
        TRUSTED_HOSTS=[settings.host],
        # The largest body a portal takes is a SAML message at the ACS or a SLO endpoint;
        # anything larger gets 413 before it is read.
        MAX_CONTENT_LENGTH=MAX_REQUEST_BYTES,
        MAX_FORM_MEMORY_SIZE=MAX_REQUEST_BYTES,
        MAX_FORM_PARTS=20,
        WTF_CSRF_TIME_LIMIT=None,  # the token lives as long as the server-side session
        # Referrer-Policy: no-referrer leaves no Referer for Flask-WTF's https check; the
        # token in the server-side session is what counts.
        WTF_CSRF_SSL_STRICT=False,
    )


def _housekeeping(app: Flask) -> None:
    """Drop expired sessions, requests and replay entries now and then (no extra process)."""
    from sp_client.extensions import portal_db
    from sp_client.saml.state import forget_old
    from sp_client.sessions import purge_expired_sessions

    lock = threading.Lock()
    next_run: list[datetime] = [utcnow()]

    @app.before_request
    def _tidy() -> None:
        now = utcnow()
        if now < next_run[0] or not lock.acquire(blocking=False):
            return
        try:
            next_run[0] = now + HOUSEKEEPING_EVERY
            with portal_db.bound(app).sessionmaker() as session:
                forget_old(session, now)
                purge_expired_sessions(session, now)
        finally:
            lock.release()
