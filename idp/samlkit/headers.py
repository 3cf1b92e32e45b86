"""The response headers every page of a SAML participant sends, IdP and portal alike.

Pages carry SAML messages, tokens and personal data: nothing of them may stay in a cache or the
browser's history (SAML bindings §3.4.5.1 and §3.5.5.1 ask for exactly ``Cache-Control:
no-cache, no-store`` and ``Pragma: no-cache``), be framed, sniffed or leak through a Referer.
"""

from __future__ import annotations

from typing import TypeVar

from werkzeug.wrappers import Response

R = TypeVar("R", bound=Response)


def add_security_headers(response: R, content_security_policy: str, uses_https: bool) -> R:
    """The headers every page gets; a view that set its own (e.g. a CSP naming the portal a
    form posts to) keeps it."""
    headers = response.headers
    headers.setdefault("Content-Security-Policy", content_security_policy)
    headers.setdefault("X-Content-Type-Options", "nosniff")
    headers.setdefault("X-Frame-Options", "DENY")
    headers.setdefault("Referrer-Policy", "no-referrer")
    headers.setdefault("Permissions-Policy", "camera=(), microphone=(), geolocation=()")
    headers.setdefault("Cross-Origin-Opener-Policy", "same-origin")
    if response.mimetype == "text/html":
        # Pragma for HTTP/1.0 caches.
        headers.setdefault("Cache-Control", "no-cache, no-store")
        headers.setdefault("Pragma", "no-cache")
    if uses_https:
        headers.setdefault("Strict-Transport-Security", "max-age=31536000")
    return response
