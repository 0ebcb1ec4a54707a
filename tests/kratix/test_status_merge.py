"""Contract §1.5b/§1.5c: status merge and workflow control, pure."""

from datetime import UTC, datetime

import pytest

from bot.kratix import status_merge as sm

NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


def test_shallow_merge_replaces_nested_values_and_keeps_keys():
    existing = {"a": 1, "iam": {"role": "x", "policy": "p"}, "keep": True}
    merged = sm.merge_statuses(existing, {"iam": {"role": "y"}, "b": [1]})
    assert merged == {"a": 1, "iam": {"role": "y"}, "keep": True, "b": [1]}
    assert existing["iam"] == {"role": "x", "policy": "p"}  # arguments untouched


def test_conditions_merged_by_type_incoming_wins():
    existing = {"conditions": [{"type": "A", "status": "False"}, {"type": "B", "status": "True"}]}
    merged = sm.merge_statuses(existing, {"conditions": [{"type": "A", "status": "True"}, {"type": "C"}]})
    assert {c["type"]: c for c in merged["conditions"]} == {
        "A": {"type": "A", "status": "True"}, "B": {"type": "B", "status": "True"}, "C": {"type": "C"}}


def test_kratix_key_is_refused_and_promise_keeps_only_message():
    with pytest.raises(sm.StatusError, match="'kratix' is a kratix managed status field"):
        sm.check_incoming({"kratix": {}}, "resource")
    kept, warnings = sm.check_incoming({"message": "hi", "url": "x"}, "promise")
    assert kept == {"message": "hi"}
    assert "url" in warnings[0] and "only 'message'" in warnings[0]
    assert sm.check_incoming({"message": "hi", "url": "x"}, "resource") == ({"message": "hi", "url": "x"}, [])
    with pytest.raises(sm.StatusError, match="mapping"):
        sm.check_incoming(["x"], "resource")


def test_starting_resets_message_and_completion_sets_condition():
    status = sm.init_workflow_status({"message": "from pipeline 1"}, ["one", "two"], NOW)
    status = sm.mark_pipeline_starting(status, "two", NOW)
    assert status["message"] == "Pending"
    conds = {c["type"]: c for c in status["conditions"]}
    assert conds["ConfigureWorkflowCompleted"]["reason"] == "PipelinesInProgress"
    assert conds["Reconciled"]["status"] == "Unknown"
    assert [p["phase"] for p in status["kratix"]["workflows"]["pipelines"]] == ["Pending", "Running"]
    done = sm.mark_completed(status, "resource", NOW)
    assert done["message"] == "Resource requested"
    cond = {c["type"]: c for c in done["conditions"]}["ConfigureWorkflowCompleted"]
    assert (cond["status"], cond["reason"], cond["message"]) == ("True", "PipelinesExecutedSuccessfully",
                                                                 "Pipelines completed")
    assert sm.mark_completed({"message": "Pending"}, "promise", NOW)["message"] == "Promise configured"
    assert sm.mark_completed({"message": "mine"}, "resource", NOW)["message"] == "mine"


def test_failure_conditions():
    status = sm.init_workflow_status({}, ["one"], NOW)
    failed = sm.mark_pipeline_failed(status, "one", "configure", NOW)
    conds = {c["type"]: c for c in failed["conditions"]}
    assert conds["ConfigureWorkflowCompleted"]["message"] == "A Configure Pipeline has failed: one"
    assert conds["Reconciled"]["reason"] == "ConfigureWorkflowFailed"
    assert failed["workflowsFailed"] == 1
    assert failed["kratix"]["workflows"]["pipelines"][0]["phase"] == "Failed"
    deleted = sm.mark_pipeline_failed({}, "d", "delete", NOW)
    assert deleted["conditions"][0]["reason"] == "DeleteWorkflowFailed"


def test_workflow_control_parsing():
    assert not sm.parse_workflow_control(None).suspends
    c = sm.parse_workflow_control({"suspend": True, "message": "waiting"})
    assert c.suspends and c.retry_after_seconds is None and c.message == "waiting"
    r = sm.parse_workflow_control({"retryAfter": "1h30m", "suspend": False})
    assert r.suspends and r.retry_after_seconds == 5400
    for bad, match in (({"retryAfter": "soon"}, "retry duration"), ({"suspend": "yes"}, "suspend"),
                       (["x"], "mapping")):
        with pytest.raises(sm.StatusError, match=match):
            sm.parse_workflow_control(bad)


