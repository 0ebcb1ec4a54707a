"""Benchmark of the GitStateStore writer (issue 4 "Done when"; contract §3.6, batched writes).

(a) A change set of 1,000 placements (2,000 files over 5 Destinations) lands as ONE commit and
    ONE push: counted by a post-receive hook on the bare remote and `git rev-list --count`.
(b) The cost of a 10-file write with 1,000 vs 50,000 files already in the store, as a ratio of
    medians measured in the same run (target: close to 1, at most 1.5), in two layouts:
    - spread: 100 placements per Destination (50k files = 500 Destinations), so the
      directories a write touches are the same size in both stores (only the root grows);
    - flat: 5 Destinations whose one Promise directory grows to 10,000 placements each. A Git
      tree object holds a whole directory, so rewriting one entry costs O(entries in that
      directory): any Git writer pays this; the ratio shows how much.
    Each write's time is split into the bot's side and the remote's `git receive-pack` (which
    on a hosted remote runs on the Git host; its connectivity check walks the whole tree),
    measured from GIT_TRACE2_EVENT records. The target applies to the bot's side.

Run: .venv/bin/python bench/bench_git_store.py [--quick]   (exit 1 if a target is missed)
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bot.model.objects import Source, StateStore
from bot.model.works import FileChanges
from bot.secrets import SecretResolver
from bot.statestores.git import GitStateStoreWriter

DESTINATIONS = [f"cluster-{i}" for i in range(5)]
MAX_RATIO = 1.5


def git(cwd: Path, *args: str, input: bytes | None = None) -> str:
    return subprocess.run(["git", *args], cwd=cwd, input=input, capture_output=True, check=True).stdout.decode()


def bare_remote(path: Path) -> Path:
    path.mkdir(parents=True)
    git(path, "init", "-q", "--bare", "--initial-branch=main")
    hook = path / "hooks" / "post-receive"
    hook.write_text(f"#!/bin/sh\ncat >/dev/null\necho push >> {path / 'pushes.log'}\n")
    hook.chmod(0o755)
    return path


def pushes(remote: Path) -> int:
    log = remote / "pushes.log"
    return len(log.read_text().splitlines()) if log.exists() else 0


def commits(remote: Path) -> int:
    return int(git(remote, "rev-list", "--count", "main").strip() or 0)


def placement_dir(i: int, per_destination: int = 0) -> str:
    """Placement `i`: round-robin over 5 Destinations, or `per_destination` per Destination."""
    dest = f"cluster-{i // per_destination}" if per_destination else DESTINATIONS[i % len(DESTINATIONS)]
    return f"{dest}/resources/default/redis/app-{i:05d}/instance-configure/5058f"


def manifest(i: int, kind: str, rev: int = 0) -> bytes:
    return f"apiVersion: v1\nkind: {kind}\nmetadata:\n  name: app-{i:05d}\n  annotations:\n    rev: '{rev}'\n".encode()


def seed(remote: Path, count: int, per_destination: int = 0) -> None:
    """`count` files already in the store (one per placement), imported with git fast-import."""
    lines = ["commit refs/heads/main", "committer seed <seed@example.com> 0 +0000", "data 4", "seed"]
    for i in range(count):
        body = manifest(i, "ConfigMap")
        path = f"{placement_dir(i, per_destination)}/configmap.yaml"
        lines += [f"M 100644 inline {path}", f"data {len(body)}", body.decode()[:-1]]
    git(remote, "fast-import", "--quiet", input=("\n".join(lines) + "\n").encode())


def open_writer(remote: Path, cache: Path) -> GitStateStoreWriter:
    store = StateStore(kind="GitStateStore", name="bench", body={}, source=Source("bench"), path="",
                       spec={"url": str(remote), "branch": "main"})
    return GitStateStoreWriter(store, platform_root=remote.parent, secrets=SecretResolver(None, {}),
                               cache_dir=cache)


def bench_one_commit(tmp: Path) -> bool:
    remote = bare_remote(tmp / "burst.git")
    seed(remote, 100)
    w = open_writer(remote, tmp / "cache-burst")
    changes = FileChanges()
    for i in range(1000):
        place = placement_dir(i)
        changes.update(FileChanges(
            puts={f"{place}/deployment.yaml": manifest(i, "Deployment"), f"{place}/service.yaml": manifest(i, "Service")},
            delete_prefixes={place},
        ))
    commits_before, pushes_before = commits(remote), pushes(remote)
    start = time.perf_counter()
    result = w.apply(changes, "Update 1000 redis requests on 5 Destinations", {"Promisebot-Event": "bench"})
    elapsed = time.perf_counter() - start
    new_commits, new_pushes = commits(remote) - commits_before, pushes(remote) - pushes_before
    print(f"(a) 1,000 placements, {len(changes.puts)} files over {len(DESTINATIONS)} Destinations: "
          f"{new_commits} commit, {new_pushes} push, {len(result.added)} added, {len(result.removed)} removed "
          f"(the seeded configmaps), {elapsed:.2f}s")
    return new_commits == 1 and new_pushes == 1 and len(result.added) == 2000


def receive_pack_seconds(trace: Path) -> float:
    """Seconds spent in `git receive-pack` (the remote's side of a push), from trace2 events."""
    names, total = {}, 0.0
    for line in trace.read_text().splitlines() if trace.exists() else []:
        event = json.loads(line)
        if event["event"] == "cmd_name":
            names[event["sid"]] = event["hierarchy"]
        elif event["event"] == "exit" and names.get(event["sid"], "").endswith("receive-pack"):
            total += event["t_abs"]
    return total


def time_small_writes(tmp: Path, existing: int, per_destination: int, rounds: int) -> tuple[float, float]:
    """Median (total, bot-side) seconds of a 10-file write on a store already holding `existing`
    files; the cache is warmed first, as in a long-running bot."""
    remote = bare_remote(tmp / f"store-{existing}-{per_destination}.git")
    seed(remote, existing, per_destination)
    w = open_writer(remote, tmp / f"cache-{existing}-{per_destination}")
    w.apply(FileChanges(puts={"warmup.yaml": b"warm"}), "warm up the cache", {})
    targets = [i * (existing // 10) for i in range(10)]
    totals, bot_side = [], []
    for rev in range(1, rounds + 1):
        changes = FileChanges()
        for i in targets:
            place = placement_dir(i, per_destination)
            changes.update(FileChanges(puts={f"{place}/configmap.yaml": manifest(i, "ConfigMap", rev)},
                                       delete_prefixes={place}))
        trace = tmp / f"trace-{existing}-{per_destination}-{rev}.json"
        os.environ["GIT_TRACE2_EVENT"] = str(trace)  # inherited by every git process of the write
        start = time.perf_counter()
        result = w.apply(changes, f"round {rev}", {})
        elapsed = time.perf_counter() - start
        del os.environ["GIT_TRACE2_EVENT"]
        assert len(result.modified) == 10 and result.revision is not None
        totals.append(elapsed)
        bot_side.append(elapsed - receive_pack_seconds(trace))
        assert w.apply(changes, "again", {}).revision is None
    assert commits(remote) == rounds + 2
    return statistics.median(totals), statistics.median(bot_side)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer rounds")
    args = parser.parse_args()
    rounds = 5 if args.quick else 15
    with tempfile.TemporaryDirectory(prefix="promisebot-bench-") as tmp_name:
        tmp = Path(tmp_name)
        ok = bench_one_commit(tmp)
        results = {
            (layout, n): time_small_writes(tmp, n, per_dest, rounds)
            for layout, per_dest in (("spread", 100), ("flat", 0))
            for n in (1_000, 50_000)
        }
    print(f"(b) 10-file write, median of {rounds} (total = bot + remote receive-pack):")
    ratios = {}
    for layout in ("spread", "flat"):
        (small_total, small_bot), (big_total, big_bot) = results[(layout, 1_000)], results[(layout, 50_000)]
        ratios[layout] = big_bot / small_bot
        print(f"    {layout:6}: bot {small_bot * 1000:6.1f} ms with 1,000 files, {big_bot * 1000:6.1f} ms with "
              f"50,000 -> ratio {ratios[layout]:.2f} | total {small_total * 1000:6.1f} ms vs "
              f"{big_total * 1000:6.1f} ms -> ratio {big_total / small_total:.2f}")
    print(f"    target: bot-side ratio <= {MAX_RATIO} in the spread layout")
    ratio = ratios["spread"]
    ok = ok and ratio <= MAX_RATIO
    print("OK" if ok else "TARGET MISSED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
