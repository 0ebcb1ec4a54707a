"""One reconcile of a platform repository at a time, across every worker on every machine: a
Redis lock with an owner token and a TTL that a background thread keeps refreshing while the
holder works (a crashed holder's lock expires). A job that finds it taken waits for it; it never
fails for that. The embedded default uses a process-local lock with the same interface.
"""

from __future__ import annotations

import logging
import os
import random
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Protocol

import redis

log = logging.getLogger("promisebot.locks")

LOCK_TTL_SECONDS = 60
_RELEASE = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end"
_REFRESH = ("if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) "
            "else return 0 end")


class Locks(Protocol):
    def hold(self, name: str) -> AbstractContextManager[float]: ...


class RedisLocks:
    def __init__(self, client: redis.Redis, ttl: float = LOCK_TTL_SECONDS, poll: float = 0.2) -> None:
        self.client, self.ttl, self.poll = client, ttl, poll

    @contextmanager
    def hold(self, name: str) -> Iterator[float]:
        """Wait for the lock `name`, hold it for the block; yields the seconds waited."""
        key = f"promisebot:lock:{name}"
        owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex}"
        ttl_ms = int(self.ttl * 1000)
        start = time.monotonic()
        while not self.client.set(key, owner, nx=True, px=ttl_ms):
            time.sleep(self.poll * random.uniform(0.5, 1.5))
        waited = time.monotonic() - start
        stop = threading.Event()

        def refresh() -> None:
            while not stop.wait(self.ttl / 3):
                try:
                    kept = self.client.eval(_REFRESH, 1, key, owner, ttl_ms)
                except redis.RedisError as exc:  # a later refresh may still make it in time
                    log.warning("could not refresh the lock %s: %s", name, exc)
                    continue
                if not kept:
                    log.error("lost the lock %s while holding it (it expired, or another holder took it)", name)
                    return

        keeper = threading.Thread(target=refresh, name=f"lock-{name}", daemon=True)
        keeper.start()
        try:
            yield waited
        finally:
            stop.set()
            keeper.join()
            try:
                self.client.eval(_RELEASE, 1, key, owner)
            except redis.RedisError as exc:  # it expires by itself
                log.warning("could not release the lock %s: %s", name, exc)


class LocalLocks:
    def __init__(self) -> None:
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()

    @contextmanager
    def hold(self, name: str) -> Iterator[float]:
        with self._guard:
            lock = self._locks.setdefault(name, threading.Lock())
        start = time.monotonic()
        with lock:
            yield time.monotonic() - start
