"""SAML's instants (xs:dateTime) read as aware UTC datetimes."""

from __future__ import annotations

from datetime import UTC, datetime


def parse_instant(value: str | None) -> datetime | None:
    """An xs:dateTime in UTC, or None when it is missing or malformed."""
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
