"""The portal checker catches a careless portal's weaknesses: a pysaml2 SP with the checks a
portal must make switched off or never written, each fault it takes named in the table.

Planted here: signatures not required (``want_response_signed``/``want_assertions_signed``
off), its own requests not tracked (``allow_unsolicited``, no ``outstanding``), and nothing
checked beyond what pysaml2 does by itself (no Recipient, no required attributes, no level).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from flask import Flask, redirect, request, session
from flask.typing import ResponseReturnValue
from saml2 import BINDING_HTTP_POST, BINDING_HTTP_REDIRECT
from saml2.client import Saml2Client

from idp.container import app_parts
from idp.db import db
from idp.testing import citizens, faults
from idp.testing.browser import InProcessSites, WebBrowser
from idp.testing.checker import Credentials, Target, check_portal, table
from idp.testing.faults import FAULTS
from tests.conftest import BASE_URL
from tests.flows.conftest import IDP_ENTITY, SIGN_SHA256, SP_ACS, SP_ENTITY
from tests.saml_support import sp_client, sp_config

PORTAL = "https://portal.example.org"
# What the careless portal takes, and why (each a weakness planted above).
TAKEN = {
    "unsigned": "signatures not required",
    "wrong-in-response-to": "its requests not tracked (allow_unsolicited)",
    "replayed": "its requests not tracked, no replay cache",
    "wrong-recipient": "pysaml2 compares Recipient only when told to",
    "wrong-destination": "with no request of its own outstanding, pysaml2 has no ACS to compare",
    "missing-attribute": "required attributes not checked",
    "lower-trust-level": "the level not checked",
}


def careless_portal(client: Saml2Client) -> Flask:
    """A portal as a hurried integration writes it: start, ACS, a page for the logged-in."""
    app = Flask("careless")
    app.secret_key = "careless-" + "c" * 40

    @app.get("/start")
    def start() -> ResponseReturnValue:
        _, info = client.prepare_for_authenticate(entityid=IDP_ENTITY,
                                                  binding=BINDING_HTTP_REDIRECT,
                                                  sign=True, sigalg=SIGN_SHA256)
        return redirect(dict(info["headers"])["Location"])

    @app.post("/saml/acs")
    def acs() -> ResponseReturnValue:
        try:
            answer = client.parse_authn_request_response(request.form["SAMLResponse"],
                                                         BINDING_HTTP_POST, outstanding={})
        except Exception:
            return "Anmeldung fehlgeschlagen", 403
        if answer is None:
            return "Anmeldung fehlgeschlagen", 403
        session["who"] = str(answer.name_id)
        return redirect("/konto")

    @app.get("/konto")
    def konto() -> ResponseReturnValue:
        return ("Willkommen im Konto", 200) if "who" in session else redirect("/start")

    return app


def test_the_checker_names_each_fault_a_careless_portal_takes(
        sso_app: Flask, portal_keys: tuple[Path, Path]) -> None:
    idp_metadata = sso_app.test_client().get("/saml/metadata").get_data(as_text=True)
    careless = sp_client(sp_config(SP_ENTITY, SP_ACS, *portal_keys, idp_metadata,
                                   want_response_signed=False, want_assertions_signed=False,
                                   allow_unsolicited=True))
    sites = InProcessSites({BASE_URL: sso_app, PORTAL: careless_portal(careless)})
    verdicts = run_checker(sso_app, "musterstadt", sites, Target(
        f"{PORTAL}/start", f"{PORTAL}/konto", "Willkommen im Konto"))
    print("\n" + table(verdicts))
    assert {verdict.fault for verdict in verdicts if verdict.accepted} == set(TAKEN)
    assert len(verdicts) == len(FAULTS)


def run_checker(idp: Flask, portal_name: str, sites: InProcessSites, target: Target) -> Any:
    """The checker against an in-process IdP and portal, as a throwaway test citizen."""
    with idp.app_context():
        parts = app_parts(idp)
        created = citizens.create_citizen(parts.services.accounts(db.session),
                                          parts.services.throttle(db.session),
                                          citizens.generated_spec({}))
        registered = parts.saml.registry.by_name(portal_name)
        assert registered is not None
        entity_id = registered.entity_id

    def inject(fault: str | None) -> None:
        with idp.app_context():
            if fault is None:
                faults.clear_fault(db.session, entity_id)
            else:
                faults.set_fault(db.session, entity_id, fault, 1)

    return check_portal(target, Credentials(created.username, created.password),
                        lambda: WebBrowser(sites.send), inject)
