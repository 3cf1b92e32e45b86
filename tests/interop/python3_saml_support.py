"""python3-saml (OneLogin) portals as tiny Flask apps, federated in-process with the test IdP.

Each portal is what an operator builds from python3-saml's Flask demo: the request dict of
``prepare_flask_request``, the AuthnRequest's ID and the SAML session data in Flask's session,
``process_response`` at the ACS and ``process_slo`` at the SingleLogoutService. What each call
said is recorded (``Portal.logins``, ``Portal.logouts``) for the tests to read.
"""

from __future__ import annotations

import base64
import html
import json
import secrets
from dataclasses import dataclass, field
from importlib.util import module_from_spec, spec_from_file_location
from pathlib import Path
from typing import Any

import yaml
from flask import Flask, Response, redirect, request, session
from onelogin.saml2.auth import OneLogin_Saml2_Auth
from onelogin.saml2.authn_request import OneLogin_Saml2_Authn_Request
from onelogin.saml2.constants import OneLogin_Saml2_Constants as Saml
from onelogin.saml2.idp_metadata_parser import OneLogin_Saml2_IdPMetadataParser
from onelogin.saml2.settings import OneLogin_Saml2_Settings
from onelogin.saml2.utils import OneLogin_Saml2_Utils

from idp.config import PROJECT_ROOT

EXAMPLES = PROJECT_ROOT / "docs" / "examples" / "python3-saml"


def _load_example() -> Any:
    """docs/examples/python3-saml/servicekonto.py itself (tested as documented, not a copy)."""
    spec = spec_from_file_location("python3_saml_example", EXAMPLES / "servicekonto.py")
    assert spec is not None and spec.loader is not None
    module = module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


example = _load_example()

PERSISTENT = Saml.NAMEID_PERSISTENT
TRANSIENT = Saml.NAMEID_TRANSIENT
REDIRECT = Saml.BINDING_HTTP_REDIRECT
POST = Saml.BINDING_HTTP_POST

# How a portal's python3-saml is configured:
# - "strict": docs/examples/python3-saml (signed requests and logout messages, signed answers
#   demanded, SHA-256, the IdP's part from our metadata);
# - "defaults": python3-saml's defaults (no security block, no key: requests unsigned), the IdP's
#   endpoints and certificate from our metadata;
# - "unsigned": the defaults but for ``requestedAuthnContext: false`` (see the test module).
KINDS = ("strict", "defaults", "unsigned")


@dataclass(frozen=True)
class PortalSpec:
    """A portal as its operator set it up and registered it at the IdP."""

    short_name: str
    display_name: str
    origin: str
    name_id_format: str
    attributes: tuple[str, ...]


@dataclass
class Login:
    """What python3-saml made of one answer at the ACS."""

    errors: list[str]
    reason: str | None
    authenticated: bool
    attributes: dict[str, list[str]]
    friendly_attributes: dict[str, list[str]]
    name_id: str | None
    name_id_format: str | None
    session_index: str | None
    authn_contexts: list[str]
    in_response_to: str | None
    request_id: str | None
    relay_state: str | None


@dataclass
class Logout:
    """What python3-saml made of one message at the SingleLogoutService."""

    kind: str  # "LogoutRequest" (the IdP's fan-out) or "LogoutResponse" (the answer to ours)
    errors: list[str]
    reason: str | None
    message_xml: str


@dataclass
class Portal:
    spec: PortalSpec
    kind: str
    settings: dict[str, Any]
    # The IdP's SSO endpoint for HTTP-POST (python3-saml's login() knows only HTTP-Redirect).
    sso_post_url: str
    logins: list[Login] = field(default_factory=list)
    logouts: list[Logout] = field(default_factory=list)
    app: Flask = field(init=False)

    def __post_init__(self) -> None:
        self.app = portal_app(self)

    @property
    def entity_id(self) -> str:
        return str(self.settings["sp"]["entityId"])

    def url(self, path: str) -> str:
        return self.spec.origin + path


def request_data() -> dict[str, Any]:
    """python3-saml's request dict, as its Flask demo builds it."""
    return {"https": "on" if request.scheme == "https" else "off", "http_host": request.host,
            "script_name": request.path, "get_data": request.args.copy(),
            "post_data": request.form.copy()}


