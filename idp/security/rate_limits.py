"""Limits on the forms anyone may send without logging in, per client address and overall.

Each limited form has two fixed-window counters: one per client address and one for all
clients together (:class:`idp.config.FormLimits` sets both and the window). A request is counted
before the form does any work, so a refused one has sent no mail, written no account and
computed no hash. Refused requests count too: hammering on does not shorten the wait.

A client is its IPv4 address or its IPv6 /64 network (:func:`client_key`). The counters live in
Redis when ``IDP_REDIS_URL`` is set (shared by every worker and host), in the ``login_throttle``
table otherwise and whenever Redis does not answer; there the form's name is the row's scope
(``register``, ``mail_request``, …) and ``failures`` counts its requests.
The login itself keeps its own throttle (:mod:`idp.security.throttle`).
"""

from __future__ import annotations

import ipaddress
import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal, Protocol

from redis import Redis
from redis.exceptions import RedisError
from sqlalchemy.orm import Session

from idp.config import FormLimits, RequestLimit
from idp.security.throttle import counter_row

log = logging.getLogger(__name__)

# The limited forms: the fields of FormLimits, and the scopes of their counters.
LimitName = Literal["register", "register_form", "mail_request", "password_reset"]
OVERALL_KEY = "overall"
# The key column holds 128 characters; a proxy's X-Forwarded-For could carry more.
_ADDRESS_CHARS = 100
# One IPv6 subscriber gets a whole /64 and may pick any address in it: count it as one client.
_IPV6_CLIENT_PREFIX = 64


@dataclass(frozen=True)
class Count:
    """Requests counted in the current window (the latest included), and when it ends."""

    requests: int
    window_ends: datetime


@dataclass(frozen=True)
class LimitReached:
    """A request over a limit: how long until that limit's window ends, and whose limit it
    was (``overall``: all clients' together, else this client address's)."""

    retry_after: timedelta
    overall: bool


class RequestCounters(Protocol):
    """Where the counters live: the database, or Redis with the database standing in."""

    def count(self, scope: str, key: str, window: timedelta, now: datetime) -> Count:
        """Count one request under ``scope``/``key``; a window that has ended starts anew."""
        ...


class SqlRequestCounters:
    """Counters in the ``login_throttle`` table, on the request's session.

    Each count commits at once: the row lock must not be held while the form hashes or mails,
    or every registration would wait for the one before it (the overall counter is one row).
    Count before the form changes anything, as that commit would take those changes along.
    Not a session of its own: a second connection per request can exhaust the pool.
    """

    def __init__(self, session: Session) -> None:
        self._session = session

    def count(self, scope: str, key: str, window: timedelta, now: datetime) -> Count:
        row = counter_row(self._session, scope, key, window, now)
        row.failures += 1
        counted = Count(row.failures, row.window_started_at + window)
        self._session.commit()
        return counted


# KEYS[1]: the counter. ARGV: now, window (seconds). Returns {requests, window start}.
_COUNT = """
local now, window = tonumber(ARGV[1]), tonumber(ARGV[2])
local started = redis.call('HGET', KEYS[1], 'started')
if not started or tonumber(started) + window <= now then
  redis.call('DEL', KEYS[1])
  redis.call('HSET', KEYS[1], 'started', ARGV[1])
  redis.call('EXPIREAT', KEYS[1], math.ceil(now + window))
  started = ARGV[1]
end
local requests = redis.call('HINCRBY', KEYS[1], 'requests', 1)
return {requests, started}
"""


class RedisRequestCounters:
    """The counters in Redis: one hash per counter, expiring with its window, updated by a
    Lua script so that two workers counting at once cannot lose a request."""

    def __init__(self, client: Redis, prefix: str = "servicekonto:limit") -> None:
        self._prefix = prefix
        self._count = client.register_script(_COUNT)

    def count(self, scope: str, key: str, window: timedelta, now: datetime) -> Count:
        requests, started = self._count(keys=[f"{self._prefix}:{scope}:{key}"],
                                        args=[repr(now.timestamp()), window.total_seconds()])
        start = datetime.fromtimestamp(float(started), UTC)
        return Count(int(requests), start + window)


class RedisOrDatabaseCounters:
    """Redis while it answers, else the database: the forms stay limited across workers
    without Redis (the database's counters start from zero, which gives a client at most one
    more window's worth)."""

    def __init__(self, redis: RequestCounters, database: RequestCounters) -> None:
        self._redis = redis
        self._database = database

    def count(self, scope: str, key: str, window: timedelta, now: datetime) -> Count:
        try:
            return self._redis.count(scope, key, window, now)
        except RedisError as error:
            log.warning("Redis unavailable, form limits count in the database: %s", error)
            return self._database.count(scope, key, window, now)


def client_key(address: str) -> str:
    """The counter key of a client address: an IPv4 address itself, an IPv6 address's /64
    (an IPv4-mapped one as IPv4), anything else as given (shortened)."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return f"address:{address[:_ADDRESS_CHARS]}"
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return f"address:{ip.ipv4_mapped}"
        network = ipaddress.IPv6Network((ip, _IPV6_CLIENT_PREFIX), strict=False)
        return f"address:{network}"
    return f"address:{ip}"


class FormLimiter:
    """The limits of :class:`idp.config.FormLimits` on their counters."""

    def __init__(self, counters: RequestCounters, limits: FormLimits) -> None:
        self._counters = counters
        self._limits = limits

    def admit(self, name: LimitName, address: str, now: datetime) -> LimitReached | None:
        """Count a request of form ``name`` from ``address`` (see :func:`client_key`): None
        if it may go on, else the :class:`LimitReached` to answer with. The client's own limit is
        asked first, so a client over it no longer eats into what everyone else may send."""
        limit: RequestLimit = getattr(self._limits, name)
        own = self._counters.count(name, client_key(address), limit.window, now)
        if own.requests > limit.per_address:
            return LimitReached(own.window_ends - now, overall=False)
        everyone = self._counters.count(name, OVERALL_KEY, limit.window, now)
        if everyone.requests > limit.overall:
            if everyone.requests == limit.overall + 1:  # once per window, not per refusal
                log.warning("overall limit of %s reached: %d requests until %s", name,
                            limit.overall, everyone.window_ends.isoformat())
            return LimitReached(everyone.window_ends - now, overall=True)
        return None
