"""The lifecycle of contract §4 as `reconcile` drives it, through the fake runner and real Git
repositories (no Docker): Promise install / update / delete (with its delete pipeline),
requests created / updated / deleted, requiredPromises, Destinations created / relabelled /
moved / deleted with cleanup, the three filepath modes, compound Promises, drift repair, and
incremental against full runs. The Docker tests (test_reconcile_lifecycle.py) keep what needs
real containers."""

from __future__ import annotations

import hashlib
import json
import subprocess

import pytest
from fake_runner import Exit, FakeRunner, spec
from reconcile_fixtures import (
    STATE_BRANCH,
    Clock,
    Env,
    destination,
    git,
    git_store,
    one_request_platform,
    pipeline,
    promise,
    request,
)

from bot.model.objects import Ref
from bot.model.records import dumps
from runners.base import PipelineJob

NS = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "redis-system"}}
REDIS = "Redis.test.promisebot.io"
REF = Ref(REDIS, "r1", "default")
R1 = "dev/resources/default/redis/r1/instance/5058f/redis.yaml"
R2 = "dev/resources/default/redis/r2/instance/5058f/redis.yaml"
STATIC = "dev/dependencies/redis/5058f/static/redis-dependencies.yaml"
SETUP = "dev/dependencies/redis/setup/5058f/op.yaml"
CANARIES = {"dev/dependencies/kratix-canary-namespace.yaml", "dev/resources/kratix-canary-configmap.yaml"}


def redis_outputs(job: PipelineJob) -> dict[str, bytes]:
    """The promise workflow writes an operator; a request's writes its size (as read from object.yaml)."""
    if job.wtype == "promise":
        return {"op.yaml": b"kind: Operator\n"}
    return {"redis.yaml": f"size: {spec(job).get('size')}\n".encode()}


def redis_promise(**kw):
    return promise("redis", dependencies=[NS], promise_configure="true", **kw)


def with_promise_delete(body):
    body["spec"]["workflows"].setdefault("promise", {})["delete"] = [pipeline("teardown", "true")]
    return body


def runs(report) -> list[str]:
    return sorted(f"{o.task.ref} {o.task.wtype}.{o.task.action} {o.state} ({o.task.reason})" for o in report.outcomes)


def cond(rec, ctype: str) -> dict | None:
    return next((c for c in rec.status.get("conditions") or [] if c["type"] == ctype), None)


@pytest.fixture
def env(tmp_path):
    e = Env(tmp_path, runner=FakeRunner(outputs={"redis": redis_outputs}))
    e.write("destinations/dev.yaml", destination("dev", {"env": "dev"}))
    e.write("promises/redis.yaml", redis_promise())
    return e


def nothing_happens(env: Env, **kwargs) -> None:
    report = env.reconcile(**kwargs)
    assert report.outcomes == [] and report.commits == {} and report.bookkeeping_commit is None


# -- Promises and requests -----------------------------------------------------------------


def test_install_create_update_delete_idempotent(env):
    env.write("requests/r1.yaml", request("Redis", "r1", {"size": 1}))
    env.commit("install")
    commits = env.store_commits()
    report = env.reconcile()
    assert runs(report) == ["Promise/redis promise.configure succeeded (created)",
                            f"{REF} resource.configure succeeded (created)"]
    files = env.files()
    assert env.store_commits() == commits + 1  # Promise, request and canaries: one commit
    assert {STATIC, SETUP, R1, *CANARIES} <= set(files)
    assert "redis-system" in files[STATIC] and files[R1] == "size: 1\n"

    # The same event twice, and a full reconcile of the unchanged platform: nothing runs or commits.
    state_commits = env.state_branch_commits()
    nothing_happens(env)
    nothing_happens(env, full=True)
    assert env.state_branch_commits() == state_commits

    # A label-only edit re-runs nothing (§1.7); a spec change re-runs the request only.
    env.write("requests/r1.yaml", request("Redis", "r1", {"size": 1}, labels={"team": "a"}))
    env.commit("label")
    assert env.reconcile().outcomes == []
    env.write("requests/r1.yaml", request("Redis", "r1", {"size": 3}))
    env.commit("resize")
    report = env.reconcile()
    assert runs(report) == [f"{REF} resource.configure succeeded (spec changed)"]
    assert env.files()[R1] == "size: 3\n"
    rec = env.bookkeeping().get(REF)
    assert rec.status["message"] == "Resource requested"
    assert [(p.destination, p.commit) for p in rec.placements] == [("dev", report.commits["GitStateStore/state"])]
    assert rec.body["spec"] == {"size": 3} and rec.promise == "redis" and rec.file == "requests/r1.yaml"

    env.remove("requests/r1.yaml")
    env.commit("delete")
    assert env.reconcile().outcomes == []  # no delete pipeline: the files just go
    assert R1 not in env.files() and STATIC in env.files()
    assert env.bookkeeping().get(REF) is None


