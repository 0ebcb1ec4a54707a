"""The bot on Redis, as deployed on many machines: `promisebot serve`'s app (built by
`bot.commands.serve.build` from the environment: REDIS_URL set, so its queue is rq) under a
real HTTP server, and `promisebot worker` subprocesses, each with the data directory of its own
machine, running real Docker pipelines and talking to the GitHub stand-in over HTTP. Nothing
of rq or redis is replaced: a worker is killed with SIGKILL, jobs are read back from Redis."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import redis
from bot_fixtures import REPO, PlatformRemote, github_pull_event, send_github
from forge_servers.github import GitHubServer
from reconcile_fixtures import git, promise
from rq.job import Job
from rq.registry import FailedJobRegistry
from serving import serve
from worker_fixtures import (
    WorkerProcess,
    bot_environment,
    containers_of,
    redis_bot,
    running_containers_of,
    stop_workers,
    volumes_of,
    wait_for,
    wait_job,
)

from bot.forges.base import ForgeError
from bot.forges.comment import MARKER
from bot.jobs.queue import CRASH_RETRIES, QUEUE_NAME, RETRY_INTERVALS, RqQueue, retry_after_failure
from bot.server.app import create_app
from bot.server.config import load_config

NONCE = ('echo "kind: Thing" > /kratix/output/thing.yaml; '
         'echo "nonce: n$(cat /proc/sys/kernel/random/uuid)" >> /kratix/output/thing.yaml')


@dataclass
class World:
    tmp: Path
    platform: PlatformRemote
    github: GitHubServer
    redis_url: str
    client: redis.Redis
    url: str
    workers: list[WorkerProcess] = field(default_factory=list)
    deliveries: int = 0

    def worker(self, name: str, **settings: str) -> WorkerProcess:
        """A worker on machine `name` (its own data directory)."""
        w = WorkerProcess(name, self.redis_url, self.github.api_url, self.tmp / f"machine-{name}", self.tmp,
                          **settings)
        self.workers.append(w)
        return w

    def send(self, action: str, number: int, head: str, **kw: Any) -> str:
        """Deliver a pull_request event; returns the id of the job it queued."""
        self.deliveries += 1
        delivery = f"delivery-{self.deliveries}"
        answer = send_github(self.url, "pull_request", github_pull_event(action, self.platform, number, head, **kw),
                             delivery=delivery)
        assert answer.status_code == 202, answer.text
        return f"github-{delivery}"

    def wait(self, job_id: str, timeout: float = 180) -> Job:
        return wait_job(self.client, job_id, timeout, self.workers)

    def set_promise(self, configure: str) -> None:
        """The Promise's pipeline, committed on main (the base of the changes opened next)."""
        self.platform.write("promises/redis.yaml", promise("redis", configure=configure))
        self.platform.base = self.platform.commit("the pipeline of this test")
        git(self.platform.work, "push", "-q", "origin", "main")

    def plan_comments(self, number: int) -> list[dict[str, Any]]:
        return [c for c in self.github.comments(REPO, number) if c["body"].startswith(MARKER)]

    def states(self, sha: str, context: str) -> list[str]:
        return [s["state"] for s in self.github.statuses(REPO, sha) if s["context"] == context]

    def store_commits(self) -> int:
        return int(git(self.platform.state, "rev-list", "--count", "main"))

    def thing(self, name: str = "r1") -> str | None:
        files = self.platform.store_files()
        found = [text for path, text in files.items() if f"/{name}/" in path and path.endswith("thing.yaml")]
        assert len(found) <= 1, files
        return found[0] if found else None


@pytest.fixture
def world(tmp_path: Path, redis_server: Any) -> Iterator[World]:
    with redis_bot(tmp_path, redis_server.url) as (platform, github, url):
        w = World(tmp_path, platform, github, redis_server.url, redis_server.client(), url)
        try:
            yield w
        finally:
            stop_workers(w.workers)


def clone_of(worker: WorkerProcess) -> list[Path]:
    return list((worker.data_dir / "repos" / "github").glob("*.git"))


