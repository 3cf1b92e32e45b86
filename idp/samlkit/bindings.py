"""Taking SAML messages off the wire safely: HTTP-Redirect and HTTP-POST bindings.

pysaml2 inflates without a limit and reads the query string after the web framework has
decoded it, which loses the exact bytes a Redirect signature covers. So we decode here, with caps
on every size, refuse DOCTYPEs (XXE, billion laughs), and keep the raw signed query string; the
XML handed to pysaml2 afterwards is already plain and small.
"""

from __future__ import annotations

import base64
import binascii
import re
import zlib
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import unquote_to_bytes

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509 import Certificate

# A signed AuthnRequest with a certificate is a few KiB; nothing legitimate comes near these.
MAX_ENCODED_BYTES = 64 * 1024
MAX_XML_BYTES = 128 * 1024
# SAML bindings §3.4.3 and §3.5.3: RelayState MUST NOT exceed 80 bytes. A longer one is refused
# (never echoed to the portal); portals keep a return URL under a short reference instead.
MAX_RELAY_STATE_BYTES = 80
DEFLATE_ENCODING = "urn:oasis:names:tc:SAML:2.0:bindings:URL-Encoding:DEFLATE"
MESSAGE_PARAMETERS = ("SAMLRequest", "SAMLResponse")

# Signature algorithms accepted on the Redirect binding: SHA-256 and stronger only.
REDIRECT_SIGNATURE_ALGORITHMS: dict[str, tuple[str, hashes.HashAlgorithm]] = {
    "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256": ("rsa", hashes.SHA256()),
    "http://www.w3.org/2001/04/xmldsig-more#rsa-sha384": ("rsa", hashes.SHA384()),
    "http://www.w3.org/2001/04/xmldsig-more#rsa-sha512": ("rsa", hashes.SHA512()),
    "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256": ("ec", hashes.SHA256()),
    "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha384": ("ec", hashes.SHA384()),
    "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha512": ("ec", hashes.SHA512()),
}

_DOCTYPE = re.compile(rb"<!\s*(DOCTYPE|ENTITY)", re.IGNORECASE)
_RELAY_STATE_FORBIDDEN = re.compile(r"[\x00-\x1f\x7f<>\u2028\u2029\ufffd]")


class BindingError(ValueError):
    """The message cannot be taken as it arrived; ``str(error)`` says why (for the log)."""


@dataclass(frozen=True)
class IncomingMessage:
    """A decoded SAML message and what came with it."""

    xml: bytes
    relay_state: str | None
    binding: str  # "redirect" | "post"
    # Redirect binding only: the exact bytes the signature covers, the algorithm, the signature.
    signed_query: bytes | None = None
    sig_alg: str | None = None
    signature: bytes | None = None
    # The parameter that carried it: a request (SAMLRequest) or a response (SAMLResponse).
    parameter: str = "SAMLRequest"

    @property
    def has_redirect_signature(self) -> bool:
        return self.signature is not None

    @property
    def is_response(self) -> bool:
        return self.parameter == "SAMLResponse"


def _b64decode(value: bytes | str, what: str) -> bytes:
    if len(value) > MAX_ENCODED_BYTES:
        raise BindingError(f"{what} is larger than {MAX_ENCODED_BYTES} bytes")
    raw = value.encode("ascii", "replace") if isinstance(value, str) else value
    # Line breaks are common in POSTed base64; anything else outside the alphabet is refused.
    raw = re.sub(rb"[\r\n]", b"", raw)
    try:
        return base64.b64decode(raw, validate=True)
    except (binascii.Error, ValueError):
        raise BindingError(f"{what} is not valid base64") from None


def inflate(data: bytes) -> bytes:
    """Raw DEFLATE with a ceiling: a deflate bomb stops at MAX_XML_BYTES, memory stays flat."""
    decompressor = zlib.decompressobj(-zlib.MAX_WBITS)
    try:
        out = decompressor.decompress(data, MAX_XML_BYTES + 1)
    except zlib.error:
        raise BindingError("SAML message is not valid DEFLATE data") from None
    if len(out) > MAX_XML_BYTES or decompressor.unconsumed_tail:
        raise BindingError(f"SAML message inflates beyond {MAX_XML_BYTES} bytes")
    return out


def _checked_xml(xml: bytes) -> bytes:
    if len(xml) > MAX_XML_BYTES:
        raise BindingError(f"SAML message is larger than {MAX_XML_BYTES} bytes")
    if _DOCTYPE.search(xml):
        raise BindingError("SAML message contains a DOCTYPE or ENTITY declaration")
    if not xml.lstrip().startswith(b"<"):
        raise BindingError("SAML message is not XML")
    return xml


def check_relay_state(value: str | None) -> str | None:
    """RelayState is opaque to us, but bounded: short, no control characters, no markup."""
    if value is None:
        return None
    if len(value.encode("utf-8", "surrogatepass")) > MAX_RELAY_STATE_BYTES:
        raise BindingError(f"RelayState is longer than {MAX_RELAY_STATE_BYTES} bytes")
    if _RELAY_STATE_FORBIDDEN.search(value):
        raise BindingError("RelayState contains control characters or markup")
    return value


