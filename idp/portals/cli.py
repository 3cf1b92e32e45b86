"""``servicekonto portal add|list|remove``: manage ``policies/portals/*.yaml``.

These commands need no database and no running app (``with_appcontext=False``): an operator can
declare portals before ``servicekonto db upgrade``.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click
import yaml
from flask.cli import AppGroup

from idp.config import Config, ConfigError, PolicyError, load_config
from idp.portals.cache import MetadataCache
from idp.portals.policy import (
    BUNDID_ATTRIBUTES,
    DEFAULT_REFRESH_MINUTES,
    NAME_PATTERN,
    TRUST_LEVELS,
    PortalPolicy,
    is_url,
    load_portal_policies,
    load_portal_policy,
    parse_portal_policy,
    portal_folder,
)
from idp.portals.registry import CACHE_FOLDER, Portal, PortalRegistry
from idp.saml.sp_metadata import SpMetadata, check_signature, default_verifier, parse_sp_metadata
from idp.samlkit.metadata import MetadataError, fetch_metadata

# File metadata given to `portal add` is copied here (relative to policies/portals), so that the
# policy folder is complete on its own.
METADATA_FOLDER = "metadata"
DEFAULT_ATTRIBUTES = "givenName,surname,mail"


def _config() -> Config:
    try:
        return load_config()
    except ConfigError as error:
        raise click.ClickException(str(error)) from None


def _attribute_list(value: str) -> list[str]:
    return [item.strip() for item in value.split(",") if item.strip()]


@click.group("portal", cls=AppGroup,
             help="Angebundene Portale verwalten (policies/portals/*.yaml).")
def portal() -> None:
    pass


@portal.command("add", with_appcontext=False,
                help="Portal anlegen: prüft die Metadaten und schreibt policies/portals/NAME.yaml.")
@click.option("--name", required=True, help="Kurzname (Dateiname), z. B. dueren.")
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
    folder = portal_folder(config.policy_dir)
    target = folder / f"{name}.yaml"
    if not NAME_PATTERN.match(name):
        raise click.ClickException(f"Ungültiger Name {name!r}: Kleinbuchstaben, Ziffern, - und _, "
                                   "höchstens 40 Zeichen.")
    if target.exists():
        raise click.ClickException(f"{target} existiert bereits; erst `servicekonto portal "
                                   f"remove {name}`.")
    if not is_url(source) and refresh_minutes is not None:
        raise click.ClickException("--refresh-minutes gilt nur für Metadaten von einer URL.")
    now = datetime.now(UTC)
    document, metadata = _checked_metadata(source, metadata_certificate, now)
    if sign_requests and not metadata.signing_certificates:
        # Every request of this portal would be refused: say so now, not at its first login.
        raise click.ClickException(
            "Die Metadaten enthalten kein Signaturzertifikat (KeyDescriptor), "
            "das Portal kann seine AuthnRequests also nicht signieren. Zertifikat in die "
            "Metadaten aufnehmen oder – schwächer – --no-sign-requests angeben.")
    try:
        existing = load_portal_policies(config.policy_dir)
    except PolicyError as error:
        raise click.ClickException(f"Vorhandene Portaldatei fehlerhaft: {error}") from None
    if other := next((p for p in existing if p.entity_id == metadata.entity_id), None):
        raise click.ClickException(f"Die Entity-ID {metadata.entity_id} ist schon als Portal "
                                   f"{other.name} eingetragen.")

    copy_to = None if is_url(source) else _metadata_copy(folder, name, Path(source))
    raw: dict[str, Any] = {
        "display_name": display_name or metadata.organization_display_name or name,
        "entity_id": metadata.entity_id,
        "metadata": source if copy_to is None else copy_to.relative_to(folder).as_posix(),
    }
    if metadata_certificate is not None:
        raw["metadata_certificate"] = str(metadata_certificate.resolve())
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
    if copy_to is not None and copy_to.exists() and copy_to.read_bytes() != document:
        raise click.ClickException(f"{copy_to} existiert bereits mit anderem Inhalt.")
    try:
        # Checked as the IdP will read it, before anything is written (the copied metadata file
        # does not exist yet, so the check runs against the source).
        policy = parse_portal_policy(raw | {"metadata": source if copy_to is None else
                                            str(Path(source).resolve())}, target)
    except PolicyError as error:
        raise click.ClickException(str(error)) from None

    folder.mkdir(parents=True, exist_ok=True)
    if copy_to is not None and not copy_to.exists():
        copy_to.parent.mkdir(parents=True, exist_ok=True)
        copy_to.write_bytes(document)
    _write_new(target, _policy_text(raw, policy, now))
    if is_url(source):
        MetadataCache(config.instance_path / CACHE_FOLDER).write(name, source, document, now)
    click.echo(f"Portal {name} angelegt: {target}")
    click.echo(f"  Entity-ID: {metadata.entity_id}")
    click.echo(f"  Attribute: {', '.join(policy.attributes) or '(keine)'}")
    if not policy.want_authn_requests_signed:
        click.echo("  Achtung: unsignierte AuthnRequests werden angenommen (--no-sign-requests); "
                   "jeder kann dann Anmeldungen in seinem Namen anstoßen.")


def _checked_metadata(source: str, certificate: Path | None,
                      now: datetime) -> tuple[bytes, SpMetadata]:
    """The metadata document at ``source`` (file or URL) and what it says, checked."""
    try:
        document = fetch_metadata(source) if is_url(source) else Path(source).read_bytes()
        if certificate is not None:
            check_signature(document, certificate.read_bytes(), default_verifier())
        return document, parse_sp_metadata(document, None, now)
    except OSError as error:
        raise click.ClickException(f"Metadaten {source} nicht lesbar: {error.strerror}") from None
    except MetadataError as error:
        raise click.ClickException(f"Metadaten {source} unbrauchbar: {error}") from None


def _metadata_copy(folder: Path, name: str, source: Path) -> Path:
    """Where file metadata lives for the policy: in place if inside the folder, else a copy."""
    resolved = source.resolve()
    if resolved.is_relative_to(folder.resolve()):
        return resolved
    return folder.resolve() / METADATA_FOLDER / f"{name}.xml"


def _policy_text(raw: dict[str, Any], policy: PortalPolicy, now: datetime) -> str:
    header = (f"# Portal {policy.display_name!r}, angelegt mit `servicekonto portal add` am "
              f"{now:%Y-%m-%d %H:%M} UTC.\n# Schlüssel und Werte: siehe policies/portals/"
              "dueren.yaml.\n")
    return header + yaml.safe_dump(raw, allow_unicode=True, sort_keys=False)


def _write_new(path: Path, text: str) -> None:
    """Write a file that must not exist yet (O_EXCL: no overwrite, also not in a race)."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    except FileExistsError:
        raise click.ClickException(f"{path} existiert bereits.") from None
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)


