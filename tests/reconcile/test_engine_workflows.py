"""Workflow control (suspend, retryAfter: contract §1.5c), the labels of §4.7 (paused,
manual reconciliation, reconcile-resources), through the fake runner and real Git repositories
(no Docker). The pipelines' workflow-control.yaml is read as the Docker runner reads it
(tests/fake_runner.py); test_reconcile_workflows.py runs a real container writing it."""

from __future__ import annotations

import pytest
from fake_runner import FakeRunner, spec
from reconcile_fixtures import Clock, Env, destination, pipeline, promise, request

from bot.model.objects import Ref
from runners.base import PipelineJob

REDIS = "Redis.test.promisebot.io"
REF = Ref(REDIS, "r1", "default")
R2 = Ref(REDIS, "r2", "default")
R3 = Ref(REDIS, "r3", "default")
THING = "dev/resources/default/redis/r1/instance/5058f/thing.yaml"
PAUSED = {"kratix.io/paused": "true"}
MANUAL = {"kratix.io/manual-reconciliation": "true"}
RECONCILE_RESOURCES = {"kratix.io/reconcile-resources": "true"}


def runs(report) -> list[str]:
    return sorted(f"{o.task.ref} {o.task.wtype}.{o.task.action} {o.state} ({o.task.reason})" for o in report.outcomes)


def reconciled(env: Env, ref: Ref) -> tuple[str, str, str] | None:
    rec = env.bookkeeping().get(ref)
    return next(((c["status"], c["reason"], c["message"]) for c in rec.status.get("conditions") or []
                 if c["type"] == "Reconciled"), None)


def sized(job: PipelineJob) -> dict[str, bytes]:
    return {"thing.yaml": f"kind: Thing\nsize: {spec(job).get('size')}\n".encode()}


@pytest.fixture
def env(tmp_path):
    e = Env(tmp_path, runner=FakeRunner(outputs={"redis": sized}))
    e.write("destinations/dev.yaml", destination("dev"))
    return e


def nothing_runs(env: Env) -> None:
    """Neither an event nor a full reconcile runs anything."""
    env.commit("unrelated")
    assert env.reconcile().outcomes == [] and env.reconcile(full=True).outcomes == []


# -- workflow control (§1.5c) ------------------------------------------------------------------


def two_pipelines() -> dict:
    """Redis with two resource configure pipelines, "instance" then "wait"."""
    body = promise("redis")
    body["spec"]["workflows"]["resource"]["configure"].append(pipeline("wait", "true"))
    return body


def retry_until_go(job: PipelineJob) -> dict[str, bytes]:
    """The metadata of a pipeline "wait" that asks to be retried in 1s until the spec says go."""
    if job.pipeline.name != "wait" or spec(job).get("go"):
        return {}
    return {"workflow-control.yaml": b"retryAfter: 1s\nmessage: waiting\n"}


def test_retry_after_resumes_at_the_suspended_pipeline_once_due(env, monkeypatch):
    clock = Clock(monkeypatch)
    env.runner.metadata["redis"] = retry_until_go
    env.write("promises/redis.yaml", two_pipelines())
    env.write("requests/r1.yaml", request("Redis", "r1", {"size": 1}))
    env.commit("install")
    assert runs(env.reconcile()) == [f"{REF} resource.configure suspended (created)"]
    rec = env.bookkeeping().get(REF)
    assert rec.resume["pipeline"] == 1 and rec.resume["nextRetryAt"]
    assert THING in env.files()  # the Work of the pipeline that succeeded before it (§1.5c)

    clock.advance(2)
    env.runner.calls.clear()
    assert runs(env.reconcile()) == [f"{REF} resource.configure suspended (retry due)"]
    assert [c[4] for c in env.runner.calls] == ["wait"]  # resumed at the suspended pipeline

    env.runner.calls.clear()
    env.write("requests/r1.yaml", request("Redis", "r1", {"size": 2, "go": True}))
    env.commit("go")
    assert runs(env.reconcile()) == [f"{REF} resource.configure succeeded (spec changed)"]
    assert [c[4] for c in env.runner.calls] == ["instance", "wait"]  # a spec change starts again
    assert env.bookkeeping().get(REF).resume is None
    assert "size: 2" in env.files()[THING]
    nothing_runs(env)