def _message_parameter(names: Iterable[str], parameter: str | None) -> str:
    """``parameter``, or with None the one of SAMLRequest and SAMLResponse that came (exactly
    one: an endpoint taking both must not guess which of two messages to act on)."""
    if parameter is not None:
        return parameter
    present = [name for name in MESSAGE_PARAMETERS if name in names]
    if len(present) != 1:
        raise BindingError("expected exactly one of SAMLRequest and SAMLResponse")
    return present[0]


def _query_pairs(query: bytes) -> list[tuple[bytes, bytes]]:
    pairs = []
    for part in query.split(b"&"):
        if not part:
            continue
        name, _, value = part.partition(b"=")
        pairs.append((name, value))
    return pairs


def decode_redirect(query_string: bytes,
                    parameter: str | None = "SAMLRequest") -> IncomingMessage:
    """Decode an HTTP-Redirect message from the raw (still percent-encoded) query string.

    ``parameter=None`` takes a request or a response, whichever came (single logout).
    """
    if len(query_string) > 2 * MAX_ENCODED_BYTES:
        raise BindingError("query string too long")
    raw: dict[str, bytes] = {}
    for name_bytes, value in _query_pairs(query_string):
        name = unquote_to_bytes(name_bytes).decode("utf-8", "replace")
        if name in raw:
            # Two values for one parameter: which one a check reads and which one is used
            # could differ. Refuse instead of picking.
            raise BindingError(f"parameter {name} appears more than once")
        raw[name] = value
    parameter = _message_parameter(raw, parameter)
    if parameter not in raw:
        raise BindingError(f"{parameter} is missing")
    encoding = raw.get("SAMLEncoding")
    if encoding is not None and unquote_to_bytes(encoding).decode("utf-8", "replace") != \
            DEFLATE_ENCODING:
        raise BindingError("unsupported SAMLEncoding")
    xml = _checked_xml(inflate(_b64decode(unquote_to_bytes(raw[parameter]), parameter)))
    relay_state = None
    if "RelayState" in raw:
        # Form encoding (what SPs' urlencode sends): "+" is a space, "%2B" a plus; the portal
        # gets back exactly the value it sent.
        relay_state = check_relay_state(
            unquote_to_bytes(raw["RelayState"].replace(b"+", b" ")).decode("utf-8", "replace"))
    signed_query = sig_alg = signature = None
    if "Signature" in raw:
        if "SigAlg" not in raw:
            raise BindingError("Signature without SigAlg")
        # SAML bindings §3.4.4.1: the signature covers the parameters in this order, exactly as
        # they were URL-encoded by the sender.
        parts = [f"{parameter}=".encode() + raw[parameter]]
        if "RelayState" in raw:
            parts.append(b"RelayState=" + raw["RelayState"])
        parts.append(b"SigAlg=" + raw["SigAlg"])
        signed_query = b"&".join(parts)
        sig_alg = unquote_to_bytes(raw["SigAlg"]).decode("utf-8", "replace")
        signature = _b64decode(unquote_to_bytes(raw["Signature"]), "Signature")
    return IncomingMessage(xml=xml, relay_state=relay_state, binding="redirect",
                           signed_query=signed_query, sig_alg=sig_alg, signature=signature,
                           parameter=parameter)


def decode_post(form: dict[str, list[str]],
                parameter: str | None = "SAMLRequest") -> IncomingMessage:
    """Decode an HTTP-POST message; ``form`` maps each field to all values sent for it.

    ``parameter=None`` takes a request or a response, whichever came (single logout).
    """
    parameter = _message_parameter(form, parameter)
    for name, values in form.items():
        if len(values) > 1 and name in (parameter, "RelayState", "SAMLEncoding"):
            raise BindingError(f"parameter {name} appears more than once")
    if not form.get(parameter):
        raise BindingError(f"{parameter} is missing")
    decoded = _b64decode(form[parameter][0], parameter)
    # HTTP-POST carries plain XML; some senders deflate anyway, which we accept, capped.
    xml = decoded if decoded.lstrip().startswith(b"<") else inflate(decoded)
    relay_state = check_relay_state(form["RelayState"][0]) if form.get("RelayState") else None
    return IncomingMessage(xml=_checked_xml(xml), relay_state=relay_state, binding="post",
                           parameter=parameter)


def verify_redirect_signature(message: IncomingMessage, certificates: list[Certificate]) -> bool:
    """Check a Redirect-binding signature against the sender's certificates from metadata.

    Only SHA-256 and stronger; the key comes from metadata, never from the message.
    """
    if message.signed_query is None or message.signature is None or message.sig_alg is None:
        return False
    algorithm = REDIRECT_SIGNATURE_ALGORITHMS.get(message.sig_alg)
    if algorithm is None:
        return False
    kind, digest = algorithm
    for certificate in certificates:
        key = certificate.public_key()
        try:
            if kind == "rsa" and isinstance(key, rsa.RSAPublicKey):
                key.verify(message.signature, message.signed_query, padding.PKCS1v15(), digest)
                return True
            if kind == "ec" and isinstance(key, ec.EllipticCurvePublicKey):
                key.verify(message.signature, message.signed_query, ec.ECDSA(digest))
                return True
        except InvalidSignature:
            continue
    return False
