"""The bot on Redis for GitLab, as deployed: `promisebot serve`'s app (built by
`bot.commands.serve.build` from a GitLab-only environment: PROMISEBOT_GITLAB_URL, _TOKEN,
_WEBHOOK_SECRET and REDIS_URL, so its queue is rq) under a real HTTP server, and `promisebot
worker` subprocesses with the same environment, each with the data directory of its own machine,
running real Docker pipelines (the locally built images) and talking to the GitLab stand-in
over HTTP through python-gitlab. GitLab's published Merge Request Hook example, adapted to the
project, is delivered with `X-Gitlab-Token`; the merge request's head is fetched from
refs/merge-requests/N/head of the bare platform repository.

What GitLab would see is read back from the stand-in (notes, commit statuses, every request);
what ran on the engine from its event stream: each test's pipeline uses a tag of the busybox
image of its own, so the pipeline containers it started are counted exactly even when other
tests share the engine."""

from __future__ import annotations

import re
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import docker
import pytest
import redis
from bot_fixtures import GITLAB_HEAD_REF, REPO, PlatformRemote, gitlab_mr_event, send_gitlab
from forge_servers.gitlab import GitLabServer, MergeRequest, Project
from reconcile_fixtures import IMAGE, git, promise
from rq.job import Job
from rq.registry import FailedJobRegistry
from serving import serve
from worker_fixtures import (
    WorkerProcess,
    containers_of,
    gitlab_environment,
    left_by_exited_processes,
    running_containers_of,
    stop_workers,
    volumes_of,
    wait_for,
    wait_job,
)

from bot.commands.serve import build
from bot.forges.comment import MARKER
from bot.jobs.queue import CRASH_RETRIES, QUEUE_NAME, RqQueue
from runners.base import OWNER_LABEL

MR_HOOK = "Merge Request Hook"
R1 = "dev/resources/default/redis/r1/instance/5058f/thing.yaml"
NONCE = ('echo "kind: Thing" > /kratix/output/thing.yaml; '
         'echo "nonce: n$(cat /proc/sys/kernel/random/uuid)" >> /kratix/output/thing.yaml')
NONCE_RE = r"nonce: (n[0-9a-f-]{36})"


class ContainerStarts:
    """The `start` events of containers of `image` on the Docker engine, as they happen (the
    engine's event stream, read in a thread): the pipeline containers promisebot started, even
    those it removed since."""

    def __init__(self, image: str) -> None:
        self.image = image
        self.events: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._stream = docker.from_env().events(decode=True, filters={
            "type": "container", "event": "start", "label": OWNER_LABEL})
        self._thread = threading.Thread(target=self._read, name="docker-events", daemon=True)
        self._thread.start()

    def _read(self) -> None:
        try:
            for event in self._stream:
                if (event.get("Actor", {}).get("Attributes") or {}).get("image") == self.image:
                    with self._lock:
                        self.events.append(event)
        except Exception:  # noqa: BLE001 - the stream is closed under the reader at the end
            pass

    def count(self) -> int:
        with self._lock:
            return len(self.events)

    def close(self) -> None:
        self._stream.close()
        self._thread.join(5)


