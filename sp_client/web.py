"""What every portal page shares: German error pages, security headers, the auto-POST form."""

from __future__ import annotations

import logging
from urllib.parse import urlsplit

from flask import Flask, Response, current_app, render_template, request
from flask.globals import request_ctx
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import BadRequest, HTTPException, InternalServerError

from idp.samlkit.headers import add_security_headers
from sp_client.saml.provider import Outgoing, ServiceProvider
from sp_client.settings import PortalSettings

log = logging.getLogger(__name__)

# German error texts, worded as the IdP's pages word them.
MESSAGES: dict[int, tuple[str, str]] = {
    400: ("Ungültige Anfrage",
          "Ihre Anfrage konnte nicht verarbeitet werden, weil sie unvollständig oder fehlerhaft "
          "war. Bitte rufen Sie die Seite erneut auf und versuchen Sie es noch einmal."),
    404: ("Seite nicht gefunden",
          "Die aufgerufene Seite gibt es nicht. Bitte prüfen Sie die Adresse."),
    405: ("Aktion nicht möglich", "Diese Aktion ist auf dieser Seite nicht möglich."),
    413: ("Anfrage zu groß",
          "Ihre Anfrage ist zu groß. Bitte kürzen Sie Ihre Eingaben und versuchen Sie es erneut."),
    500: ("Technischer Fehler",
          "Leider ist ein technischer Fehler aufgetreten. Bitte versuchen Sie es später erneut."),
    503: ("Servicekonto.NRW nicht erreichbar",
          "Das Servicekonto.NRW ist gerade nicht erreichbar. Bitte versuchen Sie es in einigen "
          "Minuten erneut."),
}
CSRF_MESSAGE = ("Das Formular ist abgelaufen oder wurde nicht von dieser Seite gesendet. Bitte "
                "laden Sie die Seite neu und senden Sie das Formular noch einmal.")
CONTENT_SECURITY_POLICY = ("default-src 'self'; img-src 'self' data:; style-src 'self'; "
                           "script-src 'self'; object-src 'none'; base-uri 'none'; "
                           "form-action 'self'; frame-ancestors 'none'")


def settings() -> PortalSettings:
    portal_settings: PortalSettings = current_app.config["PORTAL"]
    return portal_settings


def provider() -> ServiceProvider:
    service_provider: ServiceProvider = current_app.extensions["service_provider"]
    return service_provider


def form_fields(*names: str) -> dict[str, str]:
    """The form's value of each named field ("" if absent); a field sent twice is a 400 (a
    second value must not slip past a check that read the first)."""
    values = {}
    for name in names:
        given = request.form.getlist(name)
        if len(given) > 1:
            raise BadRequest()
        values[name] = given[0] if given else ""
    return values


def error_page(status: int, message: str | None = None, title: str | None = None,
               ) -> tuple[str, int]:
    default_title, default_message = MESSAGES.get(status, MESSAGES[400 if status < 500 else 500])
    return render_template("portal/error.html", title=title or default_title,
                           message=message or default_message, status=status), status


def auto_post(outgoing: Outgoing, heading: str, explanation: str) -> Response:
    """A form that sends a SAML message to the IdP by POST (by script, or by the button)."""
    response = Response(render_template("portal/saml_post.html", outgoing=outgoing,
                                        heading=heading, explanation=explanation))
    # The form goes to the IdP: allow exactly that origin as a form target.
    target = urlsplit(outgoing.url)
    response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY.replace(
        "form-action 'self'", f"form-action 'self' {target.scheme}://{target.netloc}")
    return response


def init_app(app: Flask) -> None:
    uses_https = app.config["PORTAL"].uses_https

    @app.errorhandler(CSRFError)
    def _csrf(_error: CSRFError) -> tuple[str, int]:
        return error_page(400, CSRF_MESSAGE)

    @app.errorhandler(HTTPException)
    def _http(error: HTTPException) -> tuple[str, int] | HTTPException:
        if error.code is None or error.code < 400:
            return error
        if request_ctx.url_adapter is None:  # the Host header was refused before routing
            request_ctx.url_adapter = app.url_map.bind(app.config["PORTAL"].host)
        return error_page(error.code)

    @app.errorhandler(InternalServerError)
    def _internal(error: InternalServerError) -> tuple[str, int]:
        log.error("unhandled error", exc_info=error.original_exception)
        return error_page(500)

    @app.after_request
    def _security_headers(response: Response) -> Response:
        return add_security_headers(response, CONTENT_SECURITY_POLICY, uses_https)