def test_workflow_control_decodes_like_kratix():
    # sigs.k8s.io/yaml into WorkflowControl: unknown keys dropped, retryAfter a string parsed
    # by Go's time.ParseDuration (sign, fractions, both micro signs; no spaces).
    assert sm.parse_workflow_control({"suspend": True, "pause": 1}) == sm.WorkflowControl(suspend=True)
    for text, seconds in ((".5s", 0.5), ("+5s", 5), ("-1m", -60), ("1.5h", 5400), ("2\u03bcs", 2e-6)):
        assert sm.parse_workflow_control({"retryAfter": text}).retry_after_seconds == seconds, text
    with pytest.raises(sm.StatusError, match='failed to parse retry duration: "10m " with error: '
                                             'time: unknown unit "m " in duration "10m "'):
        sm.parse_workflow_control({"retryAfter": "10m "})
    with pytest.raises(sm.StatusError, match="retryAfter must be a string"):
        sm.parse_workflow_control({"retryAfter": 0})


def test_suspend_retry_and_clear_pipeline_entry():
    status = sm.init_workflow_status({}, ["one", "two"], NOW)
    retry = sm.parse_workflow_control({"retryAfter": "10m", "message": "not yet"})
    s1 = sm.apply_workflow_control(status, "one", retry, "configure", NOW, generation=4)
    entry = s1["kratix"]["workflows"]["pipelines"][0]
    assert (entry["phase"], entry["message"], entry["attempts"], entry["nextRetryAt"]) == (
        "Suspended", "not yet", 1, "2026-01-02T03:14:05Z")
    assert s1["kratix"]["workflows"]["suspendedGeneration"] == 4
    assert {c["type"]: c for c in s1["conditions"]}["Reconciled"]["reason"] == "WorkflowSuspended"
    s2 = sm.apply_workflow_control(s1, "one", retry, "configure", NOW)
    assert s2["kratix"]["workflows"]["pipelines"][0]["attempts"] == 2
    suspend = sm.apply_workflow_control(s2, "one", sm.WorkflowControl(suspend=True), "configure", NOW)
    assert "attempts" not in suspend["kratix"]["workflows"]["pipelines"][0]
    assert "message" not in suspend["kratix"]["workflows"]["pipelines"][0]
    cleared = sm.apply_workflow_control(s2, "one", sm.WorkflowControl(), "configure", NOW)
    assert cleared["kratix"]["workflows"]["pipelines"][0] == {
        "name": "one", "phase": "Running", "lastTransitionTime": "2026-01-02T03:04:05Z"}
    assert "suspendedGeneration" not in sm.mark_completed(s1, "resource", NOW)["kratix"]["workflows"]
    deleting = sm.apply_workflow_control({}, "d", sm.WorkflowControl(suspend=True), "delete", NOW)
    assert {c["type"]: c for c in deleting["conditions"]}["DeleteWorkflowCompleted"]["reason"] == \
        "DeleteWorkflowSuspended"


def _deep(depth, leaf="x"):
    value = leaf
    for _ in range(depth):
        value = {"a": value}
    return value


def test_merge_and_marks_do_not_recurse_on_deep_data():
    # Issue 6: copying a deeply nested status raised RecursionError (a blank message in records).
    deep = _deep(5000)
    merged = sm.merge_statuses({"old": deep}, {"new": [deep]})
    assert sm.nesting_depth(merged) == 5002
    status = sm.mark_pipeline_starting(sm.init_workflow_status(merged, ["p"], NOW), "p", NOW)
    status = sm.mark_pipeline_failed(status, "p", "configure", NOW)
    assert sm.nesting_depth(status["old"]) == 5000 and status["old"] is not deep


def test_copy_data_is_a_deep_copy():
    source = {"a": [1, {"b": [2, 3]}], "c": None, "s": {4, 5}}
    copied = sm.copy_data(source)
    assert copied == source
    copied["a"][1]["b"].append(9)
    copied["s"].add(6)
    assert source == {"a": [1, {"b": [2, 3]}], "c": None, "s": {4, 5}}
    looped: dict = {}
    looped["self"] = looped
    with pytest.raises(sm.StatusError, match="nested more than 10000 levels deep"):
        sm.copy_data(looped)


def test_nesting_depth():
    assert sm.nesting_depth("x") == 0 and sm.nesting_depth({}) == 1 and sm.nesting_depth([[], {"a": [1]}]) == 3
    assert sm.nesting_depth(_deep(10_000), limit=100) == 101


def test_status_deeper_than_the_yaml_limit_is_refused_naming_the_file():
    assert sm.check_incoming(_deep(100), "resource")[0] == _deep(100)
    with pytest.raises(sm.StatusError) as err:
        sm.check_incoming(_deep(101), "resource")
    assert str(err.value) == ("/kratix/metadata/status.yaml: nesting too deep: more than 100 levels of nested "
                              "mappings and lists (promisebot's limit is 100 levels); refused")
