"""Run one demo portal: ``python -m sp_client --profile dueren --idp-metadata URL --port 5001``."""

from __future__ import annotations

import argparse
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from flask import Flask

from sp_client.profiles import PROFILES

# In a container (--gunicorn): one process, so that the SQLite database in the instance folder
# has a single writer; threads for the browsers waiting on the IdP.
GUNICORN_THREADS = 4


def parse_arguments(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m sp_client",
        description="Ein Demo-Portal (SAML-Service-Provider) für das Servicekonto starten.")
    parser.add_argument("--profile", required=True, choices=sorted(PROFILES),
                        help="welches Portal: dueren (Bürgerportal der Stadt Düren) oder mags")
    parser.add_argument("--idp-metadata", default="http://127.0.0.1:5000/saml/metadata",
                        help="URL oder Datei mit den Metadaten des Servicekontos "
                             "(Standard: %(default)s)")
    parser.add_argument("--host", default="127.0.0.1", help="Adresse (Standard: %(default)s)")
    parser.add_argument("--port", type=int, help="Port (Standard: 5001 Düren, 5002 mags)")
    parser.add_argument("--base-url", help="öffentliche URL (Standard: http://127.0.0.1:PORT)")
    parser.add_argument("--instance", type=Path,
                        help="Ordner für Datenbank und Schlüssel (Standard: instance/portal-NAME)")
    parser.add_argument("--database", help="SQLAlchemy-URL (Standard: SQLite im Instanzordner)")
    parser.add_argument("--trust-level", type=int, choices=(1, 2, 3, 4),
                        help="mindestens verlangtes Vertrauensniveau (STORK-QAA-Level)")
    parser.add_argument("--no-postal-outbox", action="store_true",
                        help="den Demo-Postausgang (Briefe mit Bestätigungscodes) nicht zeigen")
    parser.add_argument("--postal-outbox-remote", action="store_true",
                        help="den Demo-Postausgang auch anderen Rechnern zeigen (sonst nur "
                             "Aufrufen von dieser Maschine, 127.0.0.1/::1)")
    parser.add_argument("--gunicorn", action="store_true",
                        help="mit gunicorn ausliefern statt mit dem Entwicklungsserver von "
                             "Werkzeug (für Container)")
    parser.add_argument("--export-certificate", type=Path, metavar="DATEI",
                        help="nur die Schlüssel anlegen (falls nötig), das Signaturzertifikat "
                             "des Portals in DATEI schreiben und beenden")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    arguments = parse_arguments(argv)
    from sp_client import create_app
    from sp_client.settings import PortalConfigError

    profile = PROFILES[arguments.profile]
    port = arguments.port or profile.default_port
    try:
        app = create_app(arguments.profile, idp_metadata=arguments.idp_metadata,
                         base_url=arguments.base_url or f"http://127.0.0.1:{port}",
                         instance_path=arguments.instance, database_url=arguments.database,
                         minimum_trust_level=arguments.trust_level,
                         show_postal_outbox=not arguments.no_postal_outbox,
                         postal_outbox_remote=arguments.postal_outbox_remote)
    except PortalConfigError as error:
        print(f"Das Portal kann nicht starten: {error}", file=sys.stderr)
        return 2
    if arguments.export_certificate is not None:
        # The IdP pins this certificate: it takes our metadata, fetched over plain HTTP
        # inside the compose network, only with our signature on it.
        shutil.copyfile(app.config["PORTAL"].signing.cert_file, arguments.export_certificate)
        return 0
    print(f"{profile.display_name}: {app.config['PORTAL'].base_url}/", flush=True)
    if arguments.gunicorn:
        serve_with_gunicorn(app, arguments.host, port)
    else:
        app.run(host=arguments.host, port=port, threaded=True, use_reloader=False)
    return 0


def serve_with_gunicorn(app: Flask, host: str, port: int) -> None:
    """Serve ``app`` with gunicorn in this process (gunicorn's documented custom application)."""
    from gunicorn.app.base import BaseApplication  # type: ignore[import-untyped]  # no stubs

    from sp_client.extensions import portal_db

    # The worker is forked from this process: no database connection may cross the fork.
    portal_db.bound(app).engine.dispose()
    options = {"bind": f"{host}:{port}", "workers": 1, "worker_class": "gthread",
               "threads": GUNICORN_THREADS, "accesslog": "-", "errorlog": "-",
               # The client's address is the proxy's: no forwarded header is trusted.
               "forwarded_allow_ips": "", "control_socket_disable": True}

    class PortalServer(BaseApplication):  # type: ignore[misc]  # gunicorn is untyped
        def load_config(self) -> None:
            for key, value in options.items():
                self.cfg.set(key, value)

        def load(self) -> Any:
            return app

    PortalServer().run()


if __name__ == "__main__":
    sys.exit(main())
