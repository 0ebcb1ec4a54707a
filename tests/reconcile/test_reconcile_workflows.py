"""End to end: workflow control (suspend, retryAfter: contract §1.5c), manual reconciliation
(§4.7), paused objects, and compound Promises whose outputs are platform input (§4.6)."""

from __future__ import annotations

import time

import pytest
from reconcile_fixtures import Env, destination, git_store, promise, request

from bot.model.objects import Ref

pytestmark = pytest.mark.docker

REF = Ref("Redis.test.promisebot.io", "r1", "default")
R1 = "dev/resources/default/redis/r1/instance/5058f/thing.yaml"


def runs(report):
    return sorted(f"{o.task.ref} {o.task.wtype}.{o.task.action} {o.state} ({o.task.reason})"
                  for o in report.outcomes)


@pytest.fixture
def env(tmp_path):
    e = Env(tmp_path)
    e.write("destinations/dev.yaml", destination("dev"))
    return e


def test_retry_after_resumes_when_due_and_suspend_waits(env):
    # Suspend (retry in 1s) until a marker file exists in the request spec's "go" field.
    script = ('if grep -q "go: ready" /kratix/input/object.yaml; then echo "kind: Thing" > /kratix/output/thing.yaml; '
              'else printf "retryAfter: 1s\\nmessage: waiting\\n" > /kratix/metadata/workflow-control.yaml; fi')
    env.write("promises/redis.yaml", promise("redis", configure=script))
    env.write("requests/r1.yaml", request("Redis", "r1", {"go": "wait"}))
    env.commit("install")
    report = env.reconcile()
    assert runs(report) == [f"{REF} resource.configure suspended (created)"]
    assert R1 not in env.files()
    rec = env.bookkeeping().get(REF)
    assert rec.resume["nextRetryAt"]
    time.sleep(1.2)
    report = env.reconcile()
    assert runs(report) == [f"{REF} resource.configure suspended (retry due)"]

    env.write("requests/r1.yaml", request("Redis", "r1", {"go": "ready"}))
    env.commit("go")
    report = env.reconcile()
    assert runs(report) == [f"{REF} resource.configure succeeded (spec changed)"]
    assert R1 in env.files()
    assert env.bookkeeping().get(REF).resume is None


def test_manual_reconciliation_runs_once(env):
    env.write("promises/redis.yaml", promise("redis"))
    env.write("requests/r1.yaml", request("Redis", "r1", {"a": 1}))
    env.commit("install")
    env.reconcile()
    env.write("requests/r1.yaml", request("Redis", "r1", {"a": 1},
                                          labels={"kratix.io/manual-reconciliation": "true"}))
    env.commit("manual")
    assert runs(env.reconcile()) == [f"{REF} resource.configure succeeded (manual reconciliation)"]
    assert env.reconcile(full=True).outcomes == []


PAUSED = {"kratix.io/paused": "true"}
SIZE = 'echo "kind: Thing" > /kratix/output/thing.yaml; grep "size:" /kratix/input/object.yaml >> /kratix/output/thing.yaml'


def reconciled(env, ref):
    rec = env.bookkeeping().get(ref)
    return next((c["status"], c["reason"], c["message"]) for c in rec.status["conditions"] if c["type"] == "Reconciled")


def test_paused_request_runs_nothing_and_unpausing_runs_it_once_from_the_start(env):
    env.write("promises/redis.yaml", promise("redis", configure=SIZE))
    env.write("requests/r1.yaml", request("Redis", "r1", {"size": 1}))
    env.commit("install")
    env.reconcile()
    env.write("requests/r1.yaml", request("Redis", "r1", {"size": 2}, labels=PAUSED))
    env.commit("paused, spec changed")
    assert env.reconcile().outcomes == []
    assert reconciled(env, REF) == ("Unknown", "PausedReconciliation", "Paused")
    env.commit("unrelated")
    assert env.reconcile().outcomes == [] and env.reconcile(full=True).outcomes == []
    assert "size: 1" in env.files()[R1]

    env.write("requests/r1.yaml", request("Redis", "r1", {"size": 2}))
    env.commit("unpaused")
    assert runs(env.reconcile()) == [f"{REF} resource.configure succeeded (unpaused)"]
    assert "size: 2" in env.files()[R1]
    assert reconciled(env, REF) == ("True", "Reconciled", "Reconciled")
    env.commit("unrelated")
    assert env.reconcile().outcomes == [] and env.reconcile(full=True).outcomes == []

    env.write("requests/r1.yaml", request("Redis", "r1", {"size": 2}, labels=PAUSED))
    env.commit("paused again, no spec change")
    assert env.reconcile().outcomes == []
    env.write("requests/r1.yaml", request("Redis", "r1", {"size": 2}))
    env.commit("unpaused again")
    assert runs(env.reconcile()) == [f"{REF} resource.configure succeeded (unpaused)"]
    env.commit("unrelated")
    assert env.reconcile().outcomes == []


