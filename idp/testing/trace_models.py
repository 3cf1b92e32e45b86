"""What the SAML tracer keeps: the SAML messages in and out, with what was made of them."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import String, Text
from sqlalchemy.orm import Mapped, mapped_column

from idp.db import Base, UtcDateTime


class TracedSamlMessage(Base):
    """One SAML message as it travelled, and the IdP's verdict on it (docs/qa-workbench.md,
    "The SAML tracer"). In the database, so that the page shows what every worker saw; bounded
    in count and age (``IDP_TRACE_KEEP_MESSAGES``, ``IDP_TRACE_KEEP_HOURS``)."""

    __tablename__ = "testing_saml_message"

    # Increasing: newest first is by id (the clock may have been moved back meanwhile).
    id: Mapped[int] = mapped_column(primary_key=True)
    # The IdP's time (idp.clock.utcnow, moved with it).
    recorded_at: Mapped[datetime] = mapped_column(UtcDateTime, index=True)
    direction: Mapped[str] = mapped_column(String(3))  # "in" | "out"
    kind: Mapped[str] = mapped_column(String(40))  # "AuthnRequest", "Response", …
    binding: Mapped[str] = mapped_column(String(20))  # "HTTP-Redirect" | "HTTP-POST"
    # The Issuer (in) or the addressee (out); None when the message names none.
    portal_entity_id: Mapped[str | None] = mapped_column(String(1024), index=True)
    # Its name in the registry when it was recorded (None: not a registered portal).
    portal_name: Mapped[str | None] = mapped_column(String(100))
    # A keyed fingerprint of the browser's session, never the session id (a credential).
    browser: Mapped[str | None] = mapped_column(String(16), index=True)
    # The decoded message, as it travelled (pretty-printed only when shown).
    xml: Mapped[str] = mapped_column(Text)
    signature: Mapped[str] = mapped_column(Text)
    # The checks made, in order: a JSON list of German sentences.
    checks: Mapped[str] = mapped_column(Text)
    decision: Mapped[str] = mapped_column(Text)
    fault: Mapped[str | None] = mapped_column(String(64))
