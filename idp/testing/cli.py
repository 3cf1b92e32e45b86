"""``servicekonto persona …`` and ``servicekonto testing …``: the workbench on the command line.

The same services as the test-control API (idp/testing/citizens.py, clock_store.py, loading.py).
Both groups refuse to work in production, with a message that says why.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict
from datetime import UTC, datetime
from functools import wraps
from typing import Any, TypeVar, cast

import click
from flask import current_app
from flask.cli import with_appcontext

from idp.container import app_parts
from idp.db import db
from idp.security.throttle import Throttle
from idp.testing import citizens, clock_store, loading, records
from idp.testing.errors import WorkbenchError
from idp.testing.personas import PersonaError, load_personas, persona_spec
from idp.testing.tracer import MESSAGES_MAX, traced_messages

F = TypeVar("F", bound=Callable[..., Any])

PRODUCTION_REFUSAL = ("Die QA-Werkbank (Personas, Test-Schnittstelle) gibt es nur im "
                      "Entwicklungsmodus (IDP_ENV=development); dieses Servicekonto läuft im "
                      "Produktionsmodus.")


def development_only(command: F) -> F:
    """Run ``command`` in the app context of a development IdP; refuse in production, and turn
    the workbench's refusals into a message and exit code 1."""

    @with_appcontext
    @wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if not current_app.config["SERVICEKONTO"].is_development:
            raise click.ClickException(PRODUCTION_REFUSAL)
        with refusals_as_messages():
            return command(*args, **kwargs)

    return cast(F, wrapper)


@contextmanager
def refusals_as_messages() -> Iterator[None]:
    try:
        yield
    except (WorkbenchError, PersonaError) as error:
        lines = [str(error)]
        if isinstance(error, WorkbenchError):
            lines += [f"  {field}: {message}" for field, messages in error.fields.items()
                      for message in messages]
        raise click.ClickException("\n".join(lines)) from None


def _services() -> Any:
    from idp.web.context import services

    return services()


def _throttle() -> Throttle:
    throttle: Throttle = _services().throttle(db.session)
    return throttle


# --- personas ------------------------------------------------------------------------------

@click.group(help="Personas (Testbürger aus policies/personas/) verwalten.")
def persona() -> None:
    pass


@persona.command("list", help="Personas auflisten (und ihre Dateien prüfen).")
@development_only
def persona_list() -> None:
    services = _services()
    for found in load_personas(services.config.policy_dir, services.policy):
        spec = found.spec
        click.echo(f"{found.name}\t{spec.username}\t{citizens.trust_class_ref(spec.trust_level)}"
                   f"\t{found.description}")


@persona.command("load", help="Personas als Konten anlegen (alle oder die genannten); "
                              "vorhandene bleiben unverändert.")
@click.argument("names", nargs=-1)
@click.option("--replace", is_flag=True,
              help="Vorhandene Konten der Personas löschen und neu anlegen.")
@development_only
def persona_load(names: tuple[str, ...], replace: bool) -> None:
    services = _services()
    personas = load_personas(services.config.policy_dir, services.policy, names)
    results = loading.load_personas(services.accounts(db.session), _throttle(), personas,
                                    replace)
    for result in results:
        click.echo(result.line())
    if any(result.outcome is loading.Outcome.FAILED for result in results):
        raise click.ClickException("Nicht alle Personas konnten angelegt werden.")


# --- testing -------------------------------------------------------------------------------

@click.group(help="Testdaten und Uhr des IdP steuern (wie die Test-Schnittstelle "
                  "/testing/api/).")
def testing() -> None:
    pass


@testing.group(help="Testbürger anlegen und löschen.")
def citizen() -> None:
    pass


@citizen.command("create", help="Konto anlegen: aus einer Persona oder aus Angaben (was fehlt, "
                                "wird erfunden).")
@click.option("--persona", "persona_name", help="Name einer Persona, z. B. erika.")
@click.option("--username")
@click.option("--password")
@click.option("--email")
@click.option("--given-name")
@click.option("--surname")
@click.option("--birth-name")
@click.option("--salutation", type=click.Choice(["herr", "frau", "divers", "keine_angabe"]))
@click.option("--trust-level", type=click.Choice([f"STORK-QAA-Level-{n}" for n in range(1, 5)]))
@click.option("--activated/--not-activated", default=None,
              help="Aktiviert (Vorgabe) oder mit wartender Aktivierungsmail.")
@development_only
def citizen_create(persona_name: str | None, activated: bool | None, **fields: str | None) -> None:
    if persona_name:
        if any(value is not None for value in fields.values()):
            raise click.UsageError("Mit --persona ist nur noch --activated/--not-activated "
                                   "erlaubt.")
        services = _services()
        spec = persona_spec(services.config.policy_dir, services.policy, persona_name,
                            activated)
    else:
        given = {name: value for name, value in fields.items() if value is not None}
        spec = citizens.spec_from_fields(given | ({} if activated is None
                                                  else {"activated": activated}))
    created = citizens.create_citizen(_services().accounts(db.session), _throttle(), spec)
    for key, value in asdict(created).items():
        click.echo(f"{key}: {value}")


