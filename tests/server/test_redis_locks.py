"""The reconcile lock on a real Redis (bot/jobs/locks.py): one holder at a time across processes,
an owner token (a holder whose lock expired and was taken never releases the new holder's), a
TTL kept alive while held, a crashed holder's lock expiring; `try_hold` never waits: a taken
lock raises `LockBusy` naming its owner. A reconcile job that finds it taken raises `LockBusy`
out of the job function (the queue puts it back: tests/server/test_lock_queue.py) without
writing or reporting anything, and, run again once it is free, applies, with
`promisebot_lock_wait_seconds` counting the whole wait."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time

import pytest
from bot_fixtures import REPO, github_pull_event, github_world
from fake_runner import FakeRunner

from bot.forges import events
from bot.forges.base import event_to_json
from bot.forges.comment import MARKER
from bot.jobs.handlers import run_event
from bot.jobs.locks import LocalLocks, LockBusy, RedisLocks, queued_wait, seconds_waited
from bot.jobs.services import Services
from bot.server.metrics import REGISTRY

HOLDER = """
import json, sys, time
import redis
from bot.jobs.locks import RedisLocks
url, name, ttl, rounds, hold = sys.argv[1], sys.argv[2], float(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5])
client = redis.Redis.from_url(url)
locks = RedisLocks(client, ttl=ttl, poll=0.01)
for _ in range(rounds):
    with locks.hold(name) as waited:
        start = time.time()
        print("held", flush=True)
        time.sleep(hold)
        client.rpush("spans", json.dumps([start, time.time(), waited]))
