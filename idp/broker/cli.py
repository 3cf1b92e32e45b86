"""``servicekonto upstream add|list|show|remove``: the upstream IdPs of "Login mit externem
Servicekonto", one ``policies/upstreams/<name>.yaml`` each (:mod:`idp.broker.upstreams`).

Unlike portals they are files, not database rows. ``add`` checks an entry as the IdP will read it
and writes nothing while it has a problem; a metadata file and certificate are copied beside the
entry, so that the folder holds everything it names. The IdP reads its upstreams when it starts:
a change takes effect at the next restart. Where the policy folder is read-only (in containers)
a writable folder must be mounted over ``policies/upstreams`` (docs/deployment.md).
"""

from __future__ import annotations

import os
import tempfile
from contextlib import suppress
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click
import yaml
from flask.cli import AppGroup
from saml2 import BINDING_HTTP_REDIRECT

from idp.broker.upstreams import (
    OUR_ATTRIBUTES,
    Upstream,
    default_mapping,
    load_upstream,
    load_upstreams,
    parse_upstream,
    upstream_folder,
)
from idp.config import Config, ConfigError, PolicyError, load_config
from idp.portals.policy import NAME_PATTERN, TRUST_LEVELS, is_url
from idp.saml.sp_metadata import check_signature, default_verifier
from idp.samlkit.metadata import MetadataError, fetch_metadata
from idp.samlkit.untrusted_xml import parse_xml

# Where `upstream add` copies a metadata file and a certificate (relative to the entry, as
# `portal export` does; the IdP skips folders in the upstream folder).
METADATA_FOLDER = "metadata"
CERTIFICATE_FOLDER = "certificates"
MD = "urn:oasis:names:tc:SAML:2.0:metadata"
AFTER_RESTART = "Der laufende IdP liest die Upstreams nur beim Start: nach einem Neustart wirksam."


def _config() -> Config:
    try:
        return load_config()
    except ConfigError as error:
        raise click.ClickException(str(error)) from None


@click.group("upstream", cls=AppGroup,
             help="Externe Servicekonten (Upstream-IdPs) für „Login mit externem Servicekonto“ "
                  "verwalten: Dateien in policies/upstreams/, nach einem Neustart wirksam.")
def upstream() -> None:
    pass


@upstream.command("add", with_appcontext=False,
                  help="Upstream eintragen: prüft den Eintrag wie der IdP beim Start und die "
                       "Metadaten wie bei der ersten Anmeldung, schreibt policies/upstreams/"
                       "NAME.yaml erst, wenn nichts fehlt; nach einem Neustart wirksam.")
@click.argument("name")
@click.option("--display-name", default=None,
              help="Name auf der Auswahlseite, z. B. „Servicekonto Musterland“.")
@click.option("--entity-id", default=None, help="Entity-ID des Upstream-IdP (aus seinen "
                                                "Metadaten).")
@click.option("--metadata", "source", default=None,
              help="SAML-Metadaten des Upstreams: http(s)-URL, oder Datei (wird nach "
                   f"upstreams/{METADATA_FOLDER}/NAME.xml kopiert).")
@click.option("--metadata-certificate", type=click.Path(exists=True, dir_okay=False,
                                                        path_type=Path),
              default=None, help="PEM-Zertifikat, mit dem die Metadaten signiert sein müssen "
                                 f"(wird nach upstreams/{CERTIFICATE_FOLDER}/NAME.pem kopiert).")
@click.option("--refresh-minutes", type=click.IntRange(min=1), default=None,
              help="URL-Metadaten so oft neu laden (Standard: 60).")
@click.option("--maximum-trust-level", type=click.Choice(list(TRUST_LEVELS)), default=None,
              help="Höchstes Vertrauensniveau, das wir dem Upstream glauben; höhere Angaben "
                   "werden darauf gekappt.")
@click.option("--bpk2-prefix", default=None,
              help="Präfix der bPK2, die Portale für seine Bürger bekommen, z. B. MU:.")
@click.option("--attribute", "attributes", multiple=True, metavar="THEIRS=OURS",
              help="Attribut des Upstreams (Name) → unseres (Name oder FriendlyName), "
                   "wiederholbar. Ohne Angabe die BundID-Zuordnung: jedes unserer Attribute "
                   "unter seinem eigenen Namen, außer bPK2 und Vertrauensniveau (die bilden wir).")
