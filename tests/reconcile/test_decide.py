"""When a workflow runs (contract §1.7, §4.1-§4.7), decided in one place: bot.reconcile.decide.
Pure: cache keys, labels and the record's notes in, a reason (or None) out."""

from __future__ import annotations

import copy
from datetime import UTC, datetime

import pytest
from redis_objects import redis_promise, redis_request

from bot.kratix.labels import MANUAL_RECONCILIATION_LABEL, PAUSED_LABEL, RECONCILE_RESOURCES_LABEL
from bot.model.objects import Ref
from bot.model.records import ObjectRecord
from bot.reconcile.decide import (
    CREATED,
    MANUAL,
    PERIODIC,
    RECONCILE_RESOURCES,
    RETRY_DUE,
    SPEC_CHANGED,
    UNPAUSED,
    configure_reason,
    due_for_periodic,
    is_paused,
    label_pending,
    promise_cache_key,
    request_cache_key,
    still_answered,
)

NOW = datetime(2026, 1, 2, 12, 0, 0, tzinfo=UTC)
INTERVAL = 36000.0  # 10h


P = redis_promise()
R = redis_request()
R_REF = Ref("Redis.marketplace.kratix.io", "my-redis", "default")
PAUSED = {PAUSED_LABEL: "true"}
MANUAL_LABEL = {MANUAL_RECONCILIATION_LABEL: "true"}


def ran(key: str, **fields) -> ObjectRecord:
    """The record of an object whose configure workflow ran an hour ago with `key`."""
    return ObjectRecord(R_REF, cache_key=key, last_run="2026-01-02T11:00:00Z", **fields)


def reason(key: str, labels: dict | None = None, record: ObjectRecord | None = None, *, periodic: bool = False,
           forced: str | None = None) -> tuple[str | None, int]:
    return configure_reason(key, labels or {}, record, now=NOW, interval_seconds=INTERVAL, periodic=periodic,
                            forced=forced)


KEY = request_cache_key(P, R)


def test_an_object_never_run_runs():
    assert reason(KEY, record=None) == (CREATED, 0)
    assert reason(KEY, record=ObjectRecord(R_REF)) == (CREATED, 0)


def test_nothing_changed_runs_nothing():
    assert reason(KEY, record=ran(KEY)) == (None, 0)


# --- §1.7 spec vs metadata ----------------------------------------------------------------


def test_label_or_annotation_only_edits_do_not_rerun():
    relabelled = redis_request(labels={"team": "a"})
    assert request_cache_key(P, relabelled) == KEY
    assert reason(request_cache_key(P, relabelled), relabelled.labels, ran(KEY)) == (None, 0)
    annotated = copy.deepcopy(P)
    annotated.body["metadata"]["annotations"] = {"note": "x"}
    assert promise_cache_key(annotated) == promise_cache_key(P)
    assert request_cache_key(annotated, R) == KEY


def test_request_spec_edit_reruns_it():
    assert reason(request_cache_key(P, redis_request({"size": "large"})), record=ran(KEY)) == (SPEC_CHANGED, 0)


def test_spec_and_label_edit_together_rerun():
    edited = redis_request({"size": "large"}, labels={"team": "a"})
    assert reason(request_cache_key(P, edited), edited.labels, ran(KEY)) == (SPEC_CHANGED, 0)


# --- §4.2 a Promise spec change re-runs the Promise and every request of it --------------------


def test_promise_spec_change_reruns_promise_and_its_requests():
    changed = redis_promise({"dependencies": [{"kind": "Namespace"}]})
    assert reason(promise_cache_key(changed), record=ran(promise_cache_key(P))) == (SPEC_CHANGED, 0)
    assert reason(request_cache_key(changed, R), record=ran(KEY)) == (SPEC_CHANGED, 0)


def test_promise_label_only_edit_reruns_neither():
    relabelled = redis_promise(labels={"owner": "x"})
    assert promise_cache_key(relabelled) == promise_cache_key(P)
    assert request_cache_key(relabelled, R) == KEY


# --- §4.7 reconcile-resources ---------------------------------------------------------------


