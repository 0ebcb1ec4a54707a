"""End to end on real Git repos and the real Docker engine: a request's lifecycle with
pipelines that read /kratix/input/object.yaml and write /kratix/output, one commit per state
store, and a failing container's exit code and logs. The engine's lifecycle cases (Promise and
request create / update / delete, delete pipelines, requiredPromises, Destinations, filepath
modes, plans) are tested without Docker in test_engine_lifecycle.py."""

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

    # The same event twice: nothing runs or commits.
    again = env.reconcile()
    assert again.outcomes == [] and again.commits == {} and again.bookkeeping_commit is None

    # A spec change re-runs the request, whose pipeline reads the new spec.
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
