"""bot.kube.api.KubeApi, pure: every route, every error shape, status writes and their confinement."""

from __future__ import annotations

import json
from typing import Any

import pytest
from kube_run_data import AUTH, PROMISE, TOKEN, make_run

from bot.kube.api import MAX_BODY_BYTES, UNKNOWN_FORMAT, KubeApi

OBJ = "/apis/marketplace.kratix.io/v1alpha1/namespaces/default/redis/example"
MERGE = {**AUTH, "Content-Type": "application/merge-patch+json"}
JSONP = {**AUTH, "Content-Type": "application/json-patch+json"}
FORBIDDEN_TAIL = ('promisebot serves get on redis.marketplace.kratix.io "example" in the namespace "default" '
                  "and get/patch/update on its status subresource, get on its Promise, and what the "
                  "pipeline's rbac.permissions grant")


def call(api: KubeApi, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None,
         query: dict[str, str] | None = None) -> tuple[int, Any]:
    raw = body if isinstance(body, bytes) else (b"" if body is None else json.dumps(body).encode())
    code, out_headers, payload = api.handle(method, path, query or {}, AUTH if headers is None else headers, raw)
    assert out_headers["Content-Type"] == "application/json"
    return code, json.loads(payload)


@pytest.fixture
def api() -> KubeApi:
    return KubeApi(make_run(), TOKEN)


def status_doc(code: int, reason: str, message: str, details: dict | None = None) -> dict:
    doc: dict[str, Any] = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                           "message": message, "reason": reason}
    if details is not None:
        doc["details"] = details
    doc["code"] = code
    return doc


# ---- authentication --------------------------------------------------------------------------

@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN},
                                     {"Authorization": f"Basic {TOKEN}"}, {"Authorization": "Bearer "}])
def test_unauthorized(api, headers):
    for path in ("/version", "/api", OBJ):
        code, doc = call(api, "GET", path, headers=headers)
        assert (code, doc) == (401, status_doc(401, "Unauthorized", "Unauthorized"))


def test_header_names_are_case_insensitive(api):
    code, _ = call(api, "GET", "/version", headers={"authorization": f"bearer {TOKEN}"})
    assert code == 200


def test_empty_token_refused():
    with pytest.raises(ValueError):
        KubeApi(make_run(), "")


# ---- discovery -------------------------------------------------------------------------------

def test_version(api):
    code, doc = call(api, "GET", "/version")
    assert code == 200 and doc["gitVersion"] == "v1.30.0-promisebot" and doc["major"] == "1"


def test_api_versions(api):
    code, doc = call(api, "GET", "/api", headers={**AUTH, "Host": "10.0.0.1:6443"})
    assert code == 200
    assert doc == {"kind": "APIVersions", "versions": ["v1"],
                   "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": "10.0.0.1:6443"}]}


def test_api_group_list(api):
    code, doc = call(api, "GET", "/apis")
    assert code == 200 and doc["kind"] == "APIGroupList" and doc["apiVersion"] == "v1"
    groups = {g["name"]: g for g in doc["groups"]}
    assert set(groups) == {"platform.kratix.io", "marketplace.kratix.io"}
    assert groups["marketplace.kratix.io"]["preferredVersion"] == {
        "groupVersion": "marketplace.kratix.io/v1alpha1", "version": "v1alpha1"}
    code, doc = call(api, "GET", "/apis/platform.kratix.io")
    assert code == 200 and doc["kind"] == "APIGroup" and doc["name"] == "platform.kratix.io"


def test_core_resource_list(api):
    code, doc = call(api, "GET", "/api/v1")
    assert code == 200 and doc["kind"] == "APIResourceList" and doc["groupVersion"] == "v1"
    by_name = {r["name"]: r for r in doc["resources"]}
    assert by_name["configmaps"] == {"name": "configmaps", "singularName": "configmap", "namespaced": True,
                                     "kind": "ConfigMap", "verbs": ["get", "list"],
                                     "shortNames": ["cm"]}
    assert set(by_name) == {"configmaps", "secrets", "namespaces", "pods", "services", "serviceaccounts"}


