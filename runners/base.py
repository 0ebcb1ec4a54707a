"""The runner interface: what a pipeline run takes and gives back, and the Kratix environment.

A `Runner` executes one Pipeline (contract §1.2) for one object: writes object.yaml, runs the
containers in order with the `KRATIX_*` variables of §1.4, and returns what they produced
(§1.5 metadata, §1.6 output) already read, checked and grouped. `runners/docker.py` is the
Docker implementation; `runners/workflow.py` chains pipelines into workflows.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from bot.errors import PromisebotError
from bot.kratix.goduration import parse_seconds
from bot.kratix.labels import PIPELINE_TIMEOUT_ANNOTATION
from bot.kratix.status_merge import WorkflowControl
from bot.model.objects import KRATIX_GROUP, Pipeline, Promise, ResourceRequest, WorkflowAction, WorkflowType
from bot.model.works import WorkloadGroup
from bot.redact import redact
from bot.settings import RunnerSettings
from runners.kubeapi import KubeContext

RUN_LABEL = "promisebot.run"  # one pipeline run
SESSION_LABEL = "promisebot.session"  # one runner instance
OWNER_LABEL = "promisebot.owner"  # "<hostname>:<pid>" of the process that created it


class RunnerUnavailable(PromisebotError):
    """The runner's engine cannot be reached: nothing can run. Not a failure of any one object,
    so callers stop rather than record it against each object."""


class PipelineSpecError(PromisebotError, ValueError):
    """A Pipeline's container spec uses something promisebot cannot run (e.g. env valueFrom)."""


@dataclass(slots=True)
class PipelineJob:
    """One pipeline run for one object.

    `env` holds the eleven KRATIX_* variables in Kratix's order (`kratix_env`); `obj` is the
    full object written as /kratix/input/object.yaml (§1.3); `promise_selectors` are the
    Promise's squashed destinationSelectors added to the default workload group (§1.6).
    """

    pipeline: Pipeline
    wtype: WorkflowType
    action: WorkflowAction
    obj: dict[str, Any]
    env: list[tuple[str, str]]
    settings: RunnerSettings
    is_last: bool = True
    timeout_seconds: float | None = None  # None: settings.timeout_seconds
    promise_selectors: dict[str, str] = field(default_factory=dict)
    kube: KubeContext | None = None  # what the run's Kubernetes API may serve besides the object

    @property
    def timeout(self) -> float:
        return self.settings.timeout_seconds if self.timeout_seconds is None else self.timeout_seconds


@dataclass(slots=True)
class ContainerResult:
    """One container's run. `logs` and `error` are redacted (`bot.redact.redact`) by the runner."""

    name: str
    image: str
    exit_code: int | None  # None: never ran to completion (not started, timed out, error)
    logs: str = ""  # stdout+stderr, at most settings.max_log_bytes (the tail is kept)
    oom_killed: bool = False
    timed_out: bool = False
    error: str | None = None  # one line; the Docker runner sets it for every failed container

    @property
    def succeeded(self) -> bool:
        return self.exit_code == 0 and self.error is None

    @property
    def reason(self) -> str | None:
        """Why it failed, one line (None when it succeeded): the error, else its exit code."""
        if self.error:
            return one_line(self.error)
        if self.exit_code == 0:
            return None
        if self.exit_code is None:
            return "did not run to completion (no exit code)"
        return f"exited with code {self.exit_code}"


@dataclass(slots=True)
class PipelineResult:
    """What one pipeline produced. For delete, `groups` is always empty (§1.2: output ignored).

    A failed pipeline has `error`, one line: `container 'C': <reason>` when a container (or its
    image) failed, else the reason (output refused, metadata invalid, engine error), and
    `failed_container` names that container. `describe_failure` formats it with logs."""

    pipeline: str
    succeeded: bool
    error: str | None = None
    run_id: str = ""  # value of the promisebot.run label of its containers and volumes
    containers: list[ContainerResult] = field(default_factory=list)
    groups: list[WorkloadGroup] = field(default_factory=list)
    output_files: dict[str, bytes] = field(default_factory=dict)  # relative path -> bytes
    metadata_files: dict[str, bytes] = field(default_factory=dict)  # everything in /kratix/metadata
    object_yaml: bytes = b""  # /kratix/input/object.yaml as given
    status: dict[str, Any] | None = None  # incoming status.yaml, checked (§1.5b); None: no file
    status_warnings: list[str] = field(default_factory=list)
    control: WorkflowControl = field(default_factory=WorkflowControl)
    duration_seconds: float = 0.0
    failed_container: str | None = None  # the container (or image) that failed, if one did
    # The object's status as last written through the run's Kubernetes API (kratix-sdk's
    # publish_status); None when nothing was written or the run had no API.
    published_status: dict[str, Any] | None = None

    @property
    def timed_out(self) -> bool:
        return any(c.timed_out for c in self.containers)

    @property
    def failed(self) -> ContainerResult | None:
        """The container whose failure failed the pipeline (by `failed_container`, else the last
        container that did not succeed), if it ran."""
        for c in reversed(self.containers):
            if c.name == self.failed_container or (self.failed_container is None and not c.succeeded):
                return c
        return None

    @property
    def reason(self) -> str | None:
        """Why the pipeline failed, one line, without the pipeline and container names
        (None when it succeeded)."""
        if self.succeeded:
            return None
        container = self.failed
        name = self.failed_container or (container.name if container else None)
        if self.error:
            text = one_line(self.error)
            prefix = f"container {name!r}: "
            return text[len(prefix):] if name and text.startswith(prefix) else text
        if container is not None:
            return container.reason
        return "failed (no reason given)"


