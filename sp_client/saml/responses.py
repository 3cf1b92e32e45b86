"""Taking the IdP's answer to a login: the kit's checks (:mod:`idp.samlkit.sp_response`) and the
portal's own bookkeeping in its database.

The kit decodes the answer, lets pysaml2 verify the signatures (with the key from the IdP's
metadata only) and checks Issuer, Destination, InResponseTo, Audience, Recipient, times, the trust
level asked for and the required attributes. The portal adds what needs its database: the
request the answer is for, sent from this very browser, a replay cache of assertion IDs, and the
request used up once answered. Each refusal is shown in German (:func:`message_of`).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from idp.samlkit.sp_response import (
    AssertedLogin,
    Expected,
    LoginNotGranted,
    Problem,
    ResponseRejected,
    check,
    message,
    read_envelope,
)
from sp_client.profiles import trust_level_of
from sp_client.saml import state
from sp_client.saml.provider import CLOCK_SKEW, ServiceProvider
from sp_client.sessions import Login

# The portal names its IdP and itself where the kit's words are neutral.
_OUR_WORDS = {
    Problem.MALFORMED: "Die Antwort des Servicekonto.NRW ist unvollständig oder fehlerhaft.",
    Problem.UNSIGNED: "Die Antwort des Servicekonto.NRW ist nicht signiert.",
    Problem.BAD_SIGNATURE: ("Die Signatur der Antwort ist ungültig: Die Antwort stammt nicht vom "
                            "Servicekonto.NRW oder wurde unterwegs verändert."),
    Problem.WRONG_ISSUER: "Die Antwort stammt nicht vom Servicekonto.NRW.",
    Problem.WRONG_AUDIENCE: "Die Anmeldedaten sind für ein anderes Portal bestimmt.",
    Problem.WRONG_RECIPIENT: ("Die Antwort ist an eine andere Adresse gerichtet als an dieses "
                              "Portal."),
    Problem.LEVEL_TOO_LOW: ("Das Vertrauensniveau der Anmeldung reicht für dieses Portal nicht "
                            "aus."),
    Problem.MISSING_ATTRIBUTE: ("Das Servicekonto.NRW hat nicht alle Angaben übermittelt, die "
                                "dieses Portal für die Anmeldung braucht."),
}


def message_of(problem: Problem) -> str:
    """Why the portal refused the IdP's answer, in the citizen's words."""
    return _OUR_WORDS.get(problem) or message(problem)


def read_authn_response(provider: ServiceProvider, session: Session,
                        form: dict[str, list[str]], browser_hash: str | None,
                        now: datetime) -> Login:
    """The login the IdP's Response (an HTTP-POST form) vouches for; the request it answers
    is used up. Raises :class:`ResponseRejected` or :class:`LoginNotGranted`."""
    envelope = read_envelope(form)
    waiting = state.outstanding(session, envelope.in_response_to, state.LOGIN, now)
    # The browser that sent the request must bring the answer: nobody can push a login of
    # their own into a victim's browser (login CSRF).
    if waiting is None or waiting.browser_hash != browser_hash:
        raise ResponseRejected(Problem.UNKNOWN_REQUEST,
                               f"InResponseTo {envelope.in_response_to!r}")
    expected = Expected(
        issuer=provider.idp_entity_id(now), audience=provider.entity_id,
        acs_url=provider.acs_url, request_id=waiting.request_id,
        trust_level=waiting.trust_level, level_of=trust_level_of, clock_skew=CLOCK_SKEW,
        required=tuple(wish.name for wish in provider.settings.profile.attributes
                       if wish.required))
    try:
        verified = check(provider.client(now), envelope, expected, now)
    except LoginNotGranted:
        # The IdP's own (signed) refusal answers the request.
        state.use_request(session, waiting.request_id)
        raise
    if not state.first_sighting(session, expected.issuer, verified.assertion_id,
                                verified.keep_until):
        raise ResponseRejected(Problem.REPLAYED, f"assertion {verified.assertion_id}")
    if not state.use_request(session, waiting.request_id):
        raise ResponseRejected(Problem.REPLAYED, f"request {waiting.request_id} answered")
    return _session_login(verified.login, now)


def _session_login(login: AssertedLogin, now: datetime) -> Login:
    """What the portal's session keeps of the login the IdP vouched for."""
    return Login(
        name_id=login.name_id, name_id_format=login.name_id_format,
        name_qualifier=login.name_qualifier, sp_name_qualifier=login.sp_name_qualifier,
        session_index=login.session_index, attributes=login.attributes,
        attribute_trust=login.attribute_trust, class_ref=login.class_ref,
        authenticated_at=login.authenticated_at.isoformat() if login.authenticated_at else "",
        logged_in_at=now.isoformat(),
        session_until=login.session_until.isoformat() if login.session_until else None,
        friendly_names=login.friendly_names, issued_at=login.issued_at.isoformat())