@pytest.mark.parametrize("path", ["/api/v1/namespaces/default/pods/x", "/api/v1/namespaces/default",
                                  "/api/v1/namespaces/default/services"])
def test_core_types_not_granted_are_403_as_in_kubernetes(api, path):
    code, doc = call(api, "GET", path)
    assert code == 403 and doc["reason"] == "Forbidden", doc


def test_object_group_resource_list(api):
    code, doc = call(api, "GET", "/apis/marketplace.kratix.io/v1alpha1")
    assert code == 200 and doc["groupVersion"] == "marketplace.kratix.io/v1alpha1"
    by_name = {r["name"]: r for r in doc["resources"]}
    assert by_name["redis"]["kind"] == "Redis" and by_name["redis"]["namespaced"] is True
    assert by_name["redis/status"]["verbs"] == ["get", "patch", "update"]
    code, doc = call(api, "GET", "/apis/platform.kratix.io/v1alpha1")
    assert [r["name"] for r in doc["resources"]] == ["promises"]
    assert doc["resources"][0]["namespaced"] is False


@pytest.mark.parametrize("path", ["/", "/apis/nope", "/apis/nope/v1", "/api/v2", "/healthz",
                                  "/apis/marketplace.kratix.io/v1beta1/namespaces/default/redis/example",
                                  "/api/v1/configmaps/settings", OBJ + "/scale/extra",
                                  "/apis/platform.kratix.io/v1alpha1/namespaces/default/promises/redis"])
def test_unknown_paths_are_404(api, path):
    code, doc = call(api, "GET", path)
    assert (code, doc) == (404, status_doc(404, "NotFound", "the server could not find the requested resource", {}))


# ---- reads -----------------------------------------------------------------------------------

def test_get_object(api):
    code, doc = call(api, "GET", OBJ)
    assert code == 200
    assert doc["spec"] == {"size": "small"} and doc["metadata"]["resourceVersion"] == "7"
    assert doc["metadata"]["generation"] == 3
    code, doc = call(api, "GET", OBJ + "/status")
    assert code == 200 and doc["status"]["message"] == "Pending"


def test_object_metadata_defaults():
    run = make_run()
    del run["object"]["metadata"]["resourceVersion"], run["object"]["metadata"]["generation"]
    del run["object"]["metadata"]["namespace"]
    code, doc = call(KubeApi(run, TOKEN), "GET", OBJ)
    assert code == 200 and doc["metadata"]["resourceVersion"] == "1" and doc["metadata"]["generation"] == 1


def test_list_object_collection(api):
    for path in ("/apis/marketplace.kratix.io/v1alpha1/namespaces/default/redis",
                 "/apis/marketplace.kratix.io/v1alpha1/redis"):
        code, doc = call(api, "GET", path)
        assert code == 200 and doc["kind"] == "RedisList"
        assert doc["apiVersion"] == "marketplace.kratix.io/v1alpha1"
        assert [i["metadata"]["name"] for i in doc["items"]] == ["example"]
        assert doc["metadata"] == {"resourceVersion": "7"}
    code, doc = call(api, "GET", "/apis/marketplace.kratix.io/v1alpha1/namespaces/other/redis")
    assert code == 200 and doc["items"] == []


def test_other_object_of_same_kind_forbidden(api):
    code, doc = call(api, "GET", "/apis/marketplace.kratix.io/v1alpha1/namespaces/default/redis/another")
    assert code == 403 and doc["reason"] == "Forbidden"
    assert doc["details"] == {"name": "another", "group": "marketplace.kratix.io", "kind": "redis"}


def test_get_promise(api):
    code, doc = call(api, "GET", "/apis/platform.kratix.io/v1alpha1/promises/redis")
    assert (code, doc) == (200, PROMISE)
    code, doc = call(api, "GET", "/apis/platform.kratix.io/v1alpha1/promises")
    assert code == 200 and doc["kind"] == "PromiseList" and [i["metadata"]["name"] for i in doc["items"]] == ["redis"]
    code, doc = call(api, "GET", "/apis/platform.kratix.io/v1alpha1/promises/other")
    assert code == 403
    assert doc["message"].startswith('promises.platform.kratix.io "other" is forbidden: User '
                                     '"system:serviceaccount:default:redis-resource-pipeline" cannot get resource '
                                     '"promises" in API group "platform.kratix.io" at the cluster scope: ')


