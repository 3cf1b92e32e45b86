"""The ``servicekonto`` command line (a Flask CLI group on :func:`idp.create_app`)."""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
from collections.abc import Mapping
from datetime import timedelta
from importlib.metadata import entry_points
from pathlib import Path
from types import FrameType
from typing import Any

import click
from flask import Flask, current_app
from flask.cli import FlaskGroup, with_appcontext
from sqlalchemy import select

from idp.broker.cli import upstream
from idp.config import Config, ConfigError, load_config
from idp.config_cli import ENV_FILE_OPTION, config_group
from idp.portals.cli import portal
from idp.saml.cli import keys
from idp.testing.cli import persona, testing
from idp.testing.fault_cli import check_portal_command, fault_group

log = logging.getLogger(__name__)


def _create_app(*_args: Any) -> Flask:
    return _app_or_exit()


def _app_or_exit(env: Mapping[str, str] | None = None) -> Flask:
    """The IdP from ``env`` (default: os.environ); exit code 2 and a clear message if it cannot
    start."""
    from idp import create_app

    try:
        return create_app(env=env)
    except ConfigError as error:
        # A clear message and exit code 2 instead of a traceback: the operator must act.
        click.echo(f"Servicekonto kann nicht starten: {error}", err=True)
        sys.exit(2)


# Commands of other packages (the demo launcher in sp_client), named in their distribution's
# entry points, so that idp never imports them by name.
PLUGIN_GROUP = "servicekonto.commands"


class ServicekontoGroup(FlaskGroup):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(create_app=_create_app, add_default_commands=False,
                         add_version_option=False, load_dotenv=False, set_debug_flag=False,
                         **kwargs)
        # Flask's --env-file, but remembering which names the file set (`config show`).
        self.params = [ENV_FILE_OPTION if param.name == "env_file" else param
                       for param in self.params]

    # Every command is on this group or a plugin entry point; Flask would load the app merely
    # to look for more, so `servicekonto --help` failed on a database without schema.
    def list_commands(self, ctx: click.Context) -> list[str]:
        plugins = {entry.name for entry in entry_points(group=PLUGIN_GROUP)}
        return sorted(set(click.Group.list_commands(self, ctx)) | plugins)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        command = click.Group.get_command(self, ctx, name)
        if command is None:
            for entry in entry_points(group=PLUGIN_GROUP, name=name):
                loaded: click.Command = entry.load()
                return loaded
        return command


@click.group(cls=ServicekontoGroup, help="Servicekonto: SAML-Identitätsprovider für Bürger.")
@click.version_option(package_name="servicekonto", prog_name="servicekonto",
                      message="%(prog)s %(version)s", help="Version anzeigen und beenden.")
def main() -> None:
    pass


main.add_command(config_group)
main.add_command(keys)
main.add_command(portal)
main.add_command(upstream)
main.add_command(persona)
main.add_command(testing)
testing.add_command(fault_group)
testing.add_command(check_portal_command)


# --- database ------------------------------------------------------------------------------

@main.group(help="Datenbank verwalten.")
def db() -> None:
    pass


# No app context: the app refuses to start on a database without the current schema.
@db.command("upgrade", help="Datenbankschema auf den neuesten Stand bringen.",
            with_appcontext=False)
@click.option("--revision", default="head", show_default=True)
def db_upgrade(revision: str) -> None:
    from idp import schema

    config = _config_or_fail()
    config.instance_path.mkdir(parents=True, exist_ok=True)
    schema.upgrade(config.database_url, revision)
    click.echo(f"Datenbankschema ist auf Stand {schema.head_revision()}.")


@db.command("current", help="Stand des Datenbankschemas anzeigen (und ob es der neueste ist).",
            with_appcontext=False)
def db_current() -> None:
    from sqlalchemy import create_engine

    from idp import schema

    engine = create_engine(_config_or_fail().database_url)
    try:
        current = schema.current_revision(engine)
    finally:
        engine.dispose()
    head = schema.head_revision()
    if current == head:
        click.echo(f"{current} (neuester Stand)")
    else:
        click.echo(f"{current or 'kein Schema'} (neuester Stand: {head}; "
                   "servicekonto db upgrade bringt es dorthin)")


@db.command("history", help="Alle Migrationen des Datenbankschemas auflisten, die neueste "
                            "zuerst.", with_appcontext=False)
def db_history() -> None:
    from idp import schema

    for revision, title in schema.migrations():
        click.echo(f"{revision}  {title}")


def _config_or_fail() -> Config:
    """The settings, for commands that need no app (the schema may not be there yet)."""
    try:
        return load_config()
    except ConfigError as error:
        raise click.ClickException(str(error)) from None


# --- metadata ------------------------------------------------------------------------------

@main.command("metadata", help="Die signierten SAML-Metadaten des IdP ausgeben (dieselben wie "
                               "unter /saml/metadata), für Portale ohne Zugang zum IdP.")
@click.option("--output", "-o", type=click.Path(dir_okay=False, path_type=Path),
              help="In diese Datei schreiben statt auf die Standardausgabe.")
