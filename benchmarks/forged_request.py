"""CPU spent on a forged 46 KB AuthnRequest against CPU spent on a small refused one.

An attacker needs no login to send SSO requests. A request padded with 1 500 made-up extension
elements and a made-up Redirect signature must be refused about as cheaply as any small bad
request: the checks run cheapest first (size, structure, known issuer, then cryptography, then
pysaml2's parse; docs/security.md, "Order of checks"). Both are sent through the Flask app, on
one core; the figure is CPU time of this process per request (``time.process_time``), median of
rounds, and their ratio.

    python -m benchmarks.forged_request [--rounds 5] [--requests 20]
"""

from __future__ import annotations

import argparse
import base64
import logging
import re
import statistics
import tempfile
import time
import zlib
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlencode

from flask.testing import FlaskClient
from saml2 import BINDING_HTTP_REDIRECT

from benchmarks.sso import build

SHA256 = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"
# The forged request may cost at most this many times a small refused one.
TARGET = 2.0


def redirect_query(xml: bytes) -> str:
    """The SSO Redirect URL carrying ``xml`` with a made-up RSA-SHA256 signature."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    deflated = compressor.compress(xml) + compressor.flush()
    return "/saml/sso/redirect?" + urlencode({
        "SAMLRequest": base64.b64encode(deflated).decode(), "SigAlg": SHA256,
        "Signature": base64.b64encode(b"\x01" * 256).decode()})


def padded(xml: bytes, elements: int) -> bytes:
    """The request with ``elements`` made-up extension elements after its Issuer."""
    padding = (b"<samlp:Extensions xmlns:samlp='urn:oasis:names:tc:SAML:2.0:protocol'>"
               + b"".join(b"<x:e xmlns:x='urn:x' a='%d'/>" % i for i in range(elements))
               + b"</samlp:Extensions>")
    end = re.search(rb"</(\w+:)?Issuer>", xml)
    assert end is not None
    return xml[:end.end()] + padding + xml[end.end():]


def cpu_ms_per_request(send: Callable[[], object], requests: int) -> float:
    started = time.process_time()
    for _ in range(requests):
        send()
    return (time.process_time() - started) * 1000 / requests


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--requests", type=int, default=20)
    args = parser.parse_args()
    logging.disable(logging.CRITICAL)  # one log line per refusal would be measured too
    with tempfile.TemporaryDirectory() as folder:
        app, portal = build(Path(folder), 2048)
        client: FlaskClient = app.test_client()
        client.get("/")
        _, request = portal.create_authn_request("http://localhost/saml/sso/redirect",
                                                 binding=BINDING_HTTP_REDIRECT)
        small = str(request).encode()
        forged = padded(small, 1500)
        forged_url, small_url = redirect_query(forged), redirect_query(small)
        forged_ms, small_ms = [], []
        for _ in range(args.rounds):  # alternating, so that drift hits both alike
            small_ms.append(cpu_ms_per_request(lambda: client.get(small_url), args.requests))
            forged_ms.append(cpu_ms_per_request(lambda: client.get(forged_url), args.requests))
        assert client.get(forged_url).status_code == 400
    forged_median, small_median = statistics.median(forged_ms), statistics.median(small_ms)
    ratio = forged_median / small_median
    print(f"forged request ({len(forged)} bytes, made-up signature): "
          f"{forged_median:.2f} ms CPU each")
    print(f"small request ({len(small)} bytes, made-up signature):  "
          f"{small_median:.2f} ms CPU each")
    print(f"ratio {ratio:.2f} (target ≤ {TARGET}): {'met' if ratio <= TARGET else 'NOT met'}")


if __name__ == "__main__":
    main()
