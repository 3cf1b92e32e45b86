"""Login throttling counters in Redis (when IDP_REDIS_URL is set), shared by every worker.

Each counter is one Redis hash that expires with its window. The update runs as a Lua script,
so two workers counting failures of the same account at once cannot lose one. While Redis does
not answer, the counters of the database take over (:class:`RedisOrDatabaseThrottleStore`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from typing import TypeVar

from redis import Redis
from redis.exceptions import RedisError

from idp.security.throttle import SqlThrottleStore, ThrottleRule, ThrottleStore

log = logging.getLogger(__name__)
T = TypeVar("T")

# KEYS[1]: the counter. ARGV: now, window, counted (1/0), free failures, max delay,
# max failures (seconds as floats). Returns 1 if this failure newly throttles the key.
_RECORD = """
local now, window = tonumber(ARGV[1]), tonumber(ARGV[2])
local counted, free = tonumber(ARGV[3]), tonumber(ARGV[4])
local max_delay, max_failures = tonumber(ARGV[5]), tonumber(ARGV[6])
local started = tonumber(redis.call('HGET', KEYS[1], 'started') or '0')
if started + window <= now then
  redis.call('DEL', KEYS[1])
  redis.call('HSET', KEYS[1], 'started', now, 'failures', 0, 'refused', 0)
  redis.call('EXPIREAT', KEYS[1], math.ceil(now + window))
  started = now
end
if counted == 0 then
  redis.call('HINCRBY', KEYS[1], 'refused', 1)
  return 0
end
local failures = redis.call('HINCRBY', KEYS[1], 'failures', 1)
local blocked = nil
if failures >= max_failures then
  blocked = started + window
elseif failures >= free then
  blocked = now + math.min(2 ^ math.min(failures - free, 20), max_delay)
end
if blocked then
  redis.call('HSET', KEYS[1], 'blocked_until', blocked)
  if redis.call('HSETNX', KEYS[1], 'notified', now) == 1 then
    return 1
  end
end
return 0
"""


class RedisThrottleStore:
    """The :class:`idp.security.throttle.ThrottleStore` protocol on Redis."""

    def __init__(self, client: Redis, prefix: str = "servicekonto:throttle") -> None:
        self._client = client
        self._prefix = prefix
        self._record = client.register_script(_RECORD)

    def _key(self, rule: ThrottleRule, key: str) -> str:
        return f"{self._prefix}:{rule.scope}:{key}"

    def blocked(self, rule: ThrottleRule, key: str, now: datetime) -> bool:
        started, blocked_until = self._client.hmget(self._key(rule, key),
                                                    ["started", "blocked_until"])
        timestamp = now.timestamp()
        if started is None or float(started) + rule.window.total_seconds() <= timestamp:
            return False
        return blocked_until is not None and float(blocked_until) > timestamp

    def record(self, rule: ThrottleRule, key: str, now: datetime, counted: bool) -> bool:
        newly = self._record(keys=[self._key(rule, key)], args=[
            now.timestamp(), rule.window.total_seconds(), int(counted), rule.free_failures,
            rule.max_delay.total_seconds(), rule.max_failures])
        return bool(newly)

    def clear(self, rule: ThrottleRule, key: str) -> None:
        self._client.delete(self._key(rule, key))

    def commit(self) -> None:
        """Each Redis update is atomic on its own: nothing to commit."""

    def failures(self, rule: ThrottleRule, key: str) -> int:
        """The failures counted in the current window (for tests and the operator)."""
        return int(self._client.hget(self._key(rule, key), "failures") or 0)


class RedisOrDatabaseThrottleStore:
    """Redis while it answers, else the ``login_throttle`` table: logins go on without Redis
    and stay throttled across workers (the database's counters start from zero, which gives
    an attacker at most the free failures again)."""

    def __init__(self, redis: ThrottleStore, database: SqlThrottleStore) -> None:
        self._redis = redis
        self._database = database
        self._database_used = False

    def _either(self, call: Callable[[ThrottleStore], T]) -> T:
        try:
            return call(self._redis)
        except RedisError as error:
            log.warning("Redis unavailable, login throttle counts in the database: %s", error)
            self._database_used = True
            return call(self._database)

    def blocked(self, rule: ThrottleRule, key: str, now: datetime) -> bool:
        return self._either(lambda store: store.blocked(rule, key, now))

    def record(self, rule: ThrottleRule, key: str, now: datetime, counted: bool) -> bool:
        return self._either(lambda store: store.record(rule, key, now, counted))

    def clear(self, rule: ThrottleRule, key: str) -> None:
        self._either(lambda store: store.clear(rule, key))

    def commit(self) -> None:
        if self._database_used:
            self._database.commit()
