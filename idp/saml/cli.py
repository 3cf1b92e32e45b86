"""``servicekonto keys …``: make the IdP's signing key and certificate."""

from __future__ import annotations

from pathlib import Path

import click
from flask.cli import AppGroup

from idp.samlkit import keys as key_files


@click.group("keys", cls=AppGroup, help="Signaturschlüssel und Zertifikat des IdP verwalten.")
def keys() -> None:
    pass


def _default_folder() -> Path:
    from idp.config import ConfigError, load_config

    try:
        return load_config().instance_path / "keys"
    except ConfigError as error:
        raise click.ClickException(str(error)) from None


# No app context: keys are made before the IdP can start (it needs them).
@keys.command("generate", help="Neuen RSA-Schlüssel und selbstsigniertes Zertifikat erzeugen.",
              with_appcontext=False)
@click.option("--out", "folder", type=click.Path(file_okay=False, path_type=Path),
              help="Zielordner (Standard: keys/ im Instanzordner).")
@click.option("--bits", default=key_files.MIN_BITS, show_default=True, type=int,
              help=f"Schlüssellänge, mindestens {key_files.MIN_BITS}.")
@click.option("--days", default=key_files.DEFAULT_DAYS, show_default=True, type=int,
              help="Gültigkeit des Zertifikats in Tagen.")
@click.option("--common-name", default=key_files.DEFAULT_COMMON_NAME, show_default=True)
@click.option("--next", "next_key", is_flag=True,
              help="Den Folgeschlüssel für einen Schlüsselwechsel erzeugen (…-next).")
@click.option("--force", is_flag=True, help="Vorhandene Dateien überschreiben.")
def generate(folder: Path | None, bits: int, days: int, common_name: str, next_key: bool,
             force: bool) -> None:
    key_name, cert_name = ((key_files.NEXT_KEY_NAME, key_files.NEXT_CERT_NAME) if next_key
                           else (key_files.KEY_NAME, key_files.CERT_NAME))
    try:
        pair = key_files.generate_key_pair(folder or _default_folder(), bits=bits, days=days,
                                           common_name=common_name, force=force,
                                           key_name=key_name, cert_name=cert_name)
    except key_files.KeyFileError as error:
        raise click.ClickException(str(error)) from None
    _describe(pair)
    if next_key:
        click.echo("Das Zertifikat steht ab dem nächsten Start in den Metadaten neben dem "
                   "aktuellen. Sobald alle Portale die Metadaten neu geladen haben: "
                   "servicekonto keys rollover")


def _describe(pair: key_files.KeyPair) -> None:
    click.echo(f"Schlüssel:   {pair.key_file}")
    click.echo(f"Zertifikat:  {pair.cert_file}")
    click.echo(f"SHA-256:     {pair.fingerprint}")
    click.echo(f"gültig bis {pair.not_after:%d.%m.%Y %H:%M} UTC")


@keys.command("rollover", with_appcontext=False,
              help="Schlüsselwechsel: den Folgeschlüssel (…-next) zum aktuellen machen.")
@click.option("--out", "folder", type=click.Path(file_okay=False, path_type=Path),
              help="Schlüsselordner (Standard: keys/ im Instanzordner).")
def rollover(folder: Path | None) -> None:
    try:
        pair = key_files.promote_next_key(folder or _default_folder())
    except key_files.KeyFileError as error:
        raise click.ClickException(str(error)) from None
    click.echo("Der Folgeschlüssel ist jetzt der aktuelle Schlüssel; der bisherige liegt als "
               f"{key_files.PREVIOUS_KEY_NAME} daneben. Bitte alle Prozesse neu starten.")
    _describe(pair)