@click.option("--encrypted-assertions", is_flag=True,
              help="Der Upstream verschlüsselt seine Assertions an unseren Schlüssel; "
                   "unverschlüsselte werden dann abgelehnt. Signiert sein müssen sie immer.")
@click.option("--disabled", is_flag=True, help="Eintragen, aber (noch) nicht anbieten.")
@click.option("--replace", is_flag=True, help="Den vorhandenen Upstream dieses Namens ersetzen.")
def upstream_add(name: str, display_name: str | None, entity_id: str | None, source: str | None,
                 metadata_certificate: Path | None, refresh_minutes: int | None,
                 maximum_trust_level: str | None, bpk2_prefix: str | None,
                 attributes: tuple[str, ...], encrypted_assertions: bool, disabled: bool,
                 replace: bool) -> None:
    config = _config()
    if not NAME_PATTERN.match(name):
        raise click.ClickException(f"Ungültiger Name {name!r}: Kleinbuchstaben, Ziffern, - und _, "
                                   "höchstens 40 Zeichen.")
    folder = upstream_folder(config.policy_dir)
    entry = folder / f"{name}.yaml"
    existed = entry.exists()
    if existed and not replace:
        raise click.ClickException(f"Den Upstream {name} gibt es schon ({entry}); --replace "
                                   "ersetzt ihn.")
    _refuse_unless_writable(folder)
    mapping, problems = _attribute_mapping(attributes)
    # The metadata file to copy (None for a URL).
    file_source = None if source is None or is_url(source) else Path(source)
    if file_source is not None and refresh_minutes is not None:
        problems.append("--refresh-minutes gilt nur für Metadaten von einer URL.")
    # The entry as it will be written: the files it names are the copies beside it.
    raw: dict[str, Any] = {
        "display_name": display_name, "entity_id": entity_id,
        "metadata": source if file_source is None else f"{METADATA_FOLDER}/{name}.xml",
        "metadata_certificate": None if metadata_certificate is None
        else f"{CERTIFICATE_FOLDER}/{name}.pem",
        "metadata_refresh_minutes": refresh_minutes,
        "maximum_trust_level": maximum_trust_level, "bpk2_prefix": bpk2_prefix,
        # Left out, the IdP takes the BundID mapping (default_mapping).
        "attributes": mapping if attributes else None,
        "encrypted_assertions": encrypted_assertions or None,
        "enabled": False if disabled else None,
    }
    raw = {key: value for key, value in raw.items() if value is not None}
    # Checked as the IdP will read it, with the files still where the operator has them.
    checked = dict(raw)
    if file_source is not None:
        checked["metadata"] = str(file_source.resolve())
    if metadata_certificate is not None:
        checked["metadata_certificate"] = str(metadata_certificate.resolve())
    try:
        parse_upstream(checked, Path(f"{name}.yaml"))
    except PolicyError as error:
        problems.extend(str(error).splitlines())
    certificate = None if metadata_certificate is None else metadata_certificate.read_bytes()
    document = None
    if source is not None and entity_id is not None:
        document, metadata_problems = _metadata_problems(config, source, entity_id, certificate)
        problems.extend(metadata_problems)
        if (other := _entity_id_user(folder, name, entity_id)) is not None:
            problems.append(f"Die Entity-ID {entity_id} hat schon der Upstream {other}.")
    if problems:
        raise click.ClickException(f"Upstream {name} nicht eingetragen, nichts geschrieben:\n"
                                   + "\n".join(problems))

    files: dict[Path, bytes] = {}
    if file_source is not None and document is not None:
        files[folder / raw["metadata"]] = document
    if certificate is not None:
        files[folder / raw["metadata_certificate"]] = certificate
    # The entry last: it never names a file that is not there yet.
    files[entry] = _entry_text(name, raw).encode("utf-8")
    try:
        for path, content in files.items():
            _write_atomically(path, content)
        for stale in _copies(folder, name):
            if stale not in files:
                stale.unlink(missing_ok=True)
    except OSError as error:
        raise _not_writable(folder, error) from None
    click.echo(f"Upstream {name} {'ersetzt' if existed else 'eingetragen'}: {entry}")
    click.echo(f"  Entity-ID: {entity_id}")
    if disabled:
        click.echo("  Nicht angeboten (--disabled).")
    click.echo(AFTER_RESTART)


