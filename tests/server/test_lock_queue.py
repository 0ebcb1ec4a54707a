"""A job that finds its platform's lock taken waits in the queue, not in a worker
(bot/jobs/queue.py, bot/jobs/locks.py): on Redis, a real `promisebot worker` process (one, so a
job blocking it would block everything) runs a plan while a push waits for the lock, then the
push's reconcile once the lock is free, through a chain of re-scheduled rq jobs that all finish;
in the embedded default, the job goes back to the end of the in-process queue on a timer.

The platform's changes here need no pipeline (a Promise without workflows, its static
dependencies written as a Work), so the worker's Docker runner never reaches an engine."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import redis
from bot_fixtures import (
    REPO,
    BotServer,
    PlatformRemote,
    add_platform_repo,
    github_config,
    github_pull_event,
    github_push_event,
    send_github,
)
from fake_runner import FakeRunner
from forge_servers.github import GitHubServer
from prometheus_client import CollectorRegistry
from prometheus_client.multiprocess import MultiProcessCollector
from reconcile_fixtures import git, promise
from rq.job import Job
from rq.registry import FailedJobRegistry
from worker_fixtures import WorkerProcess, redis_bot, wait_for, wait_job

from bot.forges.comment import MARKER
from bot.jobs.locks import LockBusy, RedisLocks, seconds_waited
from bot.jobs.queue import (
    CRASH_RETRIES,
    LOCK_RETRY_MAX_SECONDS,
    LOCK_RETRY_SECONDS,
    QUEUE_NAME,
    InlineQueue,
    lock_retry_delay,
)

LOCK = f"reconcile:github:{REPO}"
NS = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "redis-system"}}
WAITING = re.compile(r"^waiting for the lock (\S+) \(held by (.+)\); queued again as (\S+)$")


@dataclass
class RedisWorld:
    tmp: Path
    platform: PlatformRemote
    github: GitHubServer
    redis_url: str
    client: redis.Redis
    url: str
    metrics_dir: Path

    def store_commits(self) -> int:
        return int(git(self.platform.state, "rev-list", "--count", "main"))

    def lock_wait(self) -> tuple[float, float]:
        """promisebot_lock_wait_seconds (count, sum) as the worker's processes recorded it."""
        registry = CollectorRegistry()
        MultiProcessCollector(registry, path=str(self.metrics_dir))
        return (registry.get_sample_value("promisebot_lock_wait_seconds_count") or 0.0,
                registry.get_sample_value("promisebot_lock_wait_seconds_sum") or 0.0)


@pytest.fixture
def redis_world(tmp_path: Path, redis_server: Any) -> Iterator[RedisWorld]:
    metrics_dir = tmp_path / "worker-metrics"
    metrics_dir.mkdir()
    with redis_bot(tmp_path, redis_server.url) as (platform, github, url):
        yield RedisWorld(tmp_path, platform, github, redis_server.url, redis_server.client(), url, metrics_dir)


def set_promise_on_main(platform: PlatformRemote, message: str) -> tuple[str, str]:
    """The Promise without workflows and with a static dependency, committed and pushed on main:
    (before, after). Reconciled, it is one state-store commit; no pipeline runs."""
    before = git(platform.work, "rev-parse", "main")
    platform.write("promises/redis.yaml", promise("redis", configure=None, dependencies=[NS]))
    after = platform.commit(message)
    git(platform.work, "push", "-q", "origin", "main")
    platform.base = after
    return before, after


def follow(world: RedisWorld, worker: WorkerProcess, job_id: str) -> list[Job]:
    """The jobs of one event: `job_id` and each job it was queued again as, all waited for."""
    chain: list[Job] = []
    while True:
        job = wait_job(world.client, job_id, 120, [worker])
        chain.append(job)
        result = str(job.return_value())
        waiting = WAITING.match(result)
        if job.get_status() != "finished" or not waiting:
            return chain
        job_id = waiting.group(3)


