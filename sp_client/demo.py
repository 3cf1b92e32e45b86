"""``servicekonto demo``: the IdP (in development mode), both demo portals and "Servicekonto
Musterland" on loopback ports, ready to click through (``--host 0.0.0.0`` inside a container: see
:func:`demo`).

Everything lives in one instance folder (default ``instance/demo``): the IdP's SQLite database
and keys, each portal's database and keys, and a policy folder naming the portals at the ports
chosen and Musterland as the upstream of "Login mit externem Servicekonto" (docs/broker.md).
Musterland is a second instance of our IdP with its own folder (``musterland/``: its database,
keys and policies, which register our broker as its one portal).

The portals start first (their metadata needs nothing), then the IdP, which fetches their
metadata over HTTP at once; then Musterland, which fetches our broker's metadata at once. The
portals read the IdP's metadata on first use, and our broker Musterland's. Mails go to
the development mailbox (or, with ``IDP_MAIL_SERVER`` set, to that SMTP server), letters to the
mags portal's postal outbox. Ctrl-C stops all four.
"""

from __future__ import annotations

import ipaddress
import os
import secrets
import shlex
import shutil
import signal
import threading
from collections.abc import Iterator, Mapping
from contextlib import ExitStack, contextmanager
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING

import click
import yaml
from flask import Flask
from werkzeug.serving import BaseWSGIServer, make_server

from idp.config import Config, ConfigError
from idp.shipped import default_instance_folder, shipped_folder

if TYPE_CHECKING:
    from idp.testing.personas import Persona

# The address in every URL of the demo, and where it listens by default: loopback only, since
# the demo has well-known passwords, no TLS and a mailbox full of links.
HOST = "127.0.0.1"
# The only IdP settings taken from the environment: how mails leave, the password hash cost, the
# development clock and the test-control API's token (for QA and the end-to-end tests). Where
# the data lives, the secret and the URLs are the demo's own, so that a shell's production
# settings cannot leak into it.
PASSED_ON = ("IDP_MAIL_", "IDP_ARGON2_", "IDP_CLOCK_OFFSET_HOURS", "IDP_TESTING_API_TOKEN")


# Not a secret: the password of the shipped personas (policies/personas/), which `--seed` loads
# as accounts and prints.
DEMO_PASSWORD = "Servicekonto-Demo 2026!"

# "Servicekonto Musterland": the other state's Servicekonto, the upstream of the broker. Its
# bPK2 prefix keeps its citizens' identifiers apart from ours at every portal.
MUSTERLAND = "musterland"
MUSTERLAND_NAME = "Servicekonto Musterland"
MUSTERLAND_UPSTREAM = {"display_name": MUSTERLAND_NAME, "maximum_trust_level": "STORK-QAA-Level-3",
                       "bpk2_prefix": "MU:"}
MUSTERLAND_USERNAME = "MaxMusterland"
# The cookie of Musterland's session: the browser does not tell ports apart, and with our
# IdP's cookie name each login would end the other instance's session.
MUSTERLAND_COOKIE = "servicekonto-musterland"


def _url(port: int) -> str:
    return f"http://{HOST}:{port}"


def write_policies(instance: Path, ports: dict[str, int],
                   musterland_port: int | None = None) -> Path:
    """The shipped policies, with the portals' entity ids and metadata at the chosen ports,
    and Musterland as an upstream at ``musterland_port`` (when given)."""
    folder = instance / "policies"
    (folder / "portals").mkdir(parents=True, exist_ok=True)
    shipped_policies = shipped_folder("policies")
    shutil.copy(shipped_policies / "password.yaml", folder / "password.yaml")
    shutil.copytree(shipped_policies / "personas", folder / "personas", dirs_exist_ok=True)
    for name, port in ports.items():
        shipped = shipped_policies / "portals" / f"{name}.yaml"
        policy = yaml.safe_load(shipped.read_text(encoding="utf-8"))
        policy["entity_id"] = policy["metadata"] = f"{_url(port)}/saml/metadata"
        _write_policy(folder / "portals" / f"{name}.yaml", policy, f"from {shipped.name}")
    upstream = folder / "upstreams" / f"{MUSTERLAND}.yaml"
    if musterland_port is None:
        upstream.unlink(missing_ok=True)
    else:
        upstream.parent.mkdir(exist_ok=True)
        metadata = f"{_url(musterland_port)}/saml/metadata"
        _write_policy(upstream, {**MUSTERLAND_UPSTREAM, "entity_id": metadata,
                                 "metadata": metadata}, f"for {MUSTERLAND_NAME}")
    return folder


