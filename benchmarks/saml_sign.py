"""Signatures per second with the in-process backend against raw RSA-2048 signatures.

Both are measured in the same run, in alternating rounds, with the same RSA-2048 key: the raw
rate is ``cryptography``'s PKCS#1 v1.5 SHA-256 over a short message, the backend rate a complete
``sign_statement`` of a SAML Assertion (parse, canonicalise, digest, sign, serialise). The ratio
says how much of a signature is the RSA operation itself (the xmlsec1 program reaches ~0.01).

    python -m benchmarks.saml_sign [--seconds 1] [--rounds 3] [--verify]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.serialization import load_pem_private_key
from saml2 import class_name, saml
from saml2.s_utils import do_attribute_statement, factory
from saml2.sigver import pre_signature_part, read_cert_from_file

from idp.samlkit.crypto import InProcessCryptoBackend
from idp.samlkit.signature_profile import DIGEST_ALGORITHM, SIGN_ALGORITHM
from tests.saml_support import key_pair


def rate(operation: Callable[[], object], seconds: float) -> float:
    count, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        operation()
        count += 1
    return count / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=1.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--verify", action="store_true", help="also time verification")
    args = parser.parse_args()

    folder = Path(tempfile.mkdtemp(prefix="servicekonto-sign-"))
    key_file, cert_file = key_pair(folder, "bench", bits=2048)
    key = load_pem_private_key(key_file.read_bytes(), password=None)
    assert isinstance(key, rsa.RSAPrivateKey)
    assertion = factory(
        saml.Assertion, version="2.0", id="id-bench", issuer=saml.Issuer(text="idp"),
        issue_instant="2026-01-01T00:00:00Z",
        signature=pre_signature_part("id-bench", read_cert_from_file(str(cert_file), "pem"),
                                     sign_alg=SIGN_ALGORITHM, digest_alg=DIGEST_ALGORITHM),
        attribute_statement=do_attribute_statement({
            ("urn:oid:2.5.4.42", "urn:oasis:names:tc:SAML:2.0:attrname-format:uri",
             "givenName"): ("Erika", ""),
            ("urn:oid:2.5.4.4", "urn:oasis:names:tc:SAML:2.0:attrname-format:uri",
             "surname"): ("Mustermann", "")}))
    template, name = str(assertion), class_name(assertion)
    backend = InProcessCryptoBackend()
    signed = backend.sign_statement(template, name, str(key_file), "id-bench")

    def raw() -> bytes:
        return key.sign(b"SAML signed info", padding.PKCS1v15(), hashes.SHA256())

    def sign() -> str:
        return str(backend.sign_statement(template, name, str(key_file), "id-bench"))

    def verify() -> bool:
        return bool(backend.validate_signature(signed, str(cert_file), "pem", name, "id-bench"))

    raws, signs, verifies = [], [], []
    for _ in range(args.rounds):
        raws.append(rate(raw, args.seconds))
        signs.append(rate(sign, args.seconds))
        if args.verify:
            verifies.append(rate(verify, args.seconds))
    raw_rate, sign_rate = statistics.median(raws), statistics.median(signs)
    print(f"raw RSA-2048 PKCS#1v1.5 SHA-256 signatures/s: {raw_rate:.0f}")
    print(f"backend sign_statement (Assertion) per second: {sign_rate:.0f}")
    if verifies:
        print(f"backend validate_signature per second: {statistics.median(verifies):.0f}")
    print(f"ratio: {sign_rate / raw_rate:.2f}")


if __name__ == "__main__":
    main()
