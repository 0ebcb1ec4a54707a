"""Destination locks: while a pull/merge request's apply is in progress (from `/promisebot
apply` until its merge is reconciled), the Destinations its plan changes are held by it, so a
second change touching one of them waits (docs/chatops.md, "Locks").

A lock names its owner (the change: forge, repository, number, and its web page) and expires
after a TTL, so a lock whose owner is gone never blocks forever; `unlock` removes one sooner.
Taking the locks of several Destinations is all or nothing. Redis when `REDIS_URL` is set (one
key per Destination, taken in one Lua script), process memory in the embedded default.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

import redis

DESTINATION_LOCK_TTL_SECONDS = 3600


@dataclass(frozen=True, slots=True)
class Holder:
    """Who holds a Destination's lock: a change (`number`, `url`) and since when (epoch s)."""

    number: int
    url: str
    since: float

    def to_json(self) -> str:
        return json.dumps({"number": self.number, "url": self.url, "since": self.since}, sort_keys=True)

    @classmethod
    def from_json(cls, text: str | bytes) -> Holder:
        data = json.loads(text)
        return cls(int(data["number"]), str(data.get("url", "")), float(data.get("since", 0)))


class DestinationLocks(Protocol):
    def acquire(self, repo_key: str, destinations: Iterable[str], holder: Holder) -> dict[str, Holder]:
        """Take every lock of `destinations` for `holder`, or none: returns the locks held by
        other changes (empty when taken). Locks `holder` already holds are refreshed."""
        ...

    def holders(self, repo_key: str, destinations: Iterable[str]) -> dict[str, Holder]:
        """The current holder of each locked Destination among `destinations`."""
        ...

    def release(self, repo_key: str, number: int, destinations: Iterable[str] | None = None) -> list[str]:
        """Release the locks change `number` holds (of `destinations`, or all); returns them."""
        ...

    def force_release(self, repo_key: str, destination: str) -> Holder | None:
        """Remove a Destination's lock whoever holds it (`unlock`); returns the holder it had."""
        ...


_ACQUIRE = """
local blocked = {}
for i, key in ipairs(KEYS) do
  local current = redis.call('get', key)
  if current and cjson.decode(current)['number'] ~= tonumber(ARGV[2]) then
    table.insert(blocked, i)
    table.insert(blocked, current)
  end
end
if #blocked > 0 then return blocked end
for _, key in ipairs(KEYS) do redis.call('set', key, ARGV[1], 'EX', ARGV[3]) end
return blocked
"""
_RELEASE = """
local released = {}
for i, key in ipairs(KEYS) do
  local current = redis.call('get', key)
  if current and cjson.decode(current)['number'] == tonumber(ARGV[1]) then
    redis.call('del', key)
    table.insert(released, i)
  end
end
return released
"""


class RedisDestinationLocks:
    def __init__(self, client: redis.Redis, ttl: int = DESTINATION_LOCK_TTL_SECONDS) -> None:
        self.client, self.ttl = client, ttl

    @staticmethod
    def _key(repo_key: str, destination: str) -> str:
        return f"promisebot:dlock:{repo_key}:{destination}"

    def acquire(self, repo_key: str, destinations: Iterable[str], holder: Holder) -> dict[str, Holder]:
        names = sorted(set(destinations))
        if not names:
            return {}
        keys = [self._key(repo_key, d) for d in names]
        out = self.client.eval(_ACQUIRE, len(keys), *keys, holder.to_json(), holder.number, self.ttl)
        pairs = list(out or [])
        return {names[int(pairs[i]) - 1]: Holder.from_json(pairs[i + 1]) for i in range(0, len(pairs), 2)}

    def holders(self, repo_key: str, destinations: Iterable[str]) -> dict[str, Holder]:
        names = sorted(set(destinations))
        if not names:
            return {}
        values = self.client.mget([self._key(repo_key, d) for d in names])
        return {d: Holder.from_json(v) for d, v in zip(names, values, strict=True) if v}

    def release(self, repo_key: str, number: int, destinations: Iterable[str] | None = None) -> list[str]:
        if destinations is None:
            prefix = self._key(repo_key, "")
            keys = [k.decode() if isinstance(k, bytes) else str(k)
                    for k in self.client.scan_iter(match=_glob_escape(prefix) + "*", count=1000)]
            names = sorted(k[len(prefix):] for k in keys)
        else:
            names = sorted(set(destinations))
        if not names:
            return []
        out = self.client.eval(_RELEASE, len(names), *[self._key(repo_key, d) for d in names], number)
        return [names[int(i) - 1] for i in out or []]

    def force_release(self, repo_key: str, destination: str) -> Holder | None:
        value = self.client.getdel(self._key(repo_key, destination))
        return Holder.from_json(value) if isinstance(value, bytes | str) else None


def _glob_escape(text: str) -> str:
    return "".join("\\" + c if c in "*?[]\\" else c for c in text)


class MemoryDestinationLocks:
    """The embedded default's: the same rules, in this process."""

    def __init__(self, ttl: int = DESTINATION_LOCK_TTL_SECONDS) -> None:
        self.ttl = ttl
        self._held: dict[tuple[str, str], tuple[Holder, float]] = {}  # -> (holder, expiry, monotonic)
        self._lock = threading.Lock()

    def _live(self, repo_key: str, destination: str) -> Holder | None:
        entry = self._held.get((repo_key, destination))
        if entry is None:
            return None
        if entry[1] <= time.monotonic():
            del self._held[(repo_key, destination)]
            return None
        return entry[0]

    def acquire(self, repo_key: str, destinations: Iterable[str], holder: Holder) -> dict[str, Holder]:
        names = sorted(set(destinations))
        with self._lock:
            blocked = {d: h for d in names if (h := self._live(repo_key, d)) and h.number != holder.number}
            if not blocked:
                for d in names:
                    self._held[(repo_key, d)] = (holder, time.monotonic() + self.ttl)
            return blocked

    def holders(self, repo_key: str, destinations: Iterable[str]) -> dict[str, Holder]:
        with self._lock:
            return {d: h for d in sorted(set(destinations)) if (h := self._live(repo_key, d))}

    def release(self, repo_key: str, number: int, destinations: Iterable[str] | None = None) -> list[str]:
        with self._lock:
            names = sorted({d for (r, d) in self._held if r == repo_key} if destinations is None else set(destinations))
            released = [d for d in names if (h := self._live(repo_key, d)) and h.number == number]
            for d in released:
                del self._held[(repo_key, d)]
            return released

    def force_release(self, repo_key: str, destination: str) -> Holder | None:
        with self._lock:
            holder = self._live(repo_key, destination)
            self._held.pop((repo_key, destination), None)
            return holder