@pytest.mark.docker
@pytest.mark.usefixtures("images")
def test_planned_on_one_machine_applied_on_another(world: World) -> None:
    """A plan by worker A (a real pipeline whose output differs on every run), then the merge
    applied by worker B on another machine from the results A saved in Redis: no pipeline
    re-runs, and the store holds exactly what the plan comment showed."""
    world.set_promise(NONCE)
    a = world.worker("a")
    head = world.platform.open_change(1)
    world.github.add_pull(REPO, 1, head_sha=head, base_sha=world.platform.base)

    started = time.monotonic()
    job = world.wait(world.send("opened", 1, head))
    planned_in = time.monotonic() - started
    assert job.get_status() == "finished" and job.worker_name == "a", job.latest_result()
    (comment,) = world.plan_comments(1)
    nonces = set(re.findall(r"nonce: (n[0-9a-f-]{36})", comment["body"]))
    assert len(nonces) == 1, comment["body"]
    assert world.states(head, "promisebot/plan") == ["pending", "success"]
    assert world.thing() is None, "a plan writes nothing"
    assert clone_of(a), "worker A cloned into its machine's data directory"

    a.stop()
    b = world.worker("b")
    merge = world.platform.merge(1)
    world.github.update_pull(REPO, 1, state="closed", merged=True, merge_commit_sha=merge)
    commits = world.store_commits()
    started = time.monotonic()
    job = world.wait(world.send("closed", 1, head, merged=True, merge_sha=merge))
    applied_in = time.monotonic() - started
    assert job.get_status() == "finished" and job.worker_name == "b"
    assert re.search(r": 1 store commit\(s\), [1-9]\d* result\(s\) reused", str(job.return_value())), \
        job.return_value()
    thing = world.thing()
    assert thing is not None and f"nonce: {nonces.pop()}" in thing, "the store holds what was reviewed"
    assert world.store_commits() == commits + 1
    (applied,) = world.plan_comments(1)
    assert applied["id"] == comment["id"] and "GitStateStore/state" in applied["body"]
    assert world.states(merge, "promisebot/apply") == ["pending", "success"]
    assert clone_of(b) and clone_of(b)[0].parent.parent.parent != clone_of(a)[0].parent.parent.parent, \
        "each machine has its own clone"
    print(f"\nplan (worker A, cold clone, Docker pipeline): {planned_in:.1f} s; "
          f"apply (worker B, cold clone, saved results): {applied_in:.1f} s")


@pytest.mark.docker
@pytest.mark.usefixtures("images")
def test_a_worker_killed_mid_job_loses_nothing(world: World) -> None:
    """SIGKILL to a worker (and its work horse) while its merge's pipeline runs, holding the
    platform's lock: another worker, started afterwards, runs the job again; the store gets one
    commit, the change one comment; nothing is left on the Docker engine."""
    world.set_promise('sleep 6; echo "kind: Thing" > /kratix/output/thing.yaml')
    a = world.worker("a")
    head = world.platform.open_change(1)
    merge = world.platform.merge(1)
    world.github.add_pull(REPO, 1, head_sha=head, base_sha=world.platform.base)
    world.github.update_pull(REPO, 1, state="closed", merged=True, merge_commit_sha=merge)
    commits = world.store_commits()

    job_id = world.send("closed", 1, head, merged=True, merge_sha=merge)  # no plan: the pipeline runs
    wait_for(lambda: running_containers_of(a.children()), 60, "the pipeline to run on worker A")
    assert world.client.exists(f"promisebot:lock:reconcile:github:{REPO}"), "A holds the platform's lock"
    killed = a.kill()
    crashed = time.monotonic()
    assert Job.fetch(job_id, connection=world.client).get_status() == "started", "rq still thinks it runs"

    world.worker("b")
    job = world.wait(job_id, timeout=120)
    recovered_in = time.monotonic() - crashed
    assert job.get_status() == "finished" and job.worker_name == "b", job.latest_result()
    assert job.retries_left == CRASH_RETRIES - 1, "retried once, as an abandoned job"
    assert world.store_commits() == commits + 1, "exactly one store commit"
    assert world.thing() == "kind: Thing"
    assert len(world.plan_comments(1)) == 1
    assert world.states(merge, "promisebot/apply")[-1] == "success"
    assert len(FailedJobRegistry(QUEUE_NAME, connection=world.client)) == 0
    assert not containers_of(killed) and not volumes_of(killed), "the dead worker's pipeline was swept"
    print(f"\nkill -> job finished by worker B: {recovered_in:.1f} s (6 s pipeline re-run included)")


