"""`promisebot worker` processes for tests: real subprocesses on a real Redis, each with its own
data directory (one per "machine"), configured through the environment as in production, with
short abandonment and maintenance intervals so a killed worker's job comes back in seconds.
`kill()` is a crash: SIGKILL to the worker, its scheduler and its work horse (rq puts the horse
in a process group of its own)."""

from __future__ import annotations

import ctypes
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import docker
import redis
import requests
from bot_fixtures import SECRET, TOKEN, PlatformRemote, add_platform_repo
from forge_servers.github import GitHubServer
from rq.exceptions import NoSuchJobError
from rq.job import Job
from serving import serve
from waiting import wait_for

from bot.commands.serve import build
from bot.jobs.queue import RqQueue
from runners.base import OWNER_LABEL, RUN_LABEL

PROMISEBOT = Path(sys.executable).parent / "promisebot"
_LIBC = ctypes.CDLL(None, use_errno=True)
_PR_SET_PDEATHSIG = 1
TERMINAL = ("finished", "failed", "stopped", "canceled")
FAST = {"PROMISEBOT_WORKER_ABANDON_SECONDS": "5", "PROMISEBOT_WORKER_MAINTENANCE_SECONDS": "1",
        "PROMISEBOT_LOCK_TTL_SECONDS": "3"}


def machine_environment(redis_url: str | None, data_dir: Path, **settings: str) -> dict[str, str]:
    """The environment of a promisebot process of one machine (nothing inherited from ours but
    PATH, HOME and the Docker engine's address) with `settings`. No `redis_url`: the embedded
    default."""
    env = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "DOCKER_HOST", "LANG", "TMPDIR")}
    env.update(PROMISEBOT_DATA_DIR=str(data_dir), **settings)
    if redis_url:
        env["REDIS_URL"] = redis_url
    return env


def bot_environment(redis_url: str | None, github_api_url: str, data_dir: Path, **extra: str) -> dict[str, str]:
    """`machine_environment` configured for the GitHub stand-in."""
    return machine_environment(redis_url, data_dir, PROMISEBOT_GITHUB_TOKEN=TOKEN,
                               PROMISEBOT_GITHUB_API_URL=github_api_url, PROMISEBOT_GITHUB_WEBHOOK_SECRET=SECRET,
                               **extra)


def gitlab_environment(redis_url: str | None, gitlab_url: str, gitlab_token: str, data_dir: Path,
                       **extra: str) -> dict[str, str]:
    """`machine_environment` configured for the GitLab stand-in only (no GitHub variable at all)."""
    return machine_environment(redis_url, data_dir, PROMISEBOT_GITLAB_URL=gitlab_url,
                               PROMISEBOT_GITLAB_TOKEN=gitlab_token, PROMISEBOT_GITLAB_WEBHOOK_SECRET=SECRET,
                               **extra)


@contextmanager
def redis_bot(tmp: Path, redis_url: str) -> Iterator[tuple[PlatformRemote, GitHubServer, str]]:
    """The Redis setup's web process (the real app, which only enqueues) for a platform repo
    under `tmp/git` and the GitHub stand-in knowing it: (platform, GitHub, the app's URL)."""
    (tmp / "git").mkdir()
    platform = PlatformRemote(tmp / "git")
    with GitHubServer() as github:
        add_platform_repo(github)
        app, queue = build(bot_environment(redis_url, github.api_url, tmp / "machine-web"))
        assert isinstance(queue, RqQueue), "REDIS_URL set: the web process only enqueues"
        with serve(app) as url:
            yield platform, github, url


def _die_with_the_tests() -> None:
    """In the child, before exec: SIGKILL when the test process dies, so an interrupted test run
    (whose process group dies, but not these sessions of their own) leaves no worker behind to
    pick up a later test's jobs on a reused port."""
    _LIBC.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


class WorkerProcess:
    """One `promisebot worker` subprocess (its own session, so its process group is its own)."""

    def __init__(self, name: str, redis_url: str, github_api_url: str, data_dir: Path, log_dir: Path,
                 environment: dict[str, str] | None = None, **settings: str) -> None:
        """`environment`: the machine's (default: `bot_environment` for the GitHub stand-in at
        `github_api_url`); the short abandonment, maintenance and lock intervals and
        `settings` are added to it."""
        self.name = name
        self.data_dir = data_dir
        self.client = redis.Redis.from_url(redis_url)
        self.log_path = log_dir / f"worker-{name}.log"
        base = environment if environment is not None else bot_environment(redis_url, github_api_url, data_dir)
        env = {**base, **FAST, **settings}
        with self.log_path.open("wb") as out:
            self.proc = subprocess.Popen([str(PROMISEBOT), "worker", "--name", name], env=env, stdout=out,
                                         stderr=subprocess.STDOUT, start_new_session=True,
                                         preexec_fn=_die_with_the_tests)
        self.killed_pids: list[int] = []
        wait_for(lambda: self.client.exists(f"rq:worker:{name}") or self.proc.poll() is not None, 30,
                 f"worker {name} to register")
        assert self.proc.poll() is None, f"worker {name} exited:\n{self.log()}"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def children(self) -> list[int]:
        """The worker's child processes (its scheduler; its work horse while a job runs)."""
        found: list[int] = []
        task_dir = Path(f"/proc/{self.proc.pid}/task")
        for task in task_dir.iterdir() if task_dir.exists() else []:
            try:
                found += [int(p) for p in (task / "children").read_text().split()]
            except OSError:
                pass
        return found

    def kill(self) -> list[int]:
        """SIGKILL the worker and every process under it, at once (a crash). Returns their pids."""
        pids = [self.proc.pid, *self.children()]
        for pid in pids:
            try:
                os.killpg(pid, signal.SIGKILL)  # the horse leads a group of its own
            except (ProcessLookupError, PermissionError):
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        self.proc.wait(10)
        self.killed_pids = pids
        return pids

    def stop(self) -> None:
        """A warm shutdown (SIGTERM: the current job finishes), then SIGKILL if it lingers."""
        if self.proc.poll() is not None:
            return
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(60)
        except subprocess.TimeoutExpired:
            self.kill()


