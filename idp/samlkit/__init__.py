"""What the IdP and the demo portals both need to speak SAML the BundID way.

Bindings with caps (:mod:`.bindings`), untrusted XML (:mod:`.untrusted_xml`), the signature
profile and signing (:mod:`.signature_profile`, :mod:`.signatures`), encryption
(:mod:`.encryption`), pysaml2's crypto backend in-process (:mod:`.crypto`, :mod:`.key_cache`),
keys and certificates (:mod:`.keys`), BundID's names (:mod:`.bundid`), SAML instants
(:mod:`.instants`), fetching metadata (:mod:`.metadata`), and a service provider's checks
on an IdP's Response (:mod:`.sp_response`).

Self-contained: it imports nothing from ``idp`` outside itself (tests/test_architecture.py), so a
portal can use it without the IdP (docs/architecture.md, "The parts").
"""
