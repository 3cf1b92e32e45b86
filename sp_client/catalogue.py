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
    # The trust level the login must have reached (4: "hoch", the Online-Ausweisfunktion).
    needs_level: int = 1


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
        # A Meldebescheinigung needs a secure identification: level "hoch" (a step-up).
        Service("meldebescheinigung", "Meldebescheinigung anfordern", needs_login=True,
                needs_level=4),
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


def offers(portal: str, logged_in: bool, has_kassenzeichen: bool,
           level: int = 1) -> list[Offer]:
    """The portal's services for a citizen who is (not) logged in at ``level`` and has (no)
    confirmed Kassenzeichen; a service is usable when every requirement is met."""
    return [_offer(service, logged_in, has_kassenzeichen, level)
            for service in SERVICES[portal]]


def find(portal: str, slug: str) -> Service | None:
    return next((service for service in SERVICES[portal] if service.slug == slug), None)


def _offer(service: Service, logged_in: bool, has_kassenzeichen: bool, level: int) -> Offer:
    if not service.needs_login:
        return Offer(service, True, "ohne Anmeldung")
    if service.needs_level > 1:
        # Open to every citizen logged in: its page offers the step-up when the level is lower.
        reached = logged_in and level >= service.needs_level
        return Offer(service, logged_in, "anmeldepflichtig, Vertrauensniveau „hoch“ "
                     + ("erreicht" if reached else "erforderlich (Online-Ausweisfunktion)"))
    if service.needs_kassenzeichen:
        usable = logged_in and has_kassenzeichen
        note = "anmeldepflichtig, Kassenzeichen bestätigt" if usable else \
            "anmeldepflichtig, bestätigtes Kassenzeichen erforderlich"
        return Offer(service, usable, note)
    return Offer(service, logged_in, "anmeldepflichtig")
