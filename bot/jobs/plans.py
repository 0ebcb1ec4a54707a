"""Where a plan's pipeline results are kept until its change is merged or closed
(runners/saved.py decides what is reused): Redis with a TTL when the bot runs with Redis, so
every worker on every machine can read them; a dict in the embedded default.

Results are content-addressed (`promisebot:result:<job key>`); each change keeps the set of its
keys (`promisebot:plan:<forge>:<repo>:<number>`) so they can be dropped when it closes.
"""

from __future__ import annotations

import threading
from typing import Protocol

import redis

PLAN_TTL_SECONDS = 14 * 24 * 3600


def _change_key(forge: str, repo: str, number: int) -> str:
    return f"promisebot:plan:{forge}:{repo}:{number}"


class PlanStore(Protocol):
    def get(self, key: str) -> bytes | None: ...

    def put(self, key: str, data: bytes) -> None: ...

    def remember(self, forge: str, repo: str, number: int, keys: list[str]) -> None: ...

    def discard(self, forge: str, repo: str, number: int) -> int: ...


class RedisPlanStore:
    def __init__(self, client: redis.Redis, ttl: int = PLAN_TTL_SECONDS) -> None:
        self.client, self.ttl = client, ttl

    def get(self, key: str) -> bytes | None:
        data = self.client.get(f"promisebot:result:{key}")
        return data if isinstance(data, bytes) else None

    def put(self, key: str, data: bytes) -> None:
        self.client.set(f"promisebot:result:{key}", data, ex=self.ttl)

    def remember(self, forge: str, repo: str, number: int, keys: list[str]) -> None:
        name = _change_key(forge, repo, number)
        pipe = self.client.pipeline()
        if keys:
            pipe.sadd(name, *keys)
        pipe.expire(name, self.ttl)
        pipe.execute()

    def discard(self, forge: str, repo: str, number: int) -> int:
        """Drop the change's saved results; returns how many."""
        name = _change_key(forge, repo, number)
        keys = [k.decode() if isinstance(k, bytes) else str(k) for k in self.client.smembers(name)]
        if keys:
            self.client.delete(*(f"promisebot:result:{k}" for k in keys))
        self.client.delete(name)
        return len(keys)


class MemoryPlanStore:
    """The embedded default's store: this process only (a restart re-runs the pipelines)."""

    def __init__(self) -> None:
        self._data: dict[str, bytes] = {}
        self._changes: dict[str, set[str]] = {}
        self._lock = threading.Lock()

    def get(self, key: str) -> bytes | None:
        with self._lock:
            return self._data.get(key)

    def put(self, key: str, data: bytes) -> None:
        with self._lock:
            self._data[key] = data

    def remember(self, forge: str, repo: str, number: int, keys: list[str]) -> None:
        with self._lock:
            self._changes.setdefault(_change_key(forge, repo, number), set()).update(keys)

    def discard(self, forge: str, repo: str, number: int) -> int:
        with self._lock:
            keys = self._changes.pop(_change_key(forge, repo, number), set())
            for k in keys:
                self._data.pop(k, None)
            return len(keys)