@dataclass
class World:
    tmp: Path
    platform: PlatformRemote
    gitlab: GitLabServer
    project: Project
    redis_url: str
    client: redis.Redis
    url: str
    image: str
    starts: ContainerStarts
    workers: list[WorkerProcess] = field(default_factory=list)

    def worker(self, name: str, **settings: str) -> WorkerProcess:
        """A worker on machine `name` (its own data directory)."""
        data_dir = self.tmp / f"machine-{name}"
        environment = gitlab_environment(self.redis_url, self.gitlab.url, self.gitlab.token, data_dir)
        w = WorkerProcess(name, self.redis_url, "", data_dir, self.tmp, environment, **settings)
        self.workers.append(w)
        return w

    def send(self, action: str, iid: int, head: str, **kw: Any) -> str:
        """Deliver a Merge Request Hook; returns the id of the job it queued."""
        delivery = str(uuid.uuid4())
        answer = send_gitlab(self.url, MR_HOOK, gitlab_mr_event(action, self.platform, self.project.id, iid, head,
                                                                 **kw), delivery=delivery)
        assert answer.status_code == 202, answer.text
        return f"gitlab-{delivery}"

    def wait(self, job_id: str, timeout: float = 120) -> Job:
        return wait_job(self.client, job_id, timeout, self.workers)

    def set_promise(self, configure: str) -> None:
        """The Promise, its pipeline on this test's image, committed and pushed on main (the
        base of the merge requests opened next)."""
        body = promise("redis", configure=configure)
        (container,) = body["spec"]["workflows"]["resource"]["configure"][0]["spec"]["containers"]
        container.update(image=self.image, imagePullPolicy="Never")
        self.platform.write("promises/redis.yaml", body)
        self.platform.base = self.platform.commit("the pipeline of this test")
        git(self.platform.work, "push", "-q", "origin", "main")
        self.project.commits[self.platform.base] = "main"

    def open(self, iid: int, name: str = "r1") -> tuple[str, MergeRequest]:
        head = self.platform.open_change(iid, name=name)
        mr = self.gitlab.add_merge_request(self.project, iid=iid, sha=head, base_sha=self.platform.base,
                                           source_branch=f"change-{iid}")
        return head, mr

    def merge(self, mr: MergeRequest) -> str:
        """Merge the MR into main (pushed) and record it on the stand-in as GitLab does."""
        sha = self.platform.merge(mr.iid)
        mr.state, mr.merge_commit_sha = "merged", sha
        self.project.commits[sha] = "main"
        return sha

    def plan_notes(self, mr: MergeRequest) -> list[Any]:
        return [n for n in mr.notes if n.body.startswith(MARKER)]

    def status_posts(self, sha: str, name: str = "promisebot/plan") -> list[str]:
        """The states promisebot set on `sha` under `name`, in order (requests GitLab accepted)."""
        return [r.body["state"] for r in self.gitlab.calls("POST", f"/statuses/{sha}")
                if r.body.get("name") == name and r.status == 201]

    def status_now(self, sha: str, name: str) -> list[str]:
        """The stand-in's current (not retried) statuses of `sha` named `name`."""
        return [s.status for s in self.gitlab.statuses(self.project, sha) if s.name == name and not s.retried]

    def note_writes(self, iid: int) -> tuple[int, int]:
        """(notes created, notes edited) on MR `iid`, as GitLab answered them."""
        path = f"/merge_requests/{iid}/notes"
        created = [r for r in self.gitlab.calls("POST", path) if r.status == 201]
        edited = [r for r in self.gitlab.calls("PUT", path) if r.status == 200]
        return len(created), len(edited)

    def store_commits(self) -> int:
        return int(git(self.platform.state, "rev-list", "--count", "main"))

    def saved(self, iid: int) -> list[str]:
        """The Redis keys of MR `iid`'s saved plan (its set of result keys and the results)."""
        change = f"promisebot:plan:gitlab:{REPO}:{iid}"
        members = [m.decode() for m in self.client.smembers(change)]
        keys = [change] if self.client.exists(change) else []
        return keys + [f"promisebot:result:{m}" for m in members if self.client.exists(f"promisebot:result:{m}")]


@pytest.fixture
def world(tmp_path: Path, redis_server: Any) -> Iterator[World]:
    (tmp_path / "git").mkdir()
    platform = PlatformRemote(tmp_path / "git", head_ref=GITLAB_HEAD_REF)
    engine = docker.from_env()
    repository, _, _ = IMAGE.rpartition(":")
    tag = f"gitlab-workers-{uuid.uuid4().hex[:12]}"
    engine.images.get(IMAGE).tag(repository, tag=tag)
    image = f"{repository}:{tag}"
    starts = ContainerStarts(image)
    try:
        with GitLabServer() as gitlab:
            project = gitlab.add_project(REPO)
            gitlab.add_member(REPO, "dev", 30)  # the merge requests' author, a Developer: trusted
            project.commits[platform.base] = "main"
            app, queue = build(gitlab_environment(redis_server.url, gitlab.url, gitlab.token, tmp_path / "machine-web"))
            assert isinstance(queue, RqQueue), "REDIS_URL set: the web process only enqueues"
            with serve(app) as url:
                w = World(tmp_path, platform, gitlab, project, redis_server.url, redis_server.client(), url,
                          image, starts)
                try:
                    yield w
                finally:
                    stop_workers(w.workers)
            assert gitlab.errors == [], "the stand-in failed on a request"
    finally:
        starts.close()
        try:
            engine.images.remove(image, noprune=True)
        except docker.errors.APIError:
            pass


