"""How our German pages and mails say times and durations: in Germany's local time, and with
the unit a reader expects ("01.12.2026, 11:03:12 Uhr", "24 Stunden", "60 Minuten")."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

LOCAL_TIME = ZoneInfo("Europe/Berlin")


def local_time(moment: datetime | None) -> str:
    """"01.12.2026, 11:03:12 Uhr" (lists and records); "" for none."""
    return "" if moment is None else f"{moment.astimezone(LOCAL_TIME):%d.%m.%Y, %H:%M:%S} Uhr"


def duration(span: timedelta) -> str:
    """"24 Stunden", "12 Stunden", "60 Minuten", "90 Minuten", "1 Minute": whole hours from two
    hours on, else minutes."""
    minutes = int(span.total_seconds() // 60)
    if minutes >= 120 and minutes % 60 == 0:
        return f"{minutes // 60} Stunden"
    return "1 Minute" if minutes == 1 else f"{minutes} Minuten"
