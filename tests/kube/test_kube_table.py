"""Server-side Table output (bot.kube.table, through bot.kube.api.KubeApi) for `kubectl get`."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from kube_run_data import AUTH, TOKEN, make_run

from bot.kube import table
from bot.kube.api import KubeApi

# What kubectl get sends when it prints a table (kubectl/pkg/cmd/get: transformRequests).
KUBECTL = {**AUTH, "Accept": "application/json;as=Table;v=v1;g=meta.k8s.io,"
                             "application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json"}
NOW = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)
OBJ = "/apis/marketplace.kratix.io/v1alpha1/namespaces/default/redis/example"
CONFIGMAPS = "/api/v1/namespaces/default/configmaps"
NAME_COLUMN = {"name": "Name", "type": "string", "format": "name", "description": table.NAME_DOC, "priority": 0}
AGE_COLUMN = {"name": "Age", "type": "string", "format": "", "description": table.CREATED_DOC, "priority": 0}
CRD_AGE_COLUMN = {**AGE_COLUMN, "type": "date"}


def stamp(ago: timedelta) -> str:
    return (NOW - ago).strftime("%Y-%m-%dT%H:%M:%SZ")


def call(api: KubeApi, path: str, headers: dict[str, str] = KUBECTL, query: dict[str, str] | None = None,
         method: str = "GET", body: bytes = b"") -> tuple[int, Any]:
    code, out_headers, payload = api.handle(method, path, query or {}, headers, body)
    assert out_headers["Content-Type"] == "application/json"
    return code, json.loads(payload)


def make_api(run: dict[str, Any] | None = None) -> KubeApi:
    return KubeApi(run or make_run(), TOKEN, clock=lambda: NOW)


def aged_run() -> dict[str, Any]:
    """The test run with creation times: settings 5m12s old, other 2d5h, the Redis 3h10m."""
    run = make_run()
    run["resources"][0]["object"]["metadata"]["creationTimestamp"] = stamp(timedelta(minutes=5, seconds=12))
    run["resources"][1]["object"]["metadata"]["creationTimestamp"] = stamp(timedelta(days=2, hours=5))
    run["object"]["metadata"]["creationTimestamp"] = stamp(timedelta(hours=3, minutes=10))
    return run


# ---- durations (k8s.io/apimachinery/pkg/util/duration's own boundary cases) -------------------

MS, MIN, HOUR, DAY, YEAR = 0.001, 60, 3600, 86400, 365 * 86400


@pytest.mark.parametrize(("seconds", "expected"), [
    (-2, "<invalid>"), (-2 + 1e-9, "0s"), (0, "0s"), (1 - MS, "0s"), (1, "1s"), (70, "70s"), (2 * MIN - MS, "119s"),
    (2 * MIN, "2m"), (2 * MIN + 1, "2m1s"), (190, "3m10s"), (10 * MIN - MS, "9m59s"), (10 * MIN, "10m"),
    (10 * MIN + 1, "10m"), (70 * MIN, "70m"), (3 * HOUR - MS, "179m"), (3 * HOUR, "3h"), (3 * HOUR + MIN, "3h1m"),
    (8 * HOUR - MS, "7h59m"), (8 * HOUR, "8h"), (8 * HOUR + 59 * MIN, "8h"), (47 * HOUR, "47h"),
    (2 * DAY - MS, "47h"), (2 * DAY, "2d"), (49 * HOUR, "2d1h"), (8 * DAY - MS, "7d23h"), (8 * DAY, "8d"),
    (8 * DAY + 23 * HOUR, "8d"), (367 * DAY, "367d"), (2 * YEAR - MS, "729d"), (2 * YEAR, "2y"),
    (2 * YEAR + 24 * HOUR - MS, "2y"), (2 * YEAR + DAY, "2y1d"), (2 * YEAR + 25 * HOUR, "2y1d"),
    (8 * YEAR - MS, "7y364d"), (8 * YEAR, "8y"), (8 * YEAR + 364 * DAY, "8y"), (9 * YEAR, "9y"),
])
def test_human_duration(seconds, expected):
    assert table.human_duration(seconds) == expected


@pytest.mark.parametrize(("seconds", "expected"), [
    (-2, "<invalid>"), (-2 + 1e-9, "0s"), (0, "0s"), (1 - MS, "0s"), (1, "1s"), (2 - MS, "1s"), (MIN - MS, "59s"),
    (MIN, "1m"), (2 * MIN - MS, "1m"), (HOUR - MS, "59m"), (HOUR, "1h"), (2 * HOUR - MS, "1h"),
    (DAY - MS, "23h"), (DAY, "1d"), (2 * DAY - MS, "1d"), (YEAR - MS, "364d"), (YEAR, "1y"), (2 * YEAR - MS, "1y"),
    (2 * YEAR, "2y"),
])
def test_short_human_duration(seconds, expected):
    assert table.short_human_duration(seconds) == expected


@pytest.mark.parametrize(("text", "expected"), [
    ("2026-03-01T12:00:00Z", datetime(2026, 3, 1, 12, tzinfo=UTC)),
    ("2026-03-01T13:30:00.250+01:30", datetime(2026, 3, 1, 12, 0, 0, 250000, tzinfo=UTC)),
    ("2026-03-01 12:00:00Z", None), ("2026-02-30T12:00:00Z", None), ("2026-03-01T12:00:00", None), ("soon", None),
])
def test_parse_time_is_rfc3339(text, expected):
    assert table.parse_time(text) == expected


# ---- Accept negotiation ----------------------------------------------------------------------

@pytest.mark.parametrize(("accept", "expected"), [
    (KUBECTL["Accept"], "v1"),
    ("application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json", "v1beta1"),
    ("application/json; as=Table; v=v1; g=meta.k8s.io", "v1"),
    ("*/*;as=Table;v=v1;g=meta.k8s.io", "v1"),
    ("application/json;q=0.5,application/json;as=Table;v=v1;g=meta.k8s.io", "v1"),
    ("application/json;as=Table;v=v2;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io", "v1beta1"),
    ("application/json", None), ("", None), ("*/*", None),
    ("application/vnd.kubernetes.protobuf", None),
    ("application/vnd.kubernetes.protobuf;as=Table;v=v1;g=meta.k8s.io,application/json", None),
    ("application/yaml;as=Table;v=v1;g=meta.k8s.io", None),
    ("application/json;as=PartialObjectMetadata;v=v1;g=meta.k8s.io,application/json", None),
    ("application/json;as=Table;v=v1;g=example.com", None),
    ("application/json,application/json;as=Table;v=v1;g=meta.k8s.io", None),
])
def test_requested_version(accept, expected):
    assert table.requested_version(accept) == expected


# ---- JSONPath and cells ------------------------------------------------------------------------

DOC = {"metadata": {"name": "x", "labels": {"app.kubernetes.io/name": "web"}},
       "status": {"conditions": [{"type": "Synced", "status": "False", "n": 1},
                                 {"type": "Ready", "status": "True", "n": 2}], "replicas": 3}}


@pytest.mark.parametrize(("path", "expected"), [
    (".metadata.name", ["x"]), ("{.metadata.name}", ["x"]), ("$.metadata.name", ["x"]),
    (".status.conditions[1].type", ["Ready"]), (".status.conditions[-1].status", ["True"]),
    ('.status.conditions[?(@.type=="Ready")].status', ["True"]),
    (".status.conditions[?(@.type == 'Synced')].status", ["False"]),
    (".status.conditions[?(@.n>1)].type", ["Ready"]), (".status.conditions[?(@.n)].n", [1, 2]),
    (".status.conditions[*].type", ["Synced", "Ready"]), (".metadata.labels['app.kubernetes.io/name']", ["web"]),
    (r".metadata.labels.app\.kubernetes\.io/name", ["web"]),
    (".status.missing", []), (".status.conditions[5]", []), (".status.replicas.deeper", []),
])
def test_jsonpath(path, expected):
    steps = table.parse_path(path)
    assert steps is not None and table.find(steps, DOC) == expected


@pytest.mark.parametrize("path", ["..name", ".status.conditions[0:1]", "metadata.name", ".a[?(@.b==bare)]"])
def test_jsonpath_beyond_the_subset_is_refused(path):
    assert table.parse_path(path) is None


@pytest.mark.parametrize(("value", "expected"), [
    ("x", "x"), (3, "3"), (True, "true"), (0.5, "0.5"), (3.0, "3"), (123456.5, "123456.5"),
    (1234567.5, "1.2345675e+06"), (1e-05, "1e-05"), (0.0001, "0.0001"), (-2.5, "-2.5"),
    ({"b": 1, "a": "<x>"}, '{"a":"\\u003cx\\u003e","b":1}'), ([1, "a"], '[1,"a"]'), (None, "<no value>"),
])
def test_string_cells_print_as_client_go_jsonpath(value, expected):
    assert table.text_cell(value) == expected


@pytest.mark.parametrize(("kind", "value", "expected"), [
    ("integer", 3, 3), ("integer", 3.9, 3), ("integer", True, None), ("integer", "3", None),
    ("number", 3, 3.0), ("number", False, None), ("boolean", True, True), ("boolean", "true", None),
    ("date", "2026-03-01T09:00:00Z", "3h"), ("date", "", "<unknown>"), ("date", "yesterday", "<invalid>"),
    ("date", 5, None), ("string", None, None),
])
def test_typed_cells(kind, value, expected):
    assert table.typed_cell(kind, value, NOW) == expected


# ---- GET and LIST as Tables --------------------------------------------------------------------

def test_get_configmap_as_table():
    code, doc = call(make_api(aged_run()), CONFIGMAPS + "/settings")
    assert code == 200
    assert doc == {
        "kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": {},
        "columnDefinitions": [NAME_COLUMN, {"name": "Data", "type": "string", "format": "",
                                            "description": table.CONFIGMAP_DATA_DOC, "priority": 0}, AGE_COLUMN],
        "rows": [{"cells": ["settings", 1, "5m12s"],
                  "object": {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1",
                             "metadata": {"name": "settings", "namespace": "default", "labels": {"team": "a"},
                                          "creationTimestamp": "2026-03-01T11:54:48Z"}}}],
    }


def test_list_configmaps_as_table():
    run = aged_run()
    run["resources"][1]["object"]["binaryData"] = {"blob": "AAE="}
    code, doc = call(make_api(run), CONFIGMAPS)
    assert code == 200 and doc["kind"] == "Table" and doc["metadata"] == {"resourceVersion": "7"}
    assert [r["cells"] for r in doc["rows"]] == [["settings", 1, "5m12s"], ["other", 2, "2d5h"]]
    code, doc = call(make_api(run), CONFIGMAPS, query={"labelSelector": "team=b"})
    assert [r["cells"][0] for r in doc["rows"]] == ["other"]
    code, doc = call(make_api(run), CONFIGMAPS, query={"labelSelector": "team=nobody"})
    assert (code, doc["rows"], len(doc["columnDefinitions"])) == (200, [], 3)


@pytest.mark.parametrize(("include", "expected"), [
    ("Object", "full"), ("Metadata", "partial"), ("", "partial"), ("None", None)])
def test_include_object(include, expected):
    api = make_api()
    _, plain = call(api, CONFIGMAPS + "/settings", headers=AUTH)
    code, doc = call(api, CONFIGMAPS + "/settings", query={"includeObject": include})
    partial = {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": plain["metadata"]}
    assert code == 200 and doc["rows"][0]["object"] == {"full": plain, "partial": partial}.get(str(expected))


def test_bad_include_object_is_400_after_the_read_is_allowed():
    api = make_api()
    code, doc = call(api, CONFIGMAPS + "/settings", query={"includeObject": "Everything"})
    assert (code, doc) == (400, {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                                 "message": 'Unable to convert to Table as requested: includeObject: Invalid value: '
                                            '"Everything": must be \'Metadata\', \'Object\', \'None\', or empty',
                                 "reason": "BadRequest", "code": 400})
    code, doc = call(api, CONFIGMAPS + "/nope", query={"includeObject": "Everything"})
    assert code == 404 and doc["reason"] == "NotFound"
    code, doc = call(api, CONFIGMAPS + "/settings", headers=AUTH, query={"includeObject": "Everything"})
    assert code == 200 and doc["kind"] == "ConfigMap"


def test_v1beta1_table():
    headers = {**AUTH, "Accept": "application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json"}
    code, doc = call(make_api(), CONFIGMAPS, headers=headers)
    assert code == 200 and doc["apiVersion"] == "meta.k8s.io/v1beta1"
    assert {r["object"]["apiVersion"] for r in doc["rows"]} == {"meta.k8s.io/v1beta1"}


def test_secret_columns():
    code, doc = call(make_api(), "/api/v1/namespaces/tools/secrets/creds")
    assert code == 200
    assert [c["name"] for c in doc["columnDefinitions"]] == ["Name", "Type", "Data", "Age"]
    assert doc["columnDefinitions"][1]["description"] == table.SECRET_TYPE_DOC
    assert doc["rows"][0]["cells"] == ["creds", "Opaque", 1, "<unknown>"]


def test_namespace_columns():
    namespace = {"apiVersion": "v1", "kind": "Namespace",
                 "metadata": {"name": "team-a", "creationTimestamp": stamp(timedelta(days=40))}}
    terminating = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "old"},
                   "status": {"phase": "Terminating"}}
    run = make_run(rules=[{"apiGroups": [""], "resources": ["namespaces"], "verbs": ["list"], "namespace": ""}])
    run["resources"] = [{"group": "", "version": "v1", "plural": "namespaces", "kind": "Namespace",
                         "namespaced": False, "object": ns} for ns in (namespace, terminating)]
    code, doc = call(make_api(run), "/api/v1/namespaces")
    assert code == 200 and [c["name"] for c in doc["columnDefinitions"]] == ["Name", "Status", "Age"]
    assert [r["cells"] for r in doc["rows"]] == [["team-a", "Active", "40d"], ["old", "Terminating", "<unknown>"]]


def test_custom_resource_without_its_crd_gets_name_and_age():
    api = make_api(aged_run())
    for path in (OBJ, OBJ + "/status"):
        code, doc = call(api, path)
        assert code == 200 and doc["columnDefinitions"] == [NAME_COLUMN, CRD_AGE_COLUMN]
        assert doc["metadata"] == {"resourceVersion": "7"}
        assert doc["rows"][0]["cells"] == ["example", "3h"]  # ShortHumanDuration, as for every CR
    code, doc = call(make_api(), "/apis/marketplace.kratix.io/v1alpha1/namespaces/default/redis")
    assert doc["rows"][0]["cells"] == ["example", "<unknown>"]


def crd(columns: list[dict[str, Any]], version: str = "v1alpha1") -> dict[str, Any]:
    return {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
            "metadata": {"name": "redis.marketplace.kratix.io"},
            "spec": {"group": "marketplace.kratix.io", "scope": "Namespaced",
                     "names": {"plural": "redis", "kind": "Redis"},
                     "versions": [{"name": version, "served": True, "storage": True,
                                   "additionalPrinterColumns": columns}]}}


def test_custom_resource_columns_come_from_the_promises_crd():
    run = aged_run()
    run["object"]["status"]["conditions"].append({"type": "Ready", "status": "True"})
    run["promise"]["spec"]["api"] = crd([
        {"name": "Size", "type": "string", "jsonPath": ".spec.size", "description": "How big"},
        {"name": "Ready", "type": "string", "jsonPath": '.status.conditions[?(@.type=="Ready")].status'},
        {"name": "Generation", "type": "integer", "jsonPath": ".metadata.generation", "priority": 1},
        {"name": "URL", "type": "string", "jsonPath": ".status.url"},
        {"name": "Created", "type": "date", "format": "date-time", "jsonPath": ".metadata.creationTimestamp"},
    ])
    code, doc = call(make_api(run), "/apis/marketplace.kratix.io/v1alpha1/redis")
    assert code == 200
    assert doc["columnDefinitions"] == [
        NAME_COLUMN,
        {"name": "Size", "type": "string", "format": "", "description": "How big", "priority": 0},
        {"name": "Ready", "type": "string", "format": "", "priority": 0,
         "description": 'Custom resource definition column (in JSONPath format): '
                        '.status.conditions[?(@.type=="Ready")].status'},
        {"name": "Generation", "type": "integer", "format": "", "priority": 1,
         "description": "Custom resource definition column (in JSONPath format): .metadata.generation"},
        {"name": "URL", "type": "string", "format": "", "priority": 0,
         "description": "Custom resource definition column (in JSONPath format): .status.url"},
        {"name": "Created", "type": "date", "format": "date-time", "priority": 0,
         "description": "Custom resource definition column (in JSONPath format): .metadata.creationTimestamp"},
    ]
    assert doc["rows"][0]["cells"] == ["example", "small", "True", 3, None, "3h"]


def test_crd_without_columns_for_the_served_version_gets_age():
    run = make_run()
    run["promise"]["spec"]["api"] = crd([{"name": "Size", "type": "string", "jsonPath": ".spec.size"}], "v1")
    code, doc = call(make_api(run), OBJ)
    assert code == 200 and doc["columnDefinitions"] == [NAME_COLUMN, CRD_AGE_COLUMN]


def test_promise_gets_name_and_age():
    promise = make_run()["promise"]
    promise["metadata"]["creationTimestamp"] = stamp(timedelta(days=3, hours=4))
    code, doc = call(make_api(make_run(promise=promise)), "/apis/platform.kratix.io/v1alpha1/promises")
    assert code == 200 and doc["columnDefinitions"] == [NAME_COLUMN, CRD_AGE_COLUMN]
    assert doc["rows"][0]["cells"] == ["redis", "3d"]


def test_other_resources_get_name_and_age():
    service = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "db", "namespace": "default",
                                                                  "creationTimestamp": stamp(timedelta(hours=3,
                                                                                                       minutes=4))}}
    run = make_run(rules=[{"apiGroups": [""], "resources": ["services"], "verbs": ["get"], "namespace": ""}])
    run["resources"] = [{"group": "", "version": "v1", "plural": "services", "kind": "Service", "namespaced": True,
                         "object": service}]
    code, doc = call(make_api(run), "/api/v1/namespaces/default/services/db")
    assert code == 200 and doc["columnDefinitions"] == [NAME_COLUMN, AGE_COLUMN]
    assert doc["rows"][0]["cells"] == ["db", "3h4m"]  # a built-in type's printer: HumanDuration


# ---- what stays as it was ------------------------------------------------------------------------

@pytest.mark.parametrize("accept", ["application/json", "", "application/vnd.kubernetes.protobuf",
                                    "application/yaml", "*/*"])
def test_other_accept_headers_get_the_object(accept):
    api = make_api()
    headers = {**AUTH, "Accept": accept} if accept else AUTH
    code, doc = call(api, OBJ, headers=headers)
    assert code == 200 and doc["kind"] == "Redis" and doc["spec"] == {"size": "small"}
    code, doc = call(api, CONFIGMAPS, headers=headers)
    assert code == 200 and doc["kind"] == "ConfigMapList"


@pytest.mark.parametrize(("path", "code"), [(CONFIGMAPS + "/nope", 404), ("/api/v1/namespaces/tools/configmaps", 403),
                                            ("/api/v1/namespaces/default/pods/x", 403), ("/api/v2/x", 404)])
def test_errors_stay_status_objects(path, code):
    got, doc = call(make_api(), path)
    assert got == code and doc["kind"] == "Status" and doc["code"] == code


def test_discovery_and_writes_are_not_tables():
    api = make_api()
    for path in ("/api", "/api/v1", "/apis", "/apis/marketplace.kratix.io/v1alpha1", "/version"):
        code, doc = call(api, path)
        assert code == 200 and doc.get("kind") != "Table"
    headers = {**KUBECTL, "Content-Type": "application/merge-patch+json"}
    code, doc = call(api, OBJ + "/status", headers=headers, method="PATCH", body=b'{"status":{"a":1}}')
    assert code == 200 and doc["kind"] == "Redis" and doc["status"]["a"] == 1


def test_columns_from_a_crd_the_pipeline_may_read():
    database = {"apiVersion": "example.io/v1", "kind": "Database",
                "metadata": {"name": "orders", "namespace": "default"}, "spec": {"engine": "postgres"}}
    definition = {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
                  "metadata": {"name": "databases.example.io"},
                  "spec": {"group": "example.io", "names": {"plural": "databases", "kind": "Database"},
                           "versions": [{"name": "v1", "additionalPrinterColumns": [
                               {"name": "Engine", "type": "string", "jsonPath": ".spec.engine"}]}]}}
    run = make_run(rules=[{"apiGroups": ["*"], "resources": ["*"], "verbs": ["get", "list"], "namespace": ""}])
    run["resources"] = [
        {"group": "example.io", "version": "v1", "plural": "databases", "kind": "Database", "namespaced": True,
         "object": database},
        {"group": "apiextensions.k8s.io", "version": "v1", "plural": "customresourcedefinitions",
         "kind": "CustomResourceDefinition", "namespaced": False, "object": definition}]
    code, doc = call(make_api(run), "/apis/example.io/v1/namespaces/default/databases")
    assert code == 200 and [c["name"] for c in doc["columnDefinitions"]] == ["Name", "Engine"]
    assert doc["rows"][0]["cells"] == ["orders", "postgres"]
