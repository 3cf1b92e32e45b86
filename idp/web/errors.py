"""German error pages: every failure a citizen can cause ends on one, with a 4xx status."""

from __future__ import annotations

import logging

from flask import Flask, render_template
from flask.globals import request_ctx
from flask_wtf.csrf import CSRFError
from markupsafe import escape
from sqlalchemy.exc import OperationalError
from werkzeug.exceptions import HTTPException, InternalServerError

from idp.accounts.passwords import HashingBusy
from idp.config import Config

log = logging.getLogger(__name__)

MESSAGES: dict[int, tuple[str, str]] = {
    400: ("Ungültige Anfrage",
          "Ihre Anfrage konnte nicht verarbeitet werden, weil sie unvollständig oder fehlerhaft "
          "war. Bitte rufen Sie die Seite erneut auf und versuchen Sie es noch einmal."),
    403: ("Zugriff verweigert", "Sie haben keine Berechtigung, diese Seite aufzurufen."),
    404: ("Seite nicht gefunden",
          "Die aufgerufene Seite gibt es nicht. Bitte prüfen Sie die Adresse."),
    405: ("Aktion nicht möglich", "Diese Aktion ist auf dieser Seite nicht möglich."),
    413: ("Anfrage zu groß",
          "Ihre Anfrage ist zu groß. Bitte kürzen Sie Ihre Eingaben und versuchen Sie es erneut."),
    429: ("Zu viele Anfragen", "Bitte warten Sie einen Moment und versuchen Sie es dann erneut."),
    500: ("Technischer Fehler",
          "Leider ist ein technischer Fehler aufgetreten. Bitte versuchen Sie es später erneut."),
    503: ("Dienst nicht verfügbar",
          "Das Servicekonto ist gerade nicht erreichbar. Bitte versuchen Sie es später erneut."),
}

OVERLOADED_MESSAGE = ("Das Servicekonto ist zurzeit überlastet. Bitte versuchen Sie es in einigen "
                      "Sekunden erneut.")
# What an overloaded IdP asks clients to wait: a few hashes' time, not minutes.
OVERLOADED_RETRY_SECONDS = 10

CSRF_MESSAGE = ("Das Formular ist abgelaufen oder wurde nicht von dieser Seite gesendet. Bitte "
                "laden Sie die Seite neu und senden Sie das Formular noch einmal.")


def error_page(status: int, message: str | None = None) -> tuple[str, int]:
    title, default = MESSAGES.get(status, MESSAGES[400 if status < 500 else 500])
    return render_template("idp/error.html", title=title, message=message or default,
                           status=status), status


def database_unavailable(error: BaseException,
                         layout: bool = True) -> tuple[str, int, dict[str, str]]:
    """PostgreSQL down or restarting: nothing the citizen did, so "later" (503, which the proxy
    and health checks understand), not "technical error". Without the layout when the page
    cannot be rendered (it needs the server-side session, which is in the database)."""
    log.error("database unavailable", exc_info=error)
    headers = {"Retry-After": "30"}
    if layout:
        try:
            page, status = error_page(503)
            return page, status, headers
        except OperationalError:
            pass
    title, message = (escape(text) for text in MESSAGES[503])
    return (f'<!doctype html>\n<html lang="de"><meta charset="utf-8"><title>{title}</title>'
            f"<h1>{title}</h1><p>{message}</p></html>\n", 503, headers)


def init_app(app: Flask) -> None:
    config: Config = app.config["SERVICEKONTO"]

    @app.errorhandler(CSRFError)
    def _csrf(_error: CSRFError) -> tuple[str, int]:
        return error_page(400, CSRF_MESSAGE)

    @app.errorhandler(HTTPException)
    def _http(error: HTTPException) -> tuple[str, int, list[tuple[str, str]]] | HTTPException:
        if error.code is None or error.code < 400:
            return error  # redirects and the like are not errors
        if request_ctx.url_adapter is None:
            # Flask refused the Host header (TRUSTED_HOSTS) before it could route, so the page's
            # links could not be built and the 400 became a 500. Build them for our own host.
            request_ctx.url_adapter = app.url_map.bind(
                config.base_host, url_scheme="https" if config.uses_https else "http")
        page, status = error_page(error.code)
        # Keep the headers the error itself defines (Allow on 405, Retry-After on 429).
        headers = [(name, value) for name, value in error.get_headers()
                   if name.lower() != "content-type"]
        return page, status, headers

    app.register_error_handler(OperationalError, database_unavailable)

    @app.errorhandler(HashingBusy)
    def _overloaded(_error: HashingBusy) -> tuple[str, int, dict[str, str]]:
        # Every argon2 slot stayed taken (idp.accounts.passwords.HashingSlots): nothing was
        # decided or written, so "later" is the honest answer, and the memory stays bounded.
        log.warning("argon2 slots all taken: request answered 503")
        page, status = error_page(503, OVERLOADED_MESSAGE)
        return page, status, {"Retry-After": str(OVERLOADED_RETRY_SECONDS)}

    @app.errorhandler(InternalServerError)
    def _internal(error: InternalServerError) -> tuple[str, int] | tuple[str, int, dict[str, str]]:
        if isinstance(error.original_exception, OperationalError):
            # Only failures before the view get here (opening the session): no layout.
            return database_unavailable(error.original_exception, layout=False)
        log.error("unhandled error", exc_info=error.original_exception)
        return error_page(500)
