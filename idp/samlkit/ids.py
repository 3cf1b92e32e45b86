"""Identifiers for SAML messages and the values that must not be guessed."""

from __future__ import annotations

import secrets


def new_id() -> str:
    """A fresh identifier with 160 random bits: every ID we make (Response, Assertion,
    LogoutRequest, LogoutResponse, transient NameID, SessionIndex).

    SAML core §1.3.4: two of them collide with probability ≤ 2⁻¹²⁸ (SHOULD ≤ 2⁻¹⁶⁰); pysaml2's
    own ``sid()`` has about 101 bits. The leading "_" makes it an NCName, as xs:ID requires.
    """
    return "_" + secrets.token_hex(20)
