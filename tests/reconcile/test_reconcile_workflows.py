"""End to end on the real Docker engine: workflow control (suspend, retryAfter: contract
§1.5c) as a container writes it to /kratix/metadata/workflow-control.yaml. The engine's handling
of it, the labels of §4.7 (paused, manual reconciliation, reconcile-resources) and compound
Promises (§4.6) are tested without Docker in test_engine_workflows.py and test_engine_lifecycle.py."""

from __future__ import annotations

import time

import pytest
from reconcile_fixtures import Env, destination, promise, request

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
