"""Promise checks: the API CRD, workflows and pipelines (contract §1.1), requiredPromises (§4.6).

Mirrors Kratix's Promise webhook (K:internal/webhook/v1alpha1/promise_webhook.go) and
pipeline decoding (`PipelinesFromUnstructured`, strict: unknown fields rejected).
"""

from __future__ import annotations

import json
from typing import Any

from bot.kratix import goduration
from bot.kratix.goduration import parse_seconds
from bot.kratix.labels import PIPELINE_TIMEOUT_ANNOTATION
from bot.model.objects import (
    KRATIX_API_VERSION,
    PULL_POLICIES,
    WORKFLOW_ACTIONS,
    WORKFLOW_TYPES,
    Promise,
    WorkflowAction,
    WorkflowType,
)
from bot.platform import schema
from bot.platform.validate.common import (
    OBJECT_META_FIELDS,
    Report,
    bool_at,
    check_keys,
    check_labels,
    check_metadata,
    enum_at,
    label_error,
    list_at,
    mapping_at,
    string_at,
    subdomain_error,
)
from bot.platform.yamlload import FieldPath

CRD_API_VERSION = "apiextensions.k8s.io/v1"
CRD_KIND = "CustomResourceDefinition"
MAX_PIPELINE_ID = 60  # <promise>-<type>-<action>-<pipeline> (Kratix webhook)
MIN_RECONCILIATION_NANOS = 60 * 10**9  # Kratix MinReconciliationInterval

PROMISE_FIELDS = ("apiVersion", "kind", "metadata", "spec", "status")
PROMISE_SPEC_FIELDS = ("api", "dependencies", "workflows", "destinationSelectors", "requiredPromises")
PIPELINE_FIELDS = ("apiVersion", "kind", "metadata", "spec")
PIPELINE_SPEC_FIELDS = ("containers", "imagePullSecrets", "jobOptions", "nodeSelector", "rbac",
                        "restartPolicy", "tolerations", "volumes")
# Kratix's Container fields (contract §1.1) plus `workingDir`, a promisebot extension the
# runner honours (documented in docs/platform-repo.md).
CONTAINER_FIELDS = ("name", "image", "args", "command", "env", "envFrom", "volumeMounts",
                    "imagePullPolicy", "securityContext", "resources", "workingDir")


def check_promise(promise: Promise, report: Report) -> None:
    body = promise.body
    check_keys(report, body, (), PROMISE_FIELDS)
    check_metadata(report, body)
    _check_timeout_annotation(report, body)
    spec = mapping_at(report, body.get("spec"), ("spec",))
    if spec is None:
        return
    # Kubernetes prunes unknown Promise spec fields, so they are warnings, not errors.
    check_keys(report, spec, ("spec",), PROMISE_SPEC_FIELDS, warning=True)
    if spec.get("api") is not None:
        _check_api(report, spec["api"])
    for i, dep in enumerate(list_at(report, spec.get("dependencies"), ("spec", "dependencies"))):
        path = ("spec", "dependencies", i)
        if mapping_at(report, dep, path) is not None:
            string_at(report, dep.get("apiVersion"), (*path, "apiVersion"), required=True)
            string_at(report, dep.get("kind"), (*path, "kind"), required=True)
    for i, entry in enumerate(list_at(report, spec.get("destinationSelectors"), ("spec", "destinationSelectors"))):
        path = ("spec", "destinationSelectors", i)
        if mapping_at(report, entry, path) is not None:
            check_keys(report, entry, path, ("matchLabels",))
            check_labels(report, entry.get("matchLabels"), (*path, "matchLabels"))
    _check_required_promises(report, spec.get("requiredPromises"))
    workflows = mapping_at(report, spec.get("workflows"), ("spec", "workflows"))
    if workflows is not None:
        _check_workflows(report, promise.name, workflows)


def _check_timeout_annotation(report: Report, body: dict[str, Any]) -> None:
    annotations = (body.get("metadata") or {}).get("annotations")
    if not isinstance(annotations, dict) or PIPELINE_TIMEOUT_ANNOTATION not in annotations:
        return
    path = ("metadata", "annotations", PIPELINE_TIMEOUT_ANNOTATION)
    try:
        seconds = parse_seconds(str(annotations[PIPELINE_TIMEOUT_ANNOTATION]))
    except ValueError as exc:
        report.error(path, str(exc))
        return
    if seconds <= 0:
        report.error(path, "must be a positive duration")