def test_promise_update_reruns_the_promise_and_every_request(env):
    env.write("requests/r1.yaml", request("Redis", "r1", {"size": 1}))
    env.write("requests/r2.yaml", request("Redis", "r2", {"size": 2}))
    env.commit("install")
    env.reconcile()
    env.write("promises/redis.yaml", redis_promise(selectors={"env": "dev"}))
    env.commit("Promise spec changed")
    assert runs(env.reconcile()) == ["Promise/redis promise.configure succeeded (spec changed)",
                                     f"{REF} resource.configure succeeded (spec changed)",
                                     f"{Ref(REDIS, 'r2', 'default')} resource.configure succeeded (spec changed)"]
    nothing_happens(env)


def test_request_delete_pipeline_runs_first_and_its_failure_keeps_the_files(env):
    env.write("promises/redis.yaml", redis_promise(delete="cleanup"))
    env.write("requests/r1.yaml", request("Redis", "r1", {"size": 1}))
    env.commit("install")
    env.reconcile()

    def failing_delete(job):
        if job.action == "delete":
            raise Exit(3, "cannot delete\n")
        return redis_outputs(job)

    env.runner.outputs["redis"] = failing_delete
    env.remove("requests/r1.yaml")
    env.commit("delete r1")
    assert runs(env.reconcile()) == [f"{REF} resource.delete failed (deleted)"]
    assert R1 in env.files()  # §4.5: the files stay until the delete pipeline succeeds
    rec = env.bookkeeping().get(REF)
    assert cond(rec, "DeleteWorkflowCompleted")["status"] == "False"
    assert "cannot delete" in rec.logs[0]["log"]
    assert runs(env.reconcile()) == [f"{REF} resource.delete failed (deleted)"]  # retried on every event

    env.runner.outputs["redis"] = redis_outputs
    env.commit("any event")
    assert runs(env.reconcile()) == [f"{REF} resource.delete succeeded (deleted)"]
    assert R1 not in env.files() and env.bookkeeping().get(REF) is None


def test_a_failing_request_does_not_block_others_and_keeps_its_outputs(env):
    def size_9_fails(job):
        if spec(job).get("size") == 9:
            raise Exit(1, "boom\n")
        return redis_outputs(job)

    env.runner.outputs["redis"] = size_9_fails
    env.write("requests/r1.yaml", request("Redis", "r1", {"size": 1}))
    env.commit("install")
    env.reconcile()
    env.write("requests/r1.yaml", request("Redis", "r1", {"size": 9}))
    env.write("requests/r2.yaml", request("Redis", "r2", {"size": 2}))
    env.commit("break r1, add r2")
    assert runs(env.reconcile()) == [f"{REF} resource.configure failed (spec changed)",
                                     f"{Ref(REDIS, 'r2', 'default')} resource.configure succeeded (created)"]
    files = env.files()
    assert files[R1] == "size: 1\n" and R2 in files  # the previous output is kept
    rec = env.bookkeeping().get(REF)
    assert cond(rec, "ConfigureWorkflowCompleted")["reason"] == "ConfigureWorkflowFailed"
    assert "boom" in rec.logs[0]["log"]
    nothing_happens(env)  # recorded, not retried on every event