def test_object_is_the_promise():
    run = make_run(object=dict(PROMISE), promise=None, resources=[], rules=[],
                   objectResource={"group": "platform.kratix.io", "version": "v1alpha1", "plural": "promises",
                                   "kind": "Promise", "namespaced": False})
    api = KubeApi(run, TOKEN)
    code, doc = call(api, "GET", "/apis/platform.kratix.io/v1alpha1/promises/redis")
    assert code == 200 and doc["kind"] == "Promise"
    code, doc = call(api, "PATCH", "/apis/platform.kratix.io/v1alpha1/promises/redis/status",
                     {"status": {"message": "hi"}}, MERGE)
    assert code == 200 and doc["status"] == {"message": "hi"}
    code, doc = call(api, "GET", "/apis/platform.kratix.io/v1alpha1/v1alpha1")
    assert code == 404
    code, doc = call(api, "GET", "/apis/platform.kratix.io/v1alpha1")
    assert {r["name"] for r in doc["resources"]} == {"promises", "promises/status"}
    code, doc = call(api, "GET", "/apis")
    assert [g["name"] for g in doc["groups"]] == ["platform.kratix.io"]


def test_get_granted_configmap(api):
    code, doc = call(api, "GET", "/api/v1/namespaces/default/configmaps/settings")
    assert code == 200 and doc["data"] == {"region": "eu"}


def test_get_missing_configmap_is_404(api):
    code, doc = call(api, "GET", "/api/v1/namespaces/default/configmaps/nope")
    assert (code, doc) == (404, status_doc(404, "NotFound", 'configmaps "nope" not found',
                                           {"name": "nope", "kind": "configmaps"}))


def test_configmap_in_other_namespace_forbidden(api):
    code, doc = call(api, "GET", "/api/v1/namespaces/tools/configmaps/settings")
    assert code == 403
    assert doc == status_doc(403, "Forbidden",
                             'configmaps "settings" is forbidden: User "system:serviceaccount:default:'
                             'redis-resource-pipeline" cannot get resource "configmaps" in API group "" in the '
                             f'namespace "tools": {FORBIDDEN_TAIL}', {"name": "settings", "kind": "configmaps"})


def test_list_configmaps(api):
    code, doc = call(api, "GET", "/api/v1/namespaces/default/configmaps")
    assert code == 200 and doc["kind"] == "ConfigMapList" and doc["apiVersion"] == "v1"
    assert [i["metadata"]["name"] for i in doc["items"]] == ["settings", "other"]
    code, doc = call(api, "GET", "/api/v1/namespaces/default/configmaps", query={"labelSelector": "team=a"})
    assert [i["metadata"]["name"] for i in doc["items"]] == ["settings"]
    code, doc = call(api, "GET", "/api/v1/namespaces/default/configmaps", query={"labelSelector": "team!=a"})
    assert [i["metadata"]["name"] for i in doc["items"]] == ["other"]
    code, doc = call(api, "GET", "/api/v1/namespaces/default/configmaps", query={"labelSelector": "!team"})
    assert doc["items"] == []
    code, doc = call(api, "GET", "/api/v1/namespaces/default/configmaps",
                     query={"fieldSelector": "metadata.name=other"})
    assert [i["metadata"]["name"] for i in doc["items"]] == ["other"]
    code, doc = call(api, "GET", "/api/v1/namespaces/default/configmaps", query={"fieldSelector": "spec.x=1"})
    assert code == 400 and doc["reason"] == "BadRequest"


