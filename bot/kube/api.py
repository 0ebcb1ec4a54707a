"""A small Kubernetes API, served to one pipeline run (issue 13).

STDLIB ONLY: this module runs inside the pipeline's API sidecar (`bot.kube.server`, started by
`bot/kube/bootstrap.py`), whose Python has no third-party packages; it imports only the standard library,
`bot.kube.patch` and `bot.kube.table`.

`KubeApi(run, token).handle(method, path, query, headers, body)` answers one HTTP request with
Kubernetes' own response shapes, status codes and `Status` errors, enough for the official
Python client (in-cluster config, then a merge patch of the object's status subresource, as
kratix-sdk's `publish_status` does) and for `kubectl get`. It serves:

- discovery: `/version`, `/api`, `/api/v1`, `/apis`, `/apis/<group>`, `/apis/<group>/<version>`;
- GET of the object and LIST of its collection (holding only it), GET/PATCH/PUT of its `status`
  subresource (merge patch, JSON patch; strategic merge is refused with Kubernetes' 415 for
  custom resources), GET of its Promise, GET/LIST of the resources the pipeline's rbac grants.

A GET or LIST whose Accept header asks for a `Table` (as `kubectl get` does) is answered with one,
in the columns kube-apiserver prints for that resource (`bot.kube.table`).

Writes are confined to the object's status: a patch or update of the status subresource is
applied to the whole object, as Kubernetes does, and then only the resulting `status` is kept
(changes to metadata or spec are dropped, as Kubernetes' status strategy drops them). Anything
else that writes is answered 403 Forbidden, naming what promisebot serves. `metadata.resourceVersion`
is bumped on every status write; `metadata.generation` is present but, as in Kubernetes, only
changes with spec, so a status write leaves it alone.
"""

from __future__ import annotations

import copy
import hmac
import json
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from bot.kube import table
from bot.kube.patch import PatchError, json_patch, merge_patch

MAX_BODY_BYTES = 3 * 1024 * 1024
MAX_NESTING = 100
GIT_VERSION = "v1.30.0-promisebot"
PROMISE_GROUP = "platform.kratix.io"
PROMISE_VERSION = "v1alpha1"

MERGE_PATCH = "application/merge-patch+json"
JSON_PATCH = "application/json-patch+json"
STRATEGIC_PATCH = "application/strategic-merge-patch+json"
APPLY_PATCH = "application/apply-patch+yaml"
UNKNOWN_FORMAT = ("the body of the request was in an unknown format - accepted media types include: "
                  f"{JSON_PATCH}, {MERGE_PATCH}, {APPLY_PATCH}")
NOT_FOUND_PATH = "the server could not find the requested resource"

Response = tuple[int, dict[str, str], bytes]
StatusCallback = Callable[[dict[str, Any]], None]
Clock = Callable[[], datetime]

# kubectl resolves short names through discovery ("kubectl get cm"); Kubernetes' own, for core types.
# Core types every cluster serves: discovery lists them, so that `kubectl get secret x` of a run
# that is not granted Secrets gets Kubernetes' 403 rather than "no such resource type".
CORE_TYPES: tuple[tuple[str, str, bool], ...] = (
    ("configmaps", "ConfigMap", True), ("secrets", "Secret", True), ("namespaces", "Namespace", False),
    ("pods", "Pod", True), ("services", "Service", True), ("serviceaccounts", "ServiceAccount", True),
)
SHORT_NAMES = {("", "configmaps"): ["cm"], ("", "services"): ["svc"], ("", "serviceaccounts"): ["sa"],
               ("", "persistentvolumeclaims"): ["pvc"], ("", "namespaces"): ["ns"], ("", "endpoints"): ["ep"],
               ("", "pods"): ["po"], ("apps", "deployments"): ["deploy"], ("apps", "statefulsets"): ["sts"]}

_REASONS = {400: "BadRequest", 401: "Unauthorized", 403: "Forbidden", 404: "NotFound",
            405: "MethodNotAllowed", 409: "Conflict", 413: "RequestEntityTooLarge",
            415: "UnsupportedMediaType", 422: "Invalid"}


