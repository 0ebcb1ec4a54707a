"""What the web process and the workers share: de-duplication of deliveries, the newest head of
each change (so a newer push supersedes a queued or running plan), the reconcile locks, the
Destination locks of applies in progress and the saved plans. Redis when `REDIS_URL` is set
(every process on every machine sees the same), process memory in the embedded default (same
code paths above this module).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Protocol

import redis

from bot.jobs.destlocks import (
    DESTINATION_LOCK_TTL_SECONDS,
    DestinationLocks,
    MemoryDestinationLocks,
    RedisDestinationLocks,
)
from bot.jobs.locks import LOCK_TTL_SECONDS, LocalLocks, Locks, RedisLocks
from bot.jobs.plans import MemoryPlanStore, PlanStore, RedisPlanStore
from bot.jobs.queue import seconds_setting

DELIVERY_TTL_SECONDS = 3 * 24 * 3600


class Memo(Protocol):
    def first_time(self, key: str) -> bool:
        """True the first time `key` is seen (within the TTL), False after."""
        ...

    def forget(self, key: str) -> None:
        """`key` is new again (its delivery could not be queued)."""
        ...

    def set_latest(self, key: str, value: str) -> None: ...

    def latest(self, key: str) -> str | None: ...


class RedisMemo:
    def __init__(self, client: redis.Redis) -> None:
        self.client = client

    def first_time(self, key: str) -> bool:
        return bool(self.client.set(f"promisebot:seen:{key}", b"1", nx=True, ex=DELIVERY_TTL_SECONDS))

    def forget(self, key: str) -> None:
        self.client.delete(f"promisebot:seen:{key}")

    def set_latest(self, key: str, value: str) -> None:
        self.client.set(f"promisebot:latest:{key}", value.encode(), ex=DELIVERY_TTL_SECONDS)

    def latest(self, key: str) -> str | None:
        data = self.client.get(f"promisebot:latest:{key}")
        return data.decode() if isinstance(data, bytes) else None


class MemoryMemo:
    def __init__(self) -> None:
        self._seen: dict[str, float] = {}
        self._latest: dict[str, str] = {}
        self._lock = threading.Lock()

    def first_time(self, key: str) -> bool:
        now = time.monotonic()
        with self._lock:
            for k in [k for k, t in self._seen.items() if now - t > DELIVERY_TTL_SECONDS]:
                del self._seen[k]
            if key in self._seen:
                return False
            self._seen[key] = now
            return True

    def forget(self, key: str) -> None:
        with self._lock:
            self._seen.pop(key, None)

    def set_latest(self, key: str, value: str) -> None:
        with self._lock:
            self._latest[key] = value

    def latest(self, key: str) -> str | None:
        with self._lock:
            return self._latest.get(key)


@dataclass
class Backend:
    memo: Memo
    locks: Locks
    plans: PlanStore
    redis: redis.Redis | None = None
    destination_locks: DestinationLocks = field(default_factory=MemoryDestinationLocks)


def lock_ttl_setting() -> int:
    """`PROMISEBOT_LOCK_TTL_SECONDS` (default 60): the reconcile lock's TTL, refreshed every third
    of it while held; how long a reconcile waits for the lock of a holder that died."""
    return seconds_setting("PROMISEBOT_LOCK_TTL_SECONDS", LOCK_TTL_SECONDS, minimum=3)


def destination_lock_ttl_setting() -> int:
    """`PROMISEBOT_DESTINATION_LOCK_TTL_SECONDS` (default 3600): how long an apply holds the
    Destinations it changes at most (its merge reconciled, or its change closed, releases them)."""
    return seconds_setting("PROMISEBOT_DESTINATION_LOCK_TTL_SECONDS", DESTINATION_LOCK_TTL_SECONDS, minimum=60)


def make_backend(redis_url: str | None) -> Backend:
    if redis_url:
        client = redis.Redis.from_url(redis_url)
        return Backend(RedisMemo(client), RedisLocks(client, ttl=lock_ttl_setting()), RedisPlanStore(client), client,
                       RedisDestinationLocks(client, ttl=destination_lock_ttl_setting()))
    return Backend(MemoryMemo(), LocalLocks(), MemoryPlanStore(),
                   destination_locks=MemoryDestinationLocks(ttl=destination_lock_ttl_setting()))
