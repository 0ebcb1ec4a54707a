"""Change detection and re-run triggers of contract §1.7 and §4.1-§4.7, and the Kratix-compatible
`kratix.io/hash`."""

from __future__ import annotations

import copy
import hashlib

import pytest

from bot.model.objects import Destination, Platform, Promise, Ref, ResourceRequest, Source, StateStore
from bot.reconcile.changes import (
    ObjectChange,
    PlatformChanges,
    detect_changes,
    due_for_periodic,
    go_json,
    spec_hash,
)

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


# --- creates and deletes of each kind -----------------------------------------------------


def test_everything_is_created_from_an_empty_platform():
    ch = detect_changes(None, platform(P, R, destination(), store()))
    assert only(ch.promises) == ObjectChange(Ref("Promise", "redis"), "created", True, "created")
    assert only(ch.requests) == ObjectChange(R_REF, "created", True, "created")
    assert only(ch.destinations) == ObjectChange(Ref("Destination", "worker-1"), "created", False, "created")
    assert only(ch.state_stores) == ObjectChange(Ref("GitStateStore", "default"), "created", False, "created")
    assert ch.promises_to_run() == [P.ref] and ch.requests_to_run() == [R_REF]


def test_everything_is_deleted_into_an_empty_platform():
    ch = detect_changes(platform(P, R, destination(), store()), None)
    assert [c.change for c in ch.promises + ch.requests + ch.destinations + ch.state_stores] == [
        "deleted"
    ] * 4
    assert ch.promises_to_delete() == [P.ref] and ch.requests_to_delete() == [R_REF]
    assert ch.promises_to_run() == [] and ch.requests_to_run() == []


def test_unchanged_platform_has_no_changes():
    before = platform(P, R, destination(), store())
    ch = detect_changes(before, copy.deepcopy(before))
    assert not ch
    assert ch == PlatformChanges()


def test_moving_an_object_to_another_file_is_not_a_change():
    moved = copy.deepcopy(R)
    moved.source = Source("elsewhere/my-redis.yaml", 12)
    assert not detect_changes(platform(P, R), platform(P, moved))


# --- §1.7 spec vs metadata ----------------------------------------------------------------


def test_label_only_edit_of_a_request_updates_without_rerun():
    ch = detect_changes(platform(P, R), platform(P, relabel(R, team="a")))
    assert only(ch.requests) == ObjectChange(R_REF, "updated", False, "metadata changed")
    assert ch.requests_to_run() == []


def test_annotation_only_edit_of_a_promise_does_not_rerun():
    annotated = copy.deepcopy(P)
    annotated.body["metadata"]["annotations"] = {"note": "x"}
    ch = detect_changes(platform(P, R), platform(annotated, R))
    assert only(ch.promises) == ObjectChange(P.ref, "updated", False, "metadata changed")
    assert ch.requests == []


def test_request_spec_edit_reruns_it():
    ch = detect_changes(platform(P, R), platform(P, respec(R, {"size": "large"})))
    assert only(ch.requests) == ObjectChange(R_REF, "updated", True, "spec changed")
    assert ch.promises == []


def test_spec_and_label_edit_together_rerun():
    new = relabel(respec(R, {"size": "large"}), team="a")
    assert (
        only(detect_changes(platform(P, R), platform(P, new)).requests).reason
        == "spec changed; metadata changed"
    )


def test_destination_relabel_is_an_update_for_scheduling():
    d = destination(labels={"env": "dev"})
    ch = detect_changes(platform(d), platform(relabel(d, env="prod")))
    assert only(ch.destinations) == ObjectChange(d.ref, "updated", False, "metadata changed")


def test_state_store_spec_change_is_an_update():
    s = store()
    new = copy.deepcopy(s)
    new.body["spec"]["url"] = "file:///elsewhere"
    assert only(detect_changes(platform(s), platform(new)).state_stores).reason == "spec changed"


# --- §4.2 Promise spec change cascades ----------------------------------------------------


def test_promise_spec_change_reruns_promise_and_every_request_of_it():
    other = request("other", promise_name="postgres")
    r2 = request("second")
    pg = promise("postgres")
    before = platform(P, R, r2, pg, other)
    after = platform(respec(P, {"dependencies": [{"kind": "Namespace"}]}), R, r2, pg, other)
    ch = detect_changes(before, after)
    assert only(ch.promises) == ObjectChange(P.ref, "updated", True, "spec changed")
    assert ch.requests == [
        ObjectChange(R_REF, "unchanged", True, "Promise redis spec changed"),
        ObjectChange(Ref(REQ_KIND, "second", "default"), "unchanged", True, "Promise redis spec changed"),
    ]
    assert ch.requests_to_run() == [R_REF, Ref(REQ_KIND, "second", "default")]


def test_promise_label_only_edit_does_not_cascade():
    ch = detect_changes(platform(P, R), platform(relabel(P, owner="x"), R))
    assert ch.requests == [] and ch.promises_to_run() == []


def test_reconcile_resources_label_reruns_requests_only():
    ch = detect_changes(platform(P, R), platform(relabel(P, **{"kratix.io/reconcile-resources": "true"}), R))
    assert only(ch.promises).rerun is False
    assert only(ch.requests) == ObjectChange(
        R_REF, "unchanged", True, "Promise redis kratix.io/reconcile-resources"
    )


def test_promise_created_runs_requests_that_waited_for_it():
    before = platform(R)
    assert only(detect_changes(None, before).requests).reason == "created; waiting for Promise redis"
    assert detect_changes(None, before).requests_to_run() == []
    ch = detect_changes(before, platform(P, R))
    assert only(ch.requests) == ObjectChange(R_REF, "unchanged", True, "Promise redis created")


