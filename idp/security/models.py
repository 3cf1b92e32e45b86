"""Server-side browser sessions and login throttling counters."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from idp.db import Base, UtcDateTime


class BrowserSession(Base):
    """A browser's session. The cookie holds a random id; only its SHA-256 is stored here."""

    __tablename__ = "browser_session"

    id_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    citizen_id: Mapped[int | None] = mapped_column(
        ForeignKey("citizen.id", ondelete="CASCADE"), index=True)
    data: Mapped[str] = mapped_column(Text, default="{}")
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    last_seen_at: Mapped[datetime] = mapped_column(UtcDateTime)
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime, index=True)
    authenticated_at: Mapped[datetime | None] = mapped_column(UtcDateTime)


class LoginThrottle(Base):
    """Failed logins within the current window for one account or one client address."""

    __tablename__ = "login_throttle"

    # "account" | "address" (login throttle), or a limited form's name (idp.security.rate_limits)
    scope: Mapped[str] = mapped_column(String(16), primary_key=True)
    key: Mapped[str] = mapped_column(String(128), primary_key=True)
    window_started_at: Mapped[datetime] = mapped_column(UtcDateTime)
    failures: Mapped[int] = mapped_column(default=0)
    # Attempts refused while throttled (not counted as failures; shows an ongoing attack).
    refused: Mapped[int] = mapped_column(default=0)
    blocked_until: Mapped[datetime | None] = mapped_column(UtcDateTime)
    # When the owner was told that the account is being throttled (once per window).
    notified_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