"""


def holder(url: str, name: str, *, ttl: float = 5, rounds: int = 1, hold: float = 0.05) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-c", HOLDER, url, name, str(ttl), str(rounds), str(hold)],
                            stdout=subprocess.PIPE, text=True)


def test_one_holder_at_a_time_across_processes(redis_server):
    procs = [holder(redis_server.url, "platform", rounds=5, hold=0.05) for _ in range(4)]
    for proc in procs:
        assert proc.wait(60) == 0
    spans = sorted(json.loads(s) for s in redis_server.client().lrange("spans", 0, -1))
    assert len(spans) == 20
    for (_, end, _), (start, _, _) in zip(spans, spans[1:], strict=False):
        assert start >= end, "two holders at once"
    assert any(waited > 0.01 for *_, waited in spans), "nobody ever waited: no contention was tested"
    assert not redis_server.client().exists("promisebot:lock:platform"), "released after the last holder"


def test_a_taken_lock_is_waited_for_and_the_wait_reported(redis_server):
    client = redis_server.client()
    locks = RedisLocks(client, ttl=5, poll=0.02)
    held = threading.Event()

    def first() -> None:
        with locks.hold("p"):
            held.set()
            time.sleep(1.0)

    thread = threading.Thread(target=first)
    thread.start()
    held.wait(10)
    with RedisLocks(client, ttl=5, poll=0.02).hold("p") as waited:
        assert 0.8 < waited < 3
    thread.join()
    with locks.hold("q") as waited:
        assert waited < 0.1, "a free lock is taken at once"


def test_the_ttl_is_refreshed_while_held(redis_server):
    client = redis_server.client()
    with RedisLocks(client, ttl=1, poll=0.02).hold("p"):
        deadline = time.monotonic() + 3  # three TTLs
        while time.monotonic() < deadline:
            assert client.pttl("promisebot:lock:p") > 0, "the lock lapsed while held"
            assert not client.set("promisebot:lock:p", "intruder", nx=True), "someone else could take it"
            time.sleep(0.05)
    assert not client.exists("promisebot:lock:p")


def test_a_crashed_holders_lock_expires(redis_server):
    client = redis_server.client()
    proc = holder(redis_server.url, "p", ttl=2, hold=600)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
    owner = client.get("promisebot:lock:p")
    assert owner is not None and f":{proc.pid}:" in owner.decode(), "the owner token names its holder"
    time.sleep(1.5)  # the holder refreshed it meanwhile (every TTL/3)
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)
    killed = time.monotonic()
    with RedisLocks(client, ttl=2, poll=0.02).hold("p") as waited:
        after_kill = time.monotonic() - killed
    assert 0.5 < after_kill < 3.5 and waited > 0.5, (after_kill, waited)


def test_an_expired_holder_never_releases_the_next_holders_lock(redis_server):
    client = redis_server.client()
    with RedisLocks(client, ttl=1, poll=0.02).hold("p"):
        # as if it expired (a long pause) and another worker took it
        client.set("promisebot:lock:p", "other-host:1:token", px=10_000)
        time.sleep(0.6)  # a refresh comes and goes: it must not extend the other's lock
    assert client.get("promisebot:lock:p") == b"other-host:1:token"
    assert 9_000 < client.pttl("promisebot:lock:p") <= 10_000 - 600 + 50


@pytest.fixture
def world(tmp_path, redis_server):
    with github_world(tmp_path, redis_url=redis_server.url) as (platform, github, config):
        services = Services.from_config(config, runner_factory=FakeRunner)
        yield platform, github, services, redis_server.client()


def lock_wait() -> tuple[float, float]:
    count = REGISTRY.get_sample_value("promisebot_lock_wait_seconds_count") or 0.0
    total = REGISTRY.get_sample_value("promisebot_lock_wait_seconds_sum") or 0.0
    return count, total


def test_a_reconcile_that_finds_the_lock_taken_raises_lock_busy_and_runs_later(world):
    """The job function itself (as a worker's horse runs it), on the Redis backend: a merge
    whose platform's lock is held elsewhere raises LockBusy at once, having written and
    reported nothing (it is not an error of the change); run again once the lock is free, as
    the queue runs a job that has been waiting, it applies and the whole wait is observed."""
    platform, github, services, client = world
    head = platform.open_change(1)
    merge = platform.merge(1)
    github.add_pull(REPO, 1, head_sha=head, base_sha=platform.base)
    github.update_pull(REPO, 1, state="closed", merged=True, merge_commit_sha=merge)
    payload = github_pull_event("closed", platform, 1, head, merged=True, merge_sha=merge)
    data = event_to_json(events.parse_github("pull_request", "delivery-1", payload))
    before = lock_wait()
    began = time.time()
    with RedisLocks(client, ttl=5).try_hold(f"reconcile:github:{REPO}"):
        owner = client.get(f"promisebot:lock:reconcile:github:{REPO}").decode()
        started = time.monotonic()
        with pytest.raises(LockBusy) as busy:
            run_event(data, None, services)
        assert time.monotonic() - started < 5, "it did not wait for the lock"
        assert busy.value.name == f"reconcile:github:{REPO}" and busy.value.owner == owner
        assert not any(p.endswith("thing.yaml") for p in platform.store_files()), "written without the lock"
        assert not [c for c in github.comments(REPO, 1) if c["body"].startswith(MARKER)], "reported as an error"
        assert "error" not in [s["state"] for s in github.statuses(REPO, merge)]
        time.sleep(1.0)
    with queued_wait(began):
        result = run_event(data, None, services)
    assert result.startswith("applied"), result
    assert any(p.endswith("thing.yaml") for p in platform.store_files())
    assert [c for c in github.comments(REPO, 1) if c["body"].startswith(MARKER)]
    count, total = lock_wait()
    assert count == before[0] + 1 and total - before[1] > 1.0, (before, (count, total))


# -- try_hold ------------------------------------------------------------------------------


def test_try_hold_raises_lock_busy_naming_the_owner(redis_server):
    client = redis_server.client()
    first, second = RedisLocks(client, ttl=5), RedisLocks(client, ttl=5)
    with first.try_hold("p") as waited:
        assert waited == 0.0, "a job that did not wait"
        owner = client.get("promisebot:lock:p").decode()
        assert f":{os.getpid()}:" in owner, owner
        started = time.monotonic()
        with pytest.raises(LockBusy, match=f"the lock p is held by {owner}") as busy:
            with second.try_hold("p"):
                pytest.fail("held twice")
        assert busy.value.name == "p" and busy.value.owner == owner
        assert time.monotonic() - started < 0.5, "try_hold never waits"
        assert client.get("promisebot:lock:p").decode() == owner, "the holder keeps it"
        with second.try_hold("q"):
            pass  # another name is another lock


def test_a_released_lock_can_be_taken_again(redis_server):
    client = redis_server.client()
    locks = RedisLocks(client, ttl=5)
    with locks.try_hold("p"):
        pass
    assert not client.exists("promisebot:lock:p"), "released"
    with RedisLocks(client, ttl=5).try_hold("p"):
        assert client.exists("promisebot:lock:p")
    with pytest.raises(RuntimeError), locks.try_hold("p"):
        raise RuntimeError("the block failed")
    assert not client.exists("promisebot:lock:p"), "released when the block raises too"
    with locks.try_hold("p"):
        pass


def test_an_expired_holders_lock_can_be_taken(redis_server):
    client = redis_server.client()
    proc = holder(redis_server.url, "p", ttl=1, hold=600)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
    try:
        with pytest.raises(LockBusy) as busy, RedisLocks(client, ttl=5).try_hold("p"):
            pass
        assert busy.value.owner is not None and f":{proc.pid}:" in busy.value.owner
        proc.send_signal(signal.SIGSTOP)  # alive but stalled: it refreshes no more
        deadline = time.monotonic() + 5
        while client.exists("promisebot:lock:p"):
            assert time.monotonic() < deadline, "the stalled holder's lock never expired"
            time.sleep(0.05)
        with RedisLocks(client, ttl=5).try_hold("p"):
            mine = client.get("promisebot:lock:p").decode()
            assert f":{os.getpid()}:" in mine
            proc.send_signal(signal.SIGCONT)  # it wakes up: its refresh and release must not touch ours
            time.sleep(0.6)
            assert client.get("promisebot:lock:p").decode() == mine
    finally:
        proc.send_signal(signal.SIGCONT)
        proc.kill()
        proc.wait(10)


def test_try_hold_yields_the_whole_wait_of_a_job_that_waited_in_the_queue(redis_server):
    locks = RedisLocks(redis_server.client(), ttl=5)
    assert seconds_waited() == 0.0
    with queued_wait(time.time() - 7), locks.try_hold("p") as waited:
        assert 7 <= waited < 8
    assert seconds_waited() == 0.0, "only within queued_wait"


def test_local_locks_try_hold():
    locks = LocalLocks()
    with locks.try_hold("p") as waited:
        assert waited == 0.0
        with pytest.raises(LockBusy) as busy, locks.try_hold("p"):
            pass
        assert busy.value.name == "p" and busy.value.owner is not None
        assert threading.current_thread().name in busy.value.owner
        with locks.try_hold("q"):
            pass
    with locks.try_hold("p"):
        pass