def test_a_push_waits_in_the_queue_while_a_plan_runs_on_the_only_worker(redis_world: RedisWorld) -> None:
    world = redis_world
    worker = WorkerProcess("only", world.redis_url, world.github.api_url, world.tmp / "machine-only", world.tmp,
                           PROMETHEUS_MULTIPROC_DIR=str(world.metrics_dir))
    try:
        commits = world.store_commits()
        before, after = set_promise_on_main(world.platform, "the redis dependencies")
        head = world.platform.open_change(1)
        world.github.add_pull(REPO, 1, head_sha=head, base_sha=world.platform.base)
        held = RedisLocks(world.client, ttl=5).try_hold(LOCK)
        held.__enter__()
        released = False
        try:
            owner = world.client.get(f"promisebot:lock:{LOCK}").decode()
            answer = send_github(world.url, "push", github_push_event(world.platform, before, after),
                                 delivery="push-1")
            assert answer.status_code == 202, answer.text
            push_id = "github-push-1"
            first = wait_job(world.client, push_id, 60, [worker])
            first_seen = time.monotonic()
            waiting = WAITING.match(str(first.return_value()))
            assert first.get_status() == "finished" and waiting, first.latest_result()
            assert waiting.groups() == (LOCK, owner, f"{push_id}-wait1"), waiting.groups()
            assert Job.fetch(f"{push_id}-wait1", connection=world.client).get_status() in (
                "scheduled", "queued", "started", "finished"), "queued again, through rq's scheduler"

            answer = send_github(world.url, "pull_request", github_pull_event("opened", world.platform, 1, head),
                                 delivery="pull-1")
            assert answer.status_code == 202, answer.text
            plan = wait_job(world.client, "github-pull-1", 60, [worker])
            assert plan.get_status() == "finished" and str(plan.return_value()).startswith("planned"), \
                plan.latest_result()
            assert [c for c in world.github.comments(REPO, 1) if c["body"].startswith(MARKER)]
            again = wait_job(world.client, f"{push_id}-wait1", 60, [worker])  # it keeps waiting
            assert WAITING.match(str(again.return_value())), again.latest_result()
            assert world.store_commits() == commits, "the push reconciled under a taken lock"
            assert worker.proc.poll() is None
        finally:
            held.__exit__(None, None, None)
            released = True
        assert released
        release = time.monotonic()

        chain = follow(world, worker, push_id)
        last = chain[-1]
        assert last.get_status() == "finished" and str(last.return_value()).startswith("reconciled"), \
            [(j.id, j.get_status(), j.latest_result()) for j in chain]
        assert len(chain) >= 3, "queued again more than once"
        assert [j.id for j in chain[1:]] == [f"{push_id}-wait{n}" for n in range(1, len(chain))]
        for job in chain:
            assert job.get_status() == "finished" and job.worker_name == "only"
            assert job.retries_left == CRASH_RETRIES and not job.number_of_retries, \
                "waiting used no retry"
        for job in chain[1:]:
            assert job.meta["lock_wait"]["job"] == push_id
            assert job.meta["retry_intervals"] == chain[0].meta["retry_intervals"]
        assert plan.ended_at is not None and last.started_at is not None and plan.ended_at < last.started_at
        assert world.store_commits() == commits + 1, "exactly one store commit"
        assert any("redis-dependencies" in p for p in world.platform.store_files())
        assert [s["state"] for s in world.github.statuses(REPO, after) if s["context"] == "promisebot/apply"] \
            == ["success"]
        assert len(FailedJobRegistry(QUEUE_NAME, connection=world.client)) == 0
        assert not world.client.exists(f"promisebot:lock:{LOCK}")

        count, total = world.lock_wait()
        assert count == 1, (count, total)
        assert total > release - first_seen, "the whole wait, from the first time the lock was found taken"
        print(f"\nthe push waited {total:.1f} s in the queue ({len(chain)} jobs: "
              f"{'; '.join(f'{j.id}: {j.return_value()}' for j in chain)})")
    finally:
        worker.stop()


# -- the embedded default -----------------------------------------------------------------


