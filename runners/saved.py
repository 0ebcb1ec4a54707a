"""Apply what was reviewed: a Runner that remembers the results of the pipelines it ran for a
plan, and returns them instead of running again when the very same job comes back on merge.

`SavingRunner(inner, store)` wraps any Runner. A job's key is a hash of everything that
determines its output: the pipeline (name, containers, images, commands, env), the workflow
type and action, the whole object.yaml, the KRATIX_* variables, whether it is the last
pipeline, the Promise's destination selectors and the timeout. With `record=True` (a plan) it
runs the job and stores a succeeded result under its key; with `reuse=True` (an apply) a stored
result is returned as is, so the commit holds exactly the files the reviewer saw; anything not
stored (inputs changed since the plan, or a failed run) runs for real. Where results live is
the caller's choice (`ResultStore`: Redis with a TTL for the bot, a dict in tests).
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import threading
from dataclasses import asdict
from typing import Any, Protocol

from bot.kratix.status_merge import WorkflowControl
from bot.model.works import Selector, Workload, WorkloadGroup
from runners import kubeapi
from runners.base import ContainerResult, PipelineJob, PipelineResult, Runner

FORMAT = 1  # bumped when the stored shape changes: older entries are then simply not found


class ResultStore(Protocol):
    def get(self, key: str) -> bytes | None: ...

    def put(self, key: str, data: bytes) -> None: ...


_VOLATILE = re.compile(r"(Time|Timestamp)$")


def _stable(value: Any) -> Any:
    """`value` without the timestamps a run stamps into the status (`lastTransitionTime`, ...):
    they change with every run and are not an input a pipeline's output may depend on."""
    if isinstance(value, dict):
        return {k: _stable(v) for k, v in value.items() if not (isinstance(k, str) and _VOLATILE.search(k))}
    if isinstance(value, list):
        return [_stable(v) for v in value]
    return value


def job_key(job: PipelineJob) -> str:
    """A hash of everything that determines what the job produces (timestamps in the object's
    status aside)."""
    pipeline = job.pipeline
    material = {
        "format": FORMAT,
        "pipeline": pipeline.name,
        "containers": [asdict(c) for c in pipeline.containers],
        "wtype": job.wtype, "action": job.action,
        "object": _stable(job.obj), "env": job.env, "last": job.is_last,
        "selectors": job.promise_selectors, "timeout": job.timeout,
    }
    if kubeapi.wanted(job.settings.kube_api):
        # What the run's Kubernetes API serves (Secrets aside: their values are not hashed here).
        context = job.kube or kubeapi.KubeContext()
        permissions = [p.as_dict() for p in pipeline.rbac.permissions] if pipeline.rbac else []
        run = kubeapi.build_run({}, job.env, pipeline.name, permissions, "",
                                kubeapi.KubeContext(promise=context.promise, manifests=context.manifests))
        material["kube"] = {"rules": run["rules"], "promise": _stable(run["promise"]),
                            "resources": _stable(run["resources"])}
    text = json.dumps(material, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def dump_result(result: PipelineResult) -> bytes:
    """A succeeded result as JSON (bytes as base64)."""
    out = {
        "format": FORMAT, "pipeline": result.pipeline, "succeeded": result.succeeded,
        "containers": [asdict(c) for c in result.containers],
        "groups": [{"directory": g.directory, "id": g.id,
                    "selectors": [{"matchLabels": s.match_labels, "source": s.source} for s in g.selectors],
                    "workloads": [{"filepath": w.filepath, "content": _b64(w.content)} for w in g.workloads]}
                   for g in result.groups],
        "outputFiles": {p: _b64(c) for p, c in result.output_files.items()},
        "metadataFiles": {p: _b64(c) for p, c in result.metadata_files.items()},
        "objectYaml": _b64(result.object_yaml),
        "status": result.status, "statusWarnings": result.status_warnings,
        "control": asdict(result.control), "duration": result.duration_seconds,
        "publishedStatus": result.published_status,
    }
    return json.dumps(out, sort_keys=True).encode()


def load_result(data: bytes) -> PipelineResult | None:
    """The stored result, or None when it is of another format or unreadable."""
    try:
        d: dict[str, Any] = json.loads(data)
        if d.get("format") != FORMAT:
            return None
        return PipelineResult(
            pipeline=d["pipeline"], succeeded=bool(d["succeeded"]),
            containers=[ContainerResult(**c) for c in d["containers"]],
            groups=[WorkloadGroup(g["directory"], g["id"],
                                  [Workload(w["filepath"], base64.b64decode(w["content"])) for w in g["workloads"]],
                                  [Selector(dict(s["matchLabels"]), s["source"]) for s in g["selectors"]])
                    for g in d["groups"]],
            output_files={p: base64.b64decode(c) for p, c in d["outputFiles"].items()},
            metadata_files={p: base64.b64decode(c) for p, c in d["metadataFiles"].items()},
            object_yaml=base64.b64decode(d["objectYaml"]),
            status=d["status"], status_warnings=list(d["statusWarnings"]),
            control=WorkflowControl(**d["control"]), duration_seconds=float(d["duration"]),
            published_status=d.get("publishedStatus"),
        )
    except (ValueError, KeyError, TypeError):
        return None


class SavingRunner:
    """A Runner that records (plan) or reuses (apply) results by job key; see the module doc."""

    def __init__(self, inner: Runner, store: ResultStore, *, record: bool = False, reuse: bool = False) -> None:
        self.inner, self.store, self.record, self.reuse = inner, store, record, reuse
        self._lock = threading.Lock()
        self.ran = 0  # jobs run for real
        self.reused = 0  # jobs answered from the store
        self.keys: list[str] = []  # keys recorded by this runner (a plan's saved results)

    def run(self, job: PipelineJob) -> PipelineResult:
        key = job_key(job)
        if self.reuse:
            data = self.store.get(key)
            saved = load_result(data) if data is not None else None
            if saved is not None:
                with self._lock:
                    self.reused += 1
                return saved
        result = self.inner.run(job)
        with self._lock:
            self.ran += 1
        if self.record and result.succeeded:
            self.store.put(key, dump_result(result))
            with self._lock:
                self.keys.append(key)
        return result

    def abort(self) -> None:
        abort = getattr(self.inner, "abort", None)
        if abort is not None:
            abort()

    def close(self) -> None:
        close = getattr(self.inner, "close", None)
        if close is not None:
            close()
