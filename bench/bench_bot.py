"""Bot benchmarks, as ratios measured in one run on this machine (docs/bot.md, docs/benchmarks.md).

    .venv/bin/python -m bench.bench_bot [--quick] [--parts abcd] [--drain] [--steps]

(a) webhook acknowledgement: 200 signed `pull_request` deliveries per second for 30 s (--quick 5 s),
    open loop, each on a new connection, from this process to a server process on 127.0.0.1:
    `promisebot serve` (werkzeug, threaded) and gunicorn (the container's command) with
    REDIS_URL, and the embedded default (werkzeug, in-memory queue). p50/p99 latency (target p99
    <= 50 ms), against a baseline app that only reads the body, under the same server; every
    delivery answered 202 and enqueued exactly once (the rq queue's job ids on Redis; the
    in-process queue's record).
(b) event to plan comment for a one-request pull request (webhook sent -> comment present at the
    GitHub stand-in; real Docker pipeline) vs `promisebot plan` of the same change from the CLI,
    a subprocess in a clone (target <= 1.3x); medians of 5 (--quick 3), interleaved. Measured on
    the embedded default (jobs in a thread of the web process) and on Redis with one
    `promisebot worker`. Each event is sent 1.1 s after the previous job ended, as a pull
    request's events are seconds or minutes apart.
(c) merge to state-store commit for those planned pull requests (webhook of the merge sent ->
    new commit on the state store's branch) vs the same pull request's plan time, measured in
    the same run (target <= 0.3x): the planned results are reused, no pipeline runs (checked).
    `--steps` also prints where the embedded default's merge job spends that time (per step:
    median milliseconds and git processes), from hooks on the engine's own steps.
(d) N pull requests opened at once (200; --quick 20), 1 vs 2 `promisebot worker` processes on a
    real redis-server, real Docker pipelines: throughput ratio. At full size the first 40 plans
    are timed and the rest dropped from the queue (each plan job takes >= 2 s, see
    docs/benchmarks.md; all 200 on 1 worker would take ~7.5 minutes); --drain times them all.

Everything runs on loopback: the platform is a bare Git repository on disk with refs/pull/N/head,
the state store a bare Git repository, GitHub the stand-in of tests/forge_servers/github.py (real
HTTP, through PyGithub; its responses sent without Nagle's delay), Redis a
real redis-server (tests/redis_server.py). Promisebot processes run the code of this tree
(PYTHONPATH). Nothing is asserted about time; a run fails only when the bot does not do its
work (no comment, no commit, a pipeline re-run on merge, a worker gone).
"""

from __future__ import annotations

import argparse
import copy
import functools
import hashlib
import hmac
import http.client
import json
import logging
import os
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis
import requests
import yaml
from werkzeug.serving import make_server

from tests import waiting
from tests.forge_servers.github import GitHubServer
from tests.paths import FIXTURES
from tests.reconcile_fixtures import destination, git, promise, request
from tests.redis_server import RedisServer
from tests.serving import serve

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
PROMISEBOT = BIN / "promisebot"
GUNICORN = BIN / "gunicorn"
SECRET = "bench-webhook-secret"
TOKEN = "ghp_benchtokenonly000000000000000000000"
REPO = "acme/platform"
MARKER = "<!-- promisebot:plan -->"
QUEUE_KEY = "rq:queue:promisebot"
GAP = 1.1  # seconds between one job's end and the next event of (b)/(c)


# -- small helpers ----------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# Polled often: what is waited for here is often what is timed.
wait_for = functools.partial(waiting.wait_for, interval=0.005)


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered)) - 1))]


def sign(body: bytes) -> str:
    """X-Hub-Signature-256, as GitHub computes it."""
    return "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()


def github_headers(event: str, body: bytes, delivery: str) -> dict[str, str]:
    return {"X-GitHub-Event": event, "X-GitHub-Delivery": delivery, "X-Hub-Signature-256": sign(body),
            "Content-Type": "application/json", "User-Agent": "GitHub-Hookshot/bench"}


def post_github(url: str, event: str, payload: dict[str, Any], delivery: str | None = None) -> str:
    """Deliver one event; returns its delivery id (the job id is `github-<delivery>`)."""
    delivery = delivery or str(uuid.uuid4())
    body = json.dumps(payload).encode()
    answer = requests.post(f"{url}/webhooks/github", data=body, headers=github_headers(event, body, delivery),
                           timeout=30)
    if answer.status_code != 202:
        raise RuntimeError(f"webhook answered {answer.status_code}: {answer.text}")
    return delivery


def bot_env(redis_url: str | None, api_url: str, data_dir: Path, **extra: str) -> dict[str, str]:
    """The environment of a promisebot process (nothing of ours but PATH, HOME, the Docker engine)."""
    env = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "DOCKER_HOST", "LANG", "TMPDIR")}
    env.update(PROMISEBOT_GITHUB_TOKEN=TOKEN, PROMISEBOT_GITHUB_API_URL=api_url,
               PROMISEBOT_GITHUB_WEBHOOK_SECRET=SECRET, PROMISEBOT_DATA_DIR=str(data_dir),
               PYTHONPATH=str(ROOT), **extra)  # this tree's code, whatever the venv's install points at
    if redis_url:
        env["REDIS_URL"] = redis_url
    return env


# -- the platform, as the forge hosts it ----------------------------------------------------------