def _check_api(report: Report, api: Any) -> None:
    """spec.api is a Namespaced CRD with exactly one storage version and valid schemas."""
    if mapping_at(report, api, ("spec", "api")) is None:
        return
    # Kratix unmarshals spec.api into an apiextensions.k8s.io/v1 CRD and never reads these two
    # fields: they must be there (any Kubernetes object has them), other values only warn.
    for key, expected in (("apiVersion", CRD_API_VERSION), ("kind", CRD_KIND)):
        value = string_at(report, api.get(key), ("spec", "api", key), required=True)
        if value and value != expected:
            report.warn(("spec", "api", key), f"is {value!r}; spec.api is read as an {CRD_API_VERSION} "
                        f"{CRD_KIND} whatever it says (Kratix ignores this field): write {expected!r}")
    spec = mapping_at(report, api.get("spec"), ("spec", "api", "spec"), required=True)
    if spec is None:
        return
    base: FieldPath = ("spec", "api", "spec")
    group = string_at(report, spec.get("group"), (*base, "group"), required=True)
    if group and (message := subdomain_error(group)):
        report.error((*base, "group"), message)
    elif group and "." not in group:
        report.error((*base, "group"), "should be a domain with at least one dot")
    if spec.get("scope") != "Namespaced":
        report.error((*base, "scope"), "promise api needs to be namespace scoped; spec.api.spec.scope cannot be: "
                     f"{_go_text(spec.get('scope'))}")
    names = mapping_at(report, spec.get("names"), (*base, "names"), required=True) or {}
    kind = string_at(report, names.get("kind"), (*base, "names", "kind"), required=True)
    if kind and not kind[0].isalpha():
        report.error((*base, "names", "kind"), "must start with a letter")
    plural = string_at(report, names.get("plural"), (*base, "names", "plural"), required=True)
    if plural and (message := label_error(plural)):
        report.error((*base, "names", "plural"), message)
    name = (api.get("metadata") or {}).get("name") if isinstance(api.get("metadata"), dict) else None
    if plural and group and name != f"{plural}.{group}":
        report.error(("spec", "api", "metadata", "name"), f"must be spec.names.plural+\".\"+spec.group "
                     f"({plural}.{group}), not {name!r}")
    _check_versions(report, spec.get("versions"), (*base, "versions"))


def _check_versions(report: Report, versions: Any, path: FieldPath) -> None:
    items = list_at(report, versions, path)
    if not items:
        if isinstance(versions, list) or versions is None:
            report.error(path, "at least one version is required")
        return
    storage, seen = 0, set()
    for i, version in enumerate(items):
        vpath = (*path, i)
        if mapping_at(report, version, vpath) is None:
            continue
        name = string_at(report, version.get("name"), (*vpath, "name"), required=True)
        if name and (message := label_error(name)):
            report.error((*vpath, "name"), message)
        elif name in seen:
            report.error((*vpath, "name"), f"duplicate version {name!r}")
        seen.add(name)
        bool_at(report, version.get("served"), (*vpath, "served"))
        bool_at(report, version.get("storage"), (*vpath, "storage"))
        storage += version.get("storage") is True
        openapi = (version.get("schema") or {}).get("openAPIV3Schema") if isinstance(version.get("schema"), dict) else None
        spath = (*vpath, "schema", "openAPIV3Schema")
        if openapi is None:
            report.error(spath, "required (every version needs a schema)")
            continue
        for err in schema.check_schema(openapi):
            (report.warn if err.severity == "warning" else report.error)((*spath, *err.path), err.message)
    if storage != 1:
        report.error(path, f"exactly one version must be marked storage: true (found {storage})")


def _check_required_promises(report: Report, value: Any) -> None:
    base: FieldPath = ("spec", "requiredPromises")
    seen: set[str] = set()
    for i, entry in enumerate(list_at(report, value, base)):
        path = (*base, i)
        if mapping_at(report, entry, path) is None:
            continue
        check_keys(report, entry, path, ("name", "version"))
        name = entry.get("name")
        _unique_name(report, (*path, "name"), name, subdomain_error(name), seen,
                     f"duplicate required promise {name!r}")
        string_at(report, entry.get("version"), (*path, "version"), required=True)


def _check_workflows(report: Report, promise: str, workflows: dict[str, Any]) -> None:
    base: FieldPath = ("spec", "workflows")
    check_keys(report, workflows, base, ("config", *WORKFLOW_TYPES))
    config = mapping_at(report, workflows.get("config"), (*base, "config"))
    if config is not None:
        check_keys(report, config, (*base, "config"), ("pipelineNamespace", "reconciliationInterval"))
        _check_interval(report, config.get("reconciliationInterval"), (*base, "config", "reconciliationInterval"))
        namespace = config.get("pipelineNamespace")
        if namespace is not None and (message := label_error(namespace)):
            report.error((*base, "config", "pipelineNamespace"), message)
    for wtype in WORKFLOW_TYPES:
        triggers = mapping_at(report, workflows.get(wtype), (*base, wtype))
        if triggers is None:
            continue
        check_keys(report, triggers, (*base, wtype), WORKFLOW_ACTIONS)
        for action in WORKFLOW_ACTIONS:
            pipelines = list_at(report, triggers.get(action), (*base, wtype, action))
            _check_pipelines(report, promise, wtype, action, pipelines)