def _attribute_mapping(pairs: tuple[str, ...]) -> tuple[dict[str, str], list[str]]:
    """``--attribute THEIRS=OURS`` as the entry's mapping, and what is wrong with them."""
    mapping: dict[str, str] = {}
    problems = []
    for pair in pairs:
        theirs, equals, ours = (part.strip() for part in pair.partition("="))
        if not (equals and theirs and ours):
            problems.append(f"--attribute {pair!r}: erwartet THEIRS=OURS, z. B. "
                            f"urn:oid:2.5.4.42=givenName.")
        elif theirs in mapping:
            problems.append(f"--attribute {theirs}: zweimal angegeben.")
        else:
            mapping[theirs] = ours
    return mapping, problems


def _metadata_problems(config: Config, source: str, entity_id: str,
                       certificate: bytes | None) -> tuple[bytes | None, list[str]]:
    """The metadata document at ``source`` (file or URL), and what is wrong with it: it must
    describe the IdP ``entity_id`` with an SSO endpoint for the Redirect binding (the one we
    send our requests to), signed with ``certificate`` when one is given."""
    problems = []
    if source.startswith("http://") and certificate is None and not config.is_development:
        # Anyone answering on the network could swap the upstream's keys and so speak for any
        # citizen: plain http only with a signature by a pinned certificate (docs/security.md).
        problems.append(f"Metadaten über unverschlüsseltes http ({source}) nur mit "
                        "--metadata-certificate (oder eine https-URL oder eine Datei).")
    try:
        document = fetch_metadata(source) if is_url(source) else Path(source).read_bytes()
    except OSError as error:
        return None, [*problems, f"Metadaten {source} nicht lesbar: {error.strerror}"]
    except MetadataError as error:
        return None, [*problems, f"Metadaten {source} nicht lesbar: {error}"]
    try:
        if certificate is not None:
            check_signature(document, certificate, default_verifier())
        root = parse_xml(document, MetadataError)
    except MetadataError as error:
        return document, [*problems, f"Metadaten {source} unbrauchbar: {error}"]
    entities = [entity for entity in root.iter(f"{{{MD}}}EntityDescriptor")
                if entity.get("entityID") == entity_id]
    if not entities:
        problems.append(f"Metadaten {source} unbrauchbar: sie beschreiben {entity_id} nicht.")
    elif entities[0].find(f"{{{MD}}}IDPSSODescriptor/{{{MD}}}SingleSignOnService"
                          f"[@Binding='{BINDING_HTTP_REDIRECT}']") is None:
        problems.append(f"Metadaten {source} unbrauchbar: kein IdP {entity_id} mit "
                        "SSO-Endpunkt für das Redirect-Binding.")
    return document, problems


def _entity_id_user(folder: Path, name: str, entity_id: str) -> str | None:
    """The other upstream already registered with ``entity_id``, if any."""
    for path in sorted(folder.glob("*.yaml")):
        if path.stem == name:
            continue
        try:
            other = load_upstream(path)
        except PolicyError:
            continue  # its own problems are reported by `upstream list` and at the start
        if other.entity_id == entity_id:
            return other.name
    return None


def _entry_text(name: str, raw: dict[str, Any]) -> str:
    header = (f"# Upstream {name}, eingetragen mit `servicekonto upstream add` am "
              f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC.\n# Schlüssel und Werte: docs/operations.md "
              "(Upstreams); ohne attributes gilt die BundID-Zuordnung.\n")
    return header + yaml.safe_dump(raw, allow_unicode=True, sort_keys=False)


def _copies(folder: Path, name: str) -> tuple[Path, Path]:
    """The metadata file and certificate `upstream add` copies for ``name``."""
    return (folder / METADATA_FOLDER / f"{name}.xml",
            folder / CERTIFICATE_FOLDER / f"{name}.pem")


def _refuse_unless_writable(folder: Path) -> None:
    """Refuse, saying what to do, unless the upstream folder (or, before its first upstream, the
    policy folder) can be written: checked first, so that no one mends an entry in vain."""
    existing = folder if folder.exists() else folder.parent
    if not os.access(existing, os.W_OK | os.X_OK):
        raise _not_writable(folder, None)


