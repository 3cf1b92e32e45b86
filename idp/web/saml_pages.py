"""The pages SAML's browser bindings need, one way each, for single sign-on and single logout.

- :func:`auto_post`: a form of hidden fields that the browser sends on at once (autopost.js;
  a button without JavaScript), allowed by its CSP to post exactly to the target's origin.
- :func:`resubmit_same_site`: a portal's auto-POST arrives cross-site, so the citizen's
  ``SameSite=Lax`` session cookie stays behind; rather than weaken the cookie, the message is
  handed back once in a form of our own, whose POST is same-site (docs/architecture.md, pysaml2
  trap 10).
"""

from __future__ import annotations

from collections.abc import Sequence
from urllib.parse import urlsplit

from flask import Response, current_app, render_template, request

from idp.web.forms import single_values
from idp.web.security import CONTENT_SECURITY_POLICY

# The hidden field that marks our own re-post of a portal's message.
RESUBMITTED = "servicekonto_resubmitted"


def allow_form_to(response: Response, url: str) -> Response:
    """Let the page's form post to ``url``'s origin (and nowhere else; a path of ours needs
    nothing beyond the default ``form-action 'self'``)."""
    target = urlsplit(url)
    if not target.netloc:
        return response
    response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY.replace(
        "form-action 'self'", f"form-action {target.scheme}://{target.netloc}")
    return response


def auto_post(action: str, fields: Sequence[tuple[str, str]], heading: str,
              text: str | None = None, button: str = "Weiter") -> Response:
    """A page that posts ``fields`` to ``action`` at once."""
    return allow_form_to(Response(render_template(
        "idp/auto_post.html", action=action, fields=fields, heading=heading, text=text,
        button=button)), action)


def resubmit_same_site(message: str, heading: str) -> Response | None:
    """The page that posts a cross-site POST of a SAML message (field ``message``, with its
    RelayState) back to the same URL, if it came without the session cookie and was not re-posted
    by us already; None if the request can be taken as it is."""
    if current_app.config["SESSION_COOKIE_NAME"] in request.cookies or \
            RESUBMITTED in request.form:
        return None
    form = single_values(request.form, (message, "RelayState"))
    fields = [(message, form[message])]
    if "RelayState" in request.form:
        fields.append(("RelayState", form["RelayState"]))
    return auto_post(request.path, [*fields, (RESUBMITTED, "1")], heading)