def test_list_configmaps_across_namespaces_needs_cluster_rule(api):
    code, doc = call(api, "GET", "/api/v1/configmaps")
    assert code == 403 and "cannot list resource \"configmaps\" in API group \"\" at the cluster scope" in doc["message"]
    assert doc["details"] == {"kind": "configmaps"}
    for namespace in ("", "*"):
        run = make_run(rules=[{"apiGroups": [""], "resources": ["*"], "verbs": ["list"], "namespace": namespace}])
        code, doc = call(KubeApi(run, TOKEN), "GET", "/api/v1/configmaps")
        assert code == 200 and len(doc["items"]) == 2


def test_secret_by_resource_name(api):
    code, doc = call(api, "GET", "/api/v1/namespaces/tools/secrets/creds")
    assert code == 200 and doc["data"] == {"password": "c2VjcmV0"}
    code, doc = call(api, "GET", "/api/v1/namespaces/tools/secrets/other")
    assert code == 403
    code, doc = call(api, "GET", "/api/v1/namespaces/tools/secrets")
    assert code == 403 and 'cannot list resource "secrets"' in doc["message"]


def test_watch_not_served(api):
    code, doc = call(api, "GET", "/api/v1/namespaces/default/configmaps", query={"watch": "true"})
    assert code == 405 and doc["reason"] == "MethodNotAllowed"


# ---- status writes ---------------------------------------------------------------------------

def test_merge_patch_status(api):
    assert api.status() is None
    code, doc = call(api, "PATCH", OBJ + "/status", {"status": {"message": "Ready", "url": "redis://x"}}, MERGE)
    assert code == 200
    assert doc["status"] == {"message": "Ready", "url": "redis://x",
                             "conditions": [{"type": "Reconciled", "status": "Unknown"}]}
    assert doc["metadata"]["resourceVersion"] == "8" and doc["metadata"]["generation"] == 3
    assert api.status() == doc["status"]
    code, again = call(api, "GET", OBJ)
    assert again == doc
    code, doc = call(api, "PATCH", OBJ + "/status", {"status": {"url": None}},
                     {**AUTH, "content-type": "application/merge-patch+json; charset=utf-8"})
    assert code == 200 and "url" not in doc["status"] and doc["metadata"]["resourceVersion"] == "9"


def test_status_write_calls_back():
    seen: list[dict] = []
    api = KubeApi(make_run(), TOKEN, on_status_write=seen.append)
    call(api, "PATCH", OBJ + "/status", {"status": {"a": 1}}, MERGE)
    assert seen == [api.status()]


def test_status_not_committed_when_it_cannot_be_recorded():
    def fail(status: dict) -> None:
        raise OSError(28, "No space left on device")

    api = KubeApi(make_run(), TOKEN, on_status_write=fail)
    code, doc = call(api, "PATCH", OBJ + "/status", {"status": {"a": 1}}, MERGE)
    assert code == 500 and doc["reason"] == "InternalError" and "No space left" in doc["message"]
    assert api.status() is None and api.object()["metadata"]["resourceVersion"] == "7"


def test_patch_confined_to_status(api):
    code, doc = call(api, "PATCH", OBJ + "/status",
                     {"spec": {"size": "huge"}, "metadata": {"labels": {"evil": "yes"}, "name": "x"},
                      "status": {"message": "ok"}}, MERGE)
    assert code == 200
    assert doc["spec"] == {"size": "small"} and "evil" not in doc["metadata"]["labels"]
    assert doc["metadata"]["name"] == "example" and doc["status"]["message"] == "ok"


def test_merge_patch_removing_status(api):
    code, doc = call(api, "PATCH", OBJ + "/status", {"status": None}, MERGE)
    assert code == 200 and doc["status"] == {} and api.status() == {}


def test_json_patch_status(api):
    ops = [{"op": "test", "path": "/status/message", "value": "Pending"},
           {"op": "replace", "path": "/status/message", "value": "Done"},
           {"op": "add", "path": "/status/conditions/-", "value": {"type": "Ready", "status": "True"}},
           {"op": "remove", "path": "/status/conditions/0"},
           {"op": "copy", "from": "/spec/size", "path": "/status/size"},
           {"op": "move", "from": "/status/size", "path": "/status/tier"},
           {"op": "add", "path": "/spec/size", "value": "huge"}]
    code, doc = call(api, "PATCH", OBJ + "/status", ops, JSONP)
    assert code == 200
    assert doc["status"] == {"message": "Done", "conditions": [{"type": "Ready", "status": "True"}], "tier": "small"}
    assert doc["spec"] == {"size": "small"}