def test_promise_delete_runs_its_delete_pipeline_then_the_requests_then_removes_everything(env):
    env.write("promises/redis.yaml", with_promise_delete(redis_promise(delete="cleanup")))
    env.write("requests/r1.yaml", request("Redis", "r1", {"size": 1}))
    env.commit("install")
    env.reconcile()

    def promise_delete_fails(job):
        if job.action == "delete" and job.wtype == "promise":
            raise Exit(1, "no\n")
        return redis_outputs(job)

    env.runner.outputs["redis"] = promise_delete_fails
    env.remove("promises/redis.yaml")
    env.commit("delete the Promise")
    assert runs(env.reconcile()) == ["Promise/redis promise.delete failed (deleted)"]
    assert {STATIC, SETUP, R1} <= set(env.files())  # §4.3: the Promise and its requests stay
    assert cond(env.bookkeeping().get(Ref("Promise", "redis")), "DeleteWorkflowCompleted")["status"] == "False"

    env.runner.outputs["redis"] = redis_outputs
    env.commit("any event")
    assert runs(env.reconcile()) == ["Promise/redis promise.delete succeeded (deleted)",
                                     f"{REF} resource.delete succeeded (deleted)"]
    assert not [p for p in env.files() if "redis" in p]
    bk = env.bookkeeping()
    assert bk.get(Ref("Promise", "redis")) is None and bk.get(REF) is None


def test_required_promises_block_until_fulfilled(env):
    env.write("promises/app.yaml", promise("app", required=[{"name": "redis", "version": "v2"}]))
    env.write("requests/a1.yaml", request("App", "a1"))
    env.commit("app needs redis v2")
    report = env.reconcile()
    assert not any("a1" in r or "Promise/app" in r for r in runs(report))
    bk = env.bookkeeping()
    assert cond(bk.get(Ref("App.test.promisebot.io", "a1", "default")), "PromiseAvailable")["reason"] == \
        "PromiseRequirementsNotInstalled"
    app = bk.get(Ref("Promise", "app"))
    assert app.status["requiredPromises"][0]["state"] == "Requirement not installed at the specified version"
    assert cond(app, "RequirementsFulfilled")["status"] == "False"

    env.write("promises/redis.yaml", redis_promise(labels={"kratix.io/promise-version": "v2"}))
    env.commit("redis v2")
    assert "App.test.promisebot.io/default/a1 resource.configure succeeded (created)" in runs(env.reconcile())
    assert "dev/resources/default/app/a1/instance/5058f/thing.yaml" in env.files()


def test_a_promise_and_its_requests_pushed_together_are_done_in_one_reconcile(env):
    env.runner.metadata["redis"] = lambda job: {"status.yaml": b"endpoint: redis.local\n"}
    env.write("requests/r1.yaml", request("Redis", "r1", {"size": 1}))
    env.commit("install")
    report = env.reconcile()
    assert len(report.outcomes) == 2 and report.rounds == 1
    rec = env.bookkeeping().get(REF)
    assert rec.status["endpoint"] == "redis.local"  # the pipeline's status.yaml (§1.5b)
    assert cond(rec, "Reconciled")["status"] == "True"


def test_plan_writes_nothing(env):
    env.write("requests/r1.yaml", request("Redis", "r1", {"size": 1}))
    env.commit("install")
    commits = env.store_commits()
    report = env.reconcile(dry_run=True)
    assert report.changed and {R1, STATIC} <= {d.path for b in report.batches for d in b.diff}
    assert env.store_commits() == commits and env.state_branch_commits() == 0


# -- Destinations and filepath modes ----------------------------------------------------------


