"""A Runner in plain Python for engine tests that need no Docker: a pipeline of a Promise is a
function of its job (the container's stand-in) returning the files it would leave in
/kratix/output and /kratix/metadata, which are read back as the Docker runner reads them
(`runners.outputs.parse_metadata`: status.yaml, workflow-control.yaml, destination-selectors.yaml;
`group_workloads`): the engine sees the same `PipelineResult` a container would give it.

    runner = FakeRunner()                       # every configure pipeline writes thing.yaml
    runner.outputs["redis"] = lambda job: {"a.yaml": b"..."}   # per Promise name, every action
    runner.metadata["redis"] = lambda job: {"workflow-control.yaml": b"retryAfter: 1s\n"}
    runner.failing.add("redis")                 # its pipelines exit 1
    raise Exit(3, "boom")                       # in such a function: this container exits 3

Delete pipelines run the same functions; their output is ignored (§1.2), their metadata is not.
"""

from __future__ import annotations

import posixpath
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from bot.kratix.workloads import group_workloads
from runners.base import ContainerResult, PipelineJob, PipelineResult
from runners.outputs import Tree, parse_metadata

Outputs = Callable[[PipelineJob], dict[str, bytes]]


class Exit(Exception):
    """Raised by an outputs or metadata function: the container exits with `code`, printing `log`."""

    def __init__(self, code: int = 1, log: str = "boom\n") -> None:
        super().__init__(code, log)
        self.code, self.log = code, log


def spec(job: PipelineJob) -> dict[str, Any]:
    """The spec of the object a pipeline runs for (its object.yaml's)."""
    return job.obj.get("spec") or {}


def default_outputs(job: PipelineJob) -> dict[str, bytes]:
    name = (job.obj.get("metadata") or {}).get("name", "")
    return {"thing.yaml": f"kind: Thing\nname: {name}\n".encode()}


@dataclass
class FakeRunner:
    outputs: dict[str, Outputs] = field(default_factory=dict)  # by Promise name: /kratix/output
    metadata: dict[str, Outputs] = field(default_factory=dict)  # by Promise name: /kratix/metadata
    failing: set[str] = field(default_factory=set)  # Promise names whose pipelines fail
    logs: dict[str, str] = field(default_factory=dict)  # by Promise name: what a failing container prints
    # (promise, object, wtype, action, pipeline) of every pipeline run
    calls: list[tuple[str, str, str, str, str]] = field(default_factory=list)

    def run(self, job: PipelineJob) -> PipelineResult:
        env = dict(job.env)
        promise = env["KRATIX_PROMISE_NAME"]
        self.calls.append((promise, env["KRATIX_OBJECT_NAME"], job.wtype, job.action, job.pipeline.name))
        container = job.pipeline.containers[0]
        try:
            if promise in self.failing:
                raise Exit(1, self.logs.get(promise, "boom\n"))
            files = self.outputs.get(promise, default_outputs)(job)
            meta = self.metadata[promise](job) if promise in self.metadata else {}
        except Exit as exit_:
            return PipelineResult(job.pipeline.name, False,
                                  error=f"container {container.name!r}: exited with code {exit_.code}",
                                  containers=[ContainerResult(container.name, container.image, exit_.code, exit_.log)],
                                  failed_container=container.name)
        result = PipelineResult(job.pipeline.name, True,
                                containers=[ContainerResult(container.name, container.image, 0, "")])
        metadata = parse_metadata(Tree(dict(meta)), job.wtype, job.action, 1 << 20)
        result.metadata_files = dict(meta)
        result.status, result.status_warnings, result.control = (
            metadata.status, metadata.status_warnings, metadata.control)
        if job.action == "configure":
            result.output_files = files
        if job.action == "configure" and not metadata.control.suspends:  # as runners/docker.py
            directories = {d for path in files for d in _parents(path)}
            result.groups = group_workloads(files, directories, metadata.selectors, job.promise_selectors, job.wtype)
        return result

    def close(self) -> None:
        pass

    def abort(self) -> None:
        pass

    def runs(self, action: str = "configure") -> list[tuple[str, str, str, str, str]]:
        return [c for c in self.calls if c[3] == action]


def _parents(path: str) -> list[str]:
    out = []
    while (path := posixpath.dirname(path)) not in ("", "/"):
        out.append(path)
    return out
