"""Reconciler benchmarks, as ratios measured in one run on this machine (docs/reconciler.md).

    .venv/bin/python bench/bench_reconcile.py [--quick]

(a) one request, event to state-store commit (median of 5 events), vs a bare `docker run` of the same pipeline plus a
    `git commit` + push of its output (target <= 1.5x);
(b) N requests (1,000; --quick 100) in one push: one commit per store; total time vs the bare runs
    at the same parallelism;
(c) a one-request change in a platform of M requests (10,000; --quick 1,000) vs the same change in a
    platform of one request (target <= 1.2x), medians of 5 events each. The M background requests belong to a Promise
    without resource pipelines, so building the big platform needs no M container runs;
(d) a full reconcile (--all) of that unchanged M-request platform: no pipeline, no commit; wall time.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from tests.reconcile_fixtures import IMAGE, Env, destination, git, promise, request

ROOT = Path(__file__).resolve().parent.parent

SCRIPT = 'echo "kind: Thing" > /kratix/output/thing.yaml'


def timed(fn):
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def bare_run_and_commit(tmp: Path, names: list[str], parallelism: int) -> float:
    """docker run of the pipeline per request (bounded), then one git commit + push of the outputs."""
    clone = tmp / f"bare-{len(names)}-{time.monotonic_ns()}"
    subprocess.run(["git", "clone", "-q", str(tmp / "state.git"), str(clone)], check=True)

    def one(name: str) -> None:
        out = subprocess.run(["docker", "run", "--rm", IMAGE, "sh", "-c", 'echo "kind: Thing"'],
                             capture_output=True, check=True).stdout
        target = clone / "bare" / name / "thing.yaml"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(out)

    def go() -> None:
        with ThreadPoolExecutor(max_workers=parallelism) as pool:
            list(pool.map(one, names))
        git(clone, "add", "-A")
        git(clone, "-c", "user.name=b", "-c", "user.email=b@b", "commit", "-q", "-m", "bare")
        git(clone, "push", "-q", "origin", "HEAD:main")

    return timed(go)[0]


def base_env(tmp: Path, background: int) -> Env:
    tmp.mkdir(parents=True)
    env = Env(tmp)
    env.write("destinations/dev.yaml", destination("dev"))
    env.write("promises/redis.yaml", promise("redis", configure=SCRIPT))
    if background:
        env.write("promises/bulk.yaml", promise("bulk", configure=None))
        for i in range(background):
            env.write(f"requests/bulk/b{i:05d}.yaml", request("Bulk", f"b{i:05d}", {"i": i}))
    env.commit("base")
    env.reconcile()
    return env


def one_request_changes(env: Env, reps: int) -> tuple[float, float]:
    """Medians over `reps` one-request events (a new request each): (event to state-store
    commit, event to the end of the reconcile, bookkeeping commit included)."""
    to_store, whole = [], []
    for k in range(reps):
        env.write(f"requests/one-{k}.yaml", request("Redis", f"one-{k}", {"size": k}))
        env.commit(f"one request {k}")
        start = time.monotonic()
        report = env.reconcile()
        whole.append(time.monotonic() - start)
        assert report.commits and report.stores_written_at, "expected a state-store commit"
        to_store.append(report.stores_written_at - start)
    return statistics.median(to_store), statistics.median(whole)


def bench_a(tmp: Path, parallelism: int, reps: int) -> tuple[float, float, float]:
    env = base_env(tmp / "a", 0)
    to_store, whole = one_request_changes(env, reps)
    bare = statistics.median(bare_run_and_commit(tmp / "a", [f"one-{k}"], parallelism) for k in range(reps))
    return to_store, whole, bare


def bench_b(tmp: Path, n: int, parallelism: int) -> tuple[float, float, int]:
    env = base_env(tmp / "b", 0)
    before = env.store_commits()
    for i in range(n):
        env.write(f"requests/many/r{i:04d}.yaml", request("Redis", f"r{i:04d}", {"i": i}))
    env.commit(f"{n} requests")
    ours, _ = timed(env.reconcile)
    commits = env.store_commits() - before
    bare = bare_run_and_commit(tmp / "b", [f"r{i}" for i in range(n)], parallelism)
    return ours, bare, commits


def bench_cd(tmp: Path, m: int, reps: int) -> tuple[float, float, float, float, bool]:
    small = base_env(tmp / "c-small", 0)
    big_build, big = timed(lambda: base_env(tmp / "c-big", m))
    # whole reconciles, bookkeeping included: its cost is the part that could grow with the platform
    small_t, big_t = one_request_changes(small, reps)[1], one_request_changes(big, reps)[1]
    commits, state = big.store_commits(), big.state_branch_commits()
    full, report = timed(lambda: big.reconcile(full=True))
    quiet = not report.outcomes and not report.commits and big.store_commits() == commits \
        and big.state_branch_commits() == state
    return small_t, big_t, full, big_build, quiet


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="smaller sizes (100 / 1,000 requests)")
    parser.add_argument("--parts", default="abcd", help="which measurements to make (default abcd)")
    args = parser.parse_args()
    n, m = (100, 1000) if args.quick else (1000, 10000)
    parallelism = 2  # the default runner.parallelism
    reps = 5  # (a) and (c): median of this many one-request events
    with tempfile.TemporaryDirectory(prefix="bench-reconcile-") as d:
        tmp = Path(d)
        if "a" in args.parts:
            to_store, whole, bare = bench_a(tmp, parallelism, reps)
            print(f"(a) one request event -> store commit: {to_store:.2f}s vs bare docker run + git commit "
                  f"{bare:.2f}s = {to_store / bare:.2f}x (target <= 1.5x); with the bookkeeping commit "
                  f"after it {whole:.2f}s = {whole / bare:.2f}x")
        if "b" in args.parts:
            ours, bare, commits = bench_b(tmp, n, parallelism)
            print(f"(b) {n} requests in one push: {ours:.1f}s, {commits} store commit(s) vs bare runs at "
                  f"parallelism {parallelism} {bare:.1f}s = {ours / bare:.2f}x")
        if "c" in args.parts or "d" in args.parts:
            small, big, full, build, quiet = bench_cd(tmp, m, reps)
            print(f"(c) one-request change: platform of {m} requests {big:.2f}s vs of 1 request {small:.2f}s "
                  f"= {big / small:.2f}x (target <= 1.2x)")
            print(f"(d) full reconcile of the unchanged {m}-request platform: {full:.2f}s, "
                  f"{'no pipeline, no commit' if quiet else 'UNEXPECTED runs or commits'} "
                  f"(building it took {build:.1f}s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