# --- §4.7 manual reconciliation -----------------------------------------------------------


def test_manual_reconciliation_label_reruns_when_added():
    manual = relabel(R, **{"kratix.io/manual-reconciliation": "true"})
    ch = detect_changes(platform(P, R), platform(P, manual))
    assert only(ch.requests) == ObjectChange(
        R_REF, "updated", True, "metadata changed; manual reconciliation"
    )


def test_manual_reconciliation_label_left_in_place_does_not_rerun_again():
    manual = relabel(R, **{"kratix.io/manual-reconciliation": "true"})
    assert not detect_changes(platform(P, manual), platform(P, copy.deepcopy(manual)))


def test_manual_reconciliation_of_a_promise_does_not_cascade():
    manual = relabel(P, **{"kratix.io/manual-reconciliation": "true"})
    ch = detect_changes(platform(P, R), platform(manual, R))
    assert ch.promises_to_run() == [P.ref] and ch.requests == []


# --- §4.1/§4.4 paused ---------------------------------------------------------------------


PAUSED = {"kratix.io/paused": "true"}


def test_paused_request_does_not_rerun_on_spec_change():
    before = relabel(R, **PAUSED)
    ch = detect_changes(platform(P, before), platform(P, respec(before, {"size": "large"})))
    assert only(ch.requests) == ObjectChange(R_REF, "updated", False, "spec changed; paused")


def test_paused_promise_pauses_itself_and_its_requests():
    paused = relabel(P, **PAUSED)
    ch = detect_changes(platform(paused, R), platform(respec(paused, {"x": 1}), respec(R, {"size": "large"})))
    assert only(ch.promises) == ObjectChange(P.ref, "updated", False, "spec changed; paused")
    assert only(ch.requests) == ObjectChange(
        R_REF, "updated", False, "spec changed; Promise redis spec changed; Promise redis paused"
    )


def test_created_while_paused_does_not_run():
    ch = detect_changes(None, platform(relabel(P, **PAUSED), R))
    assert ch.promises_to_run() == [] and ch.requests_to_run() == []


def test_unpausing_a_request_reruns_it():
    paused = relabel(R, **PAUSED)
    ch = detect_changes(platform(P, paused), platform(P, unlabel(paused, "kratix.io/paused")))
    assert only(ch.requests) == ObjectChange(R_REF, "updated", True, "metadata changed; unpaused")


def test_unpausing_a_promise_reruns_it_and_its_requests():
    paused = relabel(P, **PAUSED)
    ch = detect_changes(platform(paused, R), platform(unlabel(paused, "kratix.io/paused"), R))
    assert ch.promises_to_run() == [P.ref]
    assert only(ch.requests) == ObjectChange(R_REF, "unchanged", True, "Promise redis unpaused")


def test_deleting_a_paused_request_does_not_run_its_delete_workflow():
    ch = detect_changes(platform(P, relabel(R, **PAUSED)), platform(P))
    assert only(ch.requests) == ObjectChange(R_REF, "deleted", False, "deleted; paused")
    assert ch.requests_to_delete() == []


# --- periodic full reconcile --------------------------------------------------------------


@pytest.mark.parametrize(
    "last,now,interval,due",
    [
        (None, 100.0, 36000, True),
        (0.0, 35999.0, 36000, False),
        (0.0, 36000.0, 36000, True),
        (None, 5.0, 0, False),
    ],
)
def test_due_for_periodic(last, now, interval, due):
    assert due_for_periodic(last, now, interval) is due


# --- §1.7 kratix.io/hash ------------------------------------------------------------------


def md5(text: str) -> str:
    return hashlib.md5(text.encode()).hexdigest()


def test_go_json_is_compact_sorted_and_escapes_html():
    value = {"b": [1, 2.5, True, None], "a": {"z": "<tag> & é", "y": 1.0}}
    assert go_json(value) == '{"a":{"y":1,"z":"\\u003ctag\\u003e \\u0026 é"},"b":[1,2.5,true,null]}'.encode()


@pytest.mark.parametrize(
    "number,text",
    [
        (1e21, "1e+21"),
        (1e20, "100000000000000000000"),
        (1e-7, "1e-7"),
        (1.5e-10, "1.5e-10"),
        (0.000001, "0.000001"),
        (-0.5, "-0.5"),
    ],
)
def test_go_json_floats(number, text):
    assert go_json(number) == text.encode()


def test_promise_workflow_hash():
    p = respec(P, {"destinationSelectors": [{"matchLabels": {"env": "prod"}}], "api": {"kind": "CRD"}})
    expected = md5('{"api":{"kind":"CRD"},"destinationSelectors":[{"matchLabels":{"env":"prod"}}]}')
    assert spec_hash(p) == expected


def test_resource_workflow_hash():
    p = respec(P, {"dependencies": []})
    r = respec(R, {"size": "small", "memory": "1<2"})
    promise_part = md5('{"dependencies":[]}')
    request_part = md5('{"memory":"1\\u003c2","size":"small"}')
    assert spec_hash(p, r) == md5(f"{promise_part}-{request_part}")


def test_request_without_spec_hashes_null():
    r = copy.deepcopy(R)
    del r.body["spec"]
    assert spec_hash(P, r) == md5(f"{md5(go_json(P.spec).decode())}-{md5('null')}")


def test_hash_changes_with_spec_not_labels():
    assert spec_hash(P, R) == spec_hash(P, relabel(R, team="a"))
    assert spec_hash(P, R) != spec_hash(P, respec(R, {"size": "large"}))