@with_appcontext
def metadata(output: Path | None) -> None:
    from idp.container import app_parts

    document = app_parts().saml.metadata_xml()
    if output is None:
        click.echo(document)
    else:
        output.write_text(document, encoding="utf-8")
        click.echo(f"Metadaten in {output} geschrieben.", err=True)


# --- running -------------------------------------------------------------------------------

# The development server: without IDP_ENV it runs in development mode (choosing this command is
# choosing development); an explicit IDP_ENV=production is honoured.
@main.command("run", help="IdP mit dem Entwicklungsserver starten (ohne IDP_ENV im "
                          "Entwicklungsmodus); sendet Mails im Hintergrund.",
              with_appcontext=False)
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, show_default=True, type=int)
def run(host: str, port: int) -> None:
    from idp.mail.sender import start_background_sender
    from idp.observability.management import serve_metrics

    app = _app_or_exit({"IDP_ENV": "development", **os.environ})
    start_background_sender(app)
    config = app.config["SERVICEKONTO"]
    if serve_metrics(app) is not None:
        click.echo(f"Metriken auf http://{config.metrics_host}:{config.metrics_port}/metrics")
    mode = "Entwicklungsmodus" if config.is_development else "Produktionsmodus"
    click.echo(f"Servicekonto läuft auf {config.base_url} ({mode})")
    if config.is_development and config.uses_dev_mailbox:
        click.echo(f"Entwicklungs-Postfach: {config.base_url}/entwicklung/postfach/"
                   + ("" if config.development_remote else
                      " (nur von diesem Rechner aus; andere: IDP_DEVELOPMENT_REMOTE=true)"))
    # Not app.run(): Flask ignores it inside a Flask CLI command (FLASK_RUN_FROM_CLI).
    from werkzeug.serving import run_simple

    run_simple(host, port, app, use_reloader=False, use_debugger=False, threaded=True)


# --- mail ----------------------------------------------------------------------------------

@main.group(help="Mails aus dem Postausgang versenden.")
def mail() -> None:
    pass


