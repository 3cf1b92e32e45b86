"""``servicekonto config``: check the settings, show them with where each came from, and write
their reference into docs/configuration.md, all without building the app (no database).

Everything is made from the one table of settings (:data:`idp.config.SETTINGS`).
"""

from __future__ import annotations

import os
from pathlib import Path

import click
from flask.cli import load_dotenv

from idp.config import OTHER_TOOLS, SETTINGS, ConfigError, ConfigReading, read_config, value_at
from idp.settings import Setting, shown, shown_safely

# Where the names that --env-file set are kept for `config show` (click's ctx.meta is shared by
# the whole command line).
ENV_FILE_NAMES = "servicekonto.env_file_names"
# The generated block of docs/configuration.md lies between these lines.
REFERENCE_START = ("<!-- The settings: made by `servicekonto config reference --update "
                   "docs/configuration.md` from idp/config.py; do not edit here. -->")
REFERENCE_END = "<!-- End of the settings. -->"


def load_env_file(ctx: click.Context, _param: click.Parameter, value: str | None) -> str | None:
    """``--env-file``: its variables join the environment (those set there already win), and
    ``config show`` can tell which came from it."""
    if value is not None:
        before = set(os.environ)
        load_dotenv(value, load_defaults=False)
        ctx.meta[ENV_FILE_NAMES] = frozenset(set(os.environ) - before)
    return value


ENV_FILE_OPTION = click.Option(
    ["-e", "--env-file"], type=click.Path(exists=True, dir_okay=False), is_eager=True,
    expose_value=False, callback=load_env_file,
    help="Umgebungsvariablen aus dieser Datei laden (KEY=VALUE je Zeile); in der Umgebung "
         "gesetzte haben Vorrang.")


def _reading() -> ConfigReading:
    names = click.get_current_context().meta.get(ENV_FILE_NAMES, frozenset())
    try:
        return read_config(from_env_file=names)
    except ConfigError as error:
        raise click.ClickException(str(error)) from None


def start_problems(reading: ConfigReading) -> list[str]:
    """The problems the start would meet: the settings', then (when those are fine) the password
    policy's, the portal and upstream files' and the signing key's, which need neither the
    database nor the network."""
    if reading.problems:
        return reading.problems
    from idp.accounts.passwords import PasswordPolicy
    from idp.broker.upstreams import load_upstreams
    from idp.portals.policy import load_portal_policies
    from idp.portals.registry import refuse_plain_http
    from idp.saml.runtime import load_keys

    config, problems = reading.config, []
    try:
        PasswordPolicy.load(config.policy_dir / "password.yaml")
    except ConfigError as error:
        problems.append(str(error))
    try:
        refuse_plain_http(load_portal_policies(config.policy_dir), config.is_development)
    except ConfigError as error:
        problems.append(str(error))
    try:
        load_upstreams(config.policy_dir)
    except ConfigError as error:
        problems.extend(str(error).splitlines())
    # In development a missing key is made at the first start, which a check must not do.
    if config.key_file or config.cert_file or not config.is_development:
        try:
            load_keys(config)
        except ConfigError as error:
            problems.append(str(error))
    return problems


@click.group("config", help="Einstellungen (IDP_*) prüfen und anzeigen.")
def config_group() -> None:
    pass


@config_group.command("check", help="Einstellungen prüfen, ohne den IdP zu starten; nennt alle "
                                    "Probleme auf einmal (Exit-Code 1).")
def config_check() -> None:
    reading = _reading()
    problems = start_problems(reading)
    if problems:
        click.echo(f"{len(problems)} Problem(e) in der Konfiguration:", err=True)
        for problem in problems:
            click.echo(f"- {problem}", err=True)
        raise SystemExit(1)
    mode = "Entwicklungsmodus" if reading.config.is_development else "Produktionsmodus"
    click.echo(f"OK: Konfiguration in Ordnung ({mode}).")


@config_group.command("show", help="Wirksamen Wert jeder Einstellung anzeigen und woher er kommt "
                                   "(default, environment, file, env-file); Geheimnisse "
                                   "maskiert.")
def config_show() -> None:
    reading = _reading()
    rows = [(item.name, _effective(reading, item), reading.sources[item.name])
            for item in SETTINGS]
    name_width = max(len(name) for name, _, _ in rows)
    value_width = min(48, max(len(value) for _, value, _ in rows))
    for name, value, source in rows:
        click.echo(f"{name:<{name_width}}  {value:<{value_width}}  {source}")
    if reading.problems:
        click.echo(f"\n{len(reading.problems)} Problem(e) in der Konfiguration:", err=True)
        for problem in reading.problems:
            click.echo(f"- {problem}", err=True)
        raise SystemExit(1)


def _effective(reading: ConfigReading, item: Setting) -> str:
    value = value_at(reading.config, item.field)
    if item.field == "secret_key" and not value and reading.config.is_development:
        return f"(generated: {reading.config.instance_path / 'secret_key'})"
    return shown_safely(item, value)


@config_group.command("reference", help="Die Tabelle der Einstellungen für "
                                        "docs/configuration.md ausgeben.")
@click.option("--update", "document", type=click.Path(exists=True, dir_okay=False,
                                                      path_type=Path),
              help="Die Tabelle in dieser Datei ersetzen (zwischen ihren Markierungen).")
def config_reference(document: Path | None) -> None:
    if document is None:
        click.echo(reference(), nl=False)
        return
    document.write_text(with_reference(document.read_text(encoding="utf-8")), encoding="utf-8")
    click.echo(f"{document}: Tabelle der Einstellungen erneuert.")


def reference() -> str:
    """The Markdown reference of every setting: a table row each, then the names other tools
    read."""
    lines = ["| variable | meaning | default |", "|---|---|---|"]
    for item in SETTINGS:
        name = f"`{item.name}`" + (f" (or `{item.file_name}`)" if item.file_name else "")
        about = ("development only (production refuses it unless off or the default): "
                 if item.development_only else "") + item.about
        if item.secret:
            about += ("; a secret: `config show` masks it" if item.show is None else
                      "; `config show` masks the password in it")
        lines.append(f"| {name} | {about} | {_default_cell(item)} |")
    lines += ["", "Names of other tools, which the IdP leaves alone (any other `IDP_*` name stops "
                  "the start, with the nearest setting's name):", ""]
    lines += [f"- `{name}`: {who}" for name, who in OTHER_TOOLS.items()]
    return "\n".join(lines) + "\n"


def _default_cell(item: Setting) -> str:
    if item.default_text:
        return item.default_text
    written = shown(item.default)
    return written if written == "–" else f"`{written}`"


def with_reference(document: str) -> str:
    """``document`` with the block between :data:`REFERENCE_START` and :data:`REFERENCE_END`
    made anew."""
    before, start, rest = document.partition(REFERENCE_START)
    _, end, after = rest.partition(REFERENCE_END)
    if not (start and end):
        raise click.ClickException(f"the markers of the settings are missing: {REFERENCE_START}"
                                   f" … {REFERENCE_END}")
    return f"{before}{REFERENCE_START}\n{reference()}{REFERENCE_END}{after}"