class Platform:
    """The platform repo as a bare repository (main, refs/pull/N/head), a state store (bare Git
    repository), and a working clone where merges are made as the forge makes them."""

    def __init__(self, tmp: Path) -> None:
        tmp.mkdir(parents=True, exist_ok=True)
        self.tmp = tmp
        self.remote, self.state = tmp / "platform.git", tmp / "state.git"
        for bare in (self.remote, self.state):
            subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(bare)], check=True)
        seed = tmp / "state-seed"
        subprocess.run(["git", "clone", "-q", str(self.state), str(seed)], check=True, capture_output=True)
        git(seed, "-c", "user.name=x", "-c", "user.email=x@x", "commit", "-q", "--allow-empty", "-m", "init")
        git(seed, "push", "-q", "origin", "main")
        shutil.rmtree(seed)
        self.work = tmp / "work"
        subprocess.run(["git", "clone", "-q", str(self.remote), str(self.work)], check=True, capture_output=True)
        for key, value in (("user.email", "dev@example.com"), ("user.name", "dev")):
            git(self.work, "config", key, value)
        git(self.work, "checkout", "-q", "-b", "main")
        store = {"apiVersion": "platform.kratix.io/v1alpha1", "kind": "GitStateStore", "metadata": {"name": "state"},
                 "spec": {"url": str(self.state), "branch": "main"}}
        self._write("stores/state.yaml", store)
        self._write("destinations/dev.yaml", destination("dev"))
        self._write("promises/redis.yaml", promise("redis"))
        git(self.work, "add", "-A")
        git(self.work, "commit", "-q", "-m", "platform")
        git(self.work, "push", "-q", "origin", "main")
        self.base = git(self.work, "rev-parse", "HEAD")

    def _write(self, path: str, doc: dict[str, Any]) -> None:
        target = self.work / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(yaml.safe_dump(doc, sort_keys=False))

    def open_changes(self, numbers: list[int]) -> dict[int, str]:
        """One pull request per number, each adding `requests/r<N>.yaml` on top of the current
        main, pushed to refs/pull/N/head of the remote (one `git fast-import`). Returns the heads."""
        base = git(self.work, "rev-parse", "main")
        stream = []
        for n in numbers:
            text = yaml.safe_dump(request("Redis", f"r{n}", {"size": n}), sort_keys=False).encode()
            message = f"request r{n}".encode()
            stream += [f"commit refs/pull/{n}/head\n".encode(), f"mark :{n}\n".encode(),
                       b"committer dev <dev@example.com> 1700000000 +0000\n",
                       f"data {len(message)}\n".encode(), message, b"\n", f"from {base}\n".encode(),
                       f"M 100644 inline requests/r{n}.yaml\n".encode(), f"data {len(text)}\n".encode(), text,
                       b"\n\n"]
        subprocess.run(["git", "fast-import", "--quiet", "--force"], cwd=self.remote, input=b"".join(stream),
                       check=True)
        out = git(self.remote, "for-each-ref", "--format=%(refname) %(objectname)", "refs/pull/")
        heads = {int(ref.split("/")[2]): sha for ref, sha in (line.split() for line in out.splitlines())}
        return {n: heads[n] for n in numbers}

    def merge(self, number: int) -> str:
        """Merge the pull request into main as the forge does (--no-ff), push; the merge commit."""
        git(self.work, "fetch", "-q", "origin", f"refs/pull/{number}/head")
        git(self.work, "merge", "-q", "--no-ff", "-m", f"Merge pull request #{number}", "FETCH_HEAD")
        git(self.work, "push", "-q", "origin", "main")
        return git(self.work, "rev-parse", "HEAD")

    def store_head(self) -> str:
        """The state store's branch head, read as git stores it (loose ref, else packed-refs)
        without a git process: it is polled every few milliseconds while the bot works."""
        try:
            loose = (self.state / "refs" / "heads" / "main").read_text().strip()
        except FileNotFoundError:
            loose = ""
        if loose:
            return loose
        try:
            for line in (self.state / "packed-refs").read_text().splitlines():
                if line.endswith(" refs/heads/main"):
                    return line.split()[0]
        except FileNotFoundError:
            pass
        return git(self.state, "rev-parse", "main")

    def store_files(self) -> list[str]:
        return git(self.state, "ls-tree", "-r", "--name-only", "main").splitlines()


# -- webhook payloads: GitHub's published examples, pointed at this repository --------------------

