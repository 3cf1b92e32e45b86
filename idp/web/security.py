"""Security headers, server-side sessions and the CSRF token on every page."""

from __future__ import annotations

from flask import Flask, Response

from idp.config import Config
from idp.db import db
from idp.samlkit.headers import add_security_headers
from idp.security.lifetimes import session_lifetimes
from idp.security.sessions import DatabaseSessionInterface
from idp.web.forms import FormRequest

# Only our own scripts, styles and images; no framing by anyone (clickjacking); forms post only
# to us. Referrer: no-referrer, since activation and reset links carry their token in the path.
CONTENT_SECURITY_POLICY = ("default-src 'self'; img-src 'self' data:; style-src 'self'; "
                           "script-src 'self'; object-src 'none'; base-uri 'none'; "
                           "form-action 'self'; frame-ancestors 'none'")


def init_app(app: Flask, config: Config) -> None:
    # Flask-WTF's "SSL strict" mode demands a same-origin Referer on every https POST, but our
    # Referrer-Policy: no-referrer tells browsers to send none: every form would fail with 400
    # in production. The check adds nothing here: the CSRF token lives in the server-side
    # session, and the __Host- cookie cannot be planted from http or from a subdomain.
    app.config["WTF_CSRF_SSL_STRICT"] = False
    # Form bytes that are not UTF-8 must reach the field checks as such, not as literal text.
    app.request_class = FormRequest
    app.session_interface = DatabaseSessionInterface(db, session_lifetimes(config))

    @app.after_request
    def _security_headers(response: Response) -> Response:
        return add_security_headers(response, CONTENT_SECURITY_POLICY, config.uses_https)