def stop_requested() -> threading.Event:
    """Set by SIGTERM (``docker stop``, systemd) or Ctrl-C: a long-running command finishes the
    round it is in and ends, instead of dying in the middle of it (a mail handed to the SMTP
    server but not yet marked as sent would go out a second time after the restart)."""
    stop = threading.Event()

    def request_stop(_signal: int, _frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    return stop


@mail.command("send", help="Fällige Mails des Postausgangs versenden.")
@click.option("--forever", is_flag=True, help="Nicht beenden, sondern laufend versenden.")
@click.option("--interval", default=2.0, show_default=True, help="Sekunden zwischen Durchläufen.")
@with_appcontext
def mail_send(forever: bool, interval: float) -> None:
    from idp.mail.sender import run_sender

    app = current_app._get_current_object()  # type: ignore[attr-defined]
    stop = stop_requested() if forever else None
    sent, failed = run_sender(app, forever=forever, interval=interval, stop=stop)
    click.echo(f"{sent} Mail(s) versendet, {failed} Fehlversuch(e).")


# --- maintenance ---------------------------------------------------------------------------

@main.command("purge", help="Abgelaufene Registrierungen, Sitzungen, alte Mails und "
                            "liegengebliebene „vergessen“-Anfragen löschen.")
@click.option("--forever", is_flag=True,
              help="Nicht beenden, sondern in Abständen wiederholen (statt cron).")
@click.option("--interval", default=3600.0, show_default=True,
              help="Sekunden zwischen Durchläufen.")
@with_appcontext
def purge(forever: bool, interval: float) -> None:
    from idp.db import db as database

    stop = stop_requested() if forever else threading.Event()
    while True:
        try:
            click.echo(_purge_once())
        except Exception:
            if not forever:
                raise
            # The database is away: the next round tries again; this one ends cleanly.
            log.exception("purge failed; trying again in %.0f s", interval)
        finally:
            database.release()
        if not forever or stop.wait(interval):
            return


def _purge_once() -> str:
    from idp.accounts.forgotten import purge_unanswered_requests
    from idp.accounts.registration import purge_expired_registrations
    from idp.db import db as database
    from idp.mail.outbox import purge_finished_mails
    from idp.saml.state import purge_saml_state
    from idp.security.sessions import purge_expired_sessions
    from idp.security.throttle import purge_ended_counters
    from idp.web.context import services

    ctx = services().accounts(database.session)
    registrations = purge_expired_registrations(ctx)
    config = services().config
    with database.transaction() as session:
        sessions = purge_expired_sessions(session, ctx.now,
                                          timedelta(minutes=config.session_idle_minutes))
        mails = purge_finished_mails(session, ctx.now, timedelta(days=config.mail_keep_days))
        requests = purge_unanswered_requests(session, ctx.now)
        counters = purge_ended_counters(session, ctx.now, max(
            config.form_limits.longest_window,
            timedelta(minutes=config.login_throttle_window_minutes)))
    saml_rows = purge_saml_state(database.session, ctx.now)
    return (f"{registrations} abgelaufene Registrierung(en), {sessions} Sitzung(en), "
            f"{mails} alte Mail(s), {requests} nie beantwortete „vergessen“-Anfrage(n) und "
            f"{counters} abgelaufene Zähler (Anmeldeversuche, Formulare) "
            f"gelöscht; {saml_rows} abgelaufene SAML-Einträge "
            "(Anfrage-IDs, offene An- und Abmeldungen, Portal-Anmeldungen beendeter "
            "Sitzungen) entfernt.")


# --- users ---------------------------------------------------------------------------------

@main.group(help="Bürgerkonten verwalten.")
def user() -> None:
    pass


def _find(username: str) -> Any:
    from idp.accounts.identity import username_key
    from idp.db import db as database
    from idp.web.context import services

    citizen = services().accounts(database.session).citizen_by_username_key(
        username_key(username))
    if citizen is None:
        raise click.ClickException(f"Kein Konto mit dem Benutzernamen {username!r}.")
    return citizen


@user.command("create", help="Konto anlegen (sofort aktiv, ohne Aktivierungsmail).")
@click.option("--username", required=True)
@click.option("--email", required=True)
@click.option("--given-name", required=True)
@click.option("--surname", required=True)
@click.option("--birth-name", default="")
@click.option("--salutation", default="keine_angabe",
              type=click.Choice(["herr", "frau", "divers", "keine_angabe"]))
@click.option("--password", prompt=True, hide_input=True, confirmation_prompt=True)
@with_appcontext
def user_create(username: str, email: str, given_name: str, surname: str, birth_name: str,
                salutation: str, password: str) -> None:
    from idp.accounts.admin import create_active_citizen
    from idp.accounts.context import FormErrors
    from idp.db import db as database
    from idp.web.context import services

    try:
        citizen = create_active_citizen(services().accounts(database.session), {
            "username": username, "email": email, "given_name": given_name,
            "surname": surname, "birth_name": birth_name, "salutation": salutation,
            "password": password, "password_confirm": password, "privacy_accepted": "yes"})
    except FormErrors as error:
        messages = [m for ms in error.errors.values() for m in ms]
        raise click.ClickException("\n".join(messages)) from None
    click.echo(f"Konto {citizen.username} angelegt und aktiviert.")


@user.command("list", help="Konten auflisten.")
@with_appcontext
def user_list() -> None:
    from idp.accounts.models import Citizen
    from idp.db import db as database

    for citizen in database.session.scalars(select(Citizen).order_by(Citizen.id)):
        click.echo(f"{citizen.username}\t{citizen.email}\t{citizen.status}\t"
                   f"{citizen.created_at:%Y-%m-%d %H:%M}")


@user.command("activate", help="Ausstehende Registrierung ohne Link aktivieren.")
@click.argument("username")
@with_appcontext
def user_activate(username: str) -> None:
    from idp.accounts.admin import activate_without_link
    from idp.db import db as database
    from idp.web.context import services

    citizen = _find(username)
    activate_without_link(services().accounts(database.session), citizen)
    click.echo(f"Konto {citizen.username} ist aktiv.")


@user.command("unlock", help="Anmeldeverzögerung eines Kontos aufheben.")
@click.argument("username")
@with_appcontext
def user_unlock(username: str) -> None:
    from idp.db import db as database
    from idp.web.context import services

    citizen = _find(username)
    services().throttle(database.session).clear_account(citizen.username_key)
    click.echo(f"Anmeldeverzögerung für {citizen.username} aufgehoben.")


@user.command("delete", help="Konto mit allen persönlichen Daten löschen.")
@click.argument("username")
@click.option("--yes", is_flag=True, help="Ohne Rückfrage löschen.")
@with_appcontext
def user_delete(username: str, yes: bool) -> None:
    from idp.accounts.admin import delete_citizen
    from idp.db import db as database
    from idp.web.context import services

    citizen = _find(username)
    if not yes:
        click.confirm(f"Konto {citizen.username} wirklich löschen?", abort=True)
    delete_citizen(services().accounts(database.session), citizen)
    click.echo(f"Konto {username} gelöscht.")


@user.command("export", help="Alle Daten eines Kontos als JSON ausgeben (Auskunft nach "
                             "Art. 15 DSGVO; dieselbe Datei wie „Meine Daten herunterladen“).")
@click.argument("username")
@click.option("--output", type=click.Path(dir_okay=False), help="In diese Datei schreiben "
              "(nur für den Eigentümer lesbar) statt auf die Standardausgabe.")
@with_appcontext
def user_export(username: str, output: str | None) -> None:
    from idp.accounts.export import as_json, export
    from idp.clock import utcnow
    from idp.container import app_parts
    from idp.db import db as database

    text = as_json(export(database.session, _find(username), utcnow(),
                          app_parts().portal_names))
    if output is None:
        click.echo(text, nl=False)
        return
    # Personal data: a new file is readable by its owner alone, whatever the umask allows.
    with os.fdopen(os.open(output, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w",
                   encoding="utf-8") as file:
        file.write(text)
    click.echo(f"Daten von {username} in {output} geschrieben.", err=True)