def portal_app(portal: Portal) -> Flask:
    """The portal: /anmelden, /saml/acs, /konto, /abmelden, /saml/sls."""
    app = Flask(f"portal-{portal.spec.short_name}")
    # Flask's own session cookie; SameSite=None, as python3-saml portals must set it, so that
    # the IdP's cross-site POST to the ACS comes with it (the AuthnRequest's ID is in there).
    app.config.update(SECRET_KEY=secrets.token_hex(16), SESSION_COOKIE_SAMESITE="None",
                      SESSION_COOKIE_SECURE=True)

    def auth(binding: str = REDIRECT) -> OneLogin_Saml2_Auth:
        settings = portal.settings
        if binding == POST:
            settings = json.loads(json.dumps(settings))
            settings["idp"]["singleSignOnService"] = {"url": portal.sso_post_url,
                                                      "binding": POST}
        return OneLogin_Saml2_Auth(request_data(), old_settings=settings)

    @app.get("/anmelden")
    def login() -> Any:
        binding = POST if request.args.get("binding") == "post" else REDIRECT
        saml = auth(binding)
        return_to = portal.url("/konto")
        if binding == REDIRECT:
            url = saml.login(return_to=return_to)
            session["AuthNRequestID"] = saml.get_last_request_id()
            return redirect(url)
        page, request_id = post_binding_authn_request(saml, return_to)
        session["AuthNRequestID"] = request_id
        return page

    @app.post("/saml/acs")
    def acs() -> Any:
        saml = auth()
        request_id = session.pop("AuthNRequestID", None)
        saml.process_response(request_id=request_id)
        outcome = Login(
            errors=saml.get_errors(), reason=saml.get_last_error_reason(),
            authenticated=saml.is_authenticated(), attributes=saml.get_attributes(),
            friendly_attributes=saml.get_friendlyname_attributes(),
            name_id=saml.get_nameid(), name_id_format=saml.get_nameid_format(),
            session_index=saml.get_session_index(), authn_contexts=saml.get_last_authn_contexts(),
            in_response_to=saml.get_last_response_in_response_to(), request_id=request_id,
            relay_state=request.form.get("RelayState"))
        portal.logins.append(outcome)
        if outcome.errors or not outcome.authenticated:
            return Response(f"Anmeldung fehlgeschlagen: {outcome.reason}", 403)
        session.update(samlNameId=outcome.name_id, samlNameIdFormat=outcome.name_id_format,
                       samlNameIdNameQualifier=saml.get_nameid_nq(),
                       samlNameIdSPNameQualifier=saml.get_nameid_spnq(),
                       samlSessionIndex=outcome.session_index,
                       givenName=outcome.friendly_attributes.get("givenName", ["?"])[0])
        relay_state = request.form.get("RelayState", "")
        return redirect(relay_state if relay_state.startswith(portal.spec.origin) else "/konto")

    @app.get("/konto")
    def account() -> Any:
        if "samlNameId" not in session:
            return Response(f"{portal.spec.display_name}: nicht angemeldet", 401)
        return f"{portal.spec.display_name}: angemeldet als {html.escape(session['givenName'])}"

    @app.get("/abmelden")
    def logout() -> Any:
        saml = auth()
        url = saml.logout(return_to=portal.url("/abgemeldet"),
                          name_id=session.get("samlNameId"),
                          session_index=session.get("samlSessionIndex"),
                          nq=session.get("samlNameIdNameQualifier"),
                          name_id_format=session.get("samlNameIdFormat"),
                          spnq=session.get("samlNameIdSPNameQualifier"))
        session["LogoutRequestID"] = saml.get_last_request_id()
        return redirect(url)

    @app.get("/saml/sls")
    def single_logout_service() -> Any:
        saml = auth()
        request_id = session.get("LogoutRequestID")
        kind = "LogoutResponse" if "SAMLResponse" in request.args else "LogoutRequest"
        url = saml.process_slo(request_id=request_id, delete_session_cb=session.clear)
        last = saml.get_last_response_xml() if kind == "LogoutResponse" \
            else saml.get_last_request_xml()
        portal.logouts.append(Logout(kind, saml.get_errors(), saml.get_last_error_reason(),
                                     last.decode() if isinstance(last, bytes) else str(last)))
        if saml.get_errors():
            return Response(f"Abmeldung fehlgeschlagen: {saml.get_last_error_reason()}", 400)
        if url:
            return redirect(url)
        return redirect(portal.url("/abgemeldet"))

    @app.get("/abgemeldet")
    def logged_out() -> Any:
        return f"{portal.spec.display_name}: Sie sind abgemeldet."

    return app


def post_binding_authn_request(saml: OneLogin_Saml2_Auth, return_to: str) -> tuple[str, str]:
    """The AuthnRequest over HTTP-POST (python3-saml builds it; its login() would redirect):
    signed in the XML (enveloped) when ``authnRequestsSigned``, in an auto-POST form."""
    settings = saml.get_settings()
    authn_request = OneLogin_Saml2_Authn_Request(settings)
    xml = authn_request.get_xml()
    security = settings.get_security_data()
    if security.get("authnRequestsSigned"):
        xml = OneLogin_Saml2_Utils.add_sign(
            xml, settings.get_sp_key(), settings.get_sp_cert(),
            sign_algorithm=security["signatureAlgorithm"],
            digest_algorithm=security["digestAlgorithm"])
    encoded = base64.b64encode(xml if isinstance(xml, bytes) else xml.encode()).decode()
    page = ('<!doctype html><html><body onload="document.forms[0].submit()">'
            f'<form method="post" action="{html.escape(saml.get_sso_url())}">'
            f'<input type="hidden" name="SAMLRequest" value="{encoded}">'
            f'<input type="hidden" name="RelayState" value="{html.escape(return_to)}">'
            '<noscript><button type="submit">Weiter</button></noscript></form></body></html>')
    return page, authn_request.get_id()


