"""Run one demo portal: ``python -m sp_client --profile dueren --idp-metadata URL --port 5001``."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from sp_client.profiles import PROFILES


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
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    arguments = parse_arguments(argv)
    from sp_client import PortalConfigError, create_app

    profile = PROFILES[arguments.profile]
    port = arguments.port or profile.default_port
    try:
        app = create_app(arguments.profile, idp_metadata=arguments.idp_metadata,
                         base_url=arguments.base_url or f"http://127.0.0.1:{port}",
                         instance_path=arguments.instance, database_url=arguments.database,
                         minimum_trust_level=arguments.trust_level,
                         show_postal_outbox=not arguments.no_postal_outbox)
    except PortalConfigError as error:
        print(f"Das Portal kann nicht starten: {error}", file=sys.stderr)
        return 2
    print(f"{profile.display_name}: {app.config['PORTAL'].base_url}/", flush=True)
    app.run(host=arguments.host, port=port, threaded=True, use_reloader=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
