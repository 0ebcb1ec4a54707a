"""What changed between two platform snapshots (contract §1.7, §4.2): the candidates of an
incremental reconcile. Whether they re-run is bot.reconcile.decide's (tests/reconcile/test_decide.py);
the Kratix hash is bot.kratix.spechash's (tests/kratix/test_spechash.py)."""

from __future__ import annotations

import copy

from bot.model.objects import Destination, Platform, Promise, Ref, ResourceRequest, Source, StateStore
from bot.reconcile.changes import ObjectChange, PlatformChanges, detect_changes

REQ_KIND = "Redis.marketplace.kratix.io"


def promise(name: str = "redis", spec: dict | None = None, labels: dict | None = None) -> Promise:
    body = {
        "apiVersion": "platform.kratix.io/v1alpha1",
        "kind": "Promise",
        "metadata": {"name": name, "labels": dict(labels or {})},
        "spec": spec if spec is not None else {"dependencies": []},
    }
    return Promise(name=name, body=body, source=Source(f"promises/{name}.yaml"))


def request(
    name: str = "my-redis", spec: dict | None = None, labels: dict | None = None, promise_name: str = "redis"
) -> ResourceRequest:
    body = {
        "apiVersion": "marketplace.kratix.io/v1alpha1",
        "kind": "Redis",
        "metadata": {"name": name, "namespace": "default", "labels": dict(labels or {})},
        "spec": spec if spec is not None else {"size": "small"},
    }
    return ResourceRequest(
        promise=promise_name,
        api_version="marketplace.kratix.io/v1alpha1",
        kind="Redis",
        group="marketplace.kratix.io",
        name=name,
        namespace="default",
        body=body,
        source=Source(f"requests/{name}.yaml"),
    )


def destination(name: str = "worker-1", labels: dict | None = None, path: str = "worker-1") -> Destination:
    body = {"metadata": {"name": name, "labels": dict(labels or {})}, "spec": {"path": path}}
    return Destination(
        name, body, Source(f"destinations/{name}.yaml"), dict(labels or {}), path, "GitStateStore", "default"
    )


def store(name: str = "default", url: str = "file:///tmp/state") -> StateStore:
    body = {"metadata": {"name": name}, "spec": {"url": url}}
    return StateStore("GitStateStore", name, body, Source("stores.yaml"), "", {"url": url})


def platform(*objects) -> Platform:
    p = Platform()
    for obj in objects:
        if isinstance(obj, Promise):
            p.promises[obj.name] = obj
        elif isinstance(obj, ResourceRequest):
            p.requests[obj.ref] = obj
        elif isinstance(obj, Destination):
            p.destinations[obj.name] = obj
        else:
            p.state_stores[obj.ref] = obj
    return p


def relabel(obj, **labels: str):
    new = copy.deepcopy(obj)
    new.body["metadata"]["labels"].update(labels)
    if isinstance(new, Destination):
        new.labels.update(labels)
    return new


def unlabel(obj, label: str):
    new = copy.deepcopy(obj)
    del new.body["metadata"]["labels"][label]
    return new


def respec(obj, spec: dict):
    new = copy.deepcopy(obj)
    new.body["spec"] = spec
    return new


def only(changes: list[ObjectChange]) -> ObjectChange:
    assert len(changes) == 1, changes
    return changes[0]


P = promise()
R = request()
R_REF = Ref(REQ_KIND, "my-redis", "default")
PAUSED = {"kratix.io/paused": "true"}


# --- creates and deletes of each kind -----------------------------------------------------


def test_everything_is_created_from_an_empty_platform():
    ch = detect_changes(None, platform(P, R, destination(), store()))
    assert only(ch.promises) == ObjectChange(Ref("Promise", "redis"), "created")
    assert only(ch.requests) == ObjectChange(R_REF, "created")
    assert only(ch.destinations) == ObjectChange(Ref("Destination", "worker-1"), "created")
    assert only(ch.state_stores) == ObjectChange(Ref("GitStateStore", "default"), "created")
    assert ch.affected_requests == [R_REF]  # its Promise was created too
    assert ch.refs() == {P.ref, R_REF, Ref("Destination", "worker-1"), Ref("GitStateStore", "default")}


def test_everything_is_deleted_into_an_empty_platform():
    ch = detect_changes(platform(P, R, destination(), store()), None)
    assert [c.change for c in ch.promises + ch.requests + ch.destinations + ch.state_stores] == [
        "deleted"
    ] * 4
    assert ch.affected_requests == []
    assert ch.refs() == {P.ref, R_REF, Ref("Destination", "worker-1"), Ref("GitStateStore", "default")}


def test_unchanged_platform_has_no_changes():
    before = platform(P, R, destination(), store())
    ch = detect_changes(before, copy.deepcopy(before))
    assert not ch
    assert ch == PlatformChanges()
    assert ch.refs() == set()


