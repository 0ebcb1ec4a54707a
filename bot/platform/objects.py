"""The typed model of bot.model built from a platform repo's YAML documents (bot.platform.loader reads
them): which document is a Promise, Destination, State Store or Resource request, with the
defaults of contract §3.5-§3.7 applied; duplicates and unserved API versions become `Problem`s.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bot.model.objects import (
    BUCKET_STATE_STORE,
    DEFAULT_GIT_AUTHOR,
    DEFAULT_GIT_BRANCH,
    DEFAULT_NAMESPACE,
    DESTINATION,
    GIT_STATE_STORE,
    KRATIX_API_VERSION,
    PROMISE,
    STATE_STORE_KINDS,
    WORKFLOW_ACTIONS,
    WORKFLOW_TYPES,
    Container,
    Destination,
    Permission,
    Pipeline,
    PipelineRBAC,
    Platform,
    Problem,
    Promise,
    PromiseAPI,
    ResourceRequest,
    SecretRef,
    Source,
    StateStore,
)
from bot.platform import schema
from bot.platform.yamlload import YamlDoc
from bot.settings import Settings


@dataclass(slots=True)
class LoadedPlatform(Platform):
    """A Platform plus what validation needs to point at exact lines."""

    documents: dict[Source, YamlDoc] = field(default_factory=dict)  # keyed by each object's source
    root: Path | None = None  # the platform repo's directory (resolve relative state-store URLs)
    settings: Settings | None = None


def build(platform: LoadedPlatform, docs: list[YamlDoc]) -> None:
    """Kratix objects first (a request's kind is only known once every Promise is), then requests."""
    rest: list[YamlDoc] = []
    for doc in docs:
        kind = doc.data.get("kind")
        if doc.data.get("apiVersion") == KRATIX_API_VERSION and kind in (PROMISE, DESTINATION, *STATE_STORE_KINDS):
            platform.documents[doc.source] = doc
            if kind == PROMISE:
                _add(platform, platform.promises, _promise(doc), doc)
            elif kind == DESTINATION:
                _add(platform, platform.destinations, _destination(doc), doc)
            else:
                _add(platform, platform.state_stores, _state_store(doc), doc)
        else:
            rest.append(doc)
    apis = _request_apis(platform)
    for doc in rest:
        api_version, kind = doc.data.get("apiVersion"), doc.data.get("kind")
        match = apis.get((api_version, kind)) if isinstance(api_version, str) and isinstance(kind, str) else None
        if match is None:
            unserved = _unserved_version(platform, api_version, kind)
            if unserved:
                platform.problems.append(Problem(doc.source_at(("apiVersion",)), "apiVersion", unserved))
            platform.ignored.append(doc.source)
            if _is_manifest(doc.data):
                platform.manifests.append(doc.data)
            continue
        platform.documents[doc.source] = doc
        _add(platform, platform.requests, _request(doc, match), doc)


def _add(platform: Platform, table: dict[Any, Any], obj: Any, doc: YamlDoc) -> None:
    """Keep the first object of a name; a later one is a duplicate, reported with both places."""
    key = obj.ref if table is platform.state_stores or table is platform.requests else obj.name
    first = table.get(key)
    if first is None:
        table[key] = obj
        return
    what = f"{obj.ref}" if obj.name else f"{obj.ref.kind} without a name"
    platform.problems.append(Problem(doc.source_at(("metadata", "name")), "metadata.name",
                                     f"duplicate {what}: also defined at {first.source}"))


def _request_apis(platform: Platform) -> dict[tuple[str, str], tuple[Promise, str]]:
    """(apiVersion, kind) of every served version of every Promise API -> (promise, version)."""
    apis: dict[tuple[str, str], tuple[Promise, str]] = {}
    for promise in platform.promises.values():
        if promise.api is None or not promise.api.group or not promise.api.kind:
            continue
        for version in promise.api.served_versions:
            apis.setdefault((f"{promise.api.group}/{version}", promise.api.kind), (promise, version))
    return apis


def _unserved_version(platform: Platform, api_version: Any, kind: Any) -> str:
    """A message when apiVersion/kind names a Promise's API at a version it does not serve."""
    if not isinstance(api_version, str) or "/" not in api_version:
        return ""
    group, version = api_version.split("/", 1)
    for promise in platform.promises.values():
        api = promise.api
        if api is not None and api.group == group and api.kind == kind:
            served = ", ".join(api.served_versions) or "none"
            return f"version {version} of {kind}.{group} is not served by Promise {promise.name} (served: {served})"
    return ""


def _is_manifest(data: Any) -> bool:
    """A document shaped like a Kubernetes object: apiVersion, kind and metadata.name strings."""
    return (isinstance(data, dict) and isinstance(data.get("apiVersion"), str) and isinstance(data.get("kind"), str)
            and isinstance(_map(data.get("metadata")).get("name"), str))


def _map(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _text(value: Any, default: str = "") -> str:
    return value if isinstance(value, str) else default


def _name(doc: YamlDoc) -> str:
    return _text(_map(doc.data.get("metadata")).get("name"))


def _promise(doc: YamlDoc) -> Promise:
    spec = _map(doc.data.get("spec"))
    promise = Promise(name=_name(doc), body=doc.data, source=doc.source, api=_promise_api(spec.get("api")))
    for entry in _list(spec.get("destinationSelectors")):  # squashed: AND, first entry wins (§2.1)
        for key, value in _map(_map(entry).get("matchLabels")).items():
            promise.destination_selectors.setdefault(str(key), str(value))
    promise.dependencies = [d for d in _list(spec.get("dependencies")) if isinstance(d, dict)]
    promise.required_promises = [
        {"name": _text(r.get("name")), "version": _text(r.get("version"))}
        for r in _list(spec.get("requiredPromises")) if isinstance(r, dict)
    ]
    workflows = _map(spec.get("workflows"))
    for wtype in WORKFLOW_TYPES:
        for action in WORKFLOW_ACTIONS:
            items = _list(_map(workflows.get(wtype)).get(action))
            if items:
                path = ("spec", "workflows", wtype, action)
                promise.workflows[(wtype, action)] = [
                    _pipeline(item, doc.source_at((*path, i))) for i, item in enumerate(items)
                ]
    return promise


def _promise_api(api: Any) -> PromiseAPI | None:
    """The CRD reduced to what promisebot needs; the storage version (or the first) defines it (§4.1)."""
    if not isinstance(api, dict):
        return None
    spec = _map(api.get("spec"))
    names = _map(spec.get("names"))
    versions = [v for v in _list(spec.get("versions")) if isinstance(v, dict)]
    storage = next((v for v in versions if v.get("storage") is True), versions[0] if versions else {})
    return PromiseAPI(
        group=_text(spec.get("group")),
        kind=_text(names.get("kind")),
        plural=_text(names.get("plural")),
        version=_text(storage.get("name")),
        scope=_text(spec.get("scope")),
        schema=_map(_map(storage.get("schema")).get("openAPIV3Schema")),
        served_versions=tuple(_text(v.get("name")) for v in versions if v.get("served") is True),
    )


def _pipeline(item: Any, source: Source) -> Pipeline:
    item = _map(item)
    meta = _map(item.get("metadata"))
    spec = _map(item.get("spec"))
    containers = [
        Container(
            name=_text(c.get("name")),
            image=_text(c.get("image")),
            command=[str(x) for x in c["command"]] if isinstance(c.get("command"), list) else None,
            args=[str(x) for x in c["args"]] if isinstance(c.get("args"), list) else None,
            env=[e for e in _list(c.get("env")) if isinstance(e, dict)],
            working_dir=_text(c.get("workingDir")) or None,
            image_pull_policy=_text(c.get("imagePullPolicy"), "IfNotPresent"),
        )
        for c in _list(spec.get("containers")) if isinstance(c, dict)
    ]
    return Pipeline(
        name=_text(meta.get("name")),
        containers=containers,
        spec=spec,
        source=source,
        labels={str(k): str(v) for k, v in _map(meta.get("labels")).items()},
        annotations={str(k): str(v) for k, v in _map(meta.get("annotations")).items()},
        rbac=_rbac(spec.get("rbac")),
    )


def _rbac(value: Any) -> PipelineRBAC | None:
    """Kratix's Pipeline `spec.rbac`: serviceAccount, permissions[] (PolicyRule + resourceNamespace)."""
    if not isinstance(value, dict):
        return None

    def strings(item: dict[str, Any], key: str) -> tuple[str, ...]:
        return tuple(str(x) for x in _list(item.get(key)) if x is not None)

    return PipelineRBAC(
        service_account=_text(value.get("serviceAccount")),
        permissions=[Permission(api_groups=strings(p, "apiGroups"), verbs=strings(p, "verbs"),
                                resources=strings(p, "resources"), resource_names=strings(p, "resourceNames"),
                                resource_namespace=_text(p.get("resourceNamespace")))
                     for p in _list(value.get("permissions")) if isinstance(p, dict)],
    )


def _destination(doc: YamlDoc) -> Destination:
    """Contract §3.5 defaults: nestedByMetadata, aggregated.yaml, cleanup none, init workloads on."""
    spec = _map(doc.data.get("spec"))
    ref = _map(spec.get("stateStoreRef"))
    filepath = _map(spec.get("filepath"))
    init = _map(spec.get("initWorkloads"))
    labels = _map(_map(doc.data.get("metadata")).get("labels"))
    return Destination(
        name=_name(doc),
        body=doc.data,
        source=doc.source,
        labels={str(k): str(v) for k, v in labels.items()},
        path=_text(spec.get("path")),
        state_store_kind=_text(ref.get("kind")),
        state_store_name=_text(ref.get("name")),
        strict_match_labels=spec.get("strictMatchLabels") is True,
        filepath_mode=_text(filepath.get("mode"), "nestedByMetadata"),
        filename=_text(filepath.get("filename")) or "aggregated.yaml",  # "" is defaulted too (Kratix webhook)
        cleanup=_text(spec.get("cleanup"), "none"),
        init_workloads=init.get("enabled") is not False,
    )


def _state_store(doc: YamlDoc) -> StateStore:
    """Contract §3.6/§3.7 defaults. Deviation: our commits' default author is "promisebot"."""
    kind = doc.data["kind"]
    # A field set to null is unset, as Kubernetes reads it, so it takes its default too.
    spec = {k: v for k, v in _map(doc.data.get("spec")).items() if v is not None}
    if kind == GIT_STATE_STORE:
        spec.setdefault("branch", DEFAULT_GIT_BRANCH)
        spec.setdefault("authMethod", "basicAuth")
        author = {k: v for k, v in _map(spec.get("gitAuthor")).items() if v is not None}
        author.setdefault("name", DEFAULT_GIT_AUTHOR)
        author.setdefault("email", "")
        spec["gitAuthor"] = author
    elif kind == BUCKET_STATE_STORE:
        spec.setdefault("authMethod", "accessKey")
        spec.setdefault("insecure", False)
        spec.setdefault("useDualStack", False)
    spec.setdefault("path", "")
    secret = spec.get("secretRef")
    secret_ref = None
    if isinstance(secret, dict):
        secret_ref = SecretRef(_text(secret.get("name")), _text(secret.get("namespace")) or DEFAULT_NAMESPACE)
        spec["secretRef"] = {**secret, "namespace": secret_ref.namespace}
    return StateStore(kind=kind, name=_name(doc), body=doc.data, source=doc.source,
                      path=_text(spec.get("path")), spec=spec, secret_ref=secret_ref)


def _request(doc: YamlDoc, match: tuple[Promise, str]) -> ResourceRequest:
    """A Resource request: namespace defaulted to "default", the API schema's defaults applied."""
    promise, _version = match
    api = promise.api
    assert api is not None
    body = schema.apply_defaults(doc.data, api.schema)
    metadata = body.get("metadata")
    if not isinstance(metadata, dict):
        metadata = body["metadata"] = {}
    namespace = _text(metadata.get("namespace")) or DEFAULT_NAMESPACE
    metadata["namespace"] = namespace
    return ResourceRequest(
        promise=promise.name,
        api_version=_text(doc.data.get("apiVersion")),
        kind=api.kind,
        group=api.group,
        name=_text(metadata.get("name")),
        namespace=namespace,
        body=body,
        source=doc.source,
    )

