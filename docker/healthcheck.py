"""The container's health check: the IdP is alive (exit 0) or it is not (exit 1).

``python healthcheck.py [URL [HOST]]``: by default the IdP's ``/healthz`` on port 8000 (alive,
touching nothing: a database outage must not make Docker restart every IdP), asked for under
the host name of ``IDP_BASE_URL``. The demo portals pass their own URL and host name. Standard
library only: it runs in the image as it is.
"""

from __future__ import annotations

import http.client
import os
import sys
from urllib.parse import urlsplit

DEFAULT_URL = "http://127.0.0.1:8000/healthz"


def healthy(url: str, host: str, timeout: float = 4.0) -> bool:
    """True when ``url`` answers 200 to a GET carrying ``Host: host``."""
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port or 80,
                                            timeout=timeout)
    try:
        connection.request("GET", parts.path or "/", headers={"Host": host})
        return connection.getresponse().status == 200
    except OSError:
        return False
    finally:
        connection.close()


def main(argv: list[str]) -> int:
    url = argv[1] if len(argv) > 1 else DEFAULT_URL
    host = argv[2] if len(argv) > 2 else (
        urlsplit(os.environ.get("IDP_BASE_URL", "")).netloc or "127.0.0.1")
    return 0 if healthy(url, host) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
