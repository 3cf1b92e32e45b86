"""pysaml2's crypto backend, in-process with python-xmlsec, and its wiring into pysaml2.

pysaml2's own backend starts the ``xmlsec1`` program for every signature (~40 ms each;
docs/architecture.md, "Decisions, and why").
:class:`InProcessCryptoBackend` keeps its contract (arguments, return values, ``XmlsecError``
subclasses) and what its command-line flags guaranteed, and adds a few refusals. The work is
done elsewhere, one concern a module:

- :mod:`idp.samlkit.untrusted_xml`: parsing without DTDs, entities or network; duplicate IDs;
- :mod:`idp.samlkit.signature_profile`: which signatures are accepted and made;
- :mod:`idp.samlkit.signatures`: signing and verification;
- :mod:`idp.samlkit.encryption`: encryption (AES-256-GCM, RSA-OAEP) and decryption.

pysaml2's ``crypto_backend`` setting only knows ``"xmlsec1"`` and ``"XMLSecurity"``: configure
``"XMLSecurity"`` (so no ``xmlsec1`` program is looked for) and install this backend on the
``Server``/``Saml2Client`` with :func:`install_backend` (or build a ``SecurityContext`` with
:func:`security_context`).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import xmlsec
from lxml import etree  # type: ignore[import-untyped]  # no stubs installed
from saml2 import SamlBase
from saml2.mdstore import MetadataStore
from saml2.sigver import ASSERT_XPATH, CryptoBackend, RSACrypto, pre_encrypt_assertion
from saml2.sigver import security_context as pysaml2_security_context

from idp.samlkit import encryption, signatures
from idp.samlkit.key_cache import KeyCache
from idp.samlkit.keys import load_private_key
from idp.samlkit.signature_profile import verification_profile


class InProcessCryptoBackend(CryptoBackend):  # type: ignore[misc]  # pysaml2 is untyped
    """pysaml2's ``CryptoBackend`` on python-xmlsec: no ``xmlsec1`` program, no temp files.

    Thread-safe: every call works on its own parsed document and xmlsec contexts.
    """

    def __init__(self, *, allow_sha1_verification: bool = False) -> None:
        super().__init__()
        # Old peers may still sign with SHA-1; accepting that is a deliberate, visible choice.
        self.allow_sha1_verification = allow_sha1_verification
        self._verify_profile = verification_profile(allow_sha1_verification)
        self._keys = KeyCache()

    @property
    def version(self) -> str:
        """The xmlsec library version, as pysaml2's ``version_nums`` expects ("1.3.7")."""
        library_version = getattr(xmlsec, "get_libxmlsec_version", None)
        if library_version is None:
            return str(getattr(xmlsec, "__version__", "0.0.0"))
        return ".".join(str(part) for part in library_version())

    # -- signatures --

    def sign_statement(self, statement: str | bytes | Any, node_name: str | None,
                       key_file: str | os.PathLike[str], node_id: str | None) -> str:
        """Fill the signature template on the element ``node_id`` (the root without one).

        Returns the signed document; raises :class:`~saml2.sigver.SignatureError` (a subclass).
        """
        if isinstance(statement, SamlBase):
            statement = str(statement)
        return signatures.sign_statement(statement, node_name, key_file, node_id, self._keys)

    def sign_elements(self, elements: Sequence[etree._Element],
                      key_file: str | os.PathLike[str], certificate: str) -> None:
        """Sign elements of a document we built ourselves, in the order given (inner first),
        each right after its Issuer with ``certificate`` (base64 DER) in KeyInfo.

        See :func:`idp.samlkit.signatures.sign_elements`.
        """
        signatures.sign_elements(elements, key_file, certificate)

    def validate_signature(self, signedtext: str | bytes, cert_file: str | os.PathLike[str],
                           cert_type: str, node_name: str | None, node_id: str | None) -> bool:
        """True when the element ``node_id`` (the root without one) carries a valid signature
        by the key of ``cert_file``; otherwise raises a :class:`~saml2.sigver.SignatureError`.
        """
        signatures.verify_signature(signedtext, cert_file, cert_type, node_name, node_id,
                                    self._keys, self._verify_profile)
        return True

    def verify_root_signature(self, root: etree._Element, certificates: Sequence[bytes]) -> None:
        """The embedded signature of an already parsed message's root, by one of
        ``certificates`` (DER, from metadata); raises a :class:`~saml2.sigver.SignatureError`.

        See :func:`idp.samlkit.signatures.verify_root_signature`.
        """
        signatures.verify_root_signature(root, certificates, self._keys, self._verify_profile)

    # -- encryption --

    def encrypt(self, text: str | bytes, recv_key: str | os.PathLike[str],
                template: str | os.PathLike[str] | Any, session_key_type: str = "",
                xpath: str = "") -> bytes:
        """Encrypt the element at ``xpath`` (the root without one) for the certificate
        ``recv_key``. Returns the document as UTF-8 bytes, as pysaml2's xmlsec1 backend does.

        AES-256-GCM and RSA-OAEP whatever ``session_key_type`` and the template ask for; the
        template gives only the Ids and the KeyInfo of the EncryptedKey.
        """
        return encryption.encrypt_document(text, recv_key, template, xpath, self._keys)

    def encrypt_assertion(self, statement: str | Any, enc_key: str | os.PathLike[str],
                          template: str | Any, key_type: str = "", node_xpath: str | None = None,
                          node_id: str | None = None) -> str:
        """Replace the assertion in the response's EncryptedAssertion by its EncryptedData."""
        if isinstance(statement, SamlBase):
            statement = pre_encrypt_assertion(statement)
        return encryption.encrypt_assertion(str(statement), enc_key, template,
                                            node_xpath or ASSERT_XPATH, node_id, self._keys)

    def encrypt_element(self, element: etree._Element, certificate: str,
                        key_name: str | None = None) -> etree._Element:
        """The xenc:EncryptedData of ``element`` for ``certificate`` (base64 DER, as in
        metadata); raises ``EncryptError``.

        What :meth:`encrypt_assertion` does with pysaml2's template (AES-256-GCM, RSA-OAEP,
        the certificate and ``key_name`` in the EncryptedKey's KeyInfo), without a template,
        temp file or parse. ``element`` must be the root of its own document.
        """
        return encryption.encrypt_element(element, certificate, key_name, self._keys)

    def decrypt(self, enctext: str | bytes, key_file: str | os.PathLike[str]) -> str:
        """Decrypt the first EncryptedData with the private key in ``key_file``.

        Returns the whole document; raises :class:`~saml2.sigver.DecryptError`.
        """
        return encryption.decrypt(enctext, key_file, self._keys)

    def decrypt_identifier(self, encrypted_id: etree._Element,
                           key_files: Sequence[str | os.PathLike[str]]) -> etree._Element:
        """The saml:NameID inside ``encrypted_id``, decrypted with whichever of our keys in
        ``key_files`` it was made for; see :func:`idp.samlkit.encryption.decrypt_identifier`."""
        return encryption.decrypt_identifier(encrypted_id, key_files, self._keys)