WAITING = re.compile(r"^waiting for the lock \S+ \(held by .+\); queued again as (\S+)$")


def follow_chain(world: World, job_id: str) -> Job:
    """The last job of one event's chain: `job_id`, then each job it was queued again as."""
    while True:
        job = world.wait(job_id)
        waiting = WAITING.match(str(job.return_value()))
        if job.get_status() != "finished" or not waiting:
            return job
        job_id = waiting.group(1)


@pytest.mark.docker
@pytest.mark.usefixtures("images")
def test_two_workers_reconcile_one_platform_one_at_a_time(world: World) -> None:
    """Two merges of one platform on two workers: both jobs find the lock taken (here by the
    test) and go back to the queue, freeing their workers, then go through it one after the
    other; both changes land, nothing fails."""
    from bot.jobs.locks import RedisLocks

    a, b = world.worker("a"), world.worker("b")
    heads = {n: world.platform.open_change(n, name=f"r{n}") for n in (1, 2)}
    merges = {}
    for n in (1, 2):
        world.github.add_pull(REPO, n, head_sha=heads[n], base_sha=world.platform.base)
        merges[n] = world.platform.merge(n)
        world.github.update_pull(REPO, n, state="closed", merged=True, merge_commit_sha=merges[n])
    key = f"promisebot:lock:reconcile:github:{REPO}"
    owners: list[Any] = []
    watching = threading.Event()

    def watch() -> None:
        while not watching.is_set():
            owner = world.client.get(key)
            if owner and (not owners or owners[-1] != owner):
                owners.append(owner)
            time.sleep(0.005)

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        with RedisLocks(world.client, ttl=5).hold(f"reconcile:github:{REPO}"):
            jobs = [world.send("closed", n, heads[n], merged=True, merge_sha=merges[n]) for n in (1, 2)]
            first = [world.wait(j) for j in jobs]
            assert all(WAITING.match(str(j.return_value())) for j in first), [j.return_value() for j in first]
            assert world.thing("r1") is None and world.thing("r2") is None, "nothing written under a taken lock"
        done = [follow_chain(world, j) for j in jobs]
    finally:
        watching.set()
        watcher.join()
    assert [j.get_status() for j in done] == ["finished", "finished"], [j.latest_result() for j in done]
    assert world.thing("r1") == world.thing("r2") == "kind: Thing"
    test_owner, *job_owners = owners
    assert len(job_owners) == 2 and len(set(owners)) == 3, f"each job held the lock once, in turn: {owners}"
    for n in (1, 2):
        assert world.states(merges[n], "promisebot/apply")[-1] == "success"
    assert a.proc.poll() is None and b.proc.poll() is None


@pytest.mark.docker
@pytest.mark.usefixtures("images")
def test_a_transient_forge_failure_is_retried_by_rq(world: World, redis_server: Any) -> None:
    """Two 502s from GitHub: the job returns rq Retries; rq's scheduler, started by `promisebot
    worker`, puts it back after the interval; the third attempt plans. Another job whose
    failures outlast its retries fails for good."""
    config = load_config(bot_environment(redis_server.url, world.github.api_url, world.tmp / "web2"))
    from bot.jobs.backend import make_backend

    backend = make_backend(config.redis_url)
    app = create_app(config, backend, RqQueue(redis_server.client(), retry_intervals=[1, 2]))
    world.worker("a")
    head = world.platform.open_change(1)
    world.github.add_pull(REPO, 1, head_sha=head, base_sha=world.platform.base)
    world.github.fail_next(2, 502)
    with serve(app) as url:
        world.url = url
        job = world.wait(world.send("opened", 1, head), timeout=60)
        assert job.get_status() == "finished" and job.number_of_retries == 2, job.latest_result()
        assert [r.type.name for r in job.results()][:3] == ["SUCCESSFUL", "RETRIED", "RETRIED"]
        assert world.client.exists(f"rq:scheduler-lock:{QUEUE_NAME}"), "the worker runs rq's scheduler"
        assert world.states(head, "promisebot/plan") == ["pending", "success"]
        assert len(world.plan_comments(1)) == 1

        head2 = world.platform.open_change(2, name="r2")
        world.github.add_pull(REPO, 2, head_sha=head2, base_sha=world.platform.base)
        world.github.fail_next(10, 502)
        job = world.wait(world.send("opened", 2, head2), timeout=60)
        assert job.get_status() == "failed" and job.number_of_retries == 2