@portal.command("list", with_appcontext=False,
                help="Portale mit Metadaten-Stand auflisten (ohne Netzzugriff).")
def portal_list() -> None:
    config = _config()
    try:
        registry = PortalRegistry.load(config.policy_dir, config.instance_path,
                                       verifier=default_verifier(), offline=True)
    except ConfigError as error:
        raise click.ClickException(str(error)) from None
    portals = registry.portals()
    if not portals:
        click.echo(f"Keine Portale in {portal_folder(config.policy_dir)}.")
    now = datetime.now(UTC)
    for item in portals:
        policy = item.policy
        state = "" if policy.enabled else " (deaktiviert)"
        click.echo(f"{policy.name}\t{policy.display_name}{state}")
        click.echo(f"  Entity-ID:        {policy.entity_id}")
        click.echo(f"  Metadaten:        {policy.metadata}")
        click.echo(f"  Stand:            {_freshness(item, now)}")
        click.echo(f"  Attribute:        {', '.join(policy.attributes) or '(keine)'}")
        click.echo(f"  Vertrauensniveau: {policy.minimum_trust_class_ref}")
        click.echo(f"  NameID:           {policy.name_id_format}")
        click.echo(f"  Zustimmung:       {'ja' if policy.consent_required else 'nein'}")


def _freshness(portal: Portal, now: datetime) -> str:
    if portal.metadata is None or portal.metadata_read_at is None:
        return f"nicht verfügbar ({portal.problem or 'keine Metadaten'})"
    age = int((now - portal.metadata_read_at).total_seconds() // 60)
    stand = f"{portal.metadata_read_at:%Y-%m-%d %H:%M} UTC (vor {max(age, 0)} min)"
    due = portal.refresh_due_at()
    if due is not None and now >= due:
        stand += ", Aktualisierung fällig"
    return stand


@portal.command("remove", with_appcontext=False,
                help="Portal entfernen (Datei, kopierte Metadaten, Metadaten-Cache).")
@click.argument("name")
def portal_remove(name: str) -> None:
    config = _config()
    folder = portal_folder(config.policy_dir)
    target = folder / f"{name}.yaml"
    if not NAME_PATTERN.match(name) or not target.is_file():
        raise click.ClickException(f"Kein Portal {name!r} in {folder}.")
    copy = folder.resolve() / METADATA_FOLDER / f"{name}.xml"
    try:
        uses_copy = Path(load_portal_policy(target).metadata) == copy
    except PolicyError:
        uses_copy = False  # a broken file is removed all the same
    target.unlink()
    if uses_copy:
        copy.unlink(missing_ok=True)
    MetadataCache(config.instance_path / CACHE_FOLDER).remove(name)
    click.echo(f"Portal {name} entfernt.")
