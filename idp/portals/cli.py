"""``servicekonto portal add|list|remove|import|export``: the portals in the database.

``add`` and ``remove`` write the database only (they work where the policy folder is read-only, as
in containers); every command first imports ``policies/portals/*.yaml`` as the IdP does at start
(:mod:`idp.portals.store`). A change reaches every worker of every host within a second
(:mod:`idp.portals.live`): no restart.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click
import yaml
from flask.cli import AppGroup
from sqlalchemy.orm import Session, sessionmaker

from idp import schema
from idp.config import Config, ConfigError, PolicyError, load_config
from idp.db import make_engine
from idp.portals.cache import MetadataCache
from idp.portals.live import import_folder
from idp.portals.models import FROM_FILE
from idp.portals.policy import (
    BUNDID_ATTRIBUTES,
    DEFAULT_REFRESH_MINUTES,
    NAME_PATTERN,
    TRUST_LEVELS,
    PortalPolicy,
    StoredFiles,
    is_url,
    parse_portal_policy,
    portal_folder,
)
from idp.portals.registry import (
    CACHE_FOLDER,
    MetadataSources,
    Portal,
    PortalRegistry,
    refuse_plain_http,
)
from idp.portals.store import (
    PortalTaken,
    add_portal,
    import_as_commands,
    policy_of,
    read_portal_files,
    remove_portal,
    stored_origins,
    stored_policies,
    stored_portal,
)
from idp.saml.sp_metadata import SpMetadata, check_signature, default_verifier, parse_sp_metadata
from idp.samlkit.metadata import MetadataError, fetch_metadata

# Where `portal export --to` puts the files a stored portal names (relative to its YAML).
METADATA_FOLDER = "metadata"
CERTIFICATE_FOLDER = "certificates"
DEFAULT_ATTRIBUTES = "givenName,surname,mail"


def _config() -> Config:
    try:
        return load_config()
    except ConfigError as error:
        raise click.ClickException(str(error)) from None


@dataclass(frozen=True)
class _Portals:
    sessions: sessionmaker[Session]
    sources: MetadataSources
    # The portals the import of the policy folder changed.
    imported: list[str]


@contextmanager
def _portals(config: Config) -> Iterator[_Portals]:
    """The database (schema current) with the policy folder imported, and the metadata sources
    of this instance."""
    engine = make_engine(config.database_url)
    try:
        schema.check_current(engine)
        sessions = sessionmaker(engine, expire_on_commit=False)
        sources = MetadataSources(MetadataCache(config.instance_path / CACHE_FOLDER),
                                  default_verifier())
        yield _Portals(sessions, sources,
                       import_folder(config, sessions, sources, datetime.now(UTC)))
    except ConfigError as error:  # also PolicyError and SchemaOutdated
        raise click.ClickException(str(error)) from None
    finally:
        engine.dispose()


def _attribute_list(value: str) -> list[str]:
    return [item.strip() for item in value.split(",") if item.strip()]


@click.group("portal", cls=AppGroup,
             help="Angebundene Portale verwalten (in der Datenbank; policies/portals/*.yaml "
                  "wird bei jedem Start übernommen).")
def portal() -> None:
    pass


@portal.command("add", with_appcontext=False,
                help="Portal anlegen: prüft die Metadaten und trägt das Portal in die Datenbank "
                     "ein; alle Worker bedienen es binnen einer Sekunde.")
@click.option("--name", required=True, help="Kurzname, z. B. dueren.")
@click.option("--metadata", "source", required=True,
              help="SAML-Metadaten des Portals: Datei oder http(s)-URL.")
@click.option("--display-name", default=None,
              help="Name auf der Zustimmungsseite (Standard: aus den Metadaten).")
@click.option("--attributes", default=DEFAULT_ATTRIBUTES, show_default=True,
              help=f"Freigegebene Attribute, kommagetrennt: {', '.join(BUNDID_ATTRIBUTES)}.")
@click.option("--required-attributes", default="", help="Davon Pflicht, kommagetrennt.")
@click.option("--trust-level", type=click.Choice(list(TRUST_LEVELS)),
              default="STORK-QAA-Level-1", show_default=True, help="Mindest-Vertrauensniveau.")
@click.option("--name-id-format", type=click.Choice(["transient", "persistent"]),
              default="transient", show_default=True)
@click.option("--consent/--no-consent", default=True, show_default=True,
              help="Vor der ersten Weitergabe um Zustimmung bitten.")
@click.option("--idp-initiated/--no-idp-initiated", default=False, show_default=True,
              help="Anmeldung vom IdP aus (ohne Anfrage des Portals) erlauben.")
@click.option("--sign-requests/--no-sign-requests", default=True, show_default=True,
              help="Signierte AuthnRequests verlangen (wie Servicekonto.NRW und BundID). "
                   "--no-sign-requests nur für Portale, die nicht signieren können: schwächer, "
                   "siehe docs/portal-integration.md.")
@click.option("--encrypt-assertion/--no-encrypt-assertion", default=False, show_default=True)
@click.option("--eidas-loa/--no-eidas-loa", default=False, show_default=True,
              help="Vertrauensniveau als eIDAS-LoA-URI statt STORK-QAA angeben.")
@click.option("--metadata-certificate", type=click.Path(exists=True, dir_okay=False,
                                                        path_type=Path),
              default=None, help="PEM-Zertifikat, mit dem URL-Metadaten signiert sein müssen.")
@click.option("--refresh-minutes", type=click.IntRange(min=1), default=None,
              help=f"URL-Metadaten so oft neu laden (Standard: {DEFAULT_REFRESH_MINUTES}).")
def portal_add(name: str, source: str, display_name: str | None, attributes: str,
               required_attributes: str, trust_level: str, name_id_format: str, consent: bool,
               idp_initiated: bool, sign_requests: bool, encrypt_assertion: bool,
               eidas_loa: bool, metadata_certificate: Path | None,
               refresh_minutes: int | None) -> None:
    config = _config()
    if not NAME_PATTERN.match(name):
        raise click.ClickException(f"Ungültiger Name {name!r}: Kleinbuchstaben, Ziffern, - und _, "
                                   "höchstens 40 Zeichen.")
    if not is_url(source) and refresh_minutes is not None:
        raise click.ClickException("--refresh-minutes gilt nur für Metadaten von einer URL.")
    now = datetime.now(UTC)
    certificate = None if metadata_certificate is None else metadata_certificate.read_bytes()
    document, metadata = _checked_metadata(source, certificate, now)
    if sign_requests and not metadata.signing_certificates:
        # Every request of this portal would be refused: say so now, not at its first login.
        raise click.ClickException(
            "Die Metadaten enthalten kein Signaturzertifikat (KeyDescriptor), "
            "das Portal kann seine AuthnRequests also nicht signieren. Zertifikat in die "
            "Metadaten aufnehmen oder – schwächer – --no-sign-requests angeben.")
    # The files it names are kept in the database; their names are those `portal export --to`
    # writes them under.
    raw: dict[str, Any] = {
        "display_name": display_name or metadata.organization_display_name or name,
        "entity_id": metadata.entity_id,
        "metadata": source if is_url(source) else f"{METADATA_FOLDER}/{name}.xml",
    }
    if certificate is not None:
        raw["metadata_certificate"] = f"{CERTIFICATE_FOLDER}/{name}.pem"
    if refresh_minutes is not None:
        raw["metadata_refresh_minutes"] = refresh_minutes
    raw |= {
        "attributes": _attribute_list(attributes),
        "required_attributes": _attribute_list(required_attributes),
        "minimum_trust_level": trust_level,
        "name_id_format": name_id_format,
        "consent_required": consent,
        "idp_initiated_allowed": idp_initiated,
        "want_authn_requests_signed": sign_requests,
        "sign_response": True,
        "sign_assertion": True,
        "encrypt_assertion": encrypt_assertion,
        "eidas_loa": eidas_loa,
        "enabled": True,
    }
    stored_document = None if is_url(source) else document
    try:
        # Checked as the IdP will read it, before anything is written.
        policy = parse_portal_policy(raw, Path(f"{name}.yaml"), stored=StoredFiles(
            "servicekonto portal add", stored_document, certificate))
        refuse_plain_http([policy], config.is_development)
    except PolicyError as error:
        raise click.ClickException(str(error)) from None

    with _portals(config) as portals:
        try:
            with portals.sessions() as session, session.begin():
                add_portal(session, policy, _policy_text(raw, policy, now), stored_document,
                           certificate, now)
        except PortalTaken as taken:
            if taken.by_entity_id:
                raise click.ClickException(f"Die Entity-ID {metadata.entity_id} ist schon als "
                                           f"Portal {taken.name} eingetragen.") from None
            raise click.ClickException(f"Das Portal {name} existiert bereits; erst "
                                       f"`servicekonto portal remove {name}`.") from None
    if is_url(source):
        MetadataCache(config.instance_path / CACHE_FOLDER).write(name, source, document, now)
    click.echo(f"Portal {name} angelegt; jeder Worker bedient es binnen einer Sekunde.")
    click.echo(f"  Entity-ID: {metadata.entity_id}")
    click.echo(f"  Attribute: {', '.join(policy.attributes) or '(keine)'}")
    if not policy.want_authn_requests_signed:
        click.echo("  Achtung: unsignierte AuthnRequests werden angenommen (--no-sign-requests); "
                   "jeder kann dann Anmeldungen in seinem Namen anstoßen.")


def _checked_metadata(source: str, certificate: bytes | None,
                      now: datetime) -> tuple[bytes, SpMetadata]:
    """The metadata document at ``source`` (file or URL) and what it says, checked."""
    try:
        document = fetch_metadata(source) if is_url(source) else Path(source).read_bytes()
        if certificate is not None:
            check_signature(document, certificate, default_verifier())
        return document, parse_sp_metadata(document, None, now)
    except OSError as error:
        raise click.ClickException(f"Metadaten {source} nicht lesbar: {error.strerror}") from None
    except MetadataError as error:
        raise click.ClickException(f"Metadaten {source} unbrauchbar: {error}") from None


def _policy_text(raw: dict[str, Any], policy: PortalPolicy, now: datetime) -> str:
    header = (f"# Portal {policy.display_name!r}, angelegt mit `servicekonto portal add` am "
              f"{now:%Y-%m-%d %H:%M} UTC.\n# Schlüssel und Werte: siehe policies/portals/"
              "dueren.yaml.\n")
    return header + yaml.safe_dump(raw, allow_unicode=True, sort_keys=False)


@portal.command("list", with_appcontext=False,
                help="Portale mit Herkunft und Metadaten-Stand auflisten (ohne Netzzugriff).")
def portal_list() -> None:
    config = _config()
    now = datetime.now(UTC)
    with _portals(config) as portals, portals.sessions() as session:
        try:
            registry = PortalRegistry.of(stored_policies(session), portals.sources, now,
                                         offline=True)
            origins = stored_origins(session)
        except ConfigError as error:
            raise click.ClickException(str(error)) from None
    if not registry.portals():
        click.echo(f"Keine Portale (auch keine in {portal_folder(config.policy_dir)}).")
    for item in registry.portals():
        policy = item.policy
        state = "" if policy.enabled else " (deaktiviert)"
        click.echo(f"{policy.name}\t{policy.display_name}{state}")
        click.echo(f"  Entity-ID:        {policy.entity_id}")
        click.echo(f"  Herkunft:         {_origin(config, policy.name, origins)}")
        click.echo(f"  Metadaten:        {policy.metadata}")
        click.echo(f"  Stand:            {_freshness(item, now)}")
        click.echo(f"  Attribute:        {', '.join(policy.attributes) or '(keine)'}")
        click.echo(f"  Vertrauensniveau: {policy.minimum_trust_class_ref}")
        click.echo(f"  NameID:           {policy.name_id_format}")
        click.echo(f"  Zustimmung:       {'ja' if policy.consent_required else 'nein'}")


def _origin(config: Config, name: str, origins: dict[str, str]) -> str:
    if origins.get(name) == FROM_FILE:
        return f"Datei {portal_folder(config.policy_dir) / name}.yaml"
    return "servicekonto portal add"


def _freshness(portal: Portal, now: datetime) -> str:
    if portal.metadata is None or portal.metadata_read_at is None:
        return f"nicht verfügbar ({portal.problem or 'keine Metadaten'})"
    if not portal.policy.metadata_is_url:
        return "in der Datenbank"
    age = int((now - portal.metadata_read_at).total_seconds() // 60)
    stand = f"{portal.metadata_read_at:%Y-%m-%d %H:%M} UTC (vor {max(age, 0)} min)"
    due = portal.refresh_due_at()
    if due is not None and now >= due:
        stand += ", Aktualisierung fällig"
    return stand


@portal.command("remove", with_appcontext=False,
                help="Portal entfernen (aus der Datenbank, mit seinem Metadaten-Cache); jeder "
                     "Worker bedient es binnen einer Sekunde nicht mehr.")
@click.argument("name")
def portal_remove(name: str) -> None:
    config = _config()
    with _portals(config) as portals, portals.sessions() as session, session.begin():
        row = stored_portal(session, name) if NAME_PATTERN.match(name) else None
        if row is None:
            raise click.ClickException(f"Kein Portal {name!r}.")
        if row.origin == FROM_FILE:
            # It would be back at the next start: the file is where it is managed.
            raise click.ClickException(
                f"Das Portal {name} kommt aus der Datei {portal_folder(config.policy_dir)}/"
                f"{name}.yaml: die Datei entfernen, dann `servicekonto portal import` (oder ein "
                "Neustart) entfernt das Portal.")
        remove_portal(session, row, datetime.now(UTC))
    MetadataCache(config.instance_path / CACHE_FOLDER).remove(name)
    click.echo(f"Portal {name} entfernt.")


@portal.command("import", with_appcontext=False,
                help="policies/portals/*.yaml jetzt übernehmen (wie bei jedem Start): neue und "
                     "geänderte Dateien; entfernte Dateien entfernen ihr Portal. Mit --from: "
                     "die Portaldateien eines anderen Ordners eintragen wie mit `portal add`.")
@click.option("--from", "folder", type=click.Path(exists=True, file_okay=False, path_type=Path),
              default=None, help="Ordner mit Portaldateien (NAME.yaml), z. B. aus "
                                 "`portal export --to`.")
def portal_import(folder: Path | None) -> None:
    config = _config()
    now = datetime.now(UTC)
    with _portals(config) as portals:
        if folder is None:
            changed, source = portals.imported, portal_folder(config.policy_dir)
        else:
            changed, source = _import_from(config, portals, folder, now), folder
    click.echo(f"Übernommen aus {source}: {', '.join(changed) if changed else 'keine Änderung'}.")


def _import_from(config: Config, portals: _Portals, folder: Path, now: datetime) -> list[str]:
    """The portal files of ``folder`` stored as portals of the commands, checked first."""
    try:
        files = read_portal_files(folder)
        refuse_plain_http([file.policy for file in files], config.is_development)
        for file in files:
            if not file.policy.metadata_is_url:
                portals.sources.from_file(file.policy, now)
        with portals.sessions() as session, session.begin():
            return import_as_commands(session, files, now)
    except ConfigError as error:
        raise click.ClickException(str(error)) from None


@portal.command("export", with_appcontext=False,
                help="Ein Portal als YAML ausgeben, oder mit --to als Portaldatei samt "
                     "Metadaten und Zertifikat in einen Ordner schreiben.")
@click.argument("name")
@click.option("--to", "folder", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Ordner, z. B. policies/portals; vorhandene Dateien bleiben unberührt.")
def portal_export(name: str, folder: Path | None) -> None:
    config = _config()
    with _portals(config) as portals, portals.sessions() as session:
        row = stored_portal(session, name) if NAME_PATTERN.match(name) else None
        if row is None:
            raise click.ClickException(f"Kein Portal {name!r}.")
        policy = policy_of(row)
    if folder is None:
        click.echo(row.policy, nl=False)
        return
    raw = yaml.safe_load(row.policy)
    files: dict[Path, bytes] = {}
    if policy.metadata_document is not None:
        raw["metadata"] = f"{METADATA_FOLDER}/{name}.xml"
        files[folder / raw["metadata"]] = policy.metadata_document
    if policy.metadata_certificate_pem is not None:
        raw["metadata_certificate"] = f"{CERTIFICATE_FOLDER}/{name}.pem"
        files[folder / raw["metadata_certificate"]] = policy.metadata_certificate_pem
    files[folder / f"{name}.yaml"] = yaml.safe_dump(raw, allow_unicode=True,
                                                     sort_keys=False).encode("utf-8")
    if existing := [str(path) for path in files if path.exists()]:
        raise click.ClickException(f"Existiert bereits: {', '.join(existing)}.")
    for path, content in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        _write_new(path, content)
        click.echo(f"geschrieben: {path}")


def _write_new(path: Path, content: bytes) -> None:
    """Write a file that must not exist yet (O_EXCL: no overwrite, also not in a race)."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    except FileExistsError:
        raise click.ClickException(f"{path} existiert bereits.") from None
    with os.fdopen(fd, "wb") as handle:
        handle.write(content)