def test_inline_queue_puts_a_job_that_found_its_lock_taken_back_at_the_end() -> None:
    calls: list[tuple[str, float, float]] = []  # (job, when, seconds_waited)
    busy = {"a": 2}

    def run(payload: dict[str, Any], received: float) -> str:
        name = payload["name"]
        calls.append((name, time.monotonic(), seconds_waited()))
        if busy.get(name):
            busy[name] -= 1
            raise LockBusy("reconcile:x", "someone")
        time.sleep(0.05)
        return f"done {name}"

    queue = InlineQueue(run, lock_retry=(0.5, 1.0))
    try:
        started = time.monotonic()
        queue.enqueue({"name": "a"}, "a", time.time())
        queue.enqueue({"name": "b"}, "b", time.time())
        wait_for(lambda: len(calls) >= 2, 10, "both jobs to run once")
        assert queue.depth() == 1, "the waiting job counts as queued"
        queue.join()
        joined = time.monotonic()
    finally:
        queue.stop()
    assert [name for name, *_ in calls] == ["a", "b", "a", "a"], "b ran while a waited"
    a_runs = [(when, waited) for name, when, waited in calls if name == "a"]
    assert len(a_runs) == 3
    assert a_runs[0][1] == 0.0
    assert 0.5 <= a_runs[1][0] - a_runs[0][0] and 0.45 < a_runs[1][1] < 2
    assert 1.0 <= a_runs[2][0] - a_runs[1][0] and a_runs[2][1] > 1.45, "the whole wait, not the last delay"
    assert joined >= a_runs[2][0] + 0.05, "join returned only after the last attempt was done"
    assert joined - started < 5
    assert queue.depth() == 0


def test_inline_queue_stop_drops_a_waiting_job() -> None:
    def run(payload: dict[str, Any], received: float) -> str:
        raise LockBusy("reconcile:x")

    queue = InlineQueue(run, lock_retry=(30, 30))
    queue.enqueue({}, "a", time.time())
    wait_for(lambda: queue.depth() == 1, 10, "the job to wait")
    queue.stop()
    done = threading.Thread(target=queue.join)
    done.start()
    done.join(5)
    assert not done.is_alive(), "join after stop does not hang on a dropped job"


def test_embedded_default_plans_while_a_push_waits_for_the_lock(tmp_path: Path) -> None:
    """The whole embedded bot (its LocalLocks, its one worker thread, the fake runner): the
    lock held here, a push and then a pull request event; the plan is done while the push
    waits; released, the push reconciles once and `join` waited for it."""
    platform = PlatformRemote(tmp_path)
    with GitHubServer() as github:
        add_platform_repo(github)
        runner = FakeRunner()
        bot = BotServer(github_config(github, tmp_path), runner)
        try:
            commits = int(git(platform.state, "rev-list", "--count", "main"))
            before, after = platform.push_main("r1")
            head = platform.open_change(1, name="r2")
            github.add_pull(REPO, 1, head_sha=head, base_sha=platform.base)
            with bot.services.backend.locks.try_hold(LOCK):
                assert send_github(bot.url, "push", github_push_event(platform, before, after)).status_code == 202
                assert send_github(bot.url, "pull_request",
                                   github_pull_event("opened", platform, 1, head)).status_code == 202
                wait_for(lambda: [c for c in github.comments(REPO, 1) if c["body"].startswith(MARKER)], 30,
                         "the plan's comment")
                wait_for(lambda: [s for s in github.statuses(REPO, head) if s["state"] == "success"], 30,
                         "the plan's status")
                assert int(git(platform.state, "rev-list", "--count", "main")) == commits
                wait_for(lambda: bot.queue.depth() == 1, 10, "the push to wait in the queue")
            bot.queue.join()
            assert int(git(platform.state, "rev-list", "--count", "main")) == commits + 1
            assert [s["state"] for s in github.statuses(REPO, after) if s["context"] == "promisebot/apply"] \
                == ["success"]
        finally:
            bot.close()


def test_lock_retry_delays_double_up_to_the_cap() -> None:
    for waits, base in [(1, 1), (2, 2), (3, 4), (4, 8), (5, 10), (12, 10)]:
        delay = lock_retry_delay(waits)
        assert base <= delay <= base * 1.2, (waits, delay)
    assert LOCK_RETRY_SECONDS == 1 and LOCK_RETRY_MAX_SECONDS == 10