def test_json_patch_failed_test_is_422(api):
    code, doc = call(api, "PATCH", OBJ + "/status", [{"op": "test", "path": "/status/message", "value": "x"}], JSONP)
    assert code == 422 and doc["reason"] == "Invalid" and "test failed" in doc["message"]
    assert api.status() is None


def test_json_patch_not_an_array_is_422(api):
    code, doc = call(api, "PATCH", OBJ + "/status", {"status": {}}, JSONP)
    assert code == 422 and "must be an array" in doc["message"]


def test_strategic_merge_patch_is_415(api):
    code, doc = call(api, "PATCH", OBJ + "/status", {"status": {}},
                     {**AUTH, "Content-Type": "application/strategic-merge-patch+json"})
    assert (code, doc) == (415, status_doc(415, "UnsupportedMediaType", UNKNOWN_FORMAT))
    assert UNKNOWN_FORMAT == ("the body of the request was in an unknown format - accepted media types include: "
                              "application/json-patch+json, application/merge-patch+json, "
                              "application/apply-patch+yaml")


@pytest.mark.parametrize("content_type", ["", "application/json", "text/plain", "application/apply-patch+yaml"])
def test_other_patch_types_are_415(api, content_type):
    code, doc = call(api, "PATCH", OBJ + "/status", {"status": {}}, {**AUTH, "Content-Type": content_type})
    assert code == 415 and doc["reason"] == "UnsupportedMediaType"


@pytest.mark.parametrize("body", [b"{", b"[1]", b'"x"', b"\xff", b'{"status": NaN}'])
def test_bad_merge_patch_bodies_are_400(api, body):
    code, doc = call(api, "PATCH", OBJ + "/status", body, MERGE)
    assert code == 400 and doc["reason"] == "BadRequest" and "details" not in doc


def test_deeply_nested_body_is_400(api):
    body = b'{"status":' + b'{"a":' * 200 + b"1" + b"}" * 201
    code, doc = call(api, "PATCH", OBJ + "/status", body, MERGE)
    assert code == 400 and "nested" in doc["message"]


def test_non_object_status_is_422(api):
    code, doc = call(api, "PATCH", OBJ + "/status", {"status": "done"}, MERGE)
    assert code == 422 and doc["reason"] == "Invalid" and doc["details"]["kind"] == "Redis"


def test_too_large_body_is_413(api):
    code, doc = call(api, "PATCH", OBJ + "/status", b" " * (MAX_BODY_BYTES + 1), MERGE)
    assert code == 413 and doc["reason"] == "RequestEntityTooLarge"
    big = {"status": {"blob": "x" * (MAX_BODY_BYTES - 100)}}
    code, doc = call(api, "PATCH", OBJ + "/status", big, MERGE)
    assert code == 413 and api.status() is None


def test_patch_with_stale_resource_version_is_409(api):
    code, doc = call(api, "PATCH", OBJ + "/status", {"metadata": {"resourceVersion": "3"}, "status": {}}, MERGE)
    assert code == 409
    assert doc == status_doc(409, "Conflict", 'Operation cannot be fulfilled on redis.marketplace.kratix.io '
                             '"example": the object has been modified; please apply your changes to the latest '
                             "version and try again",
                             {"name": "example", "group": "marketplace.kratix.io", "kind": "redis"})
    code, doc = call(api, "PATCH", OBJ + "/status", {"metadata": {"resourceVersion": "7"}, "status": {"a": 1}}, MERGE)
    assert code == 200


def test_dry_run_does_not_write(api):
    code, doc = call(api, "PATCH", OBJ + "/status", {"status": {"a": 1}}, MERGE, query={"dryRun": "All"})
    assert code == 200 and doc["status"]["a"] == 1 and api.status() is None
    assert doc["metadata"]["resourceVersion"] == "7"


