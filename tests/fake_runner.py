"""A Runner in plain Python for engine tests that need no Docker: each pipeline "writes"
the files a test gives it, as the Docker runner would return them after reading /kratix/output.

    runner = FakeRunner()                       # every configure pipeline writes thing.yaml
    runner.outputs["redis"] = lambda job: {"a.yaml": b"..."}   # per Promise name
    runner.failing.add("redis")                 # its pipelines exit 1
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from bot.kratix.workloads import group_workloads
from runners.base import ContainerResult, PipelineJob, PipelineResult

Outputs = Callable[[PipelineJob], dict[str, bytes]]


def default_outputs(job: PipelineJob) -> dict[str, bytes]:
    name = (job.obj.get("metadata") or {}).get("name", "")
    return {"thing.yaml": f"kind: Thing\nname: {name}\n".encode()}


@dataclass
class FakeRunner:
    outputs: dict[str, Outputs] = field(default_factory=dict)  # by Promise name
    failing: set[str] = field(default_factory=set)  # Promise names whose pipelines fail
    logs: dict[str, str] = field(default_factory=dict)  # by Promise name: what a failing container prints
    calls: list[tuple[str, str, str, str]] = field(default_factory=list)  # (promise, object, wtype, action)

    def run(self, job: PipelineJob) -> PipelineResult:
        env = dict(job.env)
        promise = env["KRATIX_PROMISE_NAME"]
        self.calls.append((promise, env["KRATIX_OBJECT_NAME"], job.wtype, job.action))
        container = job.pipeline.containers[0]
        if promise in self.failing:
            log = self.logs.get(promise, "boom\n")
            return PipelineResult(job.pipeline.name, False, error=f"container {container.name!r}: exited with code 1",
                                  containers=[ContainerResult(container.name, container.image, 1, log)],
                                  failed_container=container.name)
        result = PipelineResult(job.pipeline.name, True,
                                containers=[ContainerResult(container.name, container.image, 0, "")])
        if job.action == "configure":
            files = self.outputs.get(promise, default_outputs)(job)
            result.output_files = files
            result.groups = group_workloads(files, set(), [], job.promise_selectors, job.wtype)
        return result

    def close(self) -> None:
        pass

    def abort(self) -> None:
        pass

    def runs(self, action: str = "configure") -> list[tuple[str, str, str, str]]:
        return [c for c in self.calls if c[3] == action]