def test_moving_an_object_to_another_file_is_not_a_change():
    moved = copy.deepcopy(R)
    moved.source = Source("elsewhere/my-redis.yaml", 12)
    assert not detect_changes(platform(P, R), platform(P, moved))


# --- §1.7 any edit is an update (whether it re-runs: test_decide.py) ------------------------


def test_label_only_edit_of_a_request_is_an_update():
    ch = detect_changes(platform(P, R), platform(P, relabel(R, team="a")))
    assert only(ch.requests) == ObjectChange(R_REF, "updated")
    assert ch.promises == [] and ch.affected_requests == []


def test_annotation_only_edit_of_a_promise_affects_no_request():
    annotated = copy.deepcopy(P)
    annotated.body["metadata"]["annotations"] = {"note": "x"}
    ch = detect_changes(platform(P, R), platform(annotated, R))
    assert only(ch.promises) == ObjectChange(P.ref, "updated")
    assert ch.requests == [] and ch.affected_requests == []


def test_request_spec_edit_is_an_update():
    ch = detect_changes(platform(P, R), platform(P, respec(R, {"size": "large"})))
    assert only(ch.requests) == ObjectChange(R_REF, "updated")
    assert ch.promises == [] and ch.affected_requests == []


def test_destination_relabel_is_an_update_for_scheduling():
    d = destination(labels={"env": "dev"})
    ch = detect_changes(platform(d), platform(relabel(d, env="prod")))
    assert only(ch.destinations) == ObjectChange(d.ref, "updated")


def test_state_store_spec_change_is_an_update():
    s = store()
    new = copy.deepcopy(s)
    new.body["spec"]["url"] = "file:///elsewhere"
    assert only(detect_changes(platform(s), platform(new)).state_stores) == ObjectChange(s.ref, "updated")


# --- §4.2 a Promise change affects its requests ------------------------------------------


def test_promise_spec_change_affects_every_request_of_it():
    other = request("other", promise_name="postgres")
    r2 = request("second")
    pg = promise("postgres")
    before = platform(P, R, r2, pg, other)
    after = platform(respec(P, {"dependencies": [{"kind": "Namespace"}]}), R, r2, pg, other)
    ch = detect_changes(before, after)
    assert only(ch.promises) == ObjectChange(P.ref, "updated")
    assert ch.requests == []
    assert ch.affected_requests == [R_REF, Ref(REQ_KIND, "second", "default")]
    assert other.ref not in ch.refs()


def test_promise_label_edits_affect_no_request():
    # the requests of a paused Promise, or of one with a pending reconcile-resources label, are
    # looked at by the phases anyway (bot.reconcile.phases); a plain relabel concerns none.
    for labels in ({"owner": "x"}, {"kratix.io/reconcile-resources": "true"}, PAUSED,
                   {"kratix.io/manual-reconciliation": "true"}):
        ch = detect_changes(platform(P, R), platform(relabel(P, **labels), R))
        assert only(ch.promises) == ObjectChange(P.ref, "updated")
        assert ch.requests == [] and ch.affected_requests == [], labels


def test_promise_created_affects_requests_that_waited_for_it():
    before = platform(R)
    waiting = detect_changes(None, before)
    assert only(waiting.requests) == ObjectChange(R_REF, "created") and waiting.affected_requests == []
    ch = detect_changes(before, platform(P, R))
    assert only(ch.promises) == ObjectChange(P.ref, "created")
    assert ch.requests == [] and ch.affected_requests == [R_REF]


# --- §4.7 labels: an edit like any other --------------------------------------------------


def test_manual_reconciliation_label_added_is_an_update_and_left_in_place_no_change():
    manual = relabel(R, **{"kratix.io/manual-reconciliation": "true"})
    assert only(detect_changes(platform(P, R), platform(P, manual)).requests) == ObjectChange(R_REF, "updated")
    assert not detect_changes(platform(P, manual), platform(P, copy.deepcopy(manual)))


def test_changes_of_paused_objects_are_listed():
    paused = relabel(R, **PAUSED)
    ch = detect_changes(platform(P, paused), platform(P, respec(paused, {"size": "large"})))
    assert only(ch.requests) == ObjectChange(R_REF, "updated")
    unpaused = detect_changes(platform(P, paused), platform(P, unlabel(paused, "kratix.io/paused")))
    assert only(unpaused.requests) == ObjectChange(R_REF, "updated")


def test_deleting_a_paused_request_is_listed():
    # its delete workflow runs all the same (a deliberate deviation, docs/reconciler.md)
    ch = detect_changes(platform(P, relabel(R, **PAUSED)), platform(P))
    assert only(ch.requests) == ObjectChange(R_REF, "deleted")
    assert R_REF in ch.refs()
