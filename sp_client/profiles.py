"""The two demo portals: who they are, what they ask the Servicekonto for, how they look.

Each profile matches a portal file the IdP reads (``policies/portals/dueren.yaml``, ``mags.yaml``):
the entity id is ``<base URL>/saml/metadata`` and the default base URL is the loopback address
those files name. Attributes are wished for by Name (docs/architecture.md, "Attributes"), in the
BundID request extension.
"""

from __future__ import annotations

from dataclasses import dataclass

from saml2 import BINDING_HTTP_POST, BINDING_HTTP_REDIRECT
from saml2.saml import NAMEID_FORMAT_PERSISTENT, NAMEID_FORMAT_TRANSIENT

from idp.samlkit.bundid import BIRTH_NAME, BPK2, GENDER, GIVEN_NAME, MAIL, SURNAME


@dataclass(frozen=True)
class AttributeWish:
    """An attribute the portal asks for (by Name), and whether it cannot do without it."""

    name: str
    required: bool = False


@dataclass(frozen=True)
class PortalProfile:
    """Everything that makes one demo portal different from the other."""

    name: str  # the short name, as on the command line and in the IdP's policy file name
    display_name: str
    municipality: str  # "Stadt Düren", shown in the header and the footer
    default_port: int
    # pysaml2 binding URIs: how the AuthnRequest and our LogoutRequest travel to the IdP.
    sso_binding: str
    slo_binding: str
    name_id_format: str
    # STORK-QAA-Level-n asked for with Comparison="minimum".
    minimum_trust_level: int
    attributes: tuple[AttributeWish, ...]
    # Shown on the IdP's consent page (akdb DisplayInformation).
    purpose: str
    # The stylesheet with the portal's colours (sp_client/static/theme-<name>.css).
    theme: str
    # The mags portal keeps Kassenzeichen (docs/architecture.md, "Kassenzeichen at mags").
    kassenzeichen: bool = False
    phone: str | None = None
    # The page after login: mags' guide calls it "Übersicht der Services" (§2.4).
    overview_title: str = "Mein Bereich"

    @property
    def default_base_url(self) -> str:
        return f"http://127.0.0.1:{self.default_port}"


DUEREN = PortalProfile(
    name="dueren", display_name="Bürgerportal der Stadt Düren", municipality="Stadt Düren",
    default_port=5001, sso_binding=BINDING_HTTP_REDIRECT, slo_binding=BINDING_HTTP_REDIRECT,
    name_id_format=NAMEID_FORMAT_PERSISTENT, minimum_trust_level=1,
    attributes=(AttributeWish(GIVEN_NAME, True), AttributeWish(SURNAME, True),
                AttributeWish(MAIL, True), AttributeWish(GENDER), AttributeWish(BPK2, True)),
    purpose="Anmeldung an den Onlinediensten der Stadt Düren", theme="dueren")

MAGS = PortalProfile(
    name="mags", display_name="mags Bürgerportal", municipality="mags Mönchengladbach",
    default_port=5002, sso_binding=BINDING_HTTP_POST, slo_binding=BINDING_HTTP_POST,
    name_id_format=NAMEID_FORMAT_TRANSIENT, minimum_trust_level=1,
    # bPK2 is the citizen's stable key here: the NameID is transient, new at every login.
    attributes=(AttributeWish(GIVEN_NAME, True), AttributeWish(SURNAME, True),
                AttributeWish(BIRTH_NAME), AttributeWish(MAIL, True),
                AttributeWish(BPK2, True)),
    purpose="Anmeldung im mags Bürgerportal und Zuordnung Ihrer Kassenzeichen", theme="mags",
    kassenzeichen=True, phone="02161 49 10 10", overview_title="Übersicht der Services")

PROFILES: dict[str, PortalProfile] = {profile.name: profile for profile in (DUEREN, MAGS)}


def trust_level_ref(level: int) -> str:
    """The AuthnContextClassRef of a STORK QAA level."""
    return f"STORK-QAA-Level-{level}"


def trust_level_of(class_ref: str | None) -> int | None:
    """1 … 4 for ``STORK-QAA-Level-n``; None for anything else."""
    prefix = "STORK-QAA-Level-"
    if class_ref and class_ref.startswith(prefix) and class_ref[len(prefix):] in "1234" \
            and len(class_ref) == len(prefix) + 1:
        return int(class_ref[len(prefix):])
    return None