class ServeProcess:
    """`promisebot serve` in a subprocess (the embedded default when no REDIS_URL): its jobs run
    in a thread of it, so a SIGKILL loses what it had queued in memory."""

    def __init__(self, github_api_url: str, data_dir: Path, log_path: Path, redis_url: str | None = None) -> None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = int(s.getsockname()[1])
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        env = bot_environment(redis_url, github_api_url, data_dir)
        with log_path.open("ab") as out:
            self.proc = subprocess.Popen([str(PROMISEBOT), "serve", "--port", str(self.port)], env=env, stdout=out,
                                         stderr=subprocess.STDOUT, start_new_session=True,
                                         preexec_fn=_die_with_the_tests)

        def up() -> bool:
            if self.proc.poll() is not None:
                raise AssertionError(f"promisebot serve exited:\n{self.log()}")
            try:
                return requests.get(f"{self.url}/healthz", timeout=1).status_code == 200
            except requests.ConnectionError:
                return False

        wait_for(up, 30, "promisebot serve to answer")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def kill(self) -> None:
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.kill()


def job_status(client: redis.Redis, job_id: str) -> str | None:
    try:
        status = Job.fetch(job_id, connection=client).get_status()
        return None if status is None else str(status.value)
    except NoSuchJobError:
        return None


def wait_job(client: redis.Redis, job_id: str, timeout: float = 180, workers: list[WorkerProcess] | None = None) -> Job:
    """The job once it finished or failed for good."""
    try:
        wait_for(lambda: job_status(client, job_id) in TERMINAL, timeout, f"job {job_id}", interval=0.2)
    except AssertionError as exc:
        logs = "\n".join(f"--- worker {w.name}\n{w.log()[-6000:]}" for w in workers or [])
        started = client.zrange("rq:wip:promisebot", 0, -1, withscores=True)
        raise AssertionError(f"{exc} (status {job_status(client, job_id)}; started registry {started} at "
                             f"{time.time():.0f})\n{logs}") from None
    return Job.fetch(job_id, connection=client)


def running_containers_of(pids: list[int]) -> list[Any]:
    """Running pipeline containers created by one of `pids` (the runner labels each container
    with its creator, `host:pid`, and its run; Kubernetes API sidecars have no run label)."""
    owners = {f"{socket.gethostname()}:{pid}" for pid in pids}
    found = docker.from_env().containers.list(filters={"label": [OWNER_LABEL, RUN_LABEL], "status": "running"})
    return [c for c in found if c.labels.get(OWNER_LABEL) in owners]


def containers_of(pids: list[int]) -> list[Any]:
    owners = {f"{socket.gethostname()}:{pid}" for pid in pids}
    found = docker.from_env().containers.list(all=True, filters={"label": OWNER_LABEL})
    return [c for c in found if c.labels.get(OWNER_LABEL) in owners]


def left_by_exited_processes() -> list[str]:
    """Containers this host's promisebot processes left on the engine after they exited (an rq
    work horse removes its warm Kubernetes API sidecars before `os._exit`)."""
    found = docker.from_env().containers.list(all=True, filters={"label": OWNER_LABEL})
    mine = [(c.name, c.labels.get(OWNER_LABEL, "").rpartition(":")) for c in found]
    return [name for name, (host, _, pid) in mine
            if host == socket.gethostname() and pid.isdigit() and not os.path.exists(f"/proc/{pid}")]


def volumes_of(pids: list[int]) -> list[Any]:
    owners = {f"{socket.gethostname()}:{pid}" for pid in pids}
    found = docker.from_env().volumes.list(filters={"label": OWNER_LABEL})
    return [v for v in found if (v.attrs.get("Labels") or {}).get(OWNER_LABEL) in owners]


def remove_leftovers_of(pids: list[int]) -> None:
    """What dead processes' pipelines left on the engine (a test's cleanup)."""
    for item in [*containers_of(pids), *volumes_of(pids)]:
        try:
            item.remove(force=True)
        except docker.errors.APIError:
            pass


def stop_workers(workers: list[WorkerProcess]) -> None:
    """A test's end: stop every worker, then remove what the killed ones' pipelines left."""
    for worker in workers:
        worker.stop()
    remove_leftovers_of([pid for worker in workers for pid in worker.killed_pids])
