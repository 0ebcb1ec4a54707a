"""Bookkeeping on a real Git repo: the state branch is written without touching HEAD,
the index or the working tree; unchanged records make no commit; a remote is kept in sync."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from bot.model.objects import Ref
from bot.model.records import ObjectRecord, PlacementRecord, bounded_logs, dumps, work_digest
from bot.model.works import Selector, Work, Workload, WorkloadGroup
from bot.state.bookkeeping import EVENT_TRAILER, Bookkeeping

BRANCH = "promisebot/state"


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True, text=True).stdout.strip()


def make_repo(path: Path) -> Path:
    path.mkdir(parents=True)
    git(path, "init", "-q", "-b", "main")
    git(path, "config", "user.email", "t@example.com")
    git(path, "config", "user.name", "t")
    (path / "promise.yaml").write_text("kind: Promise\n")
    git(path, "add", "promise.yaml")
    git(path, "commit", "-q", "-m", "init")
    return path


def sample_work() -> Work:
    return Work(
        promise="redis",
        pipeline="instance",
        resource_name="my-redis",
        resource_namespace="default",
        groups=[WorkloadGroup(".", "5058f1af8388633f609cadb75a75dc9d",
                              [Workload("a.yaml", b"kind: A\n"), Workload("bin.dat", b"\xff\x00\xfe")],
                              [Selector({"env": "dev"}, "promise")])],
    )


def test_missing_branch_reads_empty(tmp_path):
    repo = make_repo(tmp_path / "platform")
    bk = Bookkeeping.open(repo, BRANCH)
    assert bk.head is None
    assert bk.refs() == []
    assert bk.get(Ref("Promise", "redis")) is None
    assert bk.commit("nothing") is None


def test_roundtrip_without_touching_worktree(tmp_path):
    repo = make_repo(tmp_path / "platform")
    (repo / "dirty.txt").write_text("uncommitted\n")
    head_before = git(repo, "rev-parse", "HEAD")
    ref = Ref("Redis.example.com", "my-redis", "default")
    bk = Bookkeeping.open(repo, BRANCH)
    work = sample_work()
    bk.put(ObjectRecord(ref, status={"message": "Resource requested"}, cache_key="k1", works=[work.key],
                        placements=[PlacementRecord(work.key, work.groups[0].id, "dev", "GitStateStore/s", "abc")]))
    bk.put_work(work)
    bk.set_meta(revision=head_before)
    sha = bk.commit("reconcile", [(EVENT_TRAILER, "test"), ("Promisebot-Store", "a 1"), ("Promisebot-Store", "b 2")])
    assert sha
    assert git(repo, "rev-parse", "HEAD") == head_before
    assert git(repo, "status", "--porcelain") == "?? dirty.txt"
    assert git(repo, "log", "-1", "--format=%B", BRANCH).endswith(
        f"{EVENT_TRAILER}: test\nPromisebot-Store: a 1\nPromisebot-Store: b 2")

    again = Bookkeeping.open(repo, BRANCH)
    assert again.meta["revision"] == head_before
    assert again.refs() == [ref]
    rec = again.get(ref)
    assert rec.status["message"] == "Resource requested"
    assert rec.placements[0].commit == "abc"
    loaded = again.get_work(work.key)
    assert work_digest(loaded) == work_digest(work)
    assert loaded.groups[0].workloads[1].content == b"\xff\x00\xfe"


def test_unchanged_records_make_no_commit(tmp_path):
    repo = make_repo(tmp_path / "platform")
    ref = Ref("Promise", "redis")
    bk = Bookkeeping.open(repo, BRANCH)
    bk.put(ObjectRecord(ref, cache_key="k"))
    first = bk.commit("one")
    bk = Bookkeeping.open(repo, BRANCH)
    bk.put(ObjectRecord(ref, cache_key="k"))
    assert bk.commit("two") is None
    assert git(repo, "rev-parse", BRANCH) == first
    bk.delete(ref)
    assert bk.commit("three")
    assert Bookkeeping.open(repo, BRANCH).refs() == []


def test_remote_kept_in_sync(tmp_path):
    origin = tmp_path / "origin.git"
    subprocess.run(["git", "init", "-q", "--bare", str(origin)], check=True)
    server = make_repo(tmp_path / "server")
    git(server, "remote", "add", "origin", str(origin))
    git(server, "push", "-q", "origin", "main")
    bk = Bookkeeping.open(server, BRANCH)
    bk.put(ObjectRecord(Ref("Promise", "redis"), cache_key="k"))
    bk.commit("from server")
    # A fresh CI clone sees what the server saw.
    ci = tmp_path / "ci"
    subprocess.run(["git", "clone", "-q", str(origin), str(ci)], check=True)
    seen = Bookkeeping.open(ci, BRANCH)
    assert seen.get(Ref("Promise", "redis")).cache_key == "k"


def test_logs_are_bounded():
    out = bounded_logs([{"pipeline": "p", "log": "x" * 100000}])
    assert len(out[0]["log"]) < 20000


REQUEST = Ref("Redis.example.com", "my-redis", "default")
BODY = {"apiVersion": "example.com/v1", "kind": "Redis", "metadata": {"name": "my-redis"}, "spec": {"size": 1}}
DEST_BODY = {"kind": "Destination", "metadata": {"name": "dev"}, "spec": {"path": "dev"}}
STORE_BODY = {"kind": "GitStateStore", "metadata": {"name": "s"}, "spec": {"url": "../s.git"}}

# Records as the previous version wrote them: what is now typed was one "data" object.
OLD_REQUEST = {
    "ref": {"kind": REQUEST.kind, "namespace": "default", "name": "my-redis"},
    "status": {"message": "Resource requested"}, "cacheKey": "k1", "works": ["w1"], "placements": [],
    "lastRun": "2026-01-02T03:04:05Z", "logs": [], "resume": None,
    "data": {"body": BODY, "promise": "redis", "file": "requests/r.yaml", "digests": {"w1": "d1"},
             "invalid": True, "manualSeen": True, "pausedSeen": True},
}
OLD_PROMISE = {
    "ref": {"kind": "Promise", "namespace": "", "name": "redis"}, "status": {}, "cacheKey": "k2", "works": [],
    "placements": [], "lastRun": None, "logs": [], "resume": None,
    "data": {"body": {"kind": "Promise"}, "requestKind": REQUEST.kind, "reconcileResourcesSeen": True},
}
OLD_DESTINATION = {
    "ref": {"kind": "Destination", "namespace": "", "name": "dev"}, "status": {}, "cacheKey": None, "works": [],
    "placements": [], "lastRun": None, "logs": [], "resume": None,
    "data": {"body": DEST_BODY, "storeBody": STORE_BODY, "labels": {}},
}


def test_records_of_the_previous_format_load(tmp_path):
    repo = make_repo(tmp_path / "platform")
    bk = Bookkeeping.open(repo, BRANCH)
    for old in (OLD_REQUEST, OLD_PROMISE, OLD_DESTINATION):  # written byte for byte as the old version did
        ref = ObjectRecord.from_json(old).ref
        bk._staged[f"objects/{ref.kind}/{ref.namespace or '_'}/{ref.name}.json"] = dumps(old)
    bk.commit("old format")
    again = Bookkeeping.open(repo, BRANCH)
    req = again.get(REQUEST)
    assert (req.body, req.promise, req.file, req.digests) == (BODY, "redis", "requests/r.yaml", {"w1": "d1"})
    assert req.invalid and req.manual_seen and req.paused_seen and not req.resources_seen
    assert (req.cache_key, req.works, req.last_run) == ("k1", ["w1"], "2026-01-02T03:04:05Z")
    promise = again.get(Ref("Promise", "redis"))
    assert promise.request_kind == REQUEST.kind and promise.resources_seen and not promise.paused_seen
    dest = again.get(Ref("Destination", "dev"))
    assert (dest.body, dest.store_body, dest.labels) == (DEST_BODY, STORE_BODY, {})  # no labels is not unknown
    assert dest.promise is None and dest.digests == {}
    # Written again, a record has the new format and reads back the same.
    for rec in (req, promise, dest):
        new = rec.to_json()
        assert "data" not in new and ObjectRecord.from_json(json.loads(dumps(new))) == rec


def test_record_json_is_stable():
    rec = ObjectRecord(REQUEST, status={"message": "x"}, cache_key="k", works=["b", "a"], body=BODY,
                       promise="redis", file="requests/r.yaml", digests={"b": "2", "a": "1"}, manual_seen=True)
    text = dumps(rec.to_json())
    assert text == dumps(ObjectRecord.from_json(json.loads(text)).to_json())
    keys = list(json.loads(text))
    assert keys == sorted(keys) == ["body", "cacheKey", "digests", "file", "lastRun", "logs", "manualSeen",
                                    "placements", "promise", "ref", "resume", "status", "works"]
    # What is unknown or false is left out; a Destination's empty labels are kept.
    assert set(ObjectRecord(REQUEST).to_json()) == {"ref", "status", "cacheKey", "works", "placements", "lastRun",
                                                    "logs", "resume"}
    assert ObjectRecord(Ref("Destination", "d"), labels={}).to_json()["labels"] == {}
