"""End to end: ``servicekonto run`` as a real process, its background sender, a real SMTP server.

A citizen registers over HTTP; the activation mail reaches the SMTP server without anyone
running ``mail send``, and its link activates the account. Without a mail server the mail lands
in the development mailbox instead.
"""

from __future__ import annotations

import re
from email.message import EmailMessage

from tests.conftest import LINK, REGISTRATION
from tests.e2e.processes import HttpBrowser, eventually
from tests.integration.mail.smtp import SmtpServer


def register(browser: HttpBrowser) -> None:
    browser.get("/registrieren/benutzername")
    review = browser.submit("/registrieren/benutzername", REGISTRATION)
    assert review.url.endswith("/registrieren/pruefen"), review.html
    sent = browser.submit("/registrieren/pruefen")
    assert "Sie erhalten eine Mail" in sent.html


def test_the_running_idp_sends_the_activation_mail_by_itself_and_its_link_works(
        idp_with_smtp: HttpBrowser, smtp_server: SmtpServer) -> None:
    browser = idp_with_smtp
    register(browser)

    def delivered() -> EmailMessage | None:
        return smtp_server.inbox.received[0] if smtp_server.inbox.received else None

    message = eventually(delivered)
    body = message.get_body(preferencelist=("plain",))
    assert body is not None
    link = LINK.search(body.get_content())
    assert link is not None and link.group(0).startswith(browser.base_url + "/aktivieren/")
    path = link.group(0).removeprefix(browser.base_url)

    assert "Servicekonto aktivieren" in browser.get(path).html
    assert "Sie sind erfolgreich registriert" in browser.submit(path).html
    assert smtp_server.inbox.per_recipient() == {REGISTRATION["email"]: 1}
    assert browser.get("/entwicklung/postfach/").status == 404


def test_without_a_mail_server_the_mail_arrives_in_the_development_mailbox(
        idp_with_mailbox: HttpBrowser) -> None:
    browser = idp_with_mailbox
    register(browser)

    def sent() -> str | None:
        page = browser.get("/entwicklung/postfach/").html
        return page if "versendet" in page else None

    assert REGISTRATION["email"] in eventually(sent)
    mail_path = re.search(r'href="(/entwicklung/postfach/\d+)"', browser.last_html)
    assert mail_path is not None
    opened = browser.get(mail_path.group(1))
    link = re.search(r'<a href="([^"]+/aktivieren/[^"]+)"', opened.html)
    assert link is not None
    path = link.group(1).removeprefix(browser.base_url)
    assert "Servicekonto aktivieren" in browser.get(path).html
    assert "Sie sind erfolgreich registriert" in browser.submit(path).html