def test_put_status(api):
    _, current = call(api, "GET", OBJ)
    body = {**current, "spec": {"size": "huge"}, "status": {"message": "replaced"}}
    code, doc = call(api, "PUT", OBJ + "/status", body)
    assert code == 200 and doc["status"] == {"message": "replaced"} and doc["spec"] == {"size": "small"}
    assert doc["metadata"]["resourceVersion"] == "8" and api.status() == {"message": "replaced"}
    code, doc = call(api, "PUT", OBJ + "/status", body)
    assert code == 409 and doc["reason"] == "Conflict"


def test_put_status_needs_resource_version(api):
    code, doc = call(api, "PUT", OBJ + "/status", {"metadata": {"name": "example"}, "status": {}})
    assert code == 422 and doc["reason"] == "Invalid"
    assert doc["message"] == ('Redis.marketplace.kratix.io "example" is invalid: metadata.resourceVersion: '
                              "Invalid value: 0x0: must be specified for an update")


def test_put_status_name_mismatch_is_400(api):
    code, doc = call(api, "PUT", OBJ + "/status", {"metadata": {"name": "other", "resourceVersion": "7"}})
    assert code == 400
    assert doc["message"] == "the name of the object (other) does not match the name on the URL (example)"


# ---- everything else is forbidden -----------------------------------------------------------

@pytest.mark.parametrize(("method", "path", "verb", "resource", "name"), [
    ("PATCH", OBJ, "patch", "redis", "example"),
    ("PUT", OBJ, "update", "redis", "example"),
    ("DELETE", OBJ, "delete", "redis", "example"),
    ("POST", "/apis/marketplace.kratix.io/v1alpha1/namespaces/default/redis", "create", "redis", ""),
    ("DELETE", "/apis/marketplace.kratix.io/v1alpha1/namespaces/default/redis", "deletecollection", "redis", ""),
    ("PATCH", "/apis/marketplace.kratix.io/v1alpha1/namespaces/default/redis/other/status", "patch",
     "redis/status", "other"),
])
def test_writes_to_the_object_forbidden(api, method, path, verb, resource, name):
    code, doc = call(api, method, path, {"spec": {}}, MERGE)
    subject = f'redis.marketplace.kratix.io "{name}"' if name else "redis.marketplace.kratix.io"
    expected = (f'{subject} is forbidden: User "system:serviceaccount:default:redis-resource-pipeline" cannot '
                f'{verb} resource "{resource}" in API group "marketplace.kratix.io" in the namespace "default": '
                f"{FORBIDDEN_TAIL}")
    details = {"name": name, "group": "marketplace.kratix.io", "kind": "redis"} if name else \
        {"group": "marketplace.kratix.io", "kind": "redis"}
    assert (code, doc) == (403, status_doc(403, "Forbidden", expected, details))
    assert api.status() is None


@pytest.mark.parametrize(("method", "path"), [
    ("PATCH", "/apis/platform.kratix.io/v1alpha1/promises/redis/status"),
    ("PATCH", "/apis/platform.kratix.io/v1alpha1/promises/redis"),
    ("PUT", "/api/v1/namespaces/default/configmaps/settings"),
    ("DELETE", "/api/v1/namespaces/default/configmaps/settings"),
    ("POST", "/api/v1/namespaces/default/configmaps"),
])
def test_writes_to_anything_else_forbidden(api, method, path):
    code, doc = call(api, method, path, {"data": {}}, MERGE)
    assert code == 403 and doc["reason"] == "Forbidden" and doc["message"].endswith(FORBIDDEN_TAIL)


def test_status_never_escapes_via_other_types(api):
    call(api, "PATCH", "/api/v1/namespaces/default/configmaps/settings/status", {"status": {}}, MERGE)
    code, doc = call(api, "GET", "/api/v1/namespaces/default/configmaps/settings")
    assert "status" not in doc and api.status() is None