def _not_writable(folder: Path, error: OSError | None) -> click.ClickException:
    reason = f" ({error.strerror})" if error is not None and error.strerror else ""
    return click.ClickException(
        f"Der Ordner {folder} ist nicht beschreibbar{reason}. Upstreams sind Dateien im "
        "Policy-Ordner; ist er schreibgeschützt (wie in Docker Compose), einen beschreibbaren "
        f"Ordner über {folder} mounten, siehe docs/deployment.md.")


def _write_atomically(path: Path, content: bytes) -> None:
    """Write ``path`` whole or not at all: a temporary dot-file beside it (which the IdP skips),
    renamed over it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(handle, "wb") as file:
            file.write(content)
            file.flush()
            os.fsync(file.fileno())
        os.chmod(temporary, 0o644)
        os.replace(temporary, path)
    except BaseException:
        with suppress(FileNotFoundError):
            os.unlink(temporary)
        raise


@upstream.command("list", with_appcontext=False,
                  help="Upstreams auflisten, wie der IdP sie beim nächsten Start liest.")
def upstream_list() -> None:
    config = _config()
    folder = upstream_folder(config.policy_dir)
    try:
        upstreams = load_upstreams(config.policy_dir)
    except PolicyError as error:
        raise click.ClickException(f"Die Upstream-Dateien in {folder} haben Fehler; so startet "
                                   f"der IdP nicht:\n{error}") from None
    if not upstreams:
        click.echo(f"Keine Upstreams (in {folder}).")
    for item in upstreams:
        click.echo(f"{item.name}\t{item.display_name}")
        click.echo(f"  Entity-ID:        {item.entity_id}")
        click.echo(f"  Metadaten:        {item.metadata}")
        click.echo(f"  Höchstes Niveau:  STORK-QAA-Level-{item.maximum_trust_level}")
        click.echo(f"  bPK2-Präfix:      {item.bpk2_prefix}")
        click.echo(f"  Attribute:        {_mapping_summary(item)}")
        click.echo("  Assertions:       "
                   + ("verschlüsselt" if item.encrypted_assertions else "unverschlüsselt")
                   + ", signiert")
        click.echo(f"  Angeboten:        {'ja' if item.enabled else 'nein (--disabled)'}")


def _mapping_summary(item: Upstream) -> str:
    if item.attributes == default_mapping():
        return "BundID-Zuordnung"
    friendly = {name: friendly for friendly, name in OUR_ATTRIBUTES.items()}
    return ", ".join(f"{theirs} → {friendly[ours]}"
                     for theirs, ours in item.attributes.items()) or "(keine)"


def _entry(config: Config, name: str) -> Path:
    """The file of the upstream ``name``; refused when there is none."""
    folder = upstream_folder(config.policy_dir)
    entry = folder / f"{name}.yaml"
    if not NAME_PATTERN.match(name) or not entry.is_file():
        raise click.ClickException(f"Kein Upstream {name!r} (in {folder}).")
    return entry


@upstream.command("show", with_appcontext=False, help="Die Datei eines Upstreams ausgeben.")
@click.argument("name")
def upstream_show(name: str) -> None:
    click.echo(_entry(_config(), name).read_text(encoding="utf-8"), nl=False)


@upstream.command("remove", with_appcontext=False,
                  help="Upstream entfernen: seine Datei samt kopierten Metadaten und Zertifikat; "
                       "nach einem Neustart nicht mehr angeboten.")
@click.argument("name")
def upstream_remove(name: str) -> None:
    config = _config()
    entry = _entry(config, name)
    folder = entry.parent
    _refuse_unless_writable(folder)
    removed = [path for path in (entry, *_copies(folder, name)) if path.exists()]
    try:
        for path in removed:  # the entry first: it never names a file that is gone
            path.unlink()
    except OSError as error:
        raise _not_writable(folder, error) from None
    click.echo(f"Upstream {name} entfernt: {', '.join(map(str, removed))}")
    click.echo("  Verknüpfungen unserer Konten mit ihm bleiben in der Datenbank; ein Upstream "
               "desselben Namens findet sie wieder.")
    click.echo(AFTER_RESTART)