def test_a_run_before_the_retry_time_keeps_the_retry(env, monkeypatch):
    clock = Clock(monkeypatch)
    env.runner.metadata["redis"] = retry_until_go
    env.write("promises/redis.yaml", two_pipelines())
    env.write("requests/r1.yaml", request("Redis", "r1", {"size": 1}))
    env.commit("install")
    env.reconcile()
    assert env.reconcile().outcomes == []  # not due yet
    clock.advance(2)
    assert runs(env.reconcile()) == [f"{REF} resource.configure suspended (retry due)"]


def test_suspended_workflow_waits_for_a_spec_change_or_a_manual_reconciliation(env):
    env.runner.metadata["redis"] = lambda job: {"workflow-control.yaml": b"suspend: true\n"}
    env.write("promises/redis.yaml", promise("redis"))
    env.write("requests/r1.yaml", request("Redis", "r1", {"size": 1}))
    env.commit("install")
    assert runs(env.reconcile()) == [f"{REF} resource.configure suspended (created)"]
    assert THING not in env.files()  # no Work from the suspending pipeline
    nothing_runs(env)
    env.runner.metadata.clear()
    env.write("requests/r1.yaml", request("Redis", "r1", {"size": 1}, labels=MANUAL))
    env.commit("manual")
    assert runs(env.reconcile()) == [f"{REF} resource.configure succeeded (manual reconciliation)"]
    assert THING in env.files()


# -- manual reconciliation and reconcile-resources (§4.7) -------------------------------------


def test_manual_reconciliation_runs_once_per_appearance(env):
    env.write("promises/redis.yaml", promise("redis"))
    env.write("requests/r1.yaml", request("Redis", "r1", labels=MANUAL))
    env.commit("created with the label")
    assert runs(env.reconcile()) == [f"{REF} resource.configure succeeded (created)"]
    assert env.bookkeeping().get(REF).manual_seen  # the creation run answered the label
    nothing_runs(env)
    for attempt in ("first", "second"):
        env.write("requests/r1.yaml", request("Redis", "r1"))
        env.commit(f"label removed ({attempt})")
        assert env.reconcile().outcomes == []
        env.write("requests/r1.yaml", request("Redis", "r1", labels=MANUAL))
        env.commit(f"label added again ({attempt})")
        assert runs(env.reconcile()) == [f"{REF} resource.configure succeeded (manual reconciliation)"]
        nothing_runs(env)


def test_manual_reconciliation_of_a_promise_runs_it_only(env):
    env.write("promises/redis.yaml", promise("redis", promise_configure="true"))
    env.write("requests/r1.yaml", request("Redis", "r1"))
    env.commit("install")
    env.reconcile()
    env.write("promises/redis.yaml", promise("redis", promise_configure="true", labels=MANUAL))
    env.commit("manual")
    assert runs(env.reconcile()) == ["Promise/redis promise.configure succeeded (manual reconciliation)"]
    nothing_runs(env)


def test_reconcile_resources_label_reruns_every_request_once_per_appearance(env):
    env.write("promises/redis.yaml", promise("redis", promise_configure="true"))
    env.write("requests/r1.yaml", request("Redis", "r1", {"a": 1}))
    env.write("requests/r2.yaml", request("Redis", "r2", {"a": 2}))
    env.commit("install")
    env.reconcile()
    expected = [f"{ref} resource.configure succeeded (Promise reconcile-resources)" for ref in (REF, R2)]
    env.write("promises/redis.yaml", promise("redis", promise_configure="true", labels=RECONCILE_RESOURCES))
    env.commit("reconcile resources")
    assert runs(env.reconcile()) == expected  # the requests only, not the Promise's own workflow
    nothing_runs(env)  # the label left in place does not run them again
    env.write("promises/redis.yaml", promise("redis", promise_configure="true"))
    env.commit("label removed")
    assert env.reconcile().outcomes == []
    env.write("promises/redis.yaml", promise("redis", promise_configure="true", labels=RECONCILE_RESOURCES))
    env.commit("label added again")
    assert runs(env.reconcile()) == expected


# -- paused (§4.1 step 1, §4.4, §4.7) -----------------------------------------------------------


