"""End to end on real Git repos and the real Docker engine: the lifecycle of contract §4 as
`reconcile` drives it, with one commit per state store and idempotence."""

from __future__ import annotations

import pytest
from reconcile_fixtures import Env, destination, promise, request

from bot.model.objects import Ref

pytestmark = pytest.mark.docker

NS = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "redis-system"}}
REDIS_SCRIPT = 'echo "size: $(grep size /kratix/input/object.yaml)" > /kratix/output/redis.yaml'
R1 = "dev/resources/default/redis/r1/instance/5058f/redis.yaml"
R2 = "dev/resources/default/redis/r2/instance/5058f/redis.yaml"
STATIC = "dev/dependencies/redis/5058f/static/redis-dependencies.yaml"
SETUP = "dev/dependencies/redis/setup/5058f/op.yaml"


def redis_promise(**kw):
    return promise("redis", configure=REDIS_SCRIPT, dependencies=[NS],
                   promise_configure='echo "kind: Operator" > /kratix/output/op.yaml', **kw)


def runs(report):
    return sorted(f"{o.task.ref} {o.task.wtype}.{o.task.action} {o.state}" for o in report.outcomes)


@pytest.fixture
def env(tmp_path):
    e = Env(tmp_path)
    e.write("destinations/dev.yaml", destination("dev", {"env": "dev"}))
    e.write("promises/redis.yaml", redis_promise())
    return e


def test_install_create_update_delete_idempotent(env):
    env.write("requests/r1.yaml", request("Redis", "r1", {"size": 1}))
    env.commit("install")
    commits = env.store_commits()
    report = env.reconcile()
    assert runs(report) == ["Promise/redis promise.configure succeeded",
                            "Redis.test.promisebot.io/default/r1 resource.configure succeeded"]
    files = env.files()
    assert env.store_commits() == commits + 1  # promise, request, canaries: one commit
    assert {STATIC, SETUP, R1, "dev/dependencies/kratix-canary-namespace.yaml",
            "dev/resources/kratix-canary-configmap.yaml"} <= set(files)
    assert "redis-system" in files[STATIC]
    assert "size: 1" in files[R1]

    # The same event twice and a full reconcile of the unchanged platform: nothing runs or commits.
    state_commits = env.state_branch_commits()
    for kwargs in ({}, {"full": True}):
        again = env.reconcile(**kwargs)
        assert again.outcomes == [] and again.commits == {} and again.bookkeeping_commit is None
    assert env.store_commits() == commits + 1
    assert env.state_branch_commits() == state_commits

    # A label-only edit re-runs nothing (§1.7); a spec change re-runs the request only.
    env.write("requests/r1.yaml", request("Redis", "r1", {"size": 1}, labels={"team": "a"}))
    env.commit("label")
    assert env.reconcile().outcomes == []
    env.write("requests/r1.yaml", request("Redis", "r1", {"size": 3}))
    env.commit("resize")
    report = env.reconcile()
    assert runs(report) == ["Redis.test.promisebot.io/default/r1 resource.configure succeeded"]
    assert "size: 3" in env.files()[R1]

    record = env.bookkeeping().get(Ref("Redis.test.promisebot.io", "r1", "default"))
    assert record.status["message"] == "Resource requested"
    assert record.placements[0].destination == "dev"
    assert record.placements[0].commit == report.commits["GitStateStore/state"]

    env.remove("requests/r1.yaml")
    env.commit("delete")
    env.reconcile()
    assert R1 not in env.files()
    assert STATIC in env.files()
    assert env.bookkeeping().get(Ref("Redis.test.promisebot.io", "r1", "default")) is None


def install_and_remove(env, delete: str, path: str):
    """Install redis (with this delete pipeline) and r1, reconcile; remove `path`, reconcile."""
    env.write("promises/redis.yaml", redis_promise(delete=delete))
    env.write("requests/r1.yaml", request("Redis", "r1", {"size": 1}))
    env.commit("install")
    env.reconcile()
    env.remove(path)
    env.commit(f"remove {path}")
    return env.reconcile()


def test_delete_pipeline_runs_first_and_failure_keeps_files(env):
    report = install_and_remove(env, "exit 3", "requests/r1.yaml")
    assert runs(report) == ["Redis.test.promisebot.io/default/r1 resource.delete failed"]
    assert R1 in env.files()  # delete pipeline failed: files stay (§4.5)
    rec = env.bookkeeping().get(Ref("Redis.test.promisebot.io", "r1", "default"))
    assert any(c["type"] == "DeleteWorkflowCompleted" and c["status"] == "False" for c in rec.status["conditions"])

    env.write("promises/redis.yaml", redis_promise(delete="echo deleting"))
    env.commit("fix delete pipeline")
    report = env.reconcile()
    assert "Redis.test.promisebot.io/default/r1 resource.delete succeeded" in runs(report)
    assert R1 not in env.files()


