"""``servicekonto testing fault …`` and ``servicekonto testing check-portal``: fault injection
and the portal checker on the command line (the same services as the test-control API).
:mod:`idp.cli` attaches both to the ``testing`` group."""

from __future__ import annotations

import json
import sys
from dataclasses import asdict
from pathlib import Path

import click

from idp.container import app_parts
from idp.db import db
from idp.portals.registry import Portal
from idp.testing import citizens, faults
from idp.testing.browser import WebBrowser
from idp.testing.checker import CheckerError, Credentials, Target, check_portal, table
from idp.testing.cli import _throttle, development_only
from idp.testing.portal_names import registered_portal
from idp.web.context import accounts


def _portal(name: str) -> Portal:
    return registered_portal(app_parts().saml.registry, name)


@click.group("fault", help="Fehler in die nächsten Antworten an ein Portal einbauen.")
def fault_group() -> None:
    pass


@fault_group.command("set", help="Die nächsten COUNT Anmeldungen am Portal bekommen FAULT.")
@click.option("--portal", "portal_name", required=True, help="Name des Portals (dueren, mags …)")
@click.option("--count", default=1, show_default=True, type=int)
@click.argument("fault")
@development_only
def fault_set(portal_name: str, fault: str, count: int) -> None:
    faults.set_fault(db.session, _portal(portal_name).entity_id, fault, count)
    click.echo(f"Die nächsten {count} Antwort(en) an {portal_name} tragen den Fehler {fault}.")


@fault_group.command("clear", help="Das Portal bekommt wieder richtige Antworten.")
@click.option("--portal", "portal_name", required=True)
@development_only
def fault_clear(portal_name: str) -> None:
    faults.clear_fault(db.session, _portal(portal_name).entity_id)
    click.echo(f"{portal_name} bekommt wieder richtige Antworten.")


@fault_group.command("list", help="Alle Fehler und was ein korrektes Portal mit ihnen tut.")
@development_only
def fault_list() -> None:
    for fault in faults.FAULTS.values():
        click.echo(f"{fault.name:<45} {fault.what}")
    names = {portal.entity_id: portal.name for portal in app_parts().saml.registry.portals()}
    for row in faults.waiting_faults(db.session):
        click.echo(f"wartet: {names.get(row.portal, row.portal)}: {row.fault} "
                   f"(noch {row.remaining})")


@click.command("check-portal", help="Prüfen, ob ein Portal jede fehlerhafte Antwort ablehnt "
                                      "(Exit 1, wenn es eine akzeptiert).")
@click.option("--portal", "portal_name", required=True, help="Name des Portals beim IdP")
@click.option("--start-url", required=True, help="Adresse, die die Anmeldung beim IdP startet")
@click.option("--logged-in-url", required=True, help="Seite, die nur mit Sitzung erscheint")
@click.option("--logged-in-text", default=None, help="Text, den nur diese Seite mit Sitzung zeigt")
@click.option("--fault", "only", multiple=True, help="Nur diese Fehler (mehrfach möglich)")
@click.option("--json", "json_file", type=click.Path(dir_okay=False, path_type=Path),
              help="Die Ergebnisse auch als JSON in diese Datei")
@development_only
def check_portal_command(portal_name: str, start_url: str, logged_in_url: str,
                         logged_in_text: str | None, only: tuple[str, ...],
                         json_file: Path | None) -> None:
    portal = _portal(portal_name)
    chosen = [faults.FAULTS[name] for name in only if name in faults.FAULTS] if only \
        else list(faults.FAULTS.values())
    if unknown := [name for name in only if name not in faults.FAULTS]:
        raise click.ClickException("Unbekannte Fehler: " + ", ".join(unknown))
    ctx, throttle = accounts(), _throttle()
    created = citizens.create_citizen(ctx, throttle, citizens.generated_spec({}))

    def inject(fault: str | None) -> None:
        if fault is None:
            faults.clear_fault(db.session, portal.entity_id)
        else:
            faults.set_fault(db.session, portal.entity_id, fault, 1)

    click.echo(f"Prüfe {portal_name} mit {len(chosen)} Fehlern als {created.username} …")
    try:
        verdicts = check_portal(Target(start_url, logged_in_url, logged_in_text),
                                Credentials(created.username, created.password), WebBrowser,
                                inject, chosen)
    except CheckerError as error:
        click.echo(str(error), err=True)
        sys.exit(2)
    finally:
        citizens.delete_citizen(ctx, throttle, created.username)
    click.echo(table(verdicts))
    if json_file is not None:
        json_file.write_text(json.dumps([asdict(verdict) for verdict in verdicts],
                                        ensure_ascii=False, indent=2), encoding="utf-8")
    if any(verdict.accepted for verdict in verdicts):
        sys.exit(1)