def test_paused_request_runs_nothing_and_unpausing_runs_it_once_from_the_start(env):
    env.write("promises/redis.yaml", promise("redis"))
    env.write("requests/r1.yaml", request("Redis", "r1", {"size": 1}))
    env.commit("install")
    env.reconcile()
    env.write("requests/r1.yaml", request("Redis", "r1", {"size": 2}, labels=PAUSED))
    env.commit("paused, spec changed")
    assert env.reconcile().outcomes == []
    assert reconciled(env, REF) == ("Unknown", "PausedReconciliation", "Paused")
    nothing_runs(env)
    assert "size: 1" in env.files()[THING]

    env.write("requests/r1.yaml", request("Redis", "r1", {"size": 2}))
    env.commit("unpaused")
    assert runs(env.reconcile()) == [f"{REF} resource.configure succeeded (unpaused)"]
    assert "size: 2" in env.files()[THING]
    assert reconciled(env, REF) == ("True", "Reconciled", "Reconciled")
    nothing_runs(env)

    env.write("requests/r1.yaml", request("Redis", "r1", {"size": 2}, labels=PAUSED))
    env.commit("paused again, no spec change")
    assert env.reconcile().outcomes == []
    env.write("requests/r1.yaml", request("Redis", "r1", {"size": 2}))
    env.commit("unpaused again")
    assert runs(env.reconcile()) == [f"{REF} resource.configure succeeded (unpaused)"]
    nothing_runs(env)


def test_paused_promise_pauses_its_requests_and_unpausing_reruns_all_from_the_start(env):
    # Kratix's resumedFromPause (promise_controller.go): the Promise configure workflow runs
    # from the start and reconcile-resources re-runs every request.
    env.write("promises/redis.yaml", promise("redis", promise_configure="true"))
    env.write("requests/r1.yaml", request("Redis", "r1", {"size": 1}))
    env.write("requests/r2.yaml", request("Redis", "r2", {"size": 1}))
    env.commit("install")
    env.reconcile()
    env.write("promises/redis.yaml", promise("redis", promise_configure="true", labels=PAUSED))
    env.commit("Promise paused")
    assert env.reconcile().outcomes == []
    for ref in (Ref("Promise", "redis"), REF, R2):
        assert reconciled(env, ref) == ("Unknown", "PausedReconciliation", "Paused")
    env.write("requests/r1.yaml", request("Redis", "r1", {"size": 2}))
    env.write("requests/r3.yaml", request("Redis", "r3", {"size": 3}))
    env.commit("request changed and created while the Promise is paused")
    assert env.reconcile().outcomes == []
    assert "size: 1" in env.files()[THING]

    env.write("promises/redis.yaml", promise("redis", promise_configure="true"))
    env.commit("Promise unpaused")
    assert runs(env.reconcile()) == ["Promise/redis promise.configure succeeded (unpaused)",
                                     f"{REF} resource.configure succeeded (unpaused)",
                                     f"{R2} resource.configure succeeded (unpaused)",
                                     f"{R3} resource.configure succeeded (created)"]
    assert "size: 2" in env.files()[THING]
    nothing_runs(env)


def test_unpausing_objects_without_configure_workflows_runs_nothing_and_clears_paused(env):
    env.write("promises/redis.yaml", promise("redis", configure=None, labels=PAUSED))
    env.write("requests/r1.yaml", request("Redis", "r1"))
    env.commit("installed paused")
    assert env.reconcile().outcomes == []
    assert reconciled(env, REF) == ("Unknown", "PausedReconciliation", "Paused")
    assert env.bookkeeping().get(REF).paused_seen
    env.write("promises/redis.yaml", promise("redis", configure=None))
    env.commit("unpaused")
    assert env.reconcile().outcomes == []
    for ref in (Ref("Promise", "redis"), REF):
        assert not env.bookkeeping().get(ref).paused_seen
        assert reconciled(env, ref) is None


def test_deleting_a_paused_request_runs_its_delete_workflow(env):
    env.write("promises/redis.yaml", promise("redis", delete="cleanup"))
    env.write("requests/r1.yaml", request("Redis", "r1", labels=PAUSED))
    env.commit("installed paused")
    env.reconcile()
    env.remove("requests/r1.yaml")
    env.commit("deleted")  # a deliberate deviation (docs/reconciler.md): the deleted file is the request
    assert runs(env.reconcile()) == [f"{REF} resource.delete succeeded (deleted)"]
    assert env.bookkeeping().get(REF) is None
