"""The reconcile lock on a real Redis (bot/jobs/locks.py): one holder at a time across processes,
an owner token (a holder whose lock expired and was taken never releases the new holder's), a
TTL kept alive while held, a crashed holder's lock expiring, waiting instead of failing; and a
reconcile job that finds it taken waits, then runs, with `promisebot_lock_wait_seconds`
observed."""

from __future__ import annotations

import json
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
from bot.jobs.locks import RedisLocks
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


def test_a_reconcile_waits_for_the_lock_and_reports_the_wait(world):
    """The job function itself (as a worker's horse runs it), on the Redis backend: a merge
    whose platform's lock is held elsewhere waits, then applies; the wait is observed."""
    platform, github, services, client = world
    head = platform.open_change(1)
    merge = platform.merge(1)
    github.add_pull(REPO, 1, head_sha=head, base_sha=platform.base)
    github.update_pull(REPO, 1, state="closed", merged=True, merge_commit_sha=merge)
    payload = github_pull_event("closed", platform, 1, head, merged=True, merge_sha=merge)
    event = events.parse_github("pull_request", "delivery-1", payload)
    before = lock_wait()
    other = RedisLocks(client, ttl=5)
    result: list[str] = []
    with other.hold(f"reconcile:github:{REPO}"):
        job = threading.Thread(target=lambda: result.append(run_event(event_to_json(event), None, services)))
        job.start()
        time.sleep(1.5)
        assert job.is_alive() and not result, "the job went past a taken lock"
        assert not any(p.endswith("thing.yaml") for p in platform.store_files()), "written without the lock"
    job.join(60)
    assert result and result[0].startswith("applied"), result
    assert any(p.endswith("thing.yaml") for p in platform.store_files())
    assert [c for c in github.comments(REPO, 1) if c["body"].startswith(MARKER)]
    count, total = lock_wait()
    assert count == before[0] + 1 and total - before[1] > 1.2, (before, (count, total))
