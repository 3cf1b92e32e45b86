"""Interoperability: SAML software that portals really use, run against the IdP in-process."""