def test_failing_request_does_not_block_others_and_keeps_outputs(env):
    script = 'grep -q "size: 9" /kratix/input/object.yaml && { echo boom >&2; exit 1; }; ' + REDIS_SCRIPT
    env.write("promises/redis.yaml", promise("redis", configure=script, dependencies=[NS]))
    env.write("requests/r1.yaml", request("Redis", "r1", {"size": 1}))
    env.commit("install")
    env.reconcile()
    env.write("requests/r1.yaml", request("Redis", "r1", {"size": 9}))
    env.write("requests/r2.yaml", request("Redis", "r2", {"size": 2}))
    env.commit("break r1, add r2")
    report = env.reconcile()
    assert runs(report) == ["Redis.test.promisebot.io/default/r1 resource.configure failed",
                            "Redis.test.promisebot.io/default/r2 resource.configure succeeded"]
    files = env.files()
    assert "size: 1" in files[R1]  # previous output kept
    assert R2 in files
    rec = env.bookkeeping().get(Ref("Redis.test.promisebot.io", "r1", "default"))
    failed = next(c for c in rec.status["conditions"] if c["type"] == "ConfigureWorkflowCompleted")
    assert failed["status"] == "False" and failed["reason"] == "ConfigureWorkflowFailed"
    assert "boom" in rec.logs[0]["log"]
    # The failure is recorded, not retried on every event.
    assert env.reconcile().outcomes == []


def test_destinations_create_relabel_delete(env):
    env.write("promises/redis.yaml", redis_promise(selectors={"env": "dev"}))
    env.write("requests/r1.yaml", request("Redis", "r1", {"size": 1}))
    env.commit("install")
    env.reconcile()
    # A new matching Destination gets canaries and the dependencies, not the request (sticky).
    env.write("destinations/dev2.yaml", destination("dev2", {"env": "dev"}, cleanup="all"))
    env.write("destinations/keep.yaml", destination("keep", {"env": "dev"}))
    env.commit("add dev2")
    report = env.reconcile()
    assert report.outcomes == []
    files = env.files()
    for d in ("dev2", "keep"):
        assert f"{d}/dependencies/redis/5058f/static/redis-dependencies.yaml" in files
        assert f"{d}/dependencies/kratix-canary-namespace.yaml" in files
        assert not any(p.startswith(f"{d}/resources/default") for p in files)
    # Relabelled away: dependencies stay there, misplaced (§2.3).
    env.write("destinations/keep.yaml", destination("keep", {"env": "other"}))
    env.commit("relabel keep")
    env.reconcile()
    assert "keep/dependencies/redis/5058f/static/redis-dependencies.yaml" in env.files()
    rec = env.bookkeeping().get(Ref("Promise", "redis"))
    assert any(p.destination == "keep" and p.misplaced for p in rec.placements)
    # Deleted: cleanup all removes its files, cleanup none leaves them.
    env.remove("destinations/dev2.yaml")
    env.remove("destinations/keep.yaml")
    env.commit("delete both")
    env.reconcile()
    files = env.files()
    assert not any(p.startswith("dev2/") for p in files)
    assert "keep/dependencies/redis/5058f/static/redis-dependencies.yaml" in files
    assert env.bookkeeping().get(Ref("Destination", "dev2")) is None


def test_required_promises_block_until_fulfilled(env):
    env.write("promises/app.yaml", promise("app", required=[{"name": "redis", "version": "v2"}]))
    env.write("requests/a1.yaml", request("App", "a1"))
    env.commit("app needs redis v2")
    report = env.reconcile()
    assert not any("a1" in r for r in runs(report))
    rec = env.bookkeeping().get(Ref("App.test.promisebot.io", "a1", "default"))
    cond = next(c for c in rec.status["conditions"] if c["type"] == "PromiseAvailable")
    assert cond["reason"] == "PromiseRequirementsNotInstalled"
    app = env.bookkeeping().get(Ref("Promise", "app"))
    assert app.status["requiredPromises"][0]["state"] == "Requirement not installed at the specified version"

    env.write("promises/redis.yaml", redis_promise(labels={"kratix.io/promise-version": "v2"}))
    env.commit("redis v2")
    report = env.reconcile()
    assert "App.test.promisebot.io/default/a1 resource.configure succeeded" in runs(report)
    assert "dev/resources/default/app/a1/instance/5058f/thing.yaml" in env.files()


def test_promise_delete_removes_requests_then_dependencies(env):
    report = install_and_remove(env, "echo bye", "promises/redis.yaml")
    assert "Redis.test.promisebot.io/default/r1 resource.delete succeeded" in runs(report)
    files = env.files()
    assert not any(p.startswith("dev/dependencies/redis") or p.startswith("dev/resources/default/redis")
                   for p in files)
    bk = env.bookkeeping()
    assert bk.get(Ref("Promise", "redis")) is None
    assert bk.get(Ref("Redis.test.promisebot.io", "r1", "default")) is None


def test_plan_writes_nothing(env):
    env.write("requests/r1.yaml", request("Redis", "r1", {"size": 1}))
    env.commit("install")
    commits = env.store_commits()
    report = env.reconcile(dry_run=True)
    assert report.changed
    paths = {d.path for b in report.batches for d in b.diff}
    assert R1 in paths and STATIC in paths
    assert env.store_commits() == commits
    assert env.state_branch_commits() == 0


def test_invalid_request_is_recorded_not_run(env):
    env.write("requests/bad.yaml", request("Redis", "Bad_Name", {"size": 1}))
    env.commit("invalid request")
    report = env.reconcile()
    assert not any("Bad_Name" in r for r in runs(report))
    rec = env.bookkeeping().get(Ref("Redis.test.promisebot.io", "Bad_Name", "default"))
    assert rec.status["message"].startswith("Invalid: ")