@pytest.mark.docker
@pytest.mark.usefixtures("images")
def test_merge_request_opened_updated_merged(world: World) -> None:
    """Opened: worker A plans (one Docker pipeline run), one note, `promisebot/plan` pending then
    success on the head. New commit: worker A plans again, the same note is edited. Merged, on
    worker B of another machine: the store commit holds exactly what the last plan showed (its
    nonce), no pipeline container starts, the note says where the files landed."""
    world.set_promise(NONCE)
    a = world.worker("a")
    head, mr = world.open(1)
    world.gitlab.approve(mr, "reviewer")
    commits = world.store_commits()

    # opened
    job = world.wait(world.send("open", 1, head))
    assert job.get_status() == "finished" and job.worker_name == "a", (job.latest_result(), a.log()[-3000:])
    assert str(job.return_value()).startswith(f"planned {head[:12]}: success"), job.return_value()
    (note,) = world.plan_notes(mr)
    assert note.author.username == "promisebot" and head[:12] in note.body and "r1" in note.body
    (first_nonce,) = set(re.findall(NONCE_RE, note.body))
    assert world.status_posts(head) == ["pending", "success"]
    assert world.status_now(head, "promisebot/plan") == ["success"]
    assert world.starts.count() == 1, "one pipeline run"
    assert world.store_commits() == commits and world.platform.store_files() == {}, "a plan writes nothing"
    assert world.saved(1), "the plan's results are saved in Redis for the merge"
    assert world.note_writes(1) == (1, 0)

    # a new commit (oldrev): planned again (its input changed: the pipeline runs), the note edited
    head2 = world.platform.open_change(1, spec={"size": 2})
    mr.sha = head2
    world.project.commits[head2] = "change-1"
    job = world.wait(world.send("update", 1, head2, oldrev=head))
    assert job.get_status() == "finished", job.latest_result()
    (edited,) = world.plan_notes(mr)
    assert edited.id == note.id and head2[:12] in edited.body and head[:12] not in edited.body
    assert world.note_writes(1) == (1, 1), "the same note, edited in place"
    (nonce,) = set(re.findall(NONCE_RE, edited.body))
    assert nonce != first_nonce, "a new pipeline run for the changed request"
    planned = planned_files(edited.body)
    assert planned[R1] == f"kind: Thing\nnonce: {nonce}", edited.body
    assert world.status_posts(head2) == ["pending", "success"]
    assert world.starts.count() == 2, "the changed request's pipeline ran once more"

    # merged, applied by worker B on another machine from the results saved in Redis
    a.stop()
    b = world.worker("b")
    merge = world.merge(mr)
    job = world.wait(world.send("merge", 1, head2, merge_sha=merge))
    assert job.get_status() == "finished" and job.worker_name == "b", (job.latest_result(), b.log()[-3000:])
    assert re.search(r": 1 store commit\(s\), [1-9]\d* result\(s\) reused", str(job.return_value())), \
        job.return_value()
    assert world.starts.count() == 2, "no pipeline container started for unchanged inputs"
    assert world.store_commits() == commits + 1
    assert world.platform.store_files() == planned, "the store commit holds exactly the files of the last plan"
    store_commit = git(world.platform.state, "rev-parse", "main")
    message = git(world.platform.state, "log", "-1", "--format=%B", "main")
    assert f"Promisebot-Change: {world.gitlab.url}/{REPO}/-/merge_requests/1" in message
    assert "Promisebot-Author: dev" in message and "Promisebot-Approved-By: reviewer" in message

    (applied,) = world.plan_notes(mr)
    assert applied.id == note.id and world.note_writes(1) == (1, 2), "the note, edited again"
    assert f"promisebot applied `{merge[:12]}`" in applied.body, applied.body
    assert "#### Where it landed" in applied.body, applied.body
    assert f"| `Redis.test.promisebot.io/default/r1` | `dev` | `GitStateStore/state` | `{store_commit[:12]}` |" \
        in applied.body.splitlines(), "where it landed: object, Destination, state store, commit"
    assert f"- added `{R1}`" in applied.body, "the files written"
    assert "1 cached (reused from the saved plan)" in applied.body
    assert "The plan that was reviewed" in applied.body and nonce in applied.body
    assert world.status_posts(merge, "promisebot/apply") == ["pending", "success"]
    assert world.saved(1) == [], "the saved plan is dropped after the merge"
    assert len(mr.notes) == 1
    assert clone_of(a) and clone_of(b) and clone_of(a)[0] != clone_of(b)[0], "each machine has its own clone"