def _example(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((FIXTURES / "webhooks" / "github" / f"{name}.payload.json").read_text())
    return data


_PULL_EXAMPLE = _example("pull_request.opened")
_PUSH_EXAMPLE = _example("push.with-new-branch")


def _point_repo(repo: dict[str, Any], clone_url: str) -> None:
    repo.update(full_name=REPO, name="platform", clone_url=clone_url, default_branch="main")
    repo["owner"]["login"] = "acme"


def pull_event(clone_url: str, base_sha: str, action: str, number: int, head: str, *, merged: bool = False,
               merge_sha: str | None = None) -> dict[str, Any]:
    payload = copy.deepcopy(_PULL_EXAMPLE)
    payload.update(action=action, number=number)
    _point_repo(payload["repository"], clone_url)
    pr = payload["pull_request"]
    pr.update(number=number, merged=merged, merge_commit_sha=merge_sha, draft=False,
              state="closed" if action == "closed" else "open",
              html_url=f"https://github.example/{REPO}/pull/{number}")
    pr["head"]["sha"] = head
    pr["base"].update(ref="main", sha=base_sha)
    _point_repo(pr["base"]["repo"], clone_url)
    return payload


def push_event(clone_url: str, before: str, after: str, message: str) -> dict[str, Any]:
    payload = copy.deepcopy(_PUSH_EXAMPLE)
    _point_repo(payload["repository"], clone_url)
    payload["repository"]["master_branch"] = "main"
    commit = dict(copy.deepcopy(payload["commits"][0]), id=after, tree_id=after, message=message)
    payload.update(ref="refs/heads/main", before=before, after=after, created=False, commits=[commit],
                   head_commit=copy.deepcopy(commit))
    return payload


# -- (a) webhook acknowledgement --------------------------------------------------------------------

@dataclass
class Load:
    statuses: list[int] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)  # connect to response read, seconds
    lags: list[float] = field(default_factory=list)  # how late the generator started a request
    errors: list[str] = field(default_factory=list)
    elapsed: float = 0.0


def prepared_deliveries(count: int) -> list[tuple[str, bytes, dict[str, str]]]:
    """`count` distinct signed pull_request deliveries (different PR numbers and heads), made
    before the clock starts so the load generator only sends."""
    out = []
    for i in range(count):
        payload = pull_event("https://github.example/acme/platform.git", "a" * 40, "opened", 100000 + i,
                             secrets.token_hex(20))
        body = json.dumps(payload).encode()
        delivery = str(uuid.uuid4())
        out.append((delivery, body, github_headers("pull_request", body, delivery)))
    return out


def send_load(port: int, deliveries: list[tuple[str, bytes, dict[str, str]]], rate: float) -> Load:
    """Open loop: delivery i is sent at t0 + i/rate on a new connection (as GitHub delivers),
    whatever the answers to the previous ones; each has a 10 s timeout."""
    load = Load(statuses=[0] * len(deliveries), latencies=[0.0] * len(deliveries), lags=[0.0] * len(deliveries))

    def one(i: int, due: float) -> None:
        _delivery, body, headers = deliveries[i]
        start = time.perf_counter()
        load.lags[i] = start - due
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        try:
            conn.request("POST", "/webhooks/github", body=body, headers=headers)
            answer = conn.getresponse()
            answer.read()
            load.statuses[i] = answer.status
        except OSError as exc:
            load.errors.append(f"{type(exc).__name__}: {exc}")
        finally:
            conn.close()
        load.latencies[i] = time.perf_counter() - start

    with ThreadPoolExecutor(max_workers=64) as pool:
        t0 = time.perf_counter() + 0.1
        for i in range(len(deliveries)):
            due = t0 + i / rate
            delay = due - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            pool.submit(one, i, due)
    load.elapsed = time.perf_counter() - t0
    return load


def wait_http(url: str, proc: subprocess.Popen[bytes], log: Path, timeout: float = 60) -> None:
    def up() -> bool:
        if proc.poll() is not None:
            raise RuntimeError(f"the server exited:\n{log.read_text(errors='replace')[-3000:]}")
        try:
            return requests.get(f"{url}/healthz", timeout=1).status_code == 200
        except requests.ConnectionError:
            return False

    wait_for(up, timeout, f"{url} to answer", interval=0.1)


def stop(proc: subprocess.Popen[Any]) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)


def serve_embedded(port: int) -> int:
    """Internal (`--serve-embedded PORT`, a subprocess of (a)): the embedded default's app (memory
    backend, the in-process queue) under werkzeug's threaded server, with a job function that
    only records the delivery. One line on stdin: drain the queue, print the record, exit."""
    from bot.jobs.backend import make_backend
    from bot.jobs.queue import InlineQueue
    from bot.server.app import create_app
    from bot.server.config import BotConfig
    from bot.server.logs import setup_logging

    config = BotConfig(github_token=TOKEN, github_api_url="http://127.0.0.1:9", github_webhook_secrets=(SECRET,))
    setup_logging(config.secrets())
    logging.getLogger("werkzeug").setLevel(logging.INFO)
    recorded: list[str] = []

    def run(payload: dict[str, Any], _received: float) -> str:
        recorded.append(str(payload.get("delivery")))
        return "recorded"

    queue = InlineQueue(run)
    app = create_app(config, make_backend(None), queue)
    http = make_server("127.0.0.1", port, app, threaded=True)
    threading.Thread(target=http.serve_forever, daemon=True).start()
    sys.stdin.readline()
    queue.join()
    print(json.dumps(recorded), flush=True)
    return 0