class ApiError(Exception):
    """An error answered as a Kubernetes `Status` object."""

    def __init__(self, code: int, message: str, details: dict[str, Any] | None = None,
                 reason: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.details = details
        self.reason = reason or _REASONS.get(code, "InternalError")

    def status(self) -> dict[str, Any]:
        """The `Status` object, with Kubernetes' field order; `details` only when it has any."""
        doc: dict[str, Any] = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                               "message": self.message, "reason": self.reason}
        if self.details is not None:
            doc["details"] = self.details
        doc["code"] = self.code
        return doc


def status_details(name: str, group: str, kind: str) -> dict[str, Any]:
    """`details` of a Status about one resource: empty fields left out, as Go's omitempty does."""
    details: dict[str, Any] = {}
    if name:
        details["name"] = name
    if group:
        details["group"] = group
    if kind:
        details["kind"] = kind
    return details


@dataclass
class ResourceType:
    """One resource type served: its discovery entry and the objects held."""

    group: str
    version: str
    plural: str
    kind: str
    namespaced: bool
    objects: list[dict[str, Any]] = field(default_factory=list)
    short_names: list[str] = field(default_factory=list)

    @property
    def group_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def qualified(self) -> str:
        """The group-qualified resource, as Kubernetes names it in messages ("redis.marketplace.kratix.io")."""
        return f"{self.plural}.{self.group}" if self.group else self.plural