def failure_line(result: PipelineResult) -> str:
    """`pipeline P, container C: <reason>` (or `pipeline P: <reason>` when no container is to
    blame), one line, redacted; "" for a pipeline that succeeded."""
    if result.succeeded:
        return ""
    container = result.failed_container or (result.failed.name if result.failed else None)
    return redact(f"{failure_place(result.pipeline, container)}: {result.reason}")


def describe_failure(result: PipelineResult, log_lines: int = 10) -> str:
    """`failure_line(result)`, then the last `log_lines` lines of the failed container's logs
    under `  last N log lines:` as `    | line` (nothing when it printed nothing); redacted.
    "" for a pipeline that succeeded."""
    line = failure_line(result)
    if not line:
        return ""
    container = result.failed
    logs = container.logs if container is not None else ""
    tail = logs.rstrip("\n").splitlines()[-log_lines:] if log_lines > 0 and logs.strip() else []
    return "\n".join([line, *log_tail_lines([redact(t) for t in tail], "  ")])


def failure_place(pipeline: str, container: str | None) -> str:
    """`pipeline P, container C` (`pipeline P` without a container): where a failure happened,
    as every failure report names it (`failure_line`, `bot.report.outcomes.failure_text`)."""
    return f"pipeline {pipeline}" + (f", container {container}" if container else "")


def log_tail_lines(tail: list[str], indent: str) -> list[str]:
    """`{indent}last N log lines:` then each line as `{indent}  | line`; nothing for no lines.
    Shared by `describe_failure` and `bot.report.outcomes.failure_text`."""
    if not tail:
        return []
    return [f"{indent}last {len(tail)} log line{'s' * (len(tail) != 1)}:", *(f"{indent}  | {t}" for t in tail)]


def one_line(text: str) -> str:
    """`text` on one line: lines joined with "; ", runs of blanks collapsed."""
    parts = [" ".join(part.split()) for part in text.splitlines()]
    return "; ".join(p for p in parts if p)


class Runner(Protocol):
    def run(self, job: PipelineJob) -> PipelineResult: ...


def kratix_env(promise: Promise, pipeline: Pipeline, wtype: WorkflowType, action: WorkflowAction,
               request: ResourceRequest | None = None) -> list[tuple[str, str]]:
    """The eleven KRATIX_* variables with the values of §1.4, in Kratix's order
    (`defaultEnvVars`). Resource workflows need the request; KRATIX_DRY_RUN is never set."""
    if wtype == "promise":
        kind, group, version, name, namespace = "Promise", KRATIX_GROUP, "v1alpha1", promise.name, ""
        plural, cluster_scoped = "promises", True
    else:
        if request is None:
            raise ValueError("a resource workflow needs the Resource request")
        api = promise.api
        kind, group, name, namespace = request.kind, request.group, request.name, request.namespace
        version = request.api_version.rsplit("/", 1)[-1]
        plural = api.plural if api else ""
        cluster_scoped = bool(api and api.scope == "Cluster")
    return [
        ("KRATIX_WORKFLOW_ACTION", action),
        ("KRATIX_WORKFLOW_TYPE", wtype),
        ("KRATIX_PROMISE_NAME", promise.name),
        ("KRATIX_PIPELINE_NAME", pipeline.name),
        ("KRATIX_OBJECT_KIND", kind),
        ("KRATIX_OBJECT_GROUP", group),
        ("KRATIX_OBJECT_VERSION", version),
        ("KRATIX_OBJECT_NAME", name),
        ("KRATIX_OBJECT_NAMESPACE", namespace),
        ("KRATIX_CRD_PLURAL", plural),
        ("KRATIX_CLUSTER_SCOPED", "true" if cluster_scoped else "false"),
    ]


def pipeline_timeout(promise: Promise, settings: RunnerSettings) -> float:
    """settings.timeout_seconds, or the Promise's `promisebot.io/pipeline-timeout` Go duration."""
    text = promise.annotations.get(PIPELINE_TIMEOUT_ANNOTATION)
    if text is None:
        return settings.timeout_seconds
    where = f"{promise.source}: metadata.annotations[{PIPELINE_TIMEOUT_ANNOTATION}]"
    try:
        seconds = parse_seconds(str(text))
    except ValueError as exc:
        raise PipelineSpecError(f"{where}: {exc}") from None
    if seconds <= 0:
        raise PipelineSpecError(f"{where}: must be positive")
    return seconds


def container_env(job: PipelineJob, index: int, extra: list[tuple[str, str]] | None = None) -> list[str]:
    """KRATIX_* first, then `extra` (the KUBERNETES_* service variables), then the container's
    own `env` (value only), as Docker "K=V" strings."""
    container = job.pipeline.containers[index]
    env = [f"{k}={v}" for k, v in [*job.env, *(extra or [])]]
    for i, item in enumerate(container.env):
        where = f"{job.pipeline.source}: pipeline {job.pipeline.name!r} container {container.name!r} env[{i}]"
        name = item.get("name")
        if not isinstance(name, str) or not name:
            raise PipelineSpecError(f"{where}: needs a name")
        if "valueFrom" in item:
            raise PipelineSpecError(f"{where} ({name}): valueFrom is not supported by promisebot; use value")
        value = item.get("value", "")
        env.append(f"{name}={'' if value is None else _env_text(value)}")
    return env


def _env_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
