"""The development mailbox: in development without SMTP, mails are read here.

Registered only then (see :func:`idp.create_app`); with an SMTP server configured, or in
production, it does not exist. It holds every activation and reset link, so it answers only
clients on this machine's loopback addresses unless the operator opted in
(``IDP_DEVELOPMENT_REMOTE``); anyone else gets the plain 404 of a page that is not there. Mail
bodies are untrusted text on this page: the plain text is escaped (its links made
clickable), the HTML body is shown only inside a sandboxed frame without scripts.
"""

from __future__ import annotations

import ipaddress

from flask import Blueprint, abort, current_app, render_template, request
from markupsafe import Markup, escape

from idp.db import db
from idp.german import local_time
from idp.mail.models import OutboxMail
from idp.mail.reading import LINK, newest_mails, status_of

mailbox = Blueprint("mailbox", __name__, url_prefix="/entwicklung/postfach")

SHOWN_MAILS = 200


def linkified(text: str) -> Markup:
    """``text`` escaped, with its http(s) links made clickable (and nothing else let through)."""
    parts: list[Markup] = []
    position = 0
    for match in LINK.finditer(text):
        url = match.group(0)
        parts.append(escape(text[position:match.start()]))
        parts.append(Markup('<a href="{0}" rel="noopener noreferrer">{0}</a>').format(url))
        position = match.end()
    parts.append(escape(text[position:]))
    return Markup("").join(parts)


def is_loopback(address: str | None) -> bool:
    """Whether ``address`` (a client's IP address) is this machine's own loopback."""
    try:
        ip = ipaddress.ip_address(address or "")
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped  # ::ffff:127.0.0.1 from a dual-stack socket
    return ip.is_loopback


@mailbox.before_request
def loopback_only() -> None:
    # remote_addr is the client as the trusted proxies (IDP_PROXY_COUNT) name it, never a
    # header the client chose.
    if not (current_app.config["SERVICEKONTO"].development_remote
            or is_loopback(request.remote_addr)):
        abort(404)


@mailbox.get("/")
def inbox() -> str:
    mails = newest_mails(db.session, SHOWN_MAILS)
    return render_template("idp/mailbox.html", mails=mails, status_of=status_of,
                           local_time=local_time, limit=SHOWN_MAILS)


@mailbox.get("/<int:mail_id>")
def mail(mail_id: int) -> str:
    found = db.session.get(OutboxMail, mail_id)
    if found is None:
        abort(404)
    return render_template("idp/mailbox_mail.html", mail=found, status=status_of(found),
                           local_time=local_time, text=linkified(found.body_text))