def _meta(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    meta = obj.get("metadata")
    return meta if isinstance(meta, Mapping) else {}


def _name_of(obj: Mapping[str, Any]) -> str:
    return str(_meta(obj).get("name") or "")


def _namespace_of(obj: Mapping[str, Any]) -> str:
    return str(_meta(obj).get("namespace") or "")


def _depth_ok(value: Any, limit: int) -> bool:
    """Whether value nests no more than limit containers deep (iterative)."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict | list):
            if depth > limit:
                return False
            children = node.values() if isinstance(node, dict) else node
            stack.extend((child, depth + 1) for child in children)
    return True


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _parse_json(body: bytes) -> Any:
    try:
        value = json.loads(body.decode("utf-8"), parse_constant=_reject_constant)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise ApiError(400, f"the request body is not valid JSON: {exc}") from None
    if not _depth_ok(value, MAX_NESTING):
        raise ApiError(400, f"the request body is nested more than {MAX_NESTING} levels deep")
    return value


def _media_type(headers: Mapping[str, str]) -> str:
    for key, value in headers.items():
        if key.lower() == "content-type":
            return value.split(";", 1)[0].strip().lower()
    return ""


def _header(headers: Mapping[str, str], name: str) -> str:
    for key, value in headers.items():
        if key.lower() == name:
            return value
    return ""


def _match_labels(obj: Mapping[str, Any], selector: str) -> bool:
    """Equality-based label selectors: `a=b`, `a==b`, `a!=b`, `a`, `!a`, comma-separated."""
    labels = _meta(obj).get("labels")
    labels = labels if isinstance(labels, Mapping) else {}
    for term in (t.strip() for t in selector.split(",")):
        if not term:
            continue
        if "!=" in term:
            key, value = (p.strip() for p in term.split("!=", 1))
            if labels.get(key) == value:
                return False
        elif "=" in term:
            key, value = (p.strip() for p in term.replace("==", "=").split("=", 1))
            if labels.get(key) != value:
                return False
        elif term.startswith("!"):
            if term[1:].strip() in labels:
                return False
        elif term not in labels:
            return False
    return True


def _match_fields(obj: Mapping[str, Any], selector: str) -> bool:
    """Field selectors on `metadata.name` and `metadata.namespace` (`=`, `==`, `!=`)."""
    for term in (t.strip() for t in selector.split(",")):
        if not term:
            continue
        negate = "!=" in term
        key, value = (p.strip() for p in term.replace("!=", "=").replace("==", "=").split("=", 1))
        if key == "metadata.name":
            actual = _name_of(obj)
        elif key == "metadata.namespace":
            actual = _namespace_of(obj)
        else:
            raise ApiError(400, f'"{key}" is not a known field selector: only "metadata.name", '
                                '"metadata.namespace"')
        if (actual == value) == negate:
            return False
    return True


class KubeApi:
    """The API of one pipeline run. Thread-safe: requests are answered under one lock."""

    def __init__(self, run: dict[str, Any], token: str, *, on_status_write: StatusCallback | None = None,
                 clock: Clock | None = None) -> None:
        if not token:
            raise ValueError("the API token must not be empty")
        self._token = token.encode("utf-8")
        self._lock = threading.Lock()
        self._on_status_write = on_status_write
        # Aware, as Table ages need; not datetime.UTC (3.11+): the sidecar's Python may be older.
        self._clock: Clock = clock or (lambda: datetime.now(timezone.utc))  # noqa: UP017
        self._status: dict[str, Any] | None = None

        obj = copy.deepcopy(run["object"])
        res = run["objectResource"]
        self.object_type = ResourceType(str(res.get("group") or ""), str(res["version"]), str(res["plural"]),
                                        str(res["kind"]), bool(res.get("namespaced", True)))
        meta = obj.setdefault("metadata", {})
        if self.object_type.namespaced and not meta.get("namespace"):
            meta["namespace"] = "default"
        rv = str(meta.get("resourceVersion") or "")
        meta["resourceVersion"] = rv if rv.isdigit() else "1"
        if not isinstance(meta.get("generation"), int):
            meta["generation"] = 1
        self._object: dict[str, Any] = obj

        account = run.get("serviceAccount") or {}
        self.user = (f"system:serviceaccount:{account.get('namespace') or 'default'}:"
                     f"{account.get('name') or 'default'}")
        self._rules: list[dict[str, Any]] = [r for r in run.get("rules") or [] if isinstance(r, dict)]

        self._types: dict[tuple[str, str, str], ResourceType] = {}
        self._add_type(self.object_type)
        self._promise: dict[str, Any] | None = None
        promise = run.get("promise")
        if promise is not None:
            self._promise = copy.deepcopy(promise)
            self._add_type(ResourceType(PROMISE_GROUP, PROMISE_VERSION, "promises", "Promise", False))
        for plural, kind, namespaced in CORE_TYPES:  # known, so an ungranted get is 403, as in Kubernetes
            self._add_type(ResourceType("", "v1", plural, kind, namespaced))
        for entry in run.get("resources") or []:
            rtype = self._add_type(ResourceType(str(entry.get("group") or ""), str(entry["version"]),
                                                str(entry["plural"]), str(entry["kind"]),
                                                bool(entry.get("namespaced", True))))
            rtype.objects.append(copy.deepcopy(entry["object"]))
            short = entry.get("shortNames")
            if isinstance(short, list) and not rtype.short_names:
                rtype.short_names = [str(n) for n in short]

    # ---- public interface -------------------------------------------------------------------

    def status(self) -> dict[str, Any] | None:
        """The object's status as written through the API so far; None when never written."""
        with self._lock:
            return copy.deepcopy(self._status)

    def object(self) -> dict[str, Any]:
        """The object as the API serves it now."""
        with self._lock:
            return copy.deepcopy(self._object)

    def handle(self, method: str, path: str, query: dict[str, str], headers: Mapping[str, str],
               body: bytes) -> Response:
        """Answer one request: (status code, headers, JSON body)."""
        try:
            if len(body) > MAX_BODY_BYTES:
                raise ApiError(413, "the server has received a request that is too large")
            self._authenticate(headers)
            with self._lock:
                code, doc = self._route(method.upper(), path, query, headers, body)
        except ApiError as exc:
            code, doc = exc.code, exc.status()
        payload = json.dumps(doc, separators=(",", ":")).encode("utf-8") + b"\n"
        return code, {"Content-Type": "application/json", "Cache-Control": "no-cache, private"}, payload

    # ---- internals ----------------------------------------------------------------------------

    def _add_type(self, rtype: ResourceType) -> ResourceType:
        key = (rtype.group, rtype.version, rtype.plural)
        existing = self._types.get(key)
        if existing is None:
            rtype.short_names = rtype.short_names or list(SHORT_NAMES.get((rtype.group, rtype.plural), []))
            self._types[key] = rtype
            return rtype
        return existing

    def _authenticate(self, headers: Mapping[str, str]) -> None:
        auth = _header(headers, "authorization")
        scheme, _, presented = auth.partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(presented.strip().encode("utf-8"), self._token):
            raise ApiError(401, "Unauthorized")

    def _route(self, method: str, path: str, query: dict[str, str], headers: Mapping[str, str],
               body: bytes) -> tuple[int, dict[str, Any]]:
        parts = [p for p in path.split("/") if p]
        if method in ("GET", "HEAD"):
            discovery = self._discovery(parts, headers)
            if discovery is not None:
                return 200, discovery
        if parts[:1] == ["api"] and len(parts) >= 2:
            group, version, rest = "", parts[1], parts[2:]
        elif parts[:1] == ["apis"] and len(parts) >= 3:
            group, version, rest = parts[1], parts[2], parts[3:]
        else:
            raise ApiError(404, NOT_FOUND_PATH, {})
        namespace = ""
        if len(rest) >= 2 and rest[0] == "namespaces" and len(rest) >= 3:
            namespace, rest = rest[1], rest[2:]
        if not rest or len(rest) > 3:
            raise ApiError(404, NOT_FOUND_PATH, {})
        rtype = self._types.get((group, version, rest[0]))
        if rtype is None or (namespace and not rtype.namespaced):
            raise ApiError(404, NOT_FOUND_PATH, {})
        name = rest[1] if len(rest) >= 2 else ""
        subresource = rest[2] if len(rest) == 3 else ""
        if rtype.namespaced and name and not namespace:
            raise ApiError(404, NOT_FOUND_PATH, {})
        verb = self._verb(method, name, query)
        if verb == "watch":
            raise ApiError(405, "promisebot does not serve watch; use get or list", {})
        if subresource and not name:
            raise ApiError(404, NOT_FOUND_PATH, {})
        is_object = rtype is self.object_type and name == _name_of(self._object) and \
            namespace == _namespace_of(self._object)
        if subresource == "status" and is_object and verb in ("get", "patch", "update"):
            if verb == "get":
                return 200, self._answer(rtype, query, headers, copy.deepcopy(self._object), single=True)
            return self._write_status(rtype, verb, query, headers, body)
        if subresource:
            if not self._allowed(verb, rtype, f"{rtype.plural}/{subresource}", namespace, name):
                raise self._forbidden(verb, rtype, f"{rtype.plural}/{subresource}", namespace, name)
            raise ApiError(404, NOT_FOUND_PATH, {})
        if verb == "get":
            return 200, self._answer(rtype, query, headers, self._get(rtype, namespace, name), single=True)
        if verb == "list":
            return 200, self._answer(rtype, query, headers, self._list(rtype, namespace, query), single=False)
        raise self._forbidden(verb, rtype, rtype.plural, namespace, name)

    @staticmethod
    def _verb(method: str, name: str, query: Mapping[str, str]) -> str:
        if method in ("GET", "HEAD"):
            if query.get("watch") in ("true", "1"):
                return "watch"
            return "get" if name else "list"
        return {"POST": "create", "PUT": "update", "PATCH": "patch",
                "DELETE": "delete" if name else "deletecollection"}.get(method, method.lower())

    # ---- authorization ------------------------------------------------------------------------

    def _is_own(self, rtype: ResourceType, namespace: str, name: str) -> bool:
        """The object itself and its Promise: always readable."""
        if rtype is self.object_type and name == _name_of(self._object) and \
                namespace == _namespace_of(self._object):
            return True
        if self._promise is not None and (rtype.group, rtype.plural) == (PROMISE_GROUP, "promises"):
            return name == _name_of(self._promise)
        return False

    def _allowed(self, verb: str, rtype: ResourceType, resource: str, namespace: str, name: str) -> bool:
        if verb == "get" and self._is_own(rtype, namespace, name):
            return True
        for rule in self._rules:
            groups = rule.get("apiGroups") or []
            resources = rule.get("resources") or []
            verbs = rule.get("verbs") or []
            if not ("*" in groups or rtype.group in groups):
                continue
            if not ("*" in resources or resource in resources):
                continue
            if not ("*" in verbs or verb in verbs):
                continue
            names = rule.get("resourceNames") or []
            if names and name not in names:
                continue
            scope = str(rule.get("namespace") or "")  # "" or "*": every namespace (a ClusterRole)
            if scope not in ("", "*") and rtype.namespaced and namespace != scope:
                continue
            return True
        return False

    def _forbidden(self, verb: str, rtype: ResourceType, resource: str, namespace: str, name: str) -> ApiError:
        subject = f'{rtype.qualified} "{name}"' if name else rtype.qualified
        where = f'in the namespace "{namespace}"' if namespace else "at the cluster scope"
        obj = self._object
        own = f'{self.object_type.qualified} "{_name_of(obj)}"'
        if self.object_type.namespaced:
            own += f' in the namespace "{_namespace_of(obj)}"'
        message = (f'{subject} is forbidden: User "{self.user}" cannot {verb} resource "{resource}" in API '
                   f'group "{rtype.group}" {where}: promisebot serves get on {own} and get/patch/update on '
                   "its status subresource, get on its Promise, and what the pipeline's rbac.permissions grant")
        return ApiError(403, message, status_details(name, rtype.group, rtype.plural))

    # ---- reads --------------------------------------------------------------------------------

    def _objects(self, rtype: ResourceType) -> list[dict[str, Any]]:
        if rtype is self.object_type:
            key = (_namespace_of(self._object), _name_of(self._object))
            others = [o for o in rtype.objects if (_namespace_of(o), _name_of(o)) != key]
            return [self._object, *others]
        if self._promise is not None and (rtype.group, rtype.plural) == (PROMISE_GROUP, "promises"):
            others = [o for o in rtype.objects if _name_of(o) != _name_of(self._promise)]
            return [self._promise, *others]
        return rtype.objects

    def _get(self, rtype: ResourceType, namespace: str, name: str) -> dict[str, Any]:
        if not self._allowed("get", rtype, rtype.plural, namespace, name):
            raise self._forbidden("get", rtype, rtype.plural, namespace, name)
        for obj in self._objects(rtype):
            if _name_of(obj) == name and (not rtype.namespaced or _namespace_of(obj) == namespace):
                return copy.deepcopy(obj)
        raise ApiError(404, f'{rtype.qualified} "{name}" not found', status_details(name, rtype.group, rtype.plural))

    def _list(self, rtype: ResourceType, namespace: str, query: Mapping[str, str]) -> dict[str, Any]:
        items = []
        for obj in self._objects(rtype):
            if namespace and _namespace_of(obj) != namespace:
                continue
            own = self._is_own(rtype, _namespace_of(obj), _name_of(obj))
            if not own and not self._allowed("list", rtype, rtype.plural, namespace, ""):
                continue
            if not _match_labels(obj, query.get("labelSelector", "")):
                continue
            if not _match_fields(obj, query.get("fieldSelector", "")):
                continue
            items.append(copy.deepcopy(obj))
        if not items and not self._allowed("list", rtype, rtype.plural, namespace, "") and \
                not any(self._is_own(rtype, _namespace_of(o), _name_of(o)) for o in self._objects(rtype)):
            raise self._forbidden("list", rtype, rtype.plural, namespace, "")
        return {"apiVersion": rtype.group_version, "kind": f"{rtype.kind}List",
                "metadata": {"resourceVersion": str(self._object["metadata"]["resourceVersion"])},
                "items": items}

    # ---- Table output -------------------------------------------------------------------------

    def _answer(self, rtype: ResourceType, query: Mapping[str, str], headers: Mapping[str, str],
                doc: dict[str, Any], *, single: bool) -> dict[str, Any]:
        """The object (single) or list read, or its Table when the Accept header asks for one."""
        version = table.requested_version(_header(headers, "accept"))
        if version is None:
            return doc
        try:
            include = table.include_object(query)
        except table.TableError as exc:
            raise ApiError(400, str(exc)) from None
        objects = [doc] if single else doc["items"]
        columns = table.columns_for(rtype.group, rtype.version, rtype.plural, self._crd_of(rtype))
        return table.to_table(objects, columns, version=version, include=include,
                              resource_version=str(_meta(doc).get("resourceVersion") or ""), now=self._clock())

    def _crd_of(self, rtype: ResourceType) -> Mapping[str, Any] | None:
        """The CustomResourceDefinition of a resource, when promisebot holds it: the Promise's
        `spec.api` (Kratix's Promise carries its CRD whole) or a CRD the rbac lets the pipeline read."""
        crds: list[Any] = []
        if self._promise is not None:
            spec = self._promise.get("spec")
            crds.append(spec.get("api") if isinstance(spec, dict) else None)
        served = self._types.get(("apiextensions.k8s.io", "v1", "customresourcedefinitions"))
        crds += served.objects if served is not None else []
        return next((c for c in crds if isinstance(c, dict) and table.defines(c, rtype.group, rtype.plural)), None)

    # ---- the status write ---------------------------------------------------------------------

    def _write_status(self, rtype: ResourceType, verb: str, query: Mapping[str, str],
                      headers: Mapping[str, str], body: bytes) -> tuple[int, dict[str, Any]]:
        current = self._object
        name = _name_of(current)
        details = status_details(name, rtype.group, rtype.plural)
        if verb == "patch":
            media = _media_type(headers)
            if media == STRATEGIC_PATCH or media not in (MERGE_PATCH, JSON_PATCH, APPLY_PATCH):
                raise ApiError(415, UNKNOWN_FORMAT)
            if media == APPLY_PATCH:
                raise ApiError(415, "promisebot does not serve server-side apply; use "
                                    f"{MERGE_PATCH} or {JSON_PATCH} on the status subresource")
            patch = _parse_json(body)
            if media == MERGE_PATCH:
                if not isinstance(patch, dict):
                    raise ApiError(400, "the merge patch must be a JSON object")
                patched = merge_patch(current, patch)
            else:
                try:
                    patched = json_patch(current, patch)
                except PatchError as exc:
                    raise ApiError(422, str(exc)) from None
            if not isinstance(patched, dict):
                raise ApiError(422, f'{rtype.qualified} "{name}" is invalid: the patched object is not an object',
                               details)
            sent_rv = str(_meta(patched).get("resourceVersion") or "")
        else:
            patched = _parse_json(body)
            if not isinstance(patched, dict):
                raise ApiError(400, "the request body must be a JSON object")
            body_name = _name_of(patched)
            if body_name and body_name != name:
                raise ApiError(400, f"the name of the object ({body_name}) does not match the name on the URL "
                                    f"({name})")
            sent_rv = str(_meta(patched).get("resourceVersion") or "")
            if not sent_rv:
                raise ApiError(422, f'{rtype.kind}.{rtype.group} "{name}" is invalid: metadata.resourceVersion: '
                                    "Invalid value: 0x0: must be specified for an update",
                               {**details, "kind": rtype.kind, "causes": [
                                   {"reason": "FieldValueInvalid", "message": "Invalid value: 0x0: must be "
                                    "specified for an update", "field": "metadata.resourceVersion"}]})
        current_rv = str(current["metadata"]["resourceVersion"])
        if sent_rv and sent_rv != current_rv:
            raise ApiError(409, f'Operation cannot be fulfilled on {rtype.qualified} "{name}": the object has '
                                "been modified; please apply your changes to the latest version and try again",
                           details)
        status = patched.get("status", {})
        if status is None:
            status = {}
        if not isinstance(status, dict):
            raise ApiError(422, f'{rtype.kind}.{rtype.group} "{name}" is invalid: status: Invalid value: '
                                f'"{type(status).__name__}": status in body must be of type object',
                           {**details, "kind": rtype.kind})
        updated = copy.deepcopy(current)
        updated["status"] = copy.deepcopy(status)
        if len(json.dumps(updated)) > MAX_BODY_BYTES:
            raise ApiError(413, f"Request entity too large: limit is {MAX_BODY_BYTES}")
        if query.get("dryRun"):
            return 200, updated
        updated["metadata"]["resourceVersion"] = str(int(current_rv) + 1)
        if self._on_status_write is not None:
            try:  # recorded first: a write the host cannot see is not acknowledged
                self._on_status_write(copy.deepcopy(status))
            except OSError as exc:
                raise ApiError(500, f"promisebot could not record the status: {exc.strerror or exc}", {},
                               reason="InternalError") from None
        self._object = updated
        self._status = copy.deepcopy(status)
        return 200, copy.deepcopy(updated)

    # ---- discovery ----------------------------------------------------------------------------

    def _discovery(self, parts: list[str], headers: Mapping[str, str]) -> dict[str, Any] | None:
        if parts == ["version"]:
            return {"major": "1", "minor": "30", "gitVersion": GIT_VERSION, "gitCommit": "", "gitTreeState": "clean",
                    "buildDate": "1970-01-01T00:00:00Z", "goVersion": "", "compiler": "promisebot",
                    "platform": "linux/amd64"}
        if parts == ["api"]:
            host = _header(headers, "host") or "127.0.0.1:6443"
            return {"kind": "APIVersions", "versions": ["v1"],
                    "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": host}]}
        if parts == ["api", "v1"]:
            return self._resource_list("", "v1")
        groups = self._groups()
        if parts == ["apis"]:
            return {"kind": "APIGroupList", "apiVersion": "v1",
                    "groups": [self._group_doc(g, vs) for g, vs in groups.items()]}
        if len(parts) == 2 and parts[0] == "apis" and parts[1] in groups:
            return {"kind": "APIGroup", "apiVersion": "v1", **self._group_doc(parts[1], groups[parts[1]])}
        if len(parts) == 3 and parts[0] == "apis" and parts[2] in groups.get(parts[1], []):
            return self._resource_list(parts[1], parts[2])
        return None

    def _groups(self) -> dict[str, list[str]]:
        groups: dict[str, list[str]] = {PROMISE_GROUP: [PROMISE_VERSION]}
        for group, version, _ in self._types:
            if group and version not in groups.setdefault(group, []):
                groups[group].append(version)
        return groups

    @staticmethod
    def _group_doc(group: str, versions: list[str]) -> dict[str, Any]:
        entries = [{"groupVersion": f"{group}/{v}", "version": v} for v in versions]
        return {"name": group, "versions": entries, "preferredVersion": entries[0]}

    def _resource_list(self, group: str, version: str) -> dict[str, Any]:
        resources: list[dict[str, Any]] = []
        for (g, v, _), rtype in self._types.items():
            if (g, v) != (group, version):
                continue
            entry: dict[str, Any] = {"name": rtype.plural, "singularName": rtype.kind.lower(),
                                     "namespaced": rtype.namespaced, "kind": rtype.kind, "verbs": ["get", "list"]}
            if rtype.short_names:
                entry["shortNames"] = rtype.short_names
            resources.append(entry)
            if rtype is self.object_type:
                resources.append({"name": f"{rtype.plural}/status", "singularName": "",
                                  "namespaced": rtype.namespaced, "kind": rtype.kind,
                                  "verbs": ["get", "patch", "update"]})
        doc: dict[str, Any] = {"kind": "APIResourceList", "groupVersion": f"{group}/{version}" if group else version,
                               "resources": resources}
        if group:
            doc["apiVersion"] = "v1"
        return doc