def planned_files(body: str) -> dict[str, str]:
    """The files a plan note shows as added (path -> content) from its unified diffs."""
    files: dict[str, str] = {}
    for block in re.findall(r"```diff\n(.*?)```", body, re.S):
        lines = block.splitlines()
        if lines[0] == "--- /dev/null" and lines[1].startswith("+++ b/"):
            files[lines[1].removeprefix("+++ b/")] = "\n".join(line[1:] for line in lines[3:])
    return files


def clone_of(worker: WorkerProcess) -> list[Path]:
    return list((worker.data_dir / "repos" / "gitlab").rglob("*.git"))


@pytest.mark.docker
@pytest.mark.usefixtures("images")
def test_merge_request_closed_unmerged_drops_its_saved_plan(world: World) -> None:
    """A planned MR closed without merge: its saved results are deleted from Redis; nothing is
    reported, nothing runs, nothing is written."""
    world.set_promise(NONCE)
    world.worker("a")
    head, mr = world.open(2, name="r2")
    job = world.wait(world.send("open", 2, head))
    assert job.get_status() == "finished", job.latest_result()
    saved = world.saved(2)
    assert len(saved) >= 2 and len(world.plan_notes(mr)) == 1, saved
    results = [k for k in world.client.scan_iter("promisebot:result:*")]
    assert results, "the results are in Redis"

    calls, runs, commits = len(world.gitlab.requests), world.starts.count(), world.store_commits()
    mr.state = "closed"
    job = world.wait(world.send("close", 2, head))
    assert job.get_status() == "finished" and str(job.return_value()).startswith("closed: "), job.return_value()
    assert str(job.return_value()) == f"closed: {len(saved) - 1} saved result(s) dropped, 0 lock(s) released"
    assert world.saved(2) == [] and not any(world.client.exists(k) for k in saved), "the saved plan is gone"
    assert list(world.client.scan_iter("promisebot:result:*")) == []
    assert (len(world.gitlab.requests), world.starts.count(), world.store_commits()) == (calls, runs, commits), \
        "a close calls GitLab for nothing, runs nothing, writes nothing"
    assert world.platform.store_files() == {}


@pytest.mark.docker
@pytest.mark.usefixtures("images")
def test_a_worker_killed_mid_merge_applies_it_once(world: World) -> None:
    """SIGKILL to worker A (and its work horse) while the merge's pipeline runs, holding the
    platform's lock: worker B, started afterwards, takes the abandoned job back and runs it; the
    store gets one commit, the MR one note, the merge commit `promisebot/apply` = success; A's
    pipeline is swept from the engine."""
    world.set_promise('sleep 6; echo "kind: Thing" > /kratix/output/thing.yaml')
    a = world.worker("a")
    head, mr = world.open(1)
    merge = world.merge(mr)
    commits = world.store_commits()

    job_id = world.send("merge", 1, head, merge_sha=merge)  # never planned: the pipeline runs
    wait_for(lambda: running_containers_of(a.children()), 60, "the pipeline to run on worker A")
    assert world.client.exists(f"promisebot:lock:reconcile:gitlab:{REPO}"), "A holds the platform's lock"
    killed = a.kill()
    crashed = time.monotonic()
    assert Job.fetch(job_id, connection=world.client).get_status() == "started", "rq still thinks it runs"
    assert world.store_commits() == commits

    world.worker("b")
    job = world.wait(job_id, timeout=90)
    recovered_in = time.monotonic() - crashed
    assert job.get_status() == "finished" and job.worker_name == "b", job.latest_result()
    assert job.retries_left == CRASH_RETRIES - 1, "retried once, as an abandoned job"
    assert world.store_commits() == commits + 1, "exactly one store commit"
    assert world.platform.store_files()[R1] == "kind: Thing"
    assert world.starts.count() == 2, "the pipeline started on A, then once on B"
    assert len(world.plan_notes(mr)) == 1 and world.note_writes(1) == (1, 0), "one note, created once"
    posts = [(r.body["state"], r.status) for r in world.gitlab.calls("POST", f"/statuses/{merge}")]
    assert posts == [("pending", 201), ("success", 201)], \
        "the pending status is set once per event: B, running the job again, does not set it again"
    assert world.status_now(merge, "promisebot/apply") == ["success"]
    assert len(FailedJobRegistry(QUEUE_NAME, connection=world.client)) == 0
    assert not containers_of(killed) and not volumes_of(killed), "the dead worker's pipeline was swept"
    wait_for(lambda: not left_by_exited_processes(), 30, "B's work horse to remove what it left")
    print(f"\nGitLab merge: kill -> job finished by worker B: {recovered_in:.1f} s (6 s pipeline re-run included)")