def _check_interval(report: Report, value: Any, path: FieldPath) -> None:
    """A Go duration of at least 1m, with the messages of Kratix (and Go's parser)."""
    if value is None:
        return
    try:
        nanos = goduration.parse_nanos(value if isinstance(value, str) else str(value))
    except goduration.DurationError as exc:
        report.error(path, str(exc))
        return
    if nanos < MIN_RECONCILIATION_NANOS:
        report.error(path, "spec.workflows.config.reconciliationInterval: Invalid value: "
                     f"{_go_quote(goduration.format_nanos(nanos))}: must be at least "
                     f"{goduration.format_nanos(MIN_RECONCILIATION_NANOS)}")


def _check_pipelines(report: Report, promise: str, wtype: WorkflowType, action: WorkflowAction,
                     pipelines: list[Any]) -> None:
    names: set[str] = set()
    for i, item in enumerate(pipelines):
        path: FieldPath = ("spec", "workflows", wtype, action, i)
        if mapping_at(report, item, path) is None:
            continue
        meta = item.get("metadata") if isinstance(item.get("metadata"), dict) else {}
        name = meta.get("name")
        if item.get("apiVersion") != KRATIX_API_VERSION or item.get("kind") != "Pipeline":
            report.error((*path, "kind"), f"unsupported pipeline {_go_quote(name)} with APIVersion "
                         f"\"{_go_text(item.get('kind'))}/{_go_text(item.get('apiVersion'))}\" (expected "
                         f"apiVersion {KRATIX_API_VERSION}, kind Pipeline)")
            continue
        check_keys(report, item, path, PIPELINE_FIELDS)
        if mapping_at(report, item.get("metadata"), (*path, "metadata"), required=True) is not None:
            check_keys(report, meta, (*path, "metadata"), OBJECT_META_FIELDS)
            check_labels(report, meta.get("labels"), (*path, "metadata", "labels"))
        if message := label_error(name):
            report.error((*path, "metadata", "name"), message)
        elif name in names:
            report.error((*path, "metadata", "name"), f"duplicate pipeline name {_go_quote(name)} in workflow "
                         f"{_go_quote(wtype)} action {_go_quote(action)}")
        elif len(pipeline_id := f"{promise}-{wtype}-{action}-{name}") > MAX_PIPELINE_ID:
            report.error((*path, "metadata", "name"), f"{wtype}.{action} pipeline with name {_go_quote(name)} is too "
                         "long. The name is used when generating resources for the pipeline,including the "
                         f"ServiceAccount which follows the format of {_go_quote(pipeline_id)}, which cannot be "
                         f"longer than {MAX_PIPELINE_ID} characters in total")
        if isinstance(name, str):
            names.add(name)
        spec = mapping_at(report, item.get("spec"), (*path, "spec"), required=True)
        if spec is not None:
            _check_pipeline_spec(report, spec, (*path, "spec"))
    if action == "delete" and len(pipelines) > 1:
        report.warn(("spec", "workflows", wtype, action, 1),
                    "multiple delete pipelines found; only the first will be used")


def _check_pipeline_spec(report: Report, spec: dict[str, Any], path: FieldPath) -> None:
    check_keys(report, spec, path, PIPELINE_SPEC_FIELDS)
    containers = list_at(report, spec.get("containers"), (*path, "containers"))
    if not containers and isinstance(spec.get("containers", []), list):
        report.error((*path, "containers"), "at least one container is required")
    names: set[str] = set()
    for i, container in enumerate(containers):
        cpath = (*path, "containers", i)
        if mapping_at(report, container, cpath) is None:
            continue
        check_keys(report, container, cpath, CONTAINER_FIELDS)
        name = container.get("name")
        _unique_name(report, (*cpath, "name"), name, label_error(name), names,
                     f"duplicate container name {name!r} in this pipeline")
        string_at(report, container.get("image"), (*cpath, "image"), required=True)
        enum_at(report, container.get("imagePullPolicy"), (*cpath, "imagePullPolicy"), PULL_POLICIES)
        for key in ("command", "args"):
            value = container.get(key)
            if value is not None and (not isinstance(value, list) or not all(isinstance(x, str) for x in value)):
                report.error((*cpath, key), "must be a list of strings")
        for j, env in enumerate(list_at(report, container.get("env"), (*cpath, "env"))):
            epath = (*cpath, "env", j)
            if mapping_at(report, env, epath) is not None:
                check_keys(report, env, epath, ("name", "value", "valueFrom"))
                string_at(report, env.get("name"), (*epath, "name"), required=True)
                if "value" in env and not isinstance(env["value"], str):
                    report.error((*epath, "value"), f"must be a string (quote {env['value']!r})")


def _unique_name(report: Report, path: FieldPath, name: Any, invalid: str, seen: set[str], duplicate: str) -> None:
    """Report `invalid` (why the name is not valid, "" if it is) or else `duplicate` when the
    name was seen; then record it."""
    if invalid:
        report.error(path, invalid)
    elif name in seen:
        report.error(path, duplicate)
    if isinstance(name, str):
        seen.add(name)


def _go_text(value: Any) -> str:
    """What Go's unstructured getters (GetName, GetKind...) return: the string, or ""."""
    return value if isinstance(value, str) else ""


def _go_quote(value: Any) -> str:
    """Go's %q of such a string."""
    return json.dumps(_go_text(value), ensure_ascii=False)
