"""Fetching SAML metadata from a URL within limits: http(s) only, a deadline for the whole
download, a cap on its size.

The IdP fetches its portals' metadata with it, a demo portal the IdP's.
"""

from __future__ import annotations

import http.client
import time
from typing import Any
from urllib.error import URLError
from urllib.parse import urlsplit
from urllib.request import HTTPRedirectHandler, Request, build_opener

# Metadata of one entity is a few KiB; more is a mistake or an attack on our memory.
MAX_METADATA_BYTES = 1024 * 1024
# The whole download, not only each socket read, must end within this time.
FETCH_TIMEOUT_SECONDS = 10.0


class MetadataError(ValueError):
    """The metadata cannot be used; the message says why (for the operator, in the log)."""


class _HttpOnlyRedirects(HTTPRedirectHandler):
    """Follow redirects only to http(s) (urllib would also follow ftp:)."""

    def redirect_request(self, req: Request, fp: Any, code: int, msg: str, headers: Any,
                         newurl: str) -> Request | None:
        if urlsplit(newurl).scheme not in ("http", "https"):
            raise MetadataError(f"redirected to a non-http(s) URL {newurl!r}")
        return super().redirect_request(req, fp, code, msg, headers, newurl)


def fetch_metadata(url: str, timeout: float = FETCH_TIMEOUT_SECONDS,
                   max_bytes: int = MAX_METADATA_BYTES) -> bytes:
    """The document at ``url``, within ``timeout`` seconds and ``max_bytes``.

    Anything else (unreachable, HTTP error, too slow, too large) raises :class:`MetadataError`.
    """
    if urlsplit(url).scheme not in ("http", "https"):
        raise MetadataError(f"{url!r} is not an http(s) URL")
    deadline = time.monotonic() + timeout
    request = Request(url, headers={  # noqa: S310 (http or https, checked above)
        "Accept": "application/samlmetadata+xml, application/xml;q=0.9, */*;q=0.1"})
    opener = build_opener(_HttpOnlyRedirects())
    try:
        with opener.open(request, timeout=timeout) as response:
            announced = response.headers.get("Content-Length")
            if announced and announced.isdigit() and int(announced) > max_bytes:
                raise MetadataError(f"larger than {max_bytes} bytes")
            body = bytearray()
            # read1: at most one socket read each, so a server trickling bytes meets the deadline.
            while chunk := response.read1(64 * 1024):
                body += chunk
                if len(body) > max_bytes:
                    raise MetadataError(f"larger than {max_bytes} bytes")
                if time.monotonic() > deadline:
                    raise MetadataError(f"took longer than {timeout:g} seconds")
            return bytes(body)
    except MetadataError:
        raise
    except (URLError, OSError, http.client.HTTPException, ValueError) as error:
        reason = getattr(error, "reason", None) or error
        raise MetadataError(f"cannot fetch {url}: {reason}") from None
