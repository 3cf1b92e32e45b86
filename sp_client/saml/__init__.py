"""The portal's SAML side: the only part of sp_client that imports ``saml2``."""
