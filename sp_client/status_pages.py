"""German pages for every error status the IdP can send instead of a login.

The citizen reads what happened and what to do; the SAML status codes themselves stay in the
page's "Technische Angaben" for QA and support.
"""

from __future__ import annotations

from dataclasses import dataclass

from flask import render_template

from idp.samlkit.sp_response import Refusal

SAML_STATUS = "urn:oasis:names:tc:SAML:2.0:status:"
REQUIRED_ATTRIBUTES_MISSING = "IDP_REQUIRED_ATTRIBUTES_MISSING"


@dataclass(frozen=True)
class StatusPage:
    title: str
    message: str
    advice: str


DECLINED = StatusPage(
    "Anmeldung nicht abgeschlossen",
    "Sie haben der Weitergabe Ihrer Daten nicht zugestimmt.",
    "Ohne Ihre Zustimmung erhält das Portal keine Daten, und Sie können die anmeldepflichtigen "
    "Dienste nicht nutzen. Sie können die Anmeldung jederzeit erneut starten und der "
    "Weitergabe zustimmen.")
MISSING_DATA = StatusPage(
    "Anmeldung nicht möglich",
    "In Ihrem Servicekonto.NRW fehlen Angaben, die dieses Portal unbedingt benötigt.",
    "Bitte ergänzen Sie Ihre Daten im Servicekonto.NRW und melden Sie sich erneut an.")
PAGES: dict[str, StatusPage] = {
    "AuthnFailed": StatusPage(
        "Anmeldung abgebrochen", "Sie haben die Anmeldung beim Servicekonto.NRW abgebrochen.",
        "Sie sind nicht angemeldet. Sie können die Anmeldung jederzeit erneut starten."),
    "NoAuthnContext": StatusPage(
        "Vertrauensniveau nicht ausreichend",
        "Dieses Portal verlangt ein höheres Vertrauensniveau, als Ihre Anmeldung beim "
        "Servicekonto.NRW erreicht.",
        "Bitte melden Sie sich mit einer Anmeldeart an, die dieses Vertrauensniveau erreicht, "
        "zum Beispiel mit der Online-Ausweisfunktion."),
    "NoPassive": StatusPage(
        "Anmeldung erforderlich",
        "Sie sind beim Servicekonto.NRW nicht angemeldet, und eine Anmeldung ohne Ihre "
        "Mitwirkung ist nicht möglich.",
        "Bitte starten Sie die Anmeldung über „Anmelden“."),
    "RequestUnsupported": StatusPage(
        "Anmeldung nicht möglich",
        "Das Servicekonto.NRW kann die Anmeldeanfrage dieses Portals nicht bearbeiten.",
        "Das ist ein Fehler in der Einrichtung des Portals. Bitte wenden Sie sich an die "
        "Betreiber des Portals."),
    "InvalidNameIDPolicy": StatusPage(
        "Anmeldung nicht möglich",
        "Das Servicekonto.NRW kann die Kennung, die dieses Portal anfordert, nicht liefern.",
        "Das ist ein Fehler in der Einrichtung des Portals. Bitte wenden Sie sich an die "
        "Betreiber des Portals."),
}


def refusal_page(refusal: Refusal) -> tuple[str, int]:
    """The page for the IdP's refusal (403: the citizen is not logged in)."""
    sub = (refusal.sub_status or "").removeprefix(SAML_STATUS)
    if sub == "RequestDenied":
        page = MISSING_DATA if refusal.detail == REQUIRED_ATTRIBUTES_MISSING else DECLINED
    else:
        page = PAGES.get(sub) or StatusPage(
            "Anmeldung fehlgeschlagen",
            "Die Anmeldung beim Servicekonto.NRW ist fehlgeschlagen.",
            "Bitte versuchen Sie es später erneut.")
    codes = [code.removeprefix(SAML_STATUS) for code in (refusal.status, refusal.sub_status,
                                                         refusal.detail) if code]
    return render_template("portal/login_refused.html", page=page, status_codes=codes,
                           status_message=refusal.message), 403