def write_musterland_policies(instance: Path, idp_port: int) -> Path:
    """Musterland's policy folder (``instance/musterland/policies``): the shipped password
    rules, and our broker (its SP metadata at ``idp_port``) as its one portal."""
    folder = instance / MUSTERLAND / "policies"
    (folder / "portals").mkdir(parents=True, exist_ok=True)
    shutil.copy(shipped_folder("policies") / "password.yaml", folder / "password.yaml")
    metadata = f"{_url(idp_port)}/extern/metadata"
    _write_policy(folder / "portals" / "servicekonto-nrw.yaml", {
        "display_name": "Servicekonto.NRW", "entity_id": metadata, "metadata": metadata,
        "attributes": ["gender", "givenName", "surname", "birthName", "mail", "bPK2"],
        "minimum_trust_level": "STORK-QAA-Level-1", "name_id_format": "persistent",
        "consent_required": True}, "for our broker")
    return folder


def musterland_citizen() -> Persona:
    """Musterland's citizen (``--seed``): an account there and none here, until the first
    login through the broker makes one. Not a file of ``policies/personas``, which are ours."""
    from idp.testing.citizens import CitizenSpec
    from idp.testing.personas import Persona

    return Persona(name="max", description=f"Konto beim {MUSTERLAND_NAME}",
                   source=Path(__file__),
                   spec=CitizenSpec(username=MUSTERLAND_USERNAME, password=DEMO_PASSWORD,
                                    email="max.mustermann@musterland.example",
                                    given_name="Max", surname="Mustermann", salutation="herr"))


def _write_policy(path: Path, policy: dict[str, object], origin: str) -> None:
    path.write_text(f"# Written by `servicekonto demo` {origin}; changes are overwritten.\n"
                    + yaml.safe_dump(policy, allow_unicode=True, sort_keys=False),
                    encoding="utf-8")


def passed_on(environ: Mapping[str, str]) -> dict[str, str]:
    """The variables of ``environ`` the demo's IdP takes over (see :data:`PASSED_ON`)."""
    return {name: value for name, value in environ.items() if name.startswith(PASSED_ON)}


def build_idp(instance: Path, port: int, policy_dir: Path,
              environ: Mapping[str, str] | None = None, *, remote: bool = False) -> Flask:
    """The IdP in development mode on SQLite in ``instance/idp`` (schema made or upgraded
    first); of ``environ`` (default: ``os.environ``) only the variables in :data:`PASSED_ON`
    count. ``remote``: the development mailbox answers clients beyond loopback too."""
    from idp import create_app, schema

    folder = instance / "idp"
    folder.mkdir(parents=True, exist_ok=True)
    database_url = f"sqlite:///{folder.resolve() / 'servicekonto.sqlite3'}"
    schema.upgrade(database_url)
    return create_app(test_config={"environment": "development", "development_remote": remote,
                                   "base_url": _url(port), "instance_path": folder,
                                   "database_url": database_url, "policy_dir": policy_dir},
                      env=passed_on(os.environ if environ is None else environ))


def cli_environment(config: Config) -> str:
    """The ``export`` line that points ``servicekonto`` commands at this demo's IdP (its
    database, policies, instance folder and address)."""
    settings = {"IDP_ENV": "development", "IDP_DATABASE_URL": config.database_url,
                "IDP_POLICY_DIR": str(config.policy_dir.resolve()),
                "IDP_INSTANCE_PATH": str(config.instance_path.resolve()),
                "IDP_BASE_URL": config.base_url}
    return "export " + " ".join(f"{name}={shlex.quote(value)}" for name, value in settings.items())


def demo_folder(environ: Mapping[str, str]) -> Path:
    """Where the demo keeps its files: under ``IDP_INSTANCE_PATH`` when set (in the image, its
    writable volume; the rest of a container is read-only), else ``instance/demo``."""
    configured = environ.get("IDP_INSTANCE_PATH")
    return (Path(configured) if configured else default_instance_folder()) / "demo"