def test_retry_intervals_and_retry_after() -> None:
    retry = retry_after_failure(None, ForgeError("502", status=502, retryable=True))
    assert retry.max == len(RETRY_INTERVALS) and RETRY_INTERVALS[0] <= retry.intervals[0] <= RETRY_INTERVALS[0] * 1.2
    retry = retry_after_failure(None, ForgeError("rate limited", status=429, retryable=True, retry_after=42.5))
    assert 43 <= retry.intervals[0] <= 52, "the forge's Retry-After, rounded up"


def test_worker_settings_are_whole_seconds() -> None:
    from bot.jobs.queue import seconds_setting
    from bot.server.config import ConfigError

    assert seconds_setting("PROMISEBOT_WORKER_ABANDON_SECONDS", 30, minimum=3, environ={}) == 30
    assert seconds_setting("PROMISEBOT_WORKER_ABANDON_SECONDS", 30, minimum=3,
                           environ={"PROMISEBOT_WORKER_ABANDON_SECONDS": "12"}) == 12
    for bad in ("2", "1.5", "-4", "ten"):
        with pytest.raises(ConfigError, match="PROMISEBOT_WORKER_ABANDON_SECONDS"):
            seconds_setting("PROMISEBOT_WORKER_ABANDON_SECONDS", 30, minimum=3,
                            environ={"PROMISEBOT_WORKER_ABANDON_SECONDS": bad})


@pytest.mark.docker
@pytest.mark.usefixtures("images")
def test_chatops_apply_waits_in_the_queue_for_a_destination_lock(world: World) -> None:
    """ChatOps on the Redis setup with two real workers and real pipelines: change 1's apply
    locks Destination dev and merges; change 2's apply finds dev locked, replies that it waits,
    and goes back to the queue (freeing its worker) until change 1's merge is applied; then,
    the base having moved, it plans change 2 again for the reviewers, whose next apply merges."""
    from chatops_fixtures import github_comment_event

    from bot.chatops.replies import REPLY_MARKER

    world.set_promise(NONCE)
    world.worker("a"), world.worker("b")
    heads = {n: world.platform.open_change(n, name=f"r{n}") for n in (1, 2)}
    for n in (1, 2):
        world.github.add_pull(REPO, n, head_sha=heads[n], base_sha=world.platform.base)
        world.github.add_review(REPO, n, "carol", "APPROVED")
    for job in [world.send("opened", n, heads[n]) for n in (1, 2)]:
        assert world.wait(job).get_status() == "finished"

    def say(number: int, body: str) -> str:
        world.deliveries += 1
        delivery = f"delivery-{world.deliveries}"
        comment_id = world.github.add_comment(REPO, number, body, user="alice")
        event = github_comment_event(world.platform, number, body, user="alice", comment_id=comment_id)
        assert send_github(world.url, "issue_comment", event, delivery=delivery).status_code == 202
        return f"github-{delivery}"

    def replies(number: int) -> list[str]:
        return [c["body"] for c in world.github.comments(REPO, number) if c["body"].startswith(REPLY_MARKER)]

    def merges() -> int:
        return len(world.github.calls("PUT", r"/repos/[^/]+/[^/]+/pulls/\d+/merge"))

    assert world.wait(say(1, "/promisebot apply")).get_status() == "finished"
    assert merges() == 1
    waiting = world.wait(say(2, "/promisebot apply"))
    assert WAITING.match(str(waiting.return_value())), waiting.return_value()
    assert "Destination `dev` is locked by" in replies(2)[-1] and merges() == 1

    merge1 = world.platform.merge(1)
    applied = world.wait(world.send("closed", 1, heads[1], merged=True, merge_sha=merge1))
    assert applied.get_status() == "finished" and world.thing("r1") is not None
    last = follow_chain(world, waiting.id)
    assert last.get_status() == "finished", last.latest_result()
    assert "the base branch moved since the plan" in replies(2)[-1], "planned again for the reviewers"
    assert world.wait(say(2, "/promisebot apply")).get_status() == "finished"
    assert merges() == 2
    assert len(FailedJobRegistry(QUEUE_NAME, connection=world.client)) == 0
