"""The platform model: typed views over the Kratix objects found in a platform repo.

Pure data, no I/O. `bot.platform.loader` builds these from YAML; everything downstream
(validation, change detection, runners, scheduling, layout, reconciler) reads them.
Every object keeps the file and line it came from, so any error can point at it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, get_args

from bot.kratix.labels import DRY_RUN_LABEL, is_true

KRATIX_GROUP = "platform.kratix.io"
KRATIX_API_VERSION = "platform.kratix.io/v1alpha1"
DEFAULT_NAMESPACE = "default"
# GitStateStore defaults (§3.6); our commits carry this author unless a GitStateStore sets
# gitAuthor.name (Kratix: "kratix").
DEFAULT_GIT_BRANCH = "main"
DEFAULT_GIT_AUTHOR = "promisebot"

PROMISE = "Promise"
DESTINATION = "Destination"
GIT_STATE_STORE = "GitStateStore"
BUCKET_STATE_STORE = "BucketStateStore"
STATE_STORE_KINDS = (GIT_STATE_STORE, BUCKET_STATE_STORE)

# A workflow's type and action (contract §1.1), and how one run of it ended; plain strings in
# JSON, YAML and the KRATIX_* variables.
WorkflowType = Literal["promise", "resource"]
WorkflowAction = Literal["configure", "delete"]
OutcomeState = Literal["succeeded", "failed", "suspended"]
WORKFLOW_TYPES: tuple[WorkflowType, ...] = get_args(WorkflowType)
WORKFLOW_ACTIONS: tuple[WorkflowAction, ...] = get_args(WorkflowAction)

FILEPATH_MODES = ("nestedByMetadata", "aggregatedYAML", "none")
PULL_POLICIES = ("IfNotPresent", "Always", "Never")  # a container's imagePullPolicy


@dataclass(frozen=True, slots=True)
class Source:
    """Where an object (or a field of it) was written: repo-relative file, 1-based line."""

    file: str
    line: int = 1

    def __str__(self) -> str:
        return f"{self.file}:{self.line}"


@dataclass(frozen=True, slots=True, order=True)
class Ref:
    """Identity of an object in the platform.

    kind is the plain kind for Kratix objects ("Promise", "Destination", ...) and
    "<Kind>.<group>" for Resource requests, so two Promises' kinds never collide.
    namespace is "" for cluster-scoped objects.
    """

    kind: str
    name: str
    namespace: str = ""

    def __str__(self) -> str:
        if self.namespace:
            return f"{self.kind}/{self.namespace}/{self.name}"
        return f"{self.kind}/{self.name}"


@dataclass(frozen=True, slots=True)
class Problem:
    """One validation error or warning, with file, line and the field path it concerns."""

    source: Source
    field: str
    message: str
    severity: str = "error"  # "error" | "warning"

    def __str__(self) -> str:
        where = f"{self.source}"
        return f"{where}: {self.field}: {self.message}" if self.field else f"{where}: {self.message}"

    def as_dict(self) -> dict[str, Any]:
        return {
            "file": self.source.file,
            "line": self.source.line,
            "field": self.field,
            "message": self.message,
            "severity": self.severity,
        }


@dataclass(slots=True)
class Container:
    name: str
    image: str
    command: list[str] | None = None
    args: list[str] | None = None
    env: list[dict[str, Any]] = field(default_factory=list)  # [{name, value}] as in a Pod spec
    working_dir: str | None = None
    image_pull_policy: str = "IfNotPresent"  # IfNotPresent | Always | Never


@dataclass(frozen=True, slots=True)
class Permission:
    """One entry of a Pipeline's `spec.rbac.permissions`: a Kubernetes PolicyRule plus Kratix's
    `resourceNamespace` ("" = the pipeline's namespace, "*" = every namespace)."""

    api_groups: tuple[str, ...] = ()
    verbs: tuple[str, ...] = ()
    resources: tuple[str, ...] = ()
    resource_names: tuple[str, ...] = ()
    resource_namespace: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {"apiGroups": list(self.api_groups), "verbs": list(self.verbs), "resources": list(self.resources),
                "resourceNames": list(self.resource_names), "resourceNamespace": self.resource_namespace}


@dataclass(slots=True)
class PipelineRBAC:
    """A Pipeline's `spec.rbac` (Kratix): an existing service account's name ("" = Kratix creates
    `<promise>-<type>-<action>-<pipeline>`) and the extra permissions granted to it."""

    service_account: str = ""
    permissions: list[Permission] = field(default_factory=list)


@dataclass(slots=True)
class Pipeline:
    """A Kratix `platform.kratix.io/v1alpha1 Pipeline` (contract §1.1)."""

    name: str
    containers: list[Container]
    spec: dict[str, Any]  # the raw, validated spec
    source: Source
    labels: dict[str, str] = field(default_factory=dict)
    annotations: dict[str, str] = field(default_factory=dict)
    rbac: PipelineRBAC | None = None  # spec.rbac, None when absent

    def service_account(self, promise: str, wtype: str, action: str) -> str:
        """The pipeline's service account name, as Kratix names it (PipelineFactory.ID)."""
        if self.rbac is not None and self.rbac.service_account:
            return self.rbac.service_account
        return f"{promise}-{wtype}-{action}-{self.name}"


@dataclass(slots=True)
class PromiseAPI:
    """The Promise's CRD (spec.api), reduced to what promisebot needs."""

    group: str
    kind: str
    plural: str
    version: str  # the storage version
    scope: str  # "Namespaced" (required by validation)
    schema: dict[str, Any]  # openAPIV3Schema of the storage version ({} if none)
    served_versions: tuple[str, ...] = ()

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}"

    @property
    def request_kind(self) -> str:
        """The Ref.kind of this API's Resource requests."""
        return f"{self.kind}.{self.group}"