def bare_app(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
    """The baseline of (a): a WSGI app that reads the body and answers 202 (200 to GET), under
    the same server with the same settings."""
    length = int(environ.get("CONTENT_LENGTH") or 0)
    environ["wsgi.input"].read(length)
    code = "200 OK" if environ["REQUEST_METHOD"] == "GET" else "202 Accepted"
    start_response(code, [("Content-Type", "application/json"), ("Content-Length", "2")])
    return [b"{}"]


def serve_bare(port: int) -> int:
    """Internal (`--serve-bare PORT`): `bare_app` under werkzeug's threaded server."""
    make_server("127.0.0.1", port, bare_app, threaded=True).serve_forever()
    return 0


# (a)'s servers: name -> (command, whether it is the baseline, whether it uses Redis)
def a_command(kind: str, port: int) -> list[str]:
    gunicorn = [str(GUNICORN), "--bind", f"127.0.0.1:{port}", "--workers", "2", "--threads", "4"]
    return {
        "werkzeug-bare": [sys.executable, "-m", "bench.bench_bot", "--serve-bare", str(port)],
        "werkzeug-redis": [str(PROMISEBOT), "serve", "--port", str(port)],
        "werkzeug-embedded": [sys.executable, "-m", "bench.bench_bot", "--serve-embedded", str(port)],
        "gunicorn-bare": [*gunicorn, "bench.bench_bot:bare_app"],
        "gunicorn-redis": [*gunicorn, "bot.server.wsgi:app"],
    }[kind]


A_NAMES = {
    "werkzeug-redis": "werkzeug (`promisebot serve`), Redis",
    "werkzeug-embedded": "werkzeug, embedded default (no Redis)",
    "gunicorn-redis": "gunicorn --workers 2 --threads 4 (bot.server.wsgi), Redis",
}


def a_run(kind: str, tmp: Path, redis_server: RedisServer, count: int, rate: float) -> tuple[Load, list[str], set[str]]:
    """One server of (a) under the load: (the load, the job ids it enqueued, those expected)."""
    client = redis_server.client()
    client.flushdb()
    deliveries = prepared_deliveries(count)
    port = free_port()
    log = tmp / f"a-{kind}.log"
    env = bot_env(None if kind == "werkzeug-embedded" else redis_server.url, "http://127.0.0.1:9",
                  tmp / f"a-data-{kind}")
    with log.open("wb") as out:
        proc = subprocess.Popen(a_command(kind, port), env=env, cwd=ROOT, stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE if kind == "werkzeug-embedded" else out, stderr=out,
                                start_new_session=True)
    try:
        wait_http(f"http://127.0.0.1:{port}", proc, log)
        load = send_load(port, deliveries, rate)
        if kind == "werkzeug-embedded":
            assert proc.stdin is not None and proc.stdout is not None
            proc.stdin.write(b"dump\n")
            proc.stdin.flush()
            queued = [f"github-{d}" for d in json.loads(proc.stdout.readline())]
        else:
            queued = [j.decode() if isinstance(j, bytes) else str(j) for j in client.lrange(QUEUE_KEY, 0, -1)]
    finally:
        stop(proc)
    return load, queued, {f"github-{d}" for d, _, _ in deliveries}


def latencies(load: Load) -> list[float]:
    return [lat for lat, s in zip(load.latencies, load.statuses, strict=True) if s]


def bench_a(tmp: Path, seconds: float, rate: float) -> list[str]:
    count = int(seconds * rate)
    lines = []
    redis_server = RedisServer()
    try:
        for server, kinds in (("werkzeug", ("werkzeug-redis", "werkzeug-embedded")), ("gunicorn", ("gunicorn-redis",))):
            base, _, _ = a_run(f"{server}-bare", tmp, redis_server, count, rate)
            b50, b99 = pct(latencies(base), 50), pct(latencies(base), 99)
            lines.append(f"(a) baseline: {server}, an app that reads the body and answers 202: "
                         f"p50 {b50 * 1000:.1f} ms, p99 {b99 * 1000:.1f} ms")
            print(lines[-1], flush=True)
            for kind in kinds:
                load, queued, expected = a_run(kind, tmp, redis_server, count, rate)
                ok = latencies(load)
                p50, p99 = pct(ok, 50), pct(ok, 99)
                accepted = sum(1 for s in load.statuses if s == 202)
                once = len(queued) == count and set(queued) == expected
                lines.append(
                    f"(a) {A_NAMES[kind]}: {count} deliveries at {count / load.elapsed:.0f}/s over "
                    f"{load.elapsed:.1f}s: p50 {p50 * 1000:.1f} ms, p99 {p99 * 1000:.1f} ms (target <= 50 ms), "
                    f"max {max(ok) * 1000:.0f} ms; vs the baseline p50 {p50 / b50:.2f}x, p99 {p99 / b99:.2f}x; "
                    f"{accepted} answered 202, {len(load.errors)} errors; {len(queued)} jobs enqueued, "
                    f"{'each delivery exactly once' if once else 'NOT each delivery exactly once'}; "
                    f"load generator lag p99 {pct(load.lags, 99) * 1000:.1f} ms")
                print(lines[-1], flush=True)
    finally:
        redis_server.stop()
    return lines


# -- (b), (c): one pull request, planned then merged -------------------------------------------------

class CountingRunner:
    """The real Docker runner, counting the pipelines it runs."""

    runs = 0
    _lock = threading.Lock()

    def __init__(self) -> None:
        from runners.docker import DockerRunner

        self.inner = DockerRunner()

    def run(self, job: Any) -> Any:
        with CountingRunner._lock:
            CountingRunner.runs += 1
        return self.inner.run(job)

    def abort(self) -> None:
        self.inner.abort()

    def close(self) -> None:
        self.inner.close()


class World:
    """The platform, the GitHub stand-in and a clone for the CLI baseline."""

    def __init__(self, tmp: Path, github: GitHubServer) -> None:
        self.tmp = tmp
        self.platform = Platform(tmp / "git")
        self.github = github
        github.add_token(TOKEN)
        github.add_repo(REPO)
        for author in ("alice", _PULL_EXAMPLE["pull_request"]["user"]["login"]):  # the stand-in's and the payload's
            github.set_permission(REPO, author, "write")  # the pull requests' author: trusted, planned in full
        self.cli_clone = tmp / "cli-clone"
        subprocess.run(["git", "clone", "-q", str(self.platform.remote), str(self.cli_clone)], check=True,
                       capture_output=True)
        self.heads: dict[int, str] = {}
        self.last_job_end = 0.0
        self.steps: StepClock | None = None  # records the merge jobs' steps (embedded default)

    def quiet(self) -> None:
        """Wait until the previous job's last GitHub write is GAP seconds old, as it is when a pull
        request's events are seconds or minutes apart: GitHubForge spaces one client's writes by
        1 s (GitHub's guideline for integrations), and back-to-back benchmark events would
        otherwise wait for the previous job's spacing."""
        time.sleep(max(0.0, self.last_job_end + GAP - time.monotonic()))

    @property
    def clone_url(self) -> str:
        return str(self.platform.remote)

    def open(self, numbers: list[int]) -> None:
        heads = self.platform.open_changes(numbers)
        for n, head in heads.items():
            self.github.add_pull(REPO, n, head_sha=head, base_sha=self.platform.base, head_ref=f"change-{n}")
        self.heads.update(heads)

    def opened(self, n: int) -> dict[str, Any]:
        return pull_event(self.clone_url, self.platform.base, "opened", n, self.heads[n])

    def comment(self, n: int) -> dict[str, Any] | None:
        found = [c for c in self.github.comments(REPO, n) if c["body"].startswith(MARKER)]
        return found[0] if found else None

    def plan_state(self, n: int) -> str | None:
        states = [s["state"] for s in self.github.statuses(REPO, self.heads[n]) if s["context"] == "promisebot/plan"]
        return states[-1] if states else None

    def cli_plan(self, n: int) -> float:
        """`promisebot plan` of the change in a developer's clone; seconds (the subprocess)."""
        git(self.cli_clone, "fetch", "-q", "origin", f"refs/pull/{n}/head")
        start = time.perf_counter()
        done = subprocess.run([str(PROMISEBOT), "plan", "--platform", str(self.cli_clone), "--to", self.heads[n]],
                              capture_output=True, text=True)
        took = time.perf_counter() - start
        if done.returncode != 2 or f"r{n}" not in done.stdout:
            raise RuntimeError(f"promisebot plan exited {done.returncode}:\n{done.stdout}\n{done.stderr}")
        return took

    def bot_plan(self, url: str, n: int, finished: Callable[[str], None]) -> float:
        """Webhook sent -> plan comment present at the stand-in; seconds. `finished(delivery)`
        waits for the job to end (statuses written)."""
        self.quiet()
        start = time.perf_counter()
        delivery = post_github(url, "pull_request", self.opened(n))
        wait_for(lambda: self.comment(n), 120, f"the plan comment of #{n}")
        took = time.perf_counter() - start
        finished(delivery)
        self.last_job_end = time.monotonic()
        if self.plan_state(n) != "success" or f"r{n}" not in (self.comment(n) or {}).get("body", ""):
            raise RuntimeError(f"plan of #{n}: status {self.plan_state(n)}:\n{(self.comment(n) or {}).get('body')}")
        return took

    def bot_merge(self, url: str, n: int, finished: Callable[[str], None]) -> tuple[float, float]:
        """Merge, then webhook sent -> new state-store commit; (seconds, seconds to the job's end)."""
        merge = self.platform.merge(n)
        self.github.update_pull(REPO, n, state="closed", merged=True, merge_commit_sha=merge)
        before = self.platform.store_head()
        event = pull_event(self.clone_url, self.platform.base, "closed", n, self.heads[n], merged=True,
                           merge_sha=merge)
        self.quiet()
        if self.steps is not None:
            self.steps.start(None)
        start = time.perf_counter()
        delivery = post_github(url, "pull_request", event)
        wait_for(lambda: self.platform.store_head() != before, 120, f"the state-store commit of #{n}")
        took = time.perf_counter() - start
        finished(delivery)
        done = time.perf_counter() - start
        if self.steps is not None:
            self.steps.stop(start, start + done)
        self.last_job_end = time.monotonic()
        if not any(f"/r{n}/" in p for p in self.platform.store_files()):
            raise RuntimeError(f"merge of #{n}: its output is not in the state store")
        return took, done


def plan_and_merge(world: World, url: str, finished: Callable[[str], None], reps: int, first: int,
                   results: Callable[[], list[str]]) -> tuple[list[float], list[float], list[float], list[float], int]:
    """Warm up (one plan each way, not measured), then `reps` interleaved (bot plan, CLI plan)
    pairs, then the merge of each planned pull request. Returns (bot plans, CLI plans, merges to
    store commit, merges to job end, pipelines run during the merges)."""
    numbers = list(range(first, first + reps + 1))
    world.open(numbers)
    world.bot_plan(url, numbers[0], finished)
    world.cli_plan(numbers[0])
    bot, cli = [], []
    for k, n in enumerate(numbers[1:]):
        if k % 2:
            cli.append(world.cli_plan(n))
            bot.append(world.bot_plan(url, n, finished))
        else:
            bot.append(world.bot_plan(url, n, finished))
            cli.append(world.cli_plan(n))
    runs = CountingRunner.runs
    merges, ends = [], []
    for n in numbers[1:]:
        took, done = world.bot_merge(url, n, finished)
        merges.append(took)
        ends.append(done)
    reused = [r for r in results() if r.startswith("applied")]
    if len(reused) < reps or not all(", 1 result(s) reused" in r for r in reused[-reps:]):
        raise RuntimeError(f"the merges did not reuse the planned results: {reused}")
    return bot, cli, merges, ends, CountingRunner.runs - runs


def describe_bc(mode: str, bot: list[float], cli: list[float], merges: list[float], ends: list[float],
                reran: int | None) -> list[str]:
    b, c, m, e = (statistics.median(x) for x in (bot, cli, merges, ends))
    rerun = "" if reran is None else f", {reran} pipeline(s) run during the merges"
    return [f"(b) {mode}: event -> plan comment {b:.2f}s vs `promisebot plan` (CLI) {c:.2f}s = {b / c:.2f}x "
            f"(target <= 1.3x); medians of {len(bot)}, bot {min(bot):.2f}-{max(bot):.2f}s, "
            f"CLI {min(cli):.2f}-{max(cli):.2f}s",
            f"(c) {mode}: merge -> state-store commit {m:.2f}s vs its plan {b:.2f}s = {m / b:.2f}x "
            f"(target <= 0.3x); to the end of the job (comment, status) {e:.2f}s = {e / b:.2f}x{rerun}"]


@dataclass
class StepClock:
    """Where the embedded default's merge job spends its time (`--steps`): hooks on the steps of
    the job (the fetch, the engine's reading, the store write, the bookkeeping commit) and on the
    processes it starts, timed from the webhook's sending; the forge calls are what lies before
    the fetch and after the bookkeeping commit. Only the merge jobs are recorded (`recording`)."""

    spans: list[tuple[str, float, float]] = field(default_factory=list)
    recording: bool = False
    thread: int | None = None
    rows: list[dict[str, tuple[float, int]]] = field(default_factory=list)

    STEPS = (("queue", "webhook sent -> job started"),
             ("forge", "forge reads + pending status, the lock"),
             ("fetch", "fetch: platform + bookkeeping branch"),
             ("open", "engine: revisions, settings, bookkeeping, platform"),
             ("decide", "engine: changes, saved results, layout"),
             ("write", "state-store commit + push"),
             ("store", "= merge -> state-store commit"),
             ("bookkeeping", "bookkeeping commit + push"),
             ("report", "comment, where it landed, status"),
             ("end", "= merge -> end of the job"))

    def mark(self, what: str, t0: float, t1: float) -> None:
        if self.recording and threading.get_ident() == self.thread:
            self.spans.append((what, t0, t1))

    def install(self) -> None:
        """Wrap the steps (in this process: the embedded default's jobs run here)."""
        from bot.jobs.repos import RepoCache
        from bot.reconcile import engine
        from bot.reconcile.context import RunContext
        from bot.reconcile.writes import WriteSet

        def timed(what: str, function: Callable[..., Any]) -> Callable[..., Any]:
            def wrapper(*args: Any, **kwargs: Any) -> Any:
                t0 = time.perf_counter()
                try:
                    return function(*args, **kwargs)
                finally:
                    self.mark(what, t0, time.perf_counter())
            return wrapper

        RepoCache.sync = timed("fetch", RepoCache.sync)  # type: ignore[method-assign]
        RunContext.open = classmethod(timed("open", RunContext.open.__func__))  # type: ignore[assignment, attr-defined]
        WriteSet.run = timed("write", WriteSet.run)  # type: ignore[method-assign]
        engine.commit_bookkeeping = timed("bookkeeping", engine.commit_bookkeeping)
        popen_init = subprocess.Popen.__init__

        def init(proc: Any, *args: Any, **kwargs: Any) -> None:
            popen_init(proc, *args, **kwargs)
            self.mark("process", time.perf_counter(), 0.0)  # git: the merge job runs no pipeline

        subprocess.Popen.__init__ = init  # type: ignore[assignment]

    def start(self, thread: int | None) -> None:
        self.spans, self.recording, self.thread = [], True, thread

    def stop(self, sent: float, end: float) -> None:
        """One merge: the webhook sent at `sent`, the job ended at `end` (perf_counter)."""
        self.recording = False
        by = {w: (t0, t1) for w, t0, t1 in self.spans if w != "process"}
        started = min((t0 for w, t0, _ in self.spans), default=sent)
        if not all(k in by for k in ("fetch", "open", "write", "bookkeeping")):
            return
        edges = {"queue": (sent, started), "forge": (started, by["fetch"][0]), "fetch": by["fetch"],
                 "open": (by["fetch"][1], by["open"][1]), "decide": (by["open"][1], by["write"][0]),
                 "write": by["write"], "store": (sent, by["write"][1]),
                 "bookkeeping": (by["write"][1], by["bookkeeping"][1]), "report": (by["bookkeeping"][1], end),
                 "end": (sent, end)}
        spawned = [t0 for w, t0, _ in self.spans if w == "process"]
        self.rows.append({k: ((b - a) * 1000, sum(1 for t in spawned if a <= t < b)) for k, (a, b) in edges.items()})

    def table(self) -> list[str]:
        if not self.rows:
            return ["(c) steps: not recorded"]
        lines = [f"(c) steps of the embedded default's merge job, medians of {len(self.rows)} "
                 "(ms, git processes started by the bot):"]
        for key, label in self.STEPS:
            ms = statistics.median(r[key][0] for r in self.rows)
            n = statistics.median(r[key][1] for r in self.rows)
            lines.append(f"    {label:<52} {ms:6.1f} ms  {n:4.0f} git")
        return lines


def bench_bc_embedded(tmp: Path, reps: int, steps: StepClock | None = None) -> list[str]:
    """The embedded default: the app and its in-process queue in this process, jobs in its
    thread. `steps`: record where each merge job spends its time."""
    from bot.jobs.handlers import run_event
    from bot.jobs.queue import InlineQueue
    from bot.jobs.services import Services
    from bot.server.app import create_app
    from bot.server.config import BotConfig

    with GitHubServer() as github:
        world = World(tmp / "bc-embedded", github)
        config = BotConfig(github_token=TOKEN, github_api_url=github.api_url, github_webhook_secrets=(SECRET,),
                           data_dir=tmp / "bc-embedded" / "data")
        services = Services.from_config(config, runner_factory=CountingRunner)
        results: list[str] = []
        done: dict[str, threading.Event] = {}
        guard = threading.Lock()

        def event_for(delivery: str) -> threading.Event:
            with guard:
                return done.setdefault(delivery, threading.Event())

        def run(payload: dict[str, Any], received: float) -> str:
            if steps is not None and steps.recording:
                steps.thread = threading.get_ident()
                steps.mark("job", time.perf_counter(), 0.0)
            try:
                result = run_event(payload, received, services)
                results.append(result)
                return result
            finally:
                event_for(str(payload.get("delivery"))).set()

        def finished(d: str) -> None:
            if not event_for(d).wait(120):
                raise RuntimeError(f"job {d} did not finish")

        queue = InlineQueue(run)
        app = create_app(config, services.backend, queue)
        world.steps = steps
        try:
            with serve(app) as url:
                # a platform already reconciled: the push of main, as the bot's first event
                finished(post_github(url, "push", push_event(world.clone_url, "0" * 40, world.platform.base,
                                                             "platform")))
                world.last_job_end = time.monotonic()
                bot, cli, merges, ends, reran = plan_and_merge(world, url, finished, reps, 1, lambda: results)
        finally:
            queue.stop()
    return describe_bc("embedded default (jobs in a thread of the web process)", bot, cli, merges, ends, reran)


class Workers:
    """`promisebot worker` subprocesses sharing one data directory (one machine)."""

    def __init__(self, tmp: Path, redis_url: str, api_url: str) -> None:
        self.tmp, self.redis_url, self.api_url = tmp, redis_url, api_url
        self.procs: dict[str, subprocess.Popen[bytes]] = {}

    def start(self, name: str) -> None:
        log = self.tmp / f"worker-{name}.log"
        with log.open("wb") as out:
            proc = subprocess.Popen([str(PROMISEBOT), "worker", "--name", name],
                                    env=bot_env(self.redis_url, self.api_url, self.tmp / "worker-data"),
                                    stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        self.procs[name] = proc
        client = redis.Redis.from_url(self.redis_url)
        wait_for(lambda: client.exists(f"rq:worker:{name}") or self.alive(), 60, f"worker {name} to register",
                 interval=0.05)

    def alive(self) -> bool:
        """False while all run; RuntimeError with its log when one has exited (something outside
        the benchmark stopped it: the measurement would wait for nothing)."""
        for name, proc in self.procs.items():
            if proc.poll() is not None:
                log = (self.tmp / f"worker-{name}.log").read_text(errors="replace")[-3000:]
                raise RuntimeError(f"worker {name} exited ({proc.returncode}):\n{log}")
        return False

    def stop(self) -> None:
        for proc in self.procs.values():
            stop(proc)


@contextmanager
def redis_world(tmp: Path) -> Iterator[tuple[World, RedisServer, str, Workers]]:
    """The Redis setup: the web process's app (built from the environment, as `promisebot serve`
    builds it: REDIS_URL set, so it only enqueues) under werkzeug in this process, and
    `promisebot worker` subprocesses."""
    from bot.commands.serve import build

    server = RedisServer()
    workers: Workers | None = None
    try:
        with GitHubServer() as github:
            world = World(tmp, github)
            app, _queue = build(bot_env(server.url, github.api_url, tmp / "web-data"))
            workers = Workers(tmp, server.url, github.api_url)
            with serve(app) as url:
                yield world, server, url, workers
    finally:
        if workers is not None:
            workers.stop()
        server.stop()


def job_status(client: redis.Redis, job_id: str) -> str | None:
    raw = client.hget(f"rq:job:{job_id}", "status")
    return raw.decode() if isinstance(raw, bytes) else None


def job_result(client: redis.Redis, job_id: str) -> str:
    from rq.job import Job

    return str(Job.fetch(job_id, connection=client).return_value())


def bench_bc_redis(tmp: Path, reps: int) -> list[str]:
    with redis_world(tmp / "bc-redis") as (world, server, url, workers):
        client = server.client()
        workers.start("bench-bc")
        deliveries: list[str] = []

        def finished(delivery: str) -> None:
            deliveries.append(delivery)
            status = wait_for(lambda: workers.alive() or job_status(client, f"github-{delivery}") in
                              ("finished", "failed") and job_status(client, f"github-{delivery}"), 120,
                              f"job {delivery}")
            if status != "finished":
                raise RuntimeError(f"job {delivery} {status}")

        finished(post_github(url, "push", push_event(world.clone_url, "0" * 40, world.platform.base, "platform")))
        world.last_job_end = time.monotonic()
        bot, cli, merges, ends, _ = plan_and_merge(
            world, url, finished, reps, 1, lambda: [job_result(client, f"github-{d}") for d in deliveries])
    return describe_bc("Redis + 1 `promisebot worker`", bot, cli, merges, ends, None)


# -- (d) many pull requests at once -------------------------------------------------------------------

def burst(world: World, client: redis.Redis, url: str, workers: Workers, numbers: list[int],
          measured: int) -> tuple[float, int]:
    """Open `numbers` at once (their webhooks sent by 16 threads); seconds from the first
    delivery until `measured` of their plans finished, and how many of those have their plan
    comment and a `promisebot/plan` success. The plans still queued then are dropped (and the
    running ones waited for), so that the next measurement starts from an empty queue."""
    from rq import Queue
    from rq.registry import StartedJobRegistry

    from bot.jobs.queue import QUEUE_NAME

    world.open(numbers)
    payloads = {n: world.opened(n) for n in numbers}
    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=16) as pool:
        deliveries = list(pool.map(lambda n: post_github(url, "pull_request", payloads[n]), numbers))
    ids = [f"github-{d}" for d in deliveries]

    def statuses() -> list[bytes | None]:
        pipe = client.pipeline(transaction=False)
        for job_id in ids:
            pipe.hget(f"rq:job:{job_id}", "status")
        return list(pipe.execute())

    wait_for(lambda: workers.alive() or sum(1 for s in statuses() if s in (b"finished", b"failed")) >= measured,
             1200, f"{measured} plans", interval=0.05)
    took = time.perf_counter() - start
    done = [n for n, s in zip(numbers, statuses(), strict=True) if s == b"finished"]
    Queue(QUEUE_NAME, connection=client).empty()
    wait_for(lambda: StartedJobRegistry(QUEUE_NAME, connection=client).count == 0, 120, "the running plans",
             interval=0.1)
    good = sum(1 for n in done if world.comment(n) and world.plan_state(n) == "success")
    return took, min(good, measured)


def bench_d(tmp: Path, n: int, measured: int) -> list[str]:
    with redis_world(tmp / "d") as (world, server, url, workers):
        client = server.client()
        workers.start("bench-d1")
        # warm: the worker machine's clone, the Docker image; not measured
        world.open([1])
        warm = post_github(url, "pull_request", world.opened(1))
        wait_for(lambda: workers.alive() or job_status(client, f"github-{warm}") == "finished", 120,
                 "the warm-up plan", interval=0.1)
        one, good1 = burst(world, client, url, workers, list(range(1000, 1000 + n)), measured)
        print(f"    1 worker: {measured} of {n} plans in {one:.1f}s", flush=True)
        workers.start("bench-d2")
        two, good2 = burst(world, client, url, workers, list(range(2000, 2000 + n)), measured)
    what = "all" if measured == n else f"the first {measured}"
    return [f"(d) {n} pull requests opened at once, real Docker pipelines, {what} plans timed: 1 worker "
            f"{one:.1f}s ({measured / one:.2f} plans/s), 2 workers {two:.1f}s ({measured / two:.2f} plans/s) "
            f"= {one / two:.2f}x throughput; plan comment + status success: {good1} and {good2} of {measured}"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="shorter: (a) 5 s, (b)/(c) 3 pull requests, (d) 20")
    parser.add_argument("--parts", default="abcd", help="which measurements to make (default abcd; b and c are made together)")
    parser.add_argument("--drain", action="store_true",
                        help="(d): time all the plans, not the first 40 (full size: about 11 minutes more)")
    parser.add_argument("--steps", action="store_true",
                        help="(c): also print where the embedded default's merge job spends its time")
    parser.add_argument("--serve-embedded", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--serve-bare", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_embedded:
        return serve_embedded(args.serve_embedded)
    if args.serve_bare:
        return serve_bare(args.serve_bare)
    seconds, reps, n = (5.0, 3, 20) if args.quick else (30.0, 5, 200)
    measured = n if args.quick or args.drain else 40
    rate = 200.0
    # SIGTERM (a timeout, a stop): unwind, so the servers, workers and redis-server started here stop too
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # the in-process servers' access log
    with tempfile.TemporaryDirectory(prefix="bench-bot-") as d:
        tmp = Path(d)
        if "a" in args.parts:
            bench_a(tmp, seconds, rate)
        if "b" in args.parts or "c" in args.parts:
            steps = StepClock() if args.steps else None
            if steps is not None:
                steps.install()
            for run in (lambda: bench_bc_embedded(tmp, reps, steps), lambda: bench_bc_redis(tmp, reps)):
                for line in run():
                    print(line, flush=True)
            if steps is not None:
                for line in steps.table():
                    print(line, flush=True)
        if "d" in args.parts:
            for line in bench_d(tmp, n, measured):
                print(line, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