def is_loopback_host(host: str) -> bool:
    """Whether listening on ``host`` keeps the demo on this machine."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def seed_personas(app: Flask, personas: list[Persona] | None = None) -> list[str]:
    """Load ``personas`` (default: those of the app's policy folder) as accounts of ``app``
    (those there already stay as they are); a line per persona: username, password, what it
    is, what loading did."""
    from idp.db import db
    from idp.testing.loading import load_personas
    from idp.testing.personas import load_personas as read_personas
    from idp.web.context import services

    with app.app_context():
        parts = services()
        if personas is None:
            personas = read_personas(parts.config.policy_dir, parts.policy)
        loaded = load_personas(parts.accounts(db.session), parts.throttle(db.session), personas)
        return [result.line() for result in loaded]


@contextmanager
def serving(apps: list[tuple[Flask, int]], host: str = HOST) -> Iterator[None]:
    """Serve each app on its port of ``host`` in a thread; stop them all on leaving."""
    servers: list[BaseWSGIServer] = []
    try:
        for app, port in apps:
            servers.append(make_server(host, port, app, threaded=True))
    except OSError as error:
        for server in servers:
            server.server_close()
        raise click.ClickException(f"Port belegt oder nicht verfügbar: {error}") from None
    threads = [threading.Thread(target=server.serve_forever, daemon=True) for server in servers]
    for thread in threads:
        thread.start()
    try:
        yield
    finally:
        for server in servers:
            server.shutdown()
            server.server_close()


@contextmanager
def stop_signal() -> Iterator[threading.Event]:
    """An event set by Ctrl-C (SIGINT) or SIGTERM while inside (also during the start)."""
    stop = threading.Event()

    def _stop(_signum: int, _frame: FrameType | None) -> None:
        stop.set()

    previous = {number: signal.signal(number, _stop)
                for number in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield stop
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


@click.command("demo",
               help="IdP, beide Demo-Portale und das Servicekonto Musterland (externes "
                    "Servicekonto) starten (SQLite, erzeugte Schlüssel, Entwicklungs-Postfach).")
@click.option("--instance", type=click.Path(file_okay=False, path_type=Path),
              default=lambda: demo_folder(os.environ),
              show_default="$IDP_INSTANCE_PATH/demo, sonst instance/demo",
              help="Ordner für Datenbanken, Schlüssel und Richtlinien der Demo.")
@click.option("--idp-port", default=5000, show_default=True, type=int)
@click.option("--dueren-port", default=5001, show_default=True, type=int)
@click.option("--mags-port", default=5002, show_default=True, type=int)
@click.option("--musterland-port", default=5003, show_default=True, type=int)
@click.option("--seed", is_flag=True,
              help="Die Personas (policies/personas/) als Konten anlegen (Erika, Max, …), "
                   "beim Servicekonto Musterland ein Konto (MaxMusterland).")
@click.option("--host", default=HOST, show_default=True,
              help="Adresse, auf der die Demo lauscht, z. B. 0.0.0.0 in einem Container (die "
                   "URLs bleiben http://127.0.0.1:PORT; das Entwicklungs-Postfach antwortet "
                   "dann auch anderen Rechnern).")
def demo(instance: Path, idp_port: int, dueren_port: int, mags_port: int,
         musterland_port: int, seed: bool, host: str) -> None:
    instance = instance.resolve()
    ports = {"dueren": dueren_port, "mags": mags_port}
    if len({idp_port, musterland_port, *ports.values()}) != 4:
        raise click.ClickException("Die vier Ports müssen verschieden sein.")
    with stop_signal() as stop:
        _run(instance, idp_port, ports, musterland_port, seed, stop, host)
    click.echo("Demo beendet.")


def build_portals(instance: Path, idp_port: int, ports: dict[str, int],
                  remote: bool = False) -> list[tuple[Flask, int]]:
    """The demo portals with their ports; with ``remote`` the mags postal outbox answers other
    machines too (as the IdP's mailbox does)."""
    from sp_client import create_app as create_portal

    return [(create_portal(name, idp_metadata=f"{_url(idp_port)}/saml/metadata",
                           base_url=_url(port), instance_path=instance / f"portal-{name}",
                           postal_outbox_remote=remote), port)
            for name, port in ports.items()]


def build_musterland(instance: Path, port: int, idp_port: int, environ: Mapping[str, str],
                     *, remote: bool = False) -> Flask:
    """Servicekonto Musterland: our IdP once more, in ``instance/musterland`` (its own
    database, keys and policies), with our broker at ``idp_port`` as its portal, whose metadata
    it fetches at once (start it after our IdP). Takes of ``environ`` what our IdP takes, but
    no test-control token: its workbench stays closed."""
    policy_dir = write_musterland_policies(instance, idp_port)
    app = build_idp(instance / MUSTERLAND, port, policy_dir,
                    {name: value for name, value in environ.items()
                     if name != "IDP_TESTING_API_TOKEN"}, remote=remote)
    app.config["SESSION_COOKIE_NAME"] = MUSTERLAND_COOKIE
    return app


def _run(instance: Path, idp_port: int, ports: dict[str, int], musterland_port: int,
         seed: bool, stop: threading.Event, host: str) -> None:
    from idp.mail.sender import start_background_sender
    from sp_client.profiles import PROFILES
    from sp_client.settings import PortalConfigError

    click.echo("Demo startet (beim ersten Start werden Schlüssel erzeugt) …")
    policy_dir = write_policies(instance, ports, musterland_port)
    # Listening beyond loopback (a container's published ports) is the operator's explicit
    # choice: the mailbox and the postal outbox then answer there too, or nobody could read
    # the demo's mails and letters.
    remote = not is_loopback_host(host)
    try:
        portals = build_portals(instance, idp_port, ports, remote=remote)
    except PortalConfigError as error:
        raise click.ClickException(f"Demo-Portal kann nicht starten: {error}") from None
    with ExitStack() as running:
        running.enter_context(serving(portals, host))
        # The test-control API's token: the caller's, or one for this run (printed below).
        token = os.environ.get("IDP_TESTING_API_TOKEN") or secrets.token_urlsafe(32)
        try:
            idp = build_idp(instance, idp_port, policy_dir,
                            {**os.environ, "IDP_TESTING_API_TOKEN": token}, remote=remote)
        except ConfigError as error:
            raise click.ClickException(f"Servicekonto kann nicht starten: {error}") from None
        config = idp.config["SERVICEKONTO"]
        # Also with the mailbox: the sender answers "Passwort/Benutzernamen vergessen".
        start_background_sender(idp, stop=stop)
        running.enter_context(serving([(idp, idp_port)], host))
        try:
            musterland = build_musterland(instance, musterland_port, idp_port, os.environ,
                                          remote=remote)
        except ConfigError as error:
            raise click.ClickException(f"{MUSTERLAND_NAME} kann nicht starten: {error}") \
                from None
        start_background_sender(musterland, stop=stop)
        running.enter_context(serving([(musterland, musterland_port)], host))
        mails = (f"Entwicklungs-Postfach:         {_url(idp_port)}/entwicklung/postfach/"
                 if config.uses_dev_mailbox else
                 f"Mails per SMTP an:             {config.mail_server}:{config.mail_port}")
        lines = [f"Servicekonto (IdP):            {_url(idp_port)}/",
                 *(f"{PROFILES[name].display_name + ':':<31}{_url(port)}/"
                   for name, port in ports.items()),
                 f"{MUSTERLAND_NAME + ':':<31}{_url(musterland_port)}/ (externes Servicekonto: "
                 "„Login mit externem Servicekonto“)",
                 mails,
                 f"Postausgang (mags, Briefe):    {_url(ports['mags'])}/post",
                 f"Test-Schnittstelle:            {_url(idp_port)}/testing/api/ "
                 f"(Authorization: Bearer {token})",
                 f"SAML-Tracer:                   {_url(idp_port)}/entwicklung/saml/",
                 "Befehle gegen diese Demo (servicekonto testing …) in einer Shell mit:",
                 "  " + cli_environment(config)]
        if seed:
            lines.append("Personas (Benutzername / Passwort):")
            try:
                lines += [f"  {line}" for line in seed_personas(idp)]
            except ConfigError as error:  # a broken persona file: every problem named
                raise click.ClickException(f"Personas nicht geladen: {error}") from None
            lines.append(f"Konto beim {MUSTERLAND_NAME} (Benutzername / Passwort):")
            lines += [f"  {line}" for line in seed_personas(musterland, [musterland_citizen()])]
        if remote:
            lines.append(f"Achtung: Die Demo lauscht auf {host}; Entwicklungs-Postfach, "
                         "Postausgang und Demo-Konten sind von anderen Rechnern erreichbar.")
        click.echo("\n".join(lines))
        click.echo("Demo läuft. Beenden mit Strg+C.")
        while not stop.wait(0.5):
            pass
