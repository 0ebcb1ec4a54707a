"""Destination locks (bot/jobs/destlocks.py), on a real Redis and in memory: all or nothing,
held per change, refreshed by their holder, released by it only, forced by `unlock`, expiring."""

from __future__ import annotations

import time

import pytest

from bot.jobs.destlocks import Holder, MemoryDestinationLocks, RedisDestinationLocks

REPO = "github:acme/platform"


@pytest.fixture(params=["memory", "redis"])
def locks(request):
    if request.param == "memory":
        return MemoryDestinationLocks(ttl=2)
    server = request.getfixturevalue("redis_server")
    return RedisDestinationLocks(server.client(), ttl=2)


def holder(number: int) -> Holder:
    return Holder(number, f"https://forge/acme/platform/pull/{number}", since=1000.0 + number)


def test_all_or_nothing_and_named_holders(locks):
    assert locks.acquire(REPO, ["dev", "prod"], holder(1)) == {}
    blocked = locks.acquire(REPO, ["prod", "staging"], holder(2))
    assert blocked == {"prod": holder(1)}
    assert locks.holders(REPO, ["dev", "prod", "staging"]) == {"dev": holder(1), "prod": holder(1)}, \
        "a refused acquire takes nothing"
    assert locks.acquire(REPO, ["dev"], holder(1)) == {}, "its holder takes it again"
    assert locks.holders("github:other/repo", ["dev"]) == {}, "per repository"


def test_only_the_holder_releases_and_unlock_forces(locks):
    locks.acquire(REPO, ["dev", "prod"], holder(1))
    assert locks.release(REPO, 2) == []
    assert locks.release(REPO, 1, ["dev"]) == ["dev"]
    assert locks.holders(REPO, ["dev", "prod"]) == {"prod": holder(1)}
    assert locks.force_release(REPO, "prod") == holder(1)
    assert locks.force_release(REPO, "prod") is None
    assert locks.acquire(REPO, ["prod"], holder(2)) == {}
    assert locks.release(REPO, 2) == ["prod"], "all the change holds"


def test_a_lock_whose_owner_is_gone_expires(locks):
    locks.acquire(REPO, ["dev"], holder(1))
    deadline = time.monotonic() + 10
    while locks.holders(REPO, ["dev"]) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert locks.acquire(REPO, ["dev"], holder(2)) == {}
