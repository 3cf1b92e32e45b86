"""Messages the portal sends to the IdP: AuthnRequest, LogoutRequest, LogoutResponse.

Every one is signed: on the Redirect binding over the query string, on the POST binding as an
enveloped XML signature; RSA-SHA256 always.
"""

from __future__ import annotations

import base64
from datetime import datetime
from typing import Any
from xml.sax.saxutils import escape, quoteattr

from saml2 import BINDING_HTTP_REDIRECT, extension_element_from_string
from saml2.client import Saml2Client
from saml2.saml import AuthnContextClassRef, NameID
from saml2.samlp import Extensions, LogoutRequest, RequestedAuthnContext, Status, StatusCode

from idp.samlkit.bundid import AKDB_NAMESPACE, CLASSIC_UI_NAMESPACE
from sp_client.profiles import PortalProfile, trust_level_ref
from sp_client.saml.provider import DIGEST_ALG, SIGN_ALG, Outgoing, ServiceProvider
from sp_client.sessions import Login

STATUS_SUCCESS = "urn:oasis:names:tc:SAML:2.0:status:Success"


def akdb_extension(profile: PortalProfile) -> Extensions:
    """The BundID request extension: the attributes we want (by Name), the login methods
    (username and password, the Online-Ausweisfunktion for services needing "hoch", and the
    account of another state: "Login mit externem Servicekonto", FINK), and what the consent
    page should say about us (docs/architecture.md, "The akdb:AuthenticationRequest
    extension")."""
    wishes = "".join(
        f'<akdb:RequestedAttribute Name={quoteattr(wish.name)} '
        f'RequiredAttribute="{"true" if wish.required else "false"}"/>'
        for wish in profile.attributes)
    xml = (
        f'<akdb:AuthenticationRequest xmlns:akdb="{AKDB_NAMESPACE}" Version="2" '
        f'EnableStatusDetail="true">'
        f'<akdb:AuthnMethods><akdb:Benutzername><akdb:Enabled>true</akdb:Enabled>'
        f'</akdb:Benutzername><akdb:eID><akdb:Enabled>true</akdb:Enabled></akdb:eID>'
        f'<akdb:FINK><akdb:Enabled>true</akdb:Enabled></akdb:FINK>'
        f'</akdb:AuthnMethods>'
        f'<akdb:RequestedAttributes>{wishes}</akdb:RequestedAttributes>'
        f'<akdb:DisplayInformation><classic-ui:Version xmlns:classic-ui="{CLASSIC_UI_NAMESPACE}">'
        f'<classic-ui:OrganizationDisplayName>{escape(profile.municipality)}'
        f'</classic-ui:OrganizationDisplayName>'
        f'<classic-ui:Lang>de</classic-ui:Lang>'
        f'<classic-ui:Purpose>{escape(profile.purpose)}</classic-ui:Purpose>'
        f'</classic-ui:Version></akdb:DisplayInformation>'
        f'</akdb:AuthenticationRequest>')
    return Extensions(extension_elements=[extension_element_from_string(xml)])


def _send(client: Saml2Client, message_id: str, xml: str, binding: str, destination: str,
          relay_state: str | None, *, response: bool) -> Outgoing:
    """Put a message (already signed, on POST) on the wire of ``binding``."""
    field = "SAMLResponse" if response else "SAMLRequest"
    if binding == BINDING_HTTP_REDIRECT:
        info = client.apply_binding(binding, xml, destination, relay_state or "",
                                    response=response, sign=True, sigalg=SIGN_ALG)
        return Outgoing(message_id, binding, dict(info["headers"])["Location"], {})
    fields = {field: base64.b64encode(xml.encode("utf-8")).decode("ascii")}
    if relay_state:
        fields["RelayState"] = relay_state
    return Outgoing(message_id, binding, destination, fields)


def authn_request(provider: ServiceProvider, now: datetime, trust_level: int) -> Outgoing:
    """A signed AuthnRequest over the profile's binding, asking for ``trust_level`` at least."""
    profile = provider.settings.profile
    client = provider.client(now)
    binding = profile.sso_binding
    destination = provider.idp_endpoint(now, "sso", binding)
    context = RequestedAuthnContext(
        authn_context_class_ref=[AuthnContextClassRef(text=trust_level_ref(trust_level))],
        comparison="minimum")
    request_id, request = client.create_authn_request(
        destination=destination, nameid_format=profile.name_id_format,
        extensions=akdb_extension(profile), requested_authn_context=context,
        sign=binding != BINDING_HTTP_REDIRECT, sign_alg=SIGN_ALG, digest_alg=DIGEST_ALG)
    return _send(client, request_id, str(request), binding, destination, None, response=False)


def logout_request(provider: ServiceProvider, now: datetime, login: Login) -> Outgoing:
    """A signed LogoutRequest for the citizen's session at the IdP."""
    client = provider.client(now)
    binding = provider.settings.profile.slo_binding
    destination = provider.idp_endpoint(now, "slo", binding)
    name_id = NameID(text=login.name_id, format=login.name_id_format or None,
                     name_qualifier=login.name_qualifier,
                     sp_name_qualifier=login.sp_name_qualifier)
    request_id, request = client.create_logout_request(
        destination, provider.idp_entity_id(now), name_id=name_id,
        session_indexes=[login.session_index] if login.session_index else None,
        sign=binding != BINDING_HTTP_REDIRECT, sign_alg=SIGN_ALG, digest_alg=DIGEST_ALG)
    return _send(client, request_id, str(request), binding, destination, None, response=False)


def logout_response(provider: ServiceProvider, now: datetime, request: LogoutRequest,
                    binding: str, relay_state: str | None, status: str = STATUS_SUCCESS,
                    sub_status: str | None = None) -> Outgoing:
    """Our signed answer to the IdP's LogoutRequest, over the binding it came by."""
    client = provider.client(now)
    destination = client.response_args(request, [binding])["destination"]
    inner = StatusCode(value=sub_status) if sub_status else None
    response: Any = client.create_logout_response(
        request, bindings=[binding], status=Status(status_code=StatusCode(
            value=status, status_code=inner)),
        sign=binding != BINDING_HTTP_REDIRECT, sign_alg=SIGN_ALG, digest_alg=DIGEST_ALG)
    # Signed (POST) it is a string already; nobody waits for an answer to it.
    return _send(client, "", str(response), binding, destination, relay_state, response=True)
