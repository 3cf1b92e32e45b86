"""The services each demo portal offers, and which of them a citizen can use right now.

The start page and the page after login ("Übersicht der Services" at mags, "Mein Bereich" at
Düren) list them from here. At mags the anmeldepflichtige services need a confirmed
Kassenzeichen (mags guide §2.4); the services themselves are not built in the demo.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Service:
    """One service of a portal, as the citizen finds it in the list."""

    slug: str  # its address: /services/<slug>
    name: str
    needs_login: bool
    needs_kassenzeichen: bool = False
    # A page of the portal that is the service itself (else the demo's placeholder page).
    endpoint: str | None = None


SERVICES: dict[str, tuple[Service, ...]] = {
    "mags": (
        Service("kassenzeichen", "Kassenzeichen zuordnen", needs_login=True,
                endpoint="kassenzeichen.overview"),
        Service("abfallgebuehren", "Abfallgebühren einsehen", needs_login=True,
                needs_kassenzeichen=True),
        Service("sperrmuell", "Sperrmüll anmelden", needs_login=True, needs_kassenzeichen=True),
        Service("abfuhrkalender", "Abfuhrkalender", needs_login=False),
    ),
    "dueren": (
        Service("anwohnerparkausweis", "Anwohnerparkausweis beantragen", needs_login=True),
        Service("meldebescheinigung", "Meldebescheinigung anfordern", needs_login=True),
        Service("hundeanmeldung", "Hund anmelden", needs_login=True),
        Service("buergerbuero", "Termin im Bürgerbüro", needs_login=False),
    ),
}


@dataclass(frozen=True)
class Offer:
    """A service as one citizen sees it: usable now or not, and what it requires."""

    service: Service
    usable: bool
    note: str


def offers(portal: str, logged_in: bool, has_kassenzeichen: bool) -> list[Offer]:
    """The portal's services for a citizen who is (not) logged in and has (no) confirmed
    Kassenzeichen; a service is usable when every requirement is met."""
    return [_offer(service, logged_in, has_kassenzeichen) for service in SERVICES[portal]]


def find(portal: str, slug: str) -> Service | None:
    return next((service for service in SERVICES[portal] if service.slug == slug), None)


def _offer(service: Service, logged_in: bool, has_kassenzeichen: bool) -> Offer:
    if not service.needs_login:
        return Offer(service, True, "ohne Anmeldung")
    if service.needs_kassenzeichen:
        usable = logged_in and has_kassenzeichen
        note = "anmeldepflichtig, Kassenzeichen bestätigt" if usable else \
            "anmeldepflichtig, bestätigtes Kassenzeichen erforderlich"
        return Offer(service, usable, note)
    return Offer(service, logged_in, "anmeldepflichtig")