def test_destinations_created_relabelled_moved_and_deleted(env):
    env.write("promises/redis.yaml", redis_promise(selectors={"env": "dev"}))
    env.write("requests/r1.yaml", request("Redis", "r1", {"size": 1}))
    env.commit("install")
    env.reconcile()
    # Created: canaries and every matching dependency, not the request (placements are sticky).
    env.write("destinations/dev2.yaml", destination("dev2", {"env": "dev"}, cleanup="all"))
    env.write("destinations/keep.yaml", destination("keep", {"env": "dev"}))
    env.commit("add dev2 and keep")
    assert env.reconcile().outcomes == []
    files = env.files()
    for d in ("dev2", "keep"):
        assert {f"{d}/dependencies/redis/5058f/static/redis-dependencies.yaml",
                f"{d}/dependencies/redis/setup/5058f/op.yaml", f"{d}/dependencies/kratix-canary-namespace.yaml"} <= set(files)
        assert not any(p.startswith(f"{d}/resources/default") for p in files)
    # Relabelled away: its dependencies stay, misplaced (§2.3).
    env.write("destinations/keep.yaml", destination("keep", {"env": "other"}))
    env.commit("relabel keep")
    env.reconcile()
    assert "keep/dependencies/redis/5058f/static/redis-dependencies.yaml" in env.files()
    assert any(p.destination == "keep" and p.misplaced for p in env.bookkeeping().get(Ref("Promise", "redis")).placements)
    # Moved (its path changed): the files of its placements move.
    env.write("destinations/dev.yaml", destination("dev", {"env": "dev"}, path="moved"))
    env.commit("move dev")
    env.reconcile()
    files = env.files()
    assert not any(p.startswith(("dev/resources/default/", "dev/dependencies/redis/")) for p in files)
    assert {R1.replace("dev/", "moved/", 1), STATIC.replace("dev/", "moved/", 1)} <= set(files)
    assert {c.replace("dev/", "moved/", 1) for c in CANARIES} <= set(files)
    assert not CANARIES & set(files), "the canaries moved with the Destination"
    assert env.bookkeeping().get(Ref("Destination", "dev")).body["spec"]["path"] == "moved"
    # Deleted: cleanup all removes its files and canaries, cleanup none leaves them.
    env.remove("destinations/dev2.yaml")
    env.remove("destinations/keep.yaml")
    env.commit("delete dev2 and keep")
    env.reconcile()
    files = env.files()
    assert not any(p.startswith("dev2/") for p in files)
    assert "keep/dependencies/redis/5058f/static/redis-dependencies.yaml" in files
    bk = env.bookkeeping()
    assert bk.get(Ref("Destination", "dev2")) is None and bk.get(Ref("Destination", "keep")) is None
    nothing_happens(env, full=True)


def test_aggregated_yaml_and_none_modes(env):
    env.write("destinations/dev.yaml", destination("agg", {"mode": "agg"}, mode="aggregatedYAML", cleanup="all"),
              destination("flat", {"mode": "flat"}, mode="none"))
    env.write("promises/redis.yaml", redis_promise(selectors={"mode": "agg"}))
    env.write("promises/flat.yaml", promise("flat", selectors={"mode": "flat"}))
    env.write("requests/r1.yaml", request("Redis", "r1", {"size": 1}), request("Redis", "r2", {"size": 2}))
    env.write("requests/f1.yaml", request("Flat", "f1"))
    env.commit("install")
    env.reconcile()
    files = env.files()
    aggregated = files["agg/aggregated.yaml"]
    assert aggregated.count("\n---\n") == 3  # the namespace, the operator, r1 and r2
    assert "size: 1" in aggregated and "size: 2" in aggregated and "kind: Operator" in aggregated
    assert {"agg/kratix-canary-namespace.yaml", "agg/kratix-canary-configmap.yaml"} <= set(files)
    assert files["flat/thing.yaml"] == "kind: Thing\nname: f1\n"
    (state,) = [p for p in files if p.startswith("flat/.kratix/default-")]
    assert "flat/thing.yaml" in files[state]

    env.write("requests/r1.yaml", request("Redis", "r1", {"size": 1}))
    env.remove("requests/f1.yaml")
    env.commit("delete r2 and f1")
    env.reconcile()
    files = env.files()
    assert "size: 2" not in files["agg/aggregated.yaml"] and "size: 1" in files["agg/aggregated.yaml"]
    assert "flat/thing.yaml" not in files and state not in files
    nothing_happens(env, full=True)

    env.remove("destinations/dev.yaml")
    env.write("destinations/dev.yaml", destination("flat", {"mode": "flat"}, mode="none"))
    env.commit("delete agg (cleanup all)")
    env.reconcile()
    assert not any(p.startswith("agg/") for p in env.files())


