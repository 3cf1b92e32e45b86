"""The walk of one SAMLRequest from the SSO view to the auto-POST form stays short
(docs/architecture.md, "Single sign-on"): the view hands the request to the flow in one call and
renders what comes back; the flow goes through the request's reading, the portal, the state,
consent and the answer, each once, and a newcomer reads at most a dozen files to follow it.

Measured with ``sys.setprofile`` over a real request: every file of ours in which a function
starts between the view's start and its return. Counted are the files of the IdP's own domain;
apart are the SAML kit (``idp/samlkit``: the self-contained library the IdP shares with the
demo portals, as pysaml2 was before it) and what every request of the IdP passes, SSO or not
(the database session, the clock, the app's parts, the visitor, the logs and metrics).
"""

from __future__ import annotations

import sys
from pathlib import Path
from types import FrameType
from typing import Any

from flask import Flask

from idp.config import PROJECT_ROOT
from idp.container import app_parts
from idp.saml import views
from tests.conftest import Browser
from tests.flows.conftest import Portal, consent_page, decide, logged_in

KIT = ("idp/samlkit/",)
EVERY_REQUEST = ("idp/db.py", "idp/clock.py", "idp/container.py", "idp/web/context.py",
                 "idp/observability/")


def walk(visitor: Browser, path: str) -> tuple[list[str], list[str], str]:
    """(the files of ours entered while the SSO view runs, in order of first entry; the calls
    from the view into the flow, by name; the page)."""
    entered: list[str] = []
    view_to_flow: list[str] = []
    depth = 0

    def profile(frame: FrameType, event: str, _arg: Any) -> None:
        nonlocal depth
        if frame.f_code is views.sso_redirect.__code__:
            depth += {"call": 1, "return": -1}.get(event, 0)
        if event != "call" or not depth:
            return
        name = Path(frame.f_code.co_filename)
        if name.is_relative_to(PROJECT_ROOT) and ".venv" not in name.parts:
            relative = name.relative_to(PROJECT_ROOT).as_posix()
            if relative not in entered:
                entered.append(relative)
            caller = frame.f_back.f_code if frame.f_back else None
            if relative == "idp/saml/flow.py" and caller is not None and \
                    caller.co_filename == views.__file__:
                view_to_flow.append(frame.f_code.co_name)

    sys.setprofile(profile)
    try:
        page = visitor.client.get(path).get_data(as_text=True)
    finally:
        sys.setprofile(None)
    return entered, view_to_flow, page


def test_the_walk_from_the_sso_view_to_the_auto_post_form_enters_at_most_a_dozen_files(
        sso_app: Flask, visitor: Browser, portal: Portal) -> None:
    # As in production: the QA workbench's hooks (tracer, faults) exist in development only.
    parts = app_parts(sso_app)
    parts.saml.trace = parts.saml.faults = None
    consent_page(logged_in(sso_app, visitor), portal)
    decide(visitor)
    portal.login_url()  # the first request of a pysaml2 client loads what it needs
    path, _ = portal.login_url()
    entered, view_to_flow, page = walk(visitor, path)
    assert 'id="saml-weiter"' in page and "SAMLResponse" in page
    domain = [name for name in entered if not name.startswith(KIT + EVERY_REQUEST)]
    print(f"\n{len(domain)} files of the domain: {', '.join(domain)}\n"
          f"{len(entered)} files in all: {', '.join(entered)}")
    assert domain[:2] == ["idp/saml/views.py", "idp/saml/flow.py"]
    assert len(domain) <= 12, domain
    assert domain[-1] == "templates/idp/auto_post.html"
    # No back and forth: the view makes the flow and calls one method of it.
    assert view_to_flow == ["__init__", "receive_redirect"]