def test_paused_promise_pauses_its_requests_and_unpausing_reruns_all_from_the_start(env):
    # Kratix's resumedFromPause (promise_controller.go): the Promise configure workflow runs
    # from the start and reconcile-resources re-runs every request.
    r2 = Ref("Redis.test.promisebot.io", "r2", "default")
    env.write("promises/redis.yaml", promise("redis", configure=SIZE, promise_configure="true"))
    env.write("requests/r1.yaml", request("Redis", "r1", {"size": 1}))
    env.write("requests/r2.yaml", request("Redis", "r2", {"size": 1}))
    env.commit("install")
    env.reconcile()
    env.write("promises/redis.yaml", promise("redis", configure=SIZE, promise_configure="true", labels=PAUSED))
    env.commit("Promise paused")
    assert env.reconcile().outcomes == []
    for ref in (Ref("Promise", "redis"), REF, r2):
        assert reconciled(env, ref) == ("Unknown", "PausedReconciliation", "Paused")
    env.write("requests/r1.yaml", request("Redis", "r1", {"size": 2}))
    env.write("requests/r3.yaml", request("Redis", "r3", {"size": 3}))
    env.commit("request changed and created while the Promise is paused")
    assert env.reconcile().outcomes == []
    assert "size: 1" in env.files()[R1]

    env.write("promises/redis.yaml", promise("redis", configure=SIZE, promise_configure="true"))
    env.commit("Promise unpaused")
    r3 = Ref("Redis.test.promisebot.io", "r3", "default")
    assert runs(env.reconcile()) == [
        "Promise/redis promise.configure succeeded (unpaused)",
        f"{REF} resource.configure succeeded (unpaused)",
        f"{r2} resource.configure succeeded (unpaused)",
        f"{r3} resource.configure succeeded (created)",
    ]
    assert "size: 2" in env.files()[R1]
    env.commit("unrelated")
    assert env.reconcile().outcomes == [] and env.reconcile(full=True).outcomes == []


def test_compound_promise_outputs_are_reconciled_without_loop(env):
    # A "platform" Destination whose state store is the platform repo itself.
    env.write("stores/self.yaml", git_store("self", "."))
    env.write("destinations/platform.yaml",
              destination("platform", {"environment": "platform"}, path="generated", store="self"))
    env.write("destinations/dev.yaml", destination("dev", {"env": "dev"}))
    env.write("promises/redis.yaml", promise("redis", selectors={"env": "dev"}))
    sub = ("printf 'apiVersion: test.promisebot.io/v1\\nkind: Redis\\nmetadata:\\n  name: app-db\\n"
           "  namespace: default\\nspec:\\n  size: 1\\n' > /kratix/output/db.yaml")
    env.write("promises/app.yaml", promise("app", configure=sub, selectors={"environment": "platform"}))
    env.write("requests/a1.yaml", request("App", "a1"))
    env.commit("install")
    report = env.reconcile()
    assert report.rounds == 2
    assert "Redis.test.promisebot.io/default/app-db resource.configure succeeded (created)" in runs(report)
    assert "dev/resources/default/redis/app-db/instance/5058f/thing.yaml" in env.files()
    again = env.reconcile()
    assert again.outcomes == [] and again.commits == {} and again.rounds == 1


def test_reconcile_resources_label_reruns_every_request_once_per_appearance(env):
    env.write("promises/redis.yaml", promise("redis", promise_configure="true"))
    env.write("requests/r1.yaml", request("Redis", "r1", {"a": 1}))
    env.write("requests/r2.yaml", request("Redis", "r2", {"a": 2}))
    env.commit("install")
    env.reconcile()
    label = {"kratix.io/reconcile-resources": "true"}
    expected = [f"{Ref('Redis.test.promisebot.io', n, 'default')} resource.configure succeeded "
                "(Promise reconcile-resources)" for n in ("r1", "r2")]

    env.write("promises/redis.yaml", promise("redis", promise_configure="true", labels=label))
    env.commit("reconcile resources")
    assert runs(env.reconcile()) == expected  # the requests only, not the Promise's workflow
    env.commit("unrelated")
    assert env.reconcile().outcomes == []  # the label left in place does not run them again
    assert env.reconcile(full=True).outcomes == []

    env.write("promises/redis.yaml", promise("redis", promise_configure="true"))
    env.commit("label removed")
    assert env.reconcile().outcomes == []
    env.write("promises/redis.yaml", promise("redis", promise_configure="true", labels=label))
    env.commit("label added again")
    assert runs(env.reconcile()) == expected


def test_manual_reconciliation_runs_again_when_the_label_is_added_again(env):
    manual = {"kratix.io/manual-reconciliation": "true"}
    env.write("promises/redis.yaml", promise("redis"))
    env.write("requests/r1.yaml", request("Redis", "r1", labels=manual))
    env.commit("created with the label")
    assert runs(env.reconcile()) == [f"{REF} resource.configure succeeded (created)"]
    assert env.reconcile(full=True).outcomes == []  # the creation run answered the label
    for attempt in ("first", "second"):
        env.write("requests/r1.yaml", request("Redis", "r1"))
        env.commit(f"label removed ({attempt})")
        assert env.reconcile().outcomes == []
        env.write("requests/r1.yaml", request("Redis", "r1", labels=manual))
        env.commit(f"label added again ({attempt})")
        assert runs(env.reconcile()) == [f"{REF} resource.configure succeeded (manual reconciliation)"]


def test_unpausing_objects_without_configure_workflows_runs_nothing_and_clears_paused(env):
    env.write("promises/redis.yaml", promise("redis", configure=None, labels=PAUSED))
    env.write("requests/r1.yaml", request("Redis", "r1"))
    env.commit("installed paused")
    assert env.reconcile().outcomes == []
    assert reconciled(env, REF) == ("Unknown", "PausedReconciliation", "Paused")
    env.write("promises/redis.yaml", promise("redis", configure=None))
    env.commit("unpaused")
    assert env.reconcile().outcomes == []
    for ref in (Ref("Promise", "redis"), REF):
        rec = env.bookkeeping().get(ref)
        assert "pausedSeen" not in rec.data
        assert not any(c["type"] == "Reconciled" for c in rec.status.get("conditions") or [])