@dataclass(slots=True)
class Promise:
    name: str
    body: dict[str, Any]  # the whole document as written
    source: Source
    api: PromiseAPI | None = None
    # Promise spec.destinationSelectors squashed into one map, first entry wins (contract §2.1)
    destination_selectors: dict[str, str] = field(default_factory=dict)
    dependencies: list[dict[str, Any]] = field(default_factory=list)
    # (workflow type, action) -> pipelines, e.g. ("resource", "configure")
    workflows: dict[tuple[WorkflowType, WorkflowAction], list[Pipeline]] = field(default_factory=dict)
    required_promises: list[dict[str, str]] = field(default_factory=list)  # [{name, version}]

    @property
    def ref(self) -> Ref:
        return Ref(PROMISE, self.name)

    @property
    def labels(self) -> dict[str, str]:
        return dict((self.body.get("metadata") or {}).get("labels") or {})

    @property
    def annotations(self) -> dict[str, str]:
        return dict((self.body.get("metadata") or {}).get("annotations") or {})

    @property
    def spec(self) -> dict[str, Any]:
        return self.body.get("spec") or {}

    def pipelines(self, wtype: WorkflowType, action: WorkflowAction) -> list[Pipeline]:
        return self.workflows.get((wtype, action), [])


@dataclass(slots=True)
class Destination:
    """contract §3.5; defaults applied."""

    name: str
    body: dict[str, Any]
    source: Source
    labels: dict[str, str]
    path: str
    state_store_kind: str
    state_store_name: str
    strict_match_labels: bool = False
    filepath_mode: str = "nestedByMetadata"
    filename: str = "aggregated.yaml"  # aggregatedYAML only
    cleanup: str = "none"  # none | all
    init_workloads: bool = True

    @property
    def ref(self) -> Ref:
        return Ref(DESTINATION, self.name)

    @property
    def state_store_ref(self) -> Ref:
        return Ref(self.state_store_kind, self.state_store_name)

    @property
    def dry_run(self) -> bool:
        return is_true(self.labels, DRY_RUN_LABEL)


@dataclass(slots=True)
class SecretRef:
    name: str
    namespace: str = DEFAULT_NAMESPACE


@dataclass(slots=True)
class StateStore:
    """A GitStateStore (§3.6) or BucketStateStore (§3.7); defaults applied.

    Kind-specific fields live in `spec` (as written, with defaults filled in):
    Git: url, branch, authMethod, gitAuthor{name,email}; Bucket: bucketName, endpoint,
    insecure, useDualStack, authMethod.
    """

    kind: str
    name: str
    body: dict[str, Any]
    source: Source
    path: str
    spec: dict[str, Any]
    secret_ref: SecretRef | None = None

    @property
    def ref(self) -> Ref:
        return Ref(self.kind, self.name)


@dataclass(slots=True)
class ResourceRequest:
    """An instance of a Promise's API. `body` has the schema defaults applied."""

    promise: str
    api_version: str
    kind: str
    group: str
    name: str
    namespace: str
    body: dict[str, Any]
    source: Source

    @property
    def ref(self) -> Ref:
        return Ref(f"{self.kind}.{self.group}", self.name, self.namespace)

    @property
    def labels(self) -> dict[str, str]:
        return dict((self.body.get("metadata") or {}).get("labels") or {})

    @property
    def spec(self) -> dict[str, Any]:
        return self.body.get("spec") or {}


@dataclass(slots=True)
class Platform:
    """Everything found in a platform repo at one commit (or working tree)."""

    promises: dict[str, Promise] = field(default_factory=dict)
    destinations: dict[str, Destination] = field(default_factory=dict)
    state_stores: dict[Ref, StateStore] = field(default_factory=dict)
    requests: dict[Ref, ResourceRequest] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)
    ignored: list[Source] = field(default_factory=list)  # documents that are not platform objects
    # The ignored documents that look like Kubernetes objects (apiVersion, kind, metadata.name),
    # as written: what a pipeline's Kubernetes API may serve when its rbac grants them.
    manifests: list[dict[str, Any]] = field(default_factory=list)
    revision: str | None = None  # commit sha the snapshot was read at, if any

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "error"]

    def promise_for_request(self, req: ResourceRequest) -> Promise | None:
        return self.promises.get(req.promise)

    def requests_of(self, promise: str) -> list[ResourceRequest]:
        return sorted((r for r in self.requests.values() if r.promise == promise), key=lambda r: r.ref)