def test_destination_selectors_written_by_a_pipeline(env):
    env.write("destinations/prod.yaml", destination("prod", {"env": "prod"}))
    env.write("promises/redis.yaml", redis_promise(selectors={"env": "dev"}))
    env.runner.outputs["redis"] = lambda job: {"app.yaml": b"kind: App\n", "db/db.yaml": b"kind: Db\n"}
    env.runner.metadata["redis"] = lambda job: {
        "destination-selectors.yaml": b"- directory: db\n  matchLabels:\n    env: prod\n"} if job.wtype == "resource" else {}
    env.write("requests/r1.yaml", request("Redis", "r1"))
    env.commit("install")
    env.reconcile()
    gid = hashlib.md5(b"db").hexdigest()[:5]  # a group's id: the md5 of its directory
    resources = sorted(p for p in env.files() if "/resources/default/" in p)
    assert resources == ["dev/resources/default/redis/r1/instance/5058f/app.yaml",
                         f"prod/resources/default/redis/r1/instance/{gid}/db/db.yaml"]


# -- compound Promises, drift, incremental and full runs -----------------------------------------


def test_compound_promise_outputs_are_reconciled_without_loop(env):
    env.write("stores/self.yaml", git_store("self", "."))
    env.write("destinations/platform.yaml",
              destination("platform", {"environment": "platform"}, path="generated", store="self"))
    env.write("promises/redis.yaml", redis_promise(selectors={"env": "dev"}))
    env.write("promises/app.yaml", promise("app", selectors={"environment": "platform"}))
    sub = request("Redis", "app-db", {"size": 1})
    env.runner.outputs["app"] = lambda job: {"db.yaml": json.dumps(sub).encode()}
    env.write("requests/a1.yaml", request("App", "a1"))
    env.commit("install")
    report = env.reconcile()
    assert report.rounds == 2
    assert f"{Ref(REDIS, 'app-db', 'default')} resource.configure succeeded (created)" in runs(report)
    assert "dev/resources/default/redis/app-db/instance/5058f/redis.yaml" in env.files()
    again = env.reconcile()
    assert again.outcomes == [] and again.commits == {} and again.rounds == 1


def hand_edit(env: Env, tmp, edits: dict[str, str | None]) -> None:
    """Change the state store behind promisebot's back (None: delete the file)."""
    work = tmp / "hand"
    subprocess.run(["git", "clone", "-q", str(env.state), str(work)], check=True, capture_output=True)
    for path, text in edits.items():
        if text is None:
            (work / path).unlink()
        else:
            (work / path).write_text(text)
    git(work, "-c", "user.name=x", "-c", "user.email=x@x", "commit", "-qam", "by hand")
    git(work, "push", "-q", "origin", "main")


def test_full_reconcile_repairs_drift(env, tmp_path):
    env.write("requests/r1.yaml", request("Redis", "r1", {"size": 1}))
    env.commit("install")
    env.reconcile()
    files = env.files()
    hand_edit(env, tmp_path, {R1: "size: 99\n", STATIC: None, "dev/resources/kratix-canary-configmap.yaml": None})
    nothing_happens(env)  # an incremental run does not look at the stores
    report = env.reconcile(full=True)
    assert report.outcomes == [] and report.commits
    assert env.files() == files
    nothing_happens(env, full=True)  # no drift: no commit anywhere


def test_incremental_and_full_runs(env, monkeypatch):
    clock = Clock(monkeypatch)
    env.write("requests/r1.yaml", request("Redis", "r1", {"size": 1}))
    first = env.commit("install")
    report = env.reconcile()
    assert report.full and report.from_rev is None  # no previous run: full
    env.write("requests/r2.yaml", request("Redis", "r2", {"size": 2}))
    second = env.commit("add r2")
    report = env.reconcile()
    assert not report.full and report.from_rev == first and report.to_rev == second
    assert runs(report) == [f"{Ref(REDIS, 'r2', 'default')} resource.configure succeeded (created)"]
    # An explicit range is reconciled as asked; a full run compares every cache key.
    env.write("requests/r1.yaml", request("Redis", "r1", {"size": 5}))
    third = env.commit("resize r1")
    report = env.reconcile(from_rev=second, to_rev=third)
    assert (report.from_rev, report.to_rev, report.full) == (second, third, False)
    assert runs(report) == [f"{REF} resource.configure succeeded (spec changed)"]
    assert env.reconcile(full=True).full
    # The periodic reconcile (reconcileInterval, §4.7) is full and re-runs every workflow.
    (env.platform / ".promisebot.yaml").write_text("reconcileInterval: 1s\n")
    env.commit("short interval")
    env.reconcile()
    clock.advance(2)
    env.commit("later")
    report = env.reconcile()
    assert report.full
    assert {o.task.reason for o in report.outcomes} == {"periodic reconcile"} and len(report.outcomes) == 3
    assert env.bookkeeping().meta["lastFullReconcile"]


