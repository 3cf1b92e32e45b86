"""The portal checker: does a portal refuse what it must? (docs/qa-workbench.md, "The portal
checker")

For each fault of :mod:`idp.testing.faults`, a fresh browser starts a login at the portal
(``start_url`` leads to our SSO: at once, or by the one button of the portal's login page),
logs in at the IdP as a test citizen, agrees if asked, lets
the IdP answer with the fault and follows the portal's answer; then it opens ``logged_in_url``.
The portal passes a fault when that page (asked for once, no redirect followed) does not show
a session: it redirects, answers with an error status, or lacks ``logged_in_text``. A control
login without a fault must succeed first, else nothing the checker says would mean anything.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

from idp.testing.browser import Form, Page, WebBrowser
from idp.testing.faults import FAULTS, Fault

# Login page, consent page, then the portal: a few steps more are a loop.
MAX_STEPS = 6


class CheckerError(Exception):
    """The check cannot run (the control login failed); ``str(error)`` says what was seen."""


@dataclass(frozen=True)
class Target:
    """The portal as the checker uses it."""

    start_url: str
    logged_in_url: str
    # Text the logged-in page shows only with a session (None: the status and URL decide).
    logged_in_text: str | None = None


@dataclass(frozen=True)
class Verdict:
    fault: str
    what: str
    expected: str
    # The portal established a session despite the fault.
    accepted: bool
    # What the checker saw at the logged-in URL (status, where it ended).
    seen: str


@dataclass(frozen=True)
class Credentials:
    username: str
    password: str


def check_portal(target: Target, credentials: Credentials, new_browser: Callable[[], WebBrowser],
                 inject: Callable[[str | None], None],
                 faults: Iterable[Fault] = FAULTS.values()) -> list[Verdict]:
    """The verdict on each fault; ``inject(name)`` makes the IdP's next answer to the portal
    carry that fault (``inject(None)``: none). Raises :class:`CheckerError` when the control
    login without a fault does not succeed."""
    inject(None)
    accepted, seen = _logs_in(target, credentials, new_browser())
    if not accepted:
        raise CheckerError(f"Die Kontrollanmeldung ohne Fehler gelang nicht ({seen}). Stimmen "
                           "--start-url, --logged-in-url und --logged-in-text?")
    verdicts = []
    for fault in faults:
        inject(fault.name)
        try:
            accepted, seen = _logs_in(target, credentials, new_browser())
        finally:
            inject(None)
        verdicts.append(Verdict(fault.name, fault.what, fault.expected, accepted, seen))
    return verdicts


def _logs_in(target: Target, credentials: Credentials, browser: WebBrowser) -> tuple[bool, str]:
    """Start at the portal, log in and agree at the IdP; (a session exists, what was seen)."""
    page = browser.open(target.start_url)
    if _site(page.url) == _site(target.start_url) and len(page.forms) == 1 and \
            _form_with(page, "password") is None:
        # The portal's own login page: its one button ("Zum Servicekonto.NRW") starts SSO.
        page = browser.submit(page, page.forms[0])
    for _ in range(MAX_STEPS):
        if (form := _form_with(page, "password")) is not None:
            page = browser.submit(page, form, username=credentials.username,
                                  password=credentials.password)
        elif (form := _form_with(page, "transaction")) is not None:
            page = browser.submit(page, form, button=("decision", "agree"))
        else:
            break
    # Not followed: a portal that starts SSO again on a page for the logged-in would be logged
    # in by that new, right answer.
    after = browser.peek(target.logged_in_url)
    shown = after.status == 200 and (target.logged_in_text is None
                                     or target.logged_in_text in after.body)
    where = f" nach {after.header('Location')}" if after.header("Location") else ""
    return shown, f"HTTP {after.status}{where}"


def _site(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def _form_with(page: Page, field: str) -> Form | None:
    return next((form for form in page.forms if field in form.fields), None)


def table(verdicts: Sequence[Verdict]) -> str:
    """The verdicts as a text table: fault, what a correct portal does, verdict."""
    rows = [("Fehler", "Was ein korrektes Portal tut", "Ergebnis")] + [
        (verdict.fault, verdict.expected,
         ("AKZEPTIERT (Sitzung entstanden)" if verdict.accepted else "abgelehnt")
         + f" – {verdict.seen}") for verdict in verdicts]
    widths = [max(len(row[column]) for row in rows) for column in range(2)]
    lines = [f"{row[0]:<{widths[0]}}  {row[1]:<{widths[1]}}  {row[2]}" for row in rows]
    lines.insert(1, "-" * len(lines[0]))
    accepted = sum(verdict.accepted for verdict in verdicts)
    lines.append(f"{len(verdicts)} Fehler geprüft, {accepted} akzeptiert.")
    return "\n".join(lines)