def test_reconcile_resources_label_reruns_requests_once_per_appearance():
    labels = {RECONCILE_RESOURCES_LABEL: "true"}
    assert label_pending(labels, RECONCILE_RESOURCES_LABEL, answered=False)
    assert not label_pending(labels, RECONCILE_RESOURCES_LABEL, answered=True)
    # every request of the Promise is forced to run from the start, whatever its key says
    assert reason(KEY, record=ran(KEY), forced=RECONCILE_RESOURCES) == (RECONCILE_RESOURCES, 0)
    # not the Promise's own workflow
    key = promise_cache_key(redis_promise(labels=labels))
    assert reason(key, labels, ran(promise_cache_key(P))) == (None, 0)


# --- §4.7 manual reconciliation -------------------------------------------------------------


def test_manual_reconciliation_label_reruns_when_added():
    assert reason(KEY, MANUAL_LABEL, ran(KEY)) == (MANUAL, 0)


def test_manual_reconciliation_label_left_in_place_does_not_rerun_again():
    assert reason(KEY, MANUAL_LABEL, ran(KEY, manual_seen=True)) == (None, 0)
    # the note goes with the label, so adding the label again runs again
    assert still_answered(MANUAL_LABEL, MANUAL_RECONCILIATION_LABEL, True)
    assert not still_answered({}, MANUAL_RECONCILIATION_LABEL, True)


def test_manual_reconciliation_of_a_promise_does_not_rerun_its_requests():
    # the label is on the Promise, not on the request; the request's key is unchanged
    manual = redis_promise(labels=MANUAL_LABEL)
    assert reason(request_cache_key(manual, R), R.labels, ran(KEY)) == (None, 0)


def test_manual_reconciliation_restarts_a_suspended_workflow():
    resume = {"pipeline": 1, "nextRetryAt": "2026-01-03T00:00:00Z", "cacheKey": KEY}
    assert reason(KEY, MANUAL_LABEL, ran(KEY, resume=resume)) == (MANUAL, 0)


# --- §4.1/§4.4 paused -----------------------------------------------------------------------


def test_paused_request_or_promise_runs_nothing():
    assert is_paused(P, redis_request(labels=PAUSED))
    assert is_paused(redis_promise(labels=PAUSED))
    assert is_paused(redis_promise(labels=PAUSED), R), "a paused Promise pauses its requests"
    assert not is_paused(P, R) and not is_paused(None, R)


def test_unpausing_reruns_from_the_start_once():
    # the object was reported paused (note paused_seen) and has not run since
    assert reason(KEY, record=ran(KEY, paused_seen=True)) == (UNPAUSED, 0)
    resume = {"pipeline": 1, "nextRetryAt": "2026-01-03T00:00:00Z", "cacheKey": KEY}
    assert reason(KEY, record=ran(KEY, resume=resume, paused_seen=True)) == (UNPAUSED, 0)


def test_labels_must_be_exactly_true_as_in_kratix():
    capital = {PAUSED_LABEL: "True", MANUAL_RECONCILIATION_LABEL: "True", RECONCILE_RESOURCES_LABEL: "True"}
    assert not is_paused(redis_promise(labels=capital), redis_request(labels=capital))
    assert reason(KEY, capital, ran(KEY)) == (None, 0)
    assert not label_pending(capital, RECONCILE_RESOURCES_LABEL, answered=False)


# --- §1.5c suspended workflows --------------------------------------------------------------


def test_suspended_workflow_resumes_when_due_and_restarts_on_a_spec_change():
    waiting = {"pipeline": 1, "nextRetryAt": "2026-01-02T13:00:00Z", "cacheKey": KEY}
    due = {"pipeline": 1, "nextRetryAt": "2026-01-02T11:30:00Z", "cacheKey": KEY}
    assert reason(KEY, record=ran(KEY, resume=waiting)) == (None, 0)
    assert reason(KEY, record=ran(KEY, resume=due)) == (RETRY_DUE, 1)
    assert reason("new key", record=ran(KEY, resume=waiting)) == (SPEC_CHANGED, 0)


# --- §4.7 periodic full reconcile -----------------------------------------------------------


def test_periodic_reconcile_reruns_what_ran_longer_ago_than_the_interval():
    old = ObjectRecord(R_REF, cache_key=KEY, last_run="2026-01-01T12:00:00Z")
    assert reason(KEY, record=old, periodic=True) == (PERIODIC, 0)
    assert reason(KEY, record=old, periodic=False) == (None, 0)
    assert reason(KEY, record=ran(KEY), periodic=True) == (None, 0)


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