def install_backend(entity: Any, backend: InProcessCryptoBackend | None = None
                    ) -> InProcessCryptoBackend:
    """Use ``backend`` (a new one by default) in a pysaml2 ``Server``/``Saml2Client`` or in a
    ``SecurityContext``; also for its metadata store and Redirect-binding signatures.

    The entity's config should say ``"crypto_backend": "XMLSecurity"``: pysaml2 cannot name a
    custom backend class there, and ``"xmlsec1"`` makes it look for the program.
    """
    backend = backend or InProcessCryptoBackend()
    security = getattr(entity, "sec", entity)
    security.crypto = backend
    if security.sec_backend is None and security.key_file:
        # pysaml2 sets up its Redirect-binding signer only for the xmlsec1 backend.
        security.sec_backend = RSACrypto(load_private_key(Path(security.key_file)))
    metadata = getattr(entity, "metadata", None)
    if isinstance(metadata, MetadataStore) and metadata.security is not None:
        # Signed remote metadata is verified through the store's own security context.
        metadata.security.crypto = backend
    return backend


def security_context(config: Any, backend: InProcessCryptoBackend | None = None) -> Any:
    """pysaml2's ``security_context(config)`` with this backend, e.g. to sign metadata."""
    previous = config.crypto_backend
    config.crypto_backend = "XMLSecurity"  # only so pysaml2 does not look for xmlsec1
    try:
        context = pysaml2_security_context(config)
    finally:
        config.crypto_backend = previous
    install_backend(context, backend)
    return context

