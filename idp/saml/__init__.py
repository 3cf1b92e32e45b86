"""SAML 2.0 on pysaml2: the only package that imports ``saml2``."""

import warnings

# pysaml2 names cryptography's CFB mode at import time; the deprecation is its business, not
# the operator's, and we never use CFB (assertions are encrypted with AES-GCM).
warnings.filterwarnings("ignore", message="CFB has been moved",
                        module="saml2.cryptography.symmetric")
