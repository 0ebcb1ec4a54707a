"""`promisebot test`: run one workflow of a Promise on a request through real pipeline
containers, locally, and show everything it produced (docs/runner.md).

Per pipeline: each container's exit code and logs, the output tree with contents, the
incoming and merged status, workflow-control, and the workload groups with their selectors;
a failure as `runners.base.failure_line` words it. Everything printed goes through
`bot.redact.redact` (with the values of the pipelines' secret-looking `env` entries).
`--output DIR` also writes each pipeline's input/output/metadata under DIR/<n>-<pipeline>/.
Exit code 0 when every pipeline succeeded (or the workflow was suspended), 1 otherwise.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any, TextIO

import yaml

from bot.errors import PromisebotError
from bot.kratix.objectyaml import promise_object, request_object
from bot.model.objects import Promise, ResourceRequest, WorkflowType
from bot.platform.loader import load_platform_dir
from bot.redact import redact, secret_env_values
from bot.secrets import SecretResolver
from bot.settings import load_settings
from runners.base import PipelineResult, RunnerUnavailable, failure_line
from runners.docker import DockerRunner
from runners.pool import Terminated, reraise_signal, signals_raise
from runners.workflow import WorkflowResult, run_workflow

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
MAX_SHOWN_BYTES = 4096


class _InputError(PromisebotError):
    pass


def run(args: argparse.Namespace) -> int:
    try:
        promise, request, manifests = _load(Path(args.promise), Path(args.request) if args.request else None,
                                            args.workflow)
    except _InputError as exc:
        print(f"promisebot test: {exc}", file=sys.stderr)
        return EXIT_USAGE
    settings = load_settings().runner
    if request is not None:
        obj = request_object(request, request.body.get("status"))
    else:
        obj = promise_object(promise, promise.body.get("status"))
    if not promise.pipelines(args.workflow, args.action):
        print(f"Promise {promise.name!r} has no {args.workflow} {args.action} pipelines; nothing to run.")
        return EXIT_OK
    runner = DockerRunner()
    try:
        with signals_raise():
            secrets_dir = load_settings().secrets_dir
            result = run_workflow(runner, promise, obj, args.workflow, args.action, settings, request=request,
                                  manifests=manifests,
                                  secrets=SecretResolver(Path(secrets_dir) if secrets_dir else None, os.environ))
    except RunnerUnavailable as exc:
        print(f"promisebot test: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except (KeyboardInterrupt, Terminated) as exc:
        runner.abort()
        print("promisebot test: interrupted; containers and volumes removed", file=sys.stderr)
        reraise_signal(exc)
        raise
    runner.close()
    secrets = [v for p in promise.pipelines(args.workflow, args.action) for c in p.containers
               for v in secret_env_values(c.env or [])]
    _print(result, _Redacting(sys.stdout, secrets))
    if args.output:
        _write(Path(args.output), result)
    return EXIT_OK if result.succeeded else EXIT_FAILED


def _load(promise_file: Path, request_file: Path | None,
          wtype: WorkflowType) -> tuple[Promise, ResourceRequest | None, list[dict[str, Any]]]:
    """Parse the files with the platform loader, in a scratch platform dir of their own; the
    Kubernetes objects among their documents (e.g. ConfigMaps) are what the runs' Kubernetes
    API may serve."""
    if wtype == "resource" and request_file is None:
        raise _InputError("--request FILE is needed for a resource workflow")
    files = [promise_file] + ([request_file] if request_file and wtype == "resource" else [])
    for f in files:
        if not f.is_file():
            raise _InputError(f"{f}: no such file")
    with tempfile.TemporaryDirectory(prefix="promisebot-test-") as tmp:
        names = {}
        for i, f in enumerate(files):
            name = f"{i}-{f.name}" if f.name.endswith((".yaml", ".yml")) else f"{i}-{f.name}.yaml"
            shutil.copyfile(f, Path(tmp) / name)
            names[name] = str(f)
        platform = load_platform_dir(tmp)
    errors = [p for p in platform.problems if p.severity == "error"]
    if errors:
        raise _InputError("\n".join(_rename(str(p), names) for p in errors))
    promises = list(platform.promises.values())
    if len(promises) != 1:
        raise _InputError(f"{promise_file}: expected exactly one Promise, found {len(promises)}")
    promise = promises[0]
    if wtype == "promise":
        return promise, None, platform.manifests
    requests = [r for r in platform.requests.values() if r.promise == promise.name]
    if len(requests) != 1:
        api = promise.api.api_version + " " + promise.api.kind if promise.api else "(no spec.api)"
        raise _InputError(f"{request_file}: expected one Resource request of Promise {promise.name!r} "
                          f"({api}), found {len(requests)}")
    return promise, requests[0], platform.manifests


def _rename(text: str, names: dict[str, str]) -> str:
    for tmp_name, original in names.items():
        text = text.replace(tmp_name, original)
    return text


class _Redacting:
    """A text stream whose every write is redacted."""

    def __init__(self, out: TextIO, secrets: list[str]) -> None:
        self._out, self._secrets = out, secrets

    def write(self, text: str) -> None:
        self._out.write(redact(text, self._secrets))


def _print(result: WorkflowResult, out: _Redacting) -> None:
    for n, p in enumerate(result.pipelines, 1):
        state = "succeeded" if p.succeeded else "FAILED"
        out.write(f"\n=== pipeline {n}: {p.pipeline} ({result.wtype} {result.action}) {state} "
                  f"in {p.duration_seconds:.1f}s\n")
        for c in p.containers:
            if c.succeeded or c.reason == f"exited with code {c.exit_code}":
                outcome = f"exit code {c.exit_code}"
            elif c.exit_code is not None:
                outcome = f"exit code {c.exit_code}: {c.reason}"
            else:
                outcome = f"no exit code: {c.reason}"
            out.write(f"--- container {c.name} [{c.image}] {outcome}\n")
            if c.logs:
                out.write(_indent(c.logs))
        if not p.succeeded:  # the logs are above, whole
            out.write(f"error: {failure_line(p)}\n")
            continue
        if result.action == "configure":
            out.write(f"--- output ({len(p.output_files)} files)\n")
            for path in sorted(p.output_files, key=lambda x: x.split("/")):
                out.write(f"  {path}\n{_indent(_shown(p.output_files[path]), 4)}")
        out.write("--- status.yaml (incoming)\n" + _indent(_yaml(p.status) if p.status is not None else "(none)\n"))
        for warning in p.status_warnings:
            out.write(f"warning: {warning}\n")
        out.write("--- workflow-control\n" + _indent(_control(p)))
        if result.action == "configure":
            out.write("--- workload groups\n")
            for g in p.groups:
                selectors = ", ".join(f"{s.source}: {s.match_labels}" for s in g.selectors) or "(none)"
                out.write(f"  {g.directory} (id {g.id}): {len(g.workloads)} files; selectors {selectors}\n")
            if not p.groups:
                out.write("  (no output: no workload groups)\n")
    out.write("\n=== merged status\n" + _indent(_yaml(result.status)))
    if result.suspended:
        retry = f", retry after {result.retry_after_seconds:g}s" if result.retry_after_seconds is not None else ""
        out.write(f"=== workflow suspended{retry}\n")
    elif result.succeeded:
        out.write(f"=== workflow succeeded: {len(result.works)} Work(s)\n")
    else:
        out.write(f"=== workflow FAILED: {result.error}\n")


def _control(p: PipelineResult) -> str:
    c = p.control
    if not c.suspends and not c.message:
        return "(none)\n"
    data: dict[str, Any] = {"suspend": c.suspend, "message": c.message}
    if c.retry_after:
        data["retryAfter"] = c.retry_after
    return _yaml(data)


def _write(root: Path, result: WorkflowResult) -> None:
    for n, p in enumerate(result.pipelines, 1):
        base = root / f"{n}-{p.pipeline}"
        _put(base / "input", "object.yaml", p.object_yaml)
        for path, data in p.output_files.items():
            _put(base / "output", path, data)
        for path, data in p.metadata_files.items():
            _put(base / "metadata", path, data)
    print(f"\nwrote input/output/metadata of {len(result.pipelines)} pipeline(s) under {root}")


def _put(base: Path, rel: str, data: bytes) -> None:
    target = (base / rel).resolve()
    if not target.is_relative_to(base.resolve()):  # paths were checked when read; belt and braces
        raise ValueError(f"refusing to write {rel!r} outside {base}")
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(data)


def _yaml(data: Any) -> str:
    return yaml.safe_dump(data, sort_keys=True, default_flow_style=False)


def _shown(data: bytes) -> str:
    text = data[:MAX_SHOWN_BYTES].decode("utf-8", errors="replace")
    if len(data) > MAX_SHOWN_BYTES:
        text += f"\n[... {len(data) - MAX_SHOWN_BYTES} more bytes]"
    return text if text.endswith("\n") else text + "\n"


def _indent(text: str, n: int = 2) -> str:
    pad = " " * n
    return "".join(pad + line + "\n" for line in text.splitlines())