@citizen.command("delete", help="Konto löschen wie „Konto löschen“ (mit Zustimmungen, "
                                "Sitzungen, Mails).")
@click.argument("username")
@development_only
def citizen_delete(username: str) -> None:
    citizens.delete_citizen(_services().accounts(db.session), _throttle(), username)
    click.echo(f"Konto {username} gelöscht.")


@testing.command("mails", help="Die Mails an eine Adresse, neueste zuerst.")
@click.argument("address")
@click.option("--limit", default=10, show_default=True, type=click.IntRange(1, 200))
@click.option("--json", "as_json", is_flag=True, help="Als JSON, wie GET /testing/api/mails.")
@development_only
def mails(address: str, limit: int, as_json: bool) -> None:
    found = records.mails_to_address(db.session, address, limit)
    if as_json:
        click.echo(json.dumps({"mails": found}, ensure_ascii=False, indent=2))
        return
    for mail in found:
        click.echo(f"{mail['created_at']}  {mail['status']}  {mail['subject']}")
        for link in mail["links"]:
            click.echo(f"    {link}")
        if mail["error"]:
            click.echo(f"    Fehler: {mail['error']}")


@testing.command("messages", help="Die SAML-Nachrichten des Tracers, neueste zuerst.")
@click.option("--portal", help="Nur die Nachrichten dieses Portals (Name, z. B. dueren).")
@click.option("--limit", default=20, show_default=True, type=click.IntRange(1, MESSAGES_MAX))
@click.option("--json", "as_json", is_flag=True,
              help="Als JSON, wie GET /testing/api/saml/messages.")
@development_only
def messages(portal: str | None, limit: int, as_json: bool) -> None:
    found = traced_messages(db.session, app_parts().saml.registry, portal, limit)
    if as_json:
        click.echo(json.dumps({"messages": found}, ensure_ascii=False, indent=2))
        return
    for message in found:
        arrow = "→ IdP" if message["direction"] == "in" else "IdP →"
        click.echo(f"{message['time']}  {arrow}  {message['kind']} ({message['binding']})  "
                   f"{message['portal'] or message['portal_entity_id'] or '-'}")
        click.echo(f"    Signatur: {message['signature']}")
        click.echo(f"    Entscheidung: {message['decision']}")
        if message["fault"]:
            click.echo(f"    Eingebauter Fehler: {message['fault']}")


@testing.group("clock", help="Die Uhr des IdP verstellen (für alle Worker).")
def clock_group() -> None:
    pass


def _show(state: clock_store.ClockState) -> None:
    click.echo(f"Verschiebung: {state.offset_seconds} s; Zeit des IdP: "
               f"{state.now:%Y-%m-%d %H:%M:%S} UTC")


@clock_group.command("get", help="Verschiebung und Zeit des IdP anzeigen.")
@development_only
def clock_get() -> None:
    _show(clock_store.current(db.session))


# Negative offsets ("-3600") are arguments, not options.
@clock_group.command("set", help="Die Uhr um SECONDS Sekunden vorstellen (negativ: zurück).",
                     context_settings={"ignore_unknown_options": True})
@click.argument("seconds", type=int)
@development_only
def clock_set(seconds: int) -> None:
    _show(clock_store.set_offset(db.session, seconds, datetime.now(UTC)))


@clock_group.command("reset", help="Zurück zur Uhr des Rechners.")
@development_only
def clock_reset() -> None:
    _show(clock_store.reset_offset(db.session))


@testing.group(help="Zustimmungen eines Kontos.")
def consents() -> None:
    pass


@consents.command("reset", help="Alle Zustimmungen widerrufen: jedes Portal fragt erneut.")
@click.argument("username")
@development_only
def consents_reset(username: str) -> None:
    from idp.clock import utcnow

    revoked = citizens.revoke_consents(db.session, username, utcnow())
    click.echo(f"{revoked} Zustimmung(en) von {username} widerrufen.")


@testing.command("unlock", help="Anmeldeverzögerung eines Kontos aufheben.")
@click.argument("username")
@development_only
def unlock(username: str) -> None:
    citizens.unlock(db.session, _throttle(), username)
    click.echo(f"Anmeldeverzögerung für {username} aufgehoben.")


@testing.group(help="Sitzungen eines Kontos.")
def sessions() -> None:
    pass


@sessions.command("end", help="Alle Sitzungen des Kontos beenden.")
@click.argument("username")
@development_only
def sessions_end(username: str) -> None:
    ended = citizens.end_sessions(db.session, username)
    click.echo(f"{ended} Sitzung(en) von {username} beendet.")
