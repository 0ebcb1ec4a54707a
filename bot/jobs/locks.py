"""One reconcile of a platform repository at a time, across every worker on every machine: a
Redis lock with an owner token and a TTL that a background thread keeps refreshing while the
holder works (a crashed holder's lock expires). The embedded default uses a process-local lock
with the same interface.

A job never blocks its worker waiting for the lock: `try_hold` takes it at once or raises
`LockBusy`, and the queue (bot/jobs/queue.py) puts the job back to run again a little later, so
other jobs (plans) run meanwhile; a job never fails for a taken lock. The queue tells the job it
has been waiting (`queued_wait`), so the seconds `try_hold` yields are the whole wait, from the
first time the lock was found taken (`promisebot_lock_wait_seconds`).

`RedisLocks.hold` is the blocking form (it polls until the lock is free), for a holder that has
nothing else to do meanwhile (tests, tools); the job functions never use it.
"""

from __future__ import annotations

import contextvars
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
_WAIT_BEGAN: contextvars.ContextVar[float | None] = contextvars.ContextVar("promisebot_lock_wait_began",
                                                                            default=None)


class LockBusy(Exception):
    """The lock `name` is held by someone else (`owner`, when it could be read): the job that
    raised it goes back to the queue to try again later.

    Deliberately not a `PromisebotError`: it is no error to report on a change (the job
    functions report every PromisebotError they catch), it must reach the queue untouched."""

    def __init__(self, name: str, owner: str | None = None) -> None:
        super().__init__(f"the lock {name} is held by {owner or 'another job'}")
        self.name, self.owner = name, owner


class Locks(Protocol):
    def try_hold(self, name: str) -> AbstractContextManager[float]:
        """Hold the lock `name` for the block, or raise `LockBusy` at once when it is taken.
        Yields the seconds the current job has waited for it (`queued_wait`; 0.0 if it did not)."""
        ...


@contextmanager
def queued_wait(began: float | None) -> Iterator[None]:
    """In the block (this thread or task only), the job being run has been waiting for its lock
    since `began` (seconds since the epoch: the wait may have started on another machine), or
    has not been waiting (None)."""
    token = _WAIT_BEGAN.set(began)
    try:
        yield
    finally:
        _WAIT_BEGAN.reset(token)


def seconds_waited() -> float:
    """How long the current job has waited for its lock (`queued_wait`), 0.0 if it has not."""
    began = _WAIT_BEGAN.get()
    return 0.0 if began is None else max(0.0, time.time() - began)


class RedisLocks:
    def __init__(self, client: redis.Redis, ttl: float = LOCK_TTL_SECONDS, poll: float = 0.2) -> None:
        self.client, self.ttl, self.poll = client, ttl, poll

    @contextmanager
    def try_hold(self, name: str) -> Iterator[float]:
        key, owner = self._key(name), self._owner()
        for _ in range(3):
            if self.client.set(key, owner, nx=True, px=self._ttl_ms):
                break
            current = self.client.get(key)
            if current is not None:  # else it was released just now: try again
                raise LockBusy(name, current.decode(errors="replace") if isinstance(current, bytes) else None)
        else:
            raise LockBusy(name)
        with self._held(name, key, owner):
            yield seconds_waited()

    @contextmanager
    def hold(self, name: str) -> Iterator[float]:
        """Wait for the lock `name` (polling; this thread blocks), hold it for the block; yields
        the seconds waited."""
        key, owner = self._key(name), self._owner()
        start = time.monotonic()
        while not self.client.set(key, owner, nx=True, px=self._ttl_ms):
            time.sleep(self.poll * random.uniform(0.5, 1.5))
        waited = time.monotonic() - start
        with self._held(name, key, owner):
            yield waited

    @property
    def _ttl_ms(self) -> int:
        return int(self.ttl * 1000)

    @staticmethod
    def _key(name: str) -> str:
        return f"promisebot:lock:{name}"

    @staticmethod
    def _owner() -> str:
        return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex}"

    @contextmanager
    def _held(self, name: str, key: str, owner: str) -> Iterator[None]:
        """The block, run while a background thread keeps the taken lock alive; released after
        (only if it is still ours)."""
        stop = threading.Event()
        ttl_ms = self._ttl_ms

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
            yield
        finally:
            stop.set()
            keeper.join()
            try:
                self.client.eval(_RELEASE, 1, key, owner)
            except redis.RedisError as exc:  # it expires by itself
                log.warning("could not release the lock %s: %s", name, exc)


class LocalLocks:
    """The embedded default's: one process, so a lock per name and the holding thread's name as
    its owner."""

    def __init__(self) -> None:
        self._locks: dict[str, threading.Lock] = {}
        self._owners: dict[str, str] = {}
        self._guard = threading.Lock()

    @contextmanager
    def try_hold(self, name: str) -> Iterator[float]:
        with self._guard:
            lock = self._locks.setdefault(name, threading.Lock())
            if not lock.acquire(blocking=False):
                raise LockBusy(name, self._owners.get(name))
            self._owners[name] = f"{socket.gethostname()}:{os.getpid()}:{threading.current_thread().name}"
        try:
            yield seconds_waited()
        finally:
            with self._guard:
                self._owners.pop(name, None)
                lock.release()