# --- settings ---------------------------------------------------------------------------

def pem_body(pem: str) -> str:
    """A PEM file's base64 without its armour lines (how python3-saml's JSON holds keys)."""
    return "".join(line for line in pem.strip().splitlines() if not line.startswith("-----"))


def example_settings(spec: PortalSpec, cert: Path, key: Path) -> dict[str, Any]:
    """docs/examples/python3-saml with the placeholders filled in, as an operator would."""
    values = {"{PORTAL_URL}": spec.origin, "{PORTAL_NAME}": spec.display_name,
              "{NAME_ID_FORMAT}": spec.name_id_format,
              "{PORTAL_CERTIFICATE}": pem_body(cert.read_text("ascii")),
              "{PORTAL_PRIVATE_KEY}": pem_body(key.read_text("ascii"))}
    folder = Path(key.parent / f"settings-{spec.short_name}")
    folder.mkdir(exist_ok=True)
    for name in ("settings.json", "advanced_settings.json"):
        text = (EXAMPLES / name).read_text("utf-8")
        for placeholder, value in values.items():
            text = text.replace(placeholder, value)
        assert "{" + "PORTAL" not in text and "{NAME_ID" not in text, text
        (folder / name).write_text(text, "utf-8")
    return dict(example.portal_settings(folder))


def own_settings(kind: str, spec: PortalSpec, cert: Path, key: Path) -> dict[str, Any]:
    """The portal's settings before it knows the IdP (enough for its metadata)."""
    if kind == "strict":
        return example_settings(spec, cert, key)
    settings: dict[str, Any] = {"sp": {
        "entityId": f"{spec.origin}/saml/metadata",
        "assertionConsumerService": {"url": f"{spec.origin}/saml/acs"},
        "singleLogoutService": {"url": f"{spec.origin}/saml/sls"},
        "NameIDFormat": spec.name_id_format,
    }}
    if kind == "unsigned":
        settings["security"] = {"requestedAuthnContext": False}
    return settings


def with_idp(kind: str, settings: dict[str, Any], idp_metadata: str) -> dict[str, Any]:
    """The portal's settings completed with the IdP's part from the IdP's metadata."""
    if kind == "strict":
        return dict(example.with_servicekonto(settings, idp_metadata))
    # Without a key of its own such a portal takes only the IdP's part (merging the parser's
    # security.authnRequestsSigned would make python3-saml demand a key it does not have).
    return settings | {"idp": OneLogin_Saml2_IdPMetadataParser.parse(idp_metadata)["idp"]}


def sp_metadata(settings: dict[str, Any]) -> str:
    """The portal's metadata as python3-saml writes it (what the operator sends the IdP)."""
    saml_settings = OneLogin_Saml2_Settings(settings, sp_validation_only=True)
    xml = saml_settings.get_sp_metadata()
    assert not saml_settings.validate_metadata(xml)
    return xml.decode() if isinstance(xml, bytes) else str(xml)


def sso_post_url(idp_metadata: str) -> str:
    parsed = OneLogin_Saml2_IdPMetadataParser.parse(idp_metadata, required_sso_binding=POST)
    return str(parsed["idp"]["singleSignOnService"]["url"])


def register_portal(policy_dir: Path, spec: PortalSpec, settings: dict[str, Any],
                    signs_requests: bool, **changes: Any) -> None:
    """The portal's YAML in the IdP's registry, its metadata beside it as a file."""
    metadata = policy_dir / "portals" / f"{spec.short_name}-metadata.xml"
    metadata.write_text(sp_metadata(settings), encoding="utf-8")
    policy = {"display_name": spec.display_name, "entity_id": settings["sp"]["entityId"],
              "metadata": str(metadata), "attributes": list(spec.attributes),
              "name_id_format": spec.name_id_format.rsplit(":", 1)[-1],
              "consent_required": True,
              # Said explicitly, whatever the default: a portal that signs nothing (python3-saml's
              # defaults) is registered with the weaker exception.
              "want_authn_requests_signed": signs_requests} | changes
    (policy_dir / "portals" / f"{spec.short_name}.yaml").write_text(
        yaml.safe_dump(policy, allow_unicode=True), encoding="utf-8")