def test_records_of_the_previous_format_are_read(env):
    """Records written before the record fields were typed kept them in one "data" object: a
    platform reconciled, then every record rewritten that way, reconciles to nothing."""
    env.write("destinations/dev.yaml", destination("dev", {}))  # a Destination without labels
    env.write("promises/redis.yaml", redis_promise())
    env.write("requests/r1.yaml", request("Redis", "r1", {"size": 1}, labels={"kratix.io/manual-reconciliation": "true"}))
    env.commit("install")
    env.reconcile()
    bk = env.bookkeeping()
    new_keys = ("body", "digests", "file", "invalid", "labels", "manualSeen", "pausedSeen", "promise",
                "reconcileResourcesSeen", "requestKind", "storeBody")
    for ref in bk.refs():
        record = bk.get(ref).to_json()
        record["data"] = {k: record.pop(k) for k in new_keys if k in record}
        bk._staged[f"objects/{ref.kind}/{ref.namespace or '_'}/{ref.name}.json"] = dumps(record)
    assert bk.commit("as the previous version wrote them")
    old = env.bookkeeping()
    assert old.get(Ref("Destination", "dev")).labels == {} and old.get(REF).manual_seen and old.get(REF).digests
    assert '"data"' in git(env.platform, "show", f"{STATE_BRANCH}:objects/Destination/_/dev.json")
    report = env.reconcile(full=True)
    assert report.outcomes == [] and report.commits == {}  # nothing forgotten (labels, digests, the manual note)
    assert '"data"' not in git(env.platform, "show", f"{STATE_BRANCH}:objects/Destination/_/dev.json")
    nothing_happens(env, full=True)


def test_rerun_runs_a_requests_workflow_again_once_without_a_commit(tmp_path):
    runner = FakeRunner()
    env = one_request_platform(tmp_path, runner=runner)
    env.reconcile()
    assert ("redis", "r1", "resource", "configure") in [c[:4] for c in runner.calls]
    env.reconcile()
    before = len(runner.calls)
    head = git(env.platform, "rev-parse", "HEAD")

    report = env.reconcile(rerun=[REF])
    runs = [(o.task.ref, o.task.reason) for o in report.outcomes]
    assert runs == [(REF, "manual reconciliation")]
    assert len(runner.calls) == before + 1
    assert git(env.platform, "rev-parse", "HEAD") == head, "no commit to the platform repo"
    assert not env.reconcile().outcomes, "asked once, run once"
    dry = env.reconcile(rerun=[REF], dry_run=True)
    assert [o.task.ref for o in dry.outcomes] == [REF], "a plan can run it again too"


def test_an_incremental_run_serves_configmaps_from_files_it_did_not_read(tmp_path):
    """A pipeline whose rbac grants ConfigMaps gets the platform's ConfigMaps in its Kubernetes
    API's view even when only a request's file changed (the run's snapshot is partial)."""
    seen: list[list[str]] = []

    class Recording(FakeRunner):
        def run(self, job: PipelineJob):
            seen.append(sorted(m["metadata"]["name"] for m in (job.kube.manifests if job.kube else ())))
            return super().run(job)

    env = Env(tmp_path, runner=Recording())
    body = promise("redis")
    body["spec"]["workflows"]["resource"]["configure"][0]["spec"]["rbac"] = {"permissions": [
        {"apiGroups": [""], "verbs": ["get"], "resources": ["configmaps"]}]}
    env.write("destinations/dev.yaml", destination("dev"))
    env.write("promises/redis.yaml", body)
    env.write("config/settings.yaml", {"apiVersion": "v1", "kind": "ConfigMap",
                                       "metadata": {"name": "settings", "namespace": "default"},
                                       "data": {"tier": "gold"}})
    env.write("requests/r1.yaml", request("Redis", "r1"))
    env.commit("install")
    env.reconcile()
    env.write("requests/r2.yaml", request("Redis", "r2"))
    env.commit("another request")
    report = env.reconcile()
    assert not report.full, "an incremental run"
    assert seen[-1] == ["settings"], seen
