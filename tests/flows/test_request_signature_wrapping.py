"""Signature wrapping on POSTed AuthnRequests of a portal that must sign.

Each forged request carries a signature that is cryptographically fine (made with the portal's
own key by ``forgery.raw_sign``), only in the wrong place: the IdP must accept a request only if
the signature covers the very element it acts on. Each ends on the error page at the IdP.
"""

from __future__ import annotations

import base64
import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Browser
from tests.flows.conftest import Portal
from tests.flows.test_sso_attacks import assert_refused_at_the_idp, post_sso, request_xml
from tests.unit.saml import forgery

Element = forgery.Element


@pytest.fixture
def portal_changes() -> dict[str, Any]:
    return {"want_authn_requests_signed": True}


def signed_request(portal: Portal, portal_keys: tuple[Path, Path]) -> Element:
    """A genuine AuthnRequest of the portal with an embedded signature by the portal's key."""
    root = forgery.parse(request_xml(portal))
    return forgery.raw_sign(root, forgery.private_key(portal_keys[0]))


def send(visitor: Browser, root: Element) -> Any:
    return post_sso(visitor, base64.b64encode(forgery.text(root).encode("utf-8")).decode())


def _evil(original: Element) -> Element:
    """What the attacker wants answered: the portal's request, but passive and renamed."""
    evil = copy.deepcopy(original)
    evil.set("ID", "id-evil-request")
    evil.set("IsPassive", "true")
    return evil


def _original_inside_the_signature(original: Element, in_object: bool = False) -> Element:
    """The evil request carries the original's signature, with the original inside it
    (directly, or in a ds:Object)."""
    evil = _evil(original)
    signature = forgery.own_signature(evil)
    assert signature is not None
    container = forgery.etree.SubElement(signature, f"{{{forgery.DSIG}}}Object") \
        if in_object else signature
    container.append(original)
    return evil


def _original_in_the_extensions(original: Element) -> Element:
    evil = _evil(original)
    extensions = forgery.etree.Element(f"{{{forgery.SAMLP}}}Extensions")
    extensions.append(original)
    forgery.first(evil, "saml:Issuer").addnext(extensions)
    return evil


def _unsigned_root_around_the_signed_original(original: Element) -> Element:
    evil = _original_in_the_extensions(original)
    signature = forgery.own_signature(evil)
    assert signature is not None
    evil.remove(signature)
    return evil


def _same_id_twice(original: Element) -> Element:
    """The evil root keeps the original's ID; the signed original sits in its Extensions."""
    evil = _original_in_the_extensions(original)
    evil.set("ID", original.get("ID"))
    return evil


WRAPPINGS: dict[str, Callable[[Element], Element]] = {
    "original-inside-the-signature": _original_inside_the_signature,
    "original-in-a-ds-object": lambda original: _original_inside_the_signature(original, True),
    "original-in-the-extensions": _original_in_the_extensions,
    "unsigned-root-around-the-signed-original": _unsigned_root_around_the_signed_original,
    "same-id-twice": _same_id_twice,
}


def test_a_genuinely_signed_post_request_is_accepted(
        visitor: Browser, portal: Portal, portal_keys: tuple[Path, Path]) -> None:
    response = send(visitor, signed_request(portal, portal_keys))
    assert response.status_code == 302 and "/anmelden?anfrage=" in response.location


@pytest.mark.parametrize("wrap", WRAPPINGS.values(), ids=WRAPPINGS.keys())
def test_a_wrapped_signed_request_is_refused_at_the_idp(
        visitor: Browser, portal: Portal, portal_keys: tuple[Path, Path],
        wrap: Callable[[Element], Element]) -> None:
    assert_refused_at_the_idp(send(visitor, wrap(signed_request(portal, portal_keys))))


def test_a_request_re_signed_after_tampering_with_another_key_is_refused(
        visitor: Browser, portal: Portal, tmp_path: Path) -> None:
    from tests.saml_support import key_pair

    stranger_key, _ = key_pair(tmp_path / "stranger", "stranger")
    root = forgery.parse(request_xml(portal))
    root.set("IsPassive", "true")
    assert_refused_at_the_idp(send(visitor, forgery.raw_sign(root,
                                                             forgery.private_key(stranger_key))))
