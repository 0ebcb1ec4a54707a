"""The Docker runner: one Kratix pipeline (contract §1.2) on a Docker engine.

Talks to the engine named by DOCKER_HOST (or the local socket) through the Docker SDK, with
no host bind mounts, so promisebot can itself run in a container or use a remote engine:

* three named volumes per run stand in for Kratix's emptyDirs `/kratix/input`,
  `/kratix/output`, `/kratix/metadata`;
* a *holder* container is created (never started) from a tiny local image holding the three
  directories (mode 0777 like an emptyDir); Docker copies those directories into the empty
  volumes, object.yaml goes in with `put_archive`, and at the end a single `get_archive` of
  `/kratix` reads output and metadata back as a tar stream (`runners/outputs.py`);
* user containers run in order, each mounting input read-only and output/metadata read-write,
  with the eleven KRATIX_* variables then their own `env`; the first non-zero exit stops the run.

Safety: wall-clock deadline per pipeline, memory/CPU/pids limits, never privileged, all
capabilities dropped, no-new-privileges, configurable network, bounded logs. Logs and errors
are redacted here, at the source (`bot.redact.redact`, with the values of each container's
secret-looking `env` entries), so no result carries a credential; every failure carries a
one-line reason (`PipelineResult.error`, `ContainerResult.error`). Every container
and volume is named after the run and labelled `promisebot.run=<id>`, and removed on success,
failure, timeout and interruption (`abort` removes those of runs still in progress).
"""

from __future__ import annotations

import io
import logging
import os
import socket
import tarfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import docker
import requests
import yaml
from docker.errors import APIError, DockerException, ImageNotFound, NotFound
from docker.types import LogConfig, Mount
from docker.utils import parse_repository_tag

from bot.errors import PromisebotError
from bot.kratix.labels import PIPELINE_TIMEOUT_ANNOTATION
from bot.kratix.status_merge import StatusError
from bot.kratix.workloads import SelectorsError, group_workloads
from bot.kube.pki import RunCredentials
from bot.model.objects import PULL_POLICIES
from bot.platform.yamlload import nesting_message
from bot.redact import redact, secret_env_values
from runners import kubeapi
from runners.base import (
    OWNER_LABEL,
    RUN_LABEL,
    SESSION_LABEL,
    ContainerResult,
    PipelineJob,
    PipelineResult,
    PipelineSpecError,
    RunnerUnavailable,
    container_env,
    one_line,
)
from runners.outputs import METADATA_CAP, Limits, OutputRejected, parse_metadata, read_kratix_archive
from runners.sidecar import (
    SIDECAR_MEMORY,
    SYNC_SECONDS,
    KubeApiError,
    Sidecar,
    SidecarPool,
    SidecarSpec,
    pool_for,
)

log = logging.getLogger("promisebot.runner")

HOLDER_IMAGE = "promisebot/kratix-dirs:1"
SA_HOLDER_DIR = "/serviceaccount"  # in the holder; pipeline containers mount it at SA_MOUNT
SA_MOUNT = "/" + kubeapi.SERVICE_ACCOUNT_DIR
KRATIX_DIRS = {"input": "/kratix/input", "output": "/kratix/output", "metadata": "/kratix/metadata"}
PIDS_LIMIT = 1024
METADATA_MAX_BYTES = 10 * 1024 * 1024
METADATA_MAX_FILES = 1000
# Logs are redacted over this many bytes more than are kept, so a secret cut by the truncation
# is seen whole (and redacted) before it is cut.
LOG_REDACTION_MARGIN = 16384


class RunnerAborted(PromisebotError):
    """The runner was aborted (interruption); no new pipeline starts."""


class ImageError(PromisebotError):
    """An image is missing or cannot be pulled under its imagePullPolicy."""

    def __init__(self, message: str, container: str | None = None) -> None:
        super().__init__(message)
        self.container = container


class DockerRunner:
    """`Runner` on a Docker engine. Thread-safe: the pool runs several pipelines at once.

    The engine is first contacted when a pipeline runs, so work that needs no pipeline needs no
    engine; an unreachable engine raises `RunnerUnavailable`."""

    def __init__(self, client: docker.DockerClient | None = None, session: str | None = None) -> None:
        self._client = client
        self.session = session or uuid.uuid4().hex[:12]  # labels everything this runner creates
        self._lock = threading.Lock()
        self._connecting = threading.Lock()
        self._active: dict[str, list[tuple[str, str]]] = {}  # run id -> [(kind, name)] to remove
        self._aborted = False
        self._holder_ready = False
        self._pending: dict[str, list[Future[Any]]] = {}  # run id -> background removals
        self._background = ThreadPoolExecutor(max_workers=4, thread_name_prefix="docker-io")
        # A finished run's holder and volumes are removed here, off the result's critical path;
        # `close` waits for them, `abort` removes them at once. Pending removals also run
        # before the interpreter exits (executor threads are joined at exit).
        self._reaper = ThreadPoolExecutor(max_workers=2, thread_name_prefix="docker-cleanup")
        self._reaping: set[Future[None]] = set()
        self._owner = f"{socket.gethostname()}:{os.getpid()}"

    @property
    def client(self) -> docker.DockerClient:
        """The engine named by DOCKER_HOST (or the local socket), connected on first use; the
        first connection also sweeps what dead processes of this host left behind."""
        with self._connecting:
            if self._client is not None:
                return self._client
            try:
                self._client = docker.from_env()
            except DockerException as exc:
                where = os.environ.get("DOCKER_HOST") or "the local socket (set DOCKER_HOST for another engine)"
                raise RunnerUnavailable(f"cannot reach the Docker engine at {where}: {_explain(exc)}") from None
        self.sweep_orphans()
        return self._client

    @property
    def sidecars(self) -> SidecarPool:
        """This process's warm Kubernetes API sidecars on this runner's engine."""
        return pool_for(self.client.api, self._owner)

    # -- public -------------------------------------------------------------------------------

    def run(self, job: PipelineJob) -> PipelineResult:
        run_id = uuid.uuid4().hex[:12]
        result = PipelineResult(pipeline=job.pipeline.name, succeeded=False, run_id=run_id)
        started = time.monotonic()
        with self._lock:
            if self._aborted:
                raise RunnerAborted("the runner was aborted")
            self._active[run_id] = []
            self._pending[run_id] = []
        secrets = [v for c in job.pipeline.containers for v in secret_env_values(c.env or [])]
        try:
            self._run(job, run_id, result, started + job.timeout, secrets)
        except ImageError as exc:
            result.succeeded, result.error, result.failed_container = False, str(exc), exc.container
            if exc.container is not None:
                result.error = f"container {exc.container!r}: {exc}"
        except (PipelineSpecError, OutputRejected, StatusError, SelectorsError, KubeApiError) as exc:
            result.succeeded, result.error = False, str(exc)
        except (APIError, DockerException, requests.RequestException) as exc:
            if self._aborted:
                raise RunnerAborted("the runner was aborted") from exc
            result.succeeded, result.error = False, f"Docker engine error: {_explain(exc)}"
            if result.failed_container is not None:
                result.error = f"container {result.failed_container!r}: {result.error}"
        except RecursionError:  # not expected: YAML is depth-checked when read (bot/platform/yamlload.py)
            result.succeeded, result.error = False, f"the object or a metadata file: {nesting_message()}"
        finally:
            result.duration_seconds = time.monotonic() - started
            self._defer_cleanup(run_id)
        if result.succeeded:
            result.failed_container = None
        _redact_result(result, secrets)
        return result

    def close(self) -> None:
        """Wait until the containers and volumes of every finished run are removed.
        Raises the first removal error, if any."""
        with self._lock:
            reaping = list(self._reaping)
        for future in reaping:
            future.result()

    def sweep_orphans(self) -> int:
        """Remove containers and volumes left by promisebot processes of this host that died
        before cleaning up (SIGKILL, OOM kill, a crash). Returns how many were removed.

        Only this host's dead owners are swept: other machines sharing a remote engine, and
        live processes here, keep theirs."""
        host = self._owner.rsplit(":", 1)[0]
        removed = 0
        for kind, items in (("container", self.client.api.containers(all=True, filters={"label": OWNER_LABEL})),
                            ("volume", self.client.api.volumes(filters={"label": OWNER_LABEL}).get("Volumes") or [])):
            for item in items:
                owner_host, _, pid = (item.get("Labels") or {}).get(OWNER_LABEL, "").rpartition(":")
                if owner_host != host or not pid.isdigit() or _alive(int(pid)):
                    continue
                name = item["Names"][0].lstrip("/") if kind == "container" else item["Name"]
                try:
                    self._remove("", kind, name)
                    removed += 1
                except (NotFound, APIError):
                    pass  # removed concurrently, or a volume still in use by a live container
        return removed

    def abort(self) -> None:
        """Remove the containers and volumes of every run in progress, and the process's warm
        Kubernetes API sidecars; refuse new runs. Called on interruption, from any thread."""
        with self._lock:
            self._aborted = True
            run_ids = list(self._active)
            reaping = list(self._reaping)
        for run_id in run_ids:
            self._cleanup(run_id)
        for future in reaping:  # removals already under way finish before we return
            future.exception()
        if self._client is not None:
            self.sidecars.drain()

    # -- one pipeline -------------------------------------------------------------------------

    def _run(self, job: PipelineJob, run_id: str, result: PipelineResult, deadline: float,
             secrets: list[str]) -> None:
        pipeline = job.pipeline
        if not pipeline.containers:
            raise PipelineSpecError(f"{pipeline.source}: pipeline {pipeline.name!r} has no containers")
        for c in pipeline.containers:
            try:
                self._ensure_image(c.image, c.image_pull_policy)
            except ImageError as exc:
                raise ImageError(str(exc), c.name) from None
        spec, no_api = self._sidecar_spec(job)
        extra = kubeapi.env_vars() if spec is not None else []
        envs = [container_env(job, i, extra) for i in range(len(pipeline.containers))]
        self._ensure_holder_image()

        labels = self._labels(run_id)
        dirs = {**KRATIX_DIRS, **({"serviceaccount": SA_HOLDER_DIR} if spec is not None else {})}
        volumes = {key: f"pb-{run_id}-{key}" for key in dirs}
        sidecar: Future[Sidecar] | None = None  # exists: its name; its API listens once configured
        configured: Future[None] | None = None
        files = {"kratix/input/object.yaml": yaml.safe_dump(job.obj, sort_keys=True, default_flow_style=False)
                 .encode()}
        if spec is not None:  # first: the first container joins its network namespace
            creds, run = self._kube_run(job, secrets)
            namespace = run["serviceAccount"]["namespace"]
            files.update({f"{SA_HOLDER_DIR.strip('/')}/{k}": v
                          for k, v in kubeapi.service_account_files(creds.token, creds.ca_pem, namespace).items()})
            sidecar = self._background.submit(self.sidecars.claim, spec,
                                              lambda name: self._track(run_id, "container", name))
            configured = self._background.submit(lambda: sidecar.result().configure(creds, run, deadline))
        for name in volumes.values():
            self._track(run_id, "volume", name)
        holder = f"pb-{run_id}-holder"
        self._track(run_id, "container", holder)
        # Creating the holder creates its (labelled) volumes and copies the image's 0777 dirs in.
        self.client.api.create_container(
            HOLDER_IMAGE, name=holder, labels=labels, network_disabled=True,
            host_config=self.client.api.create_host_config(
                mounts=[Mount(path, volumes[key], type="volume", labels=labels)
                        for key, path in dirs.items()]),
        )
        result.object_yaml = files["kratix/input/object.yaml"]

        def load() -> None:
            """object.yaml (and the service-account files) in, the API up: the first start waits."""
            self.client.api.put_archive(holder, "/", _tar(files, modes={SA_HOLDER_DIR.strip("/"): 0o644}))
            if configured is not None:
                configured.result()

        # This goes on while the first container is being created (it starts after).
        loaded = self._background.submit(load)

        mounts = [Mount(path, volumes[key], type="volume", read_only=key == "input", no_copy=True)
                  for key, path in KRATIX_DIRS.items()]
        network = job.settings.network
        if sidecar is not None:
            mounts.append(Mount(SA_MOUNT, volumes["serviceaccount"], type="volume", read_only=True, no_copy=True))
            network = f"container:{sidecar.result().name}"  # its network namespace: the API on 127.0.0.1
        # The archive endpoint has a fixed cost (~50 ms): request it as soon as the last container
        # exits 0, and read that container's state and logs while the engine prepares it.
        fetched: list[Future[tuple[Any, Any]]] = []
        published: list[Future[dict[str, Any] | None]] = []

        def published_status() -> dict[str, Any] | None:
            """What the pipeline wrote through the API (`None` without an API); stops the sidecar."""
            if sidecar is None:
                return None
            return sidecar.result().finish(min(deadline, time.monotonic()) + SYNC_SECONDS)

        def replenish() -> None:
            """The next runs' sidecars warm while this one runs, not while it starts."""
            if spec is not None:
                self.sidecars.replenish(spec, job.settings.parallelism)

        def prefetch() -> None:
            fetched.append(self._background.submit(self.client.api.get_archive, holder, "/kratix"))
            published.append(self._background.submit(published_status))

        last = len(pipeline.containers) - 1
        for index, container in enumerate(pipeline.containers):
            result.failed_container = container.name  # until it succeeds (an engine error blames it)
            outcome = self._run_container(job, run_id, index, envs[index], mounts, deadline, loaded, secrets,
                                          on_success=prefetch if index == last else None, network=network,
                                          on_start=replenish if index == 0 else None)
            result.containers.append(outcome)
            if not outcome.succeeded:
                result.error = f"container {container.name!r}: {outcome.reason}"
                if no_api is not None:  # e.g. kratix-sdk's publish_status: "Service host/port is not set"
                    result.error += f"; note: {no_api}"
                for future in fetched:  # not read: release the connection
                    future.result()[0].close()
                # what it wrote through the API before failing stays, as in Kratix
                result.published_status = published_status()
                return
        result.failed_container = None
        result.published_status = published[0].result() if published else published_status()

        settings = job.settings
        stream, _ = fetched[0].result() if fetched else self.client.api.get_archive(holder, "/kratix")
        output_limits = Limits(settings.max_output_bytes, settings.max_output_files)
        out, meta = read_kratix_archive(stream, output_limits if job.action == "configure" else None,
                                        Limits(METADATA_MAX_BYTES, METADATA_MAX_FILES, METADATA_CAP, METADATA_CAP))
        result.metadata_files = meta.files
        metadata = parse_metadata(meta, job.wtype, job.action, METADATA_MAX_BYTES)
        result.status, result.status_warnings, result.control = (
            metadata.status, metadata.status_warnings, metadata.control)
        if job.action == "configure":
            result.output_files = out.files
        if job.action == "configure" and not metadata.control.suspends:  # Kratix: no Work when suspending
            result.groups = group_workloads(out.files, out.directories, metadata.selectors,
                                            job.promise_selectors, job.wtype)
        result.succeeded = True

    def _run_container(self, job: PipelineJob, run_id: str, index: int, env: list[str],
                       mounts: list[Mount], deadline: float, loaded: Future[Any], secrets: list[str],
                       on_success: Callable[[], None] | None = None, network: str | None = None,
                       on_start: Callable[[], None] | None = None) -> ContainerResult:
        """Run one step to completion. `on_start` is called once it started, `on_success` as
        soon as it exits 0."""
        spec = job.pipeline.containers[index]
        settings = job.settings
        outcome = ContainerResult(name=spec.name, image=spec.image, exit_code=None)
        name = f"pb-{run_id}-{index}"
        log_cap = max(settings.max_log_bytes + LOG_REDACTION_MARGIN, 65536)  # the engine keeps at least this
        self._track(run_id, "container", name)
        self.client.api.create_container(
            spec.image,
            name=name,
            command=spec.args,  # Kubernetes args -> Docker CMD, command -> ENTRYPOINT
            entrypoint=spec.command,
            environment=env,
            working_dir=spec.working_dir,
            labels=self._labels(run_id),
            host_config=self.client.api.create_host_config(
                mounts=mounts,
                mem_limit=settings.memory_bytes,
                memswap_limit=settings.memory_bytes,
                nano_cpus=int(settings.cpus * 1e9),
                pids_limit=PIDS_LIMIT,
                privileged=False,
                cap_drop=["ALL"],
                security_opt=["no-new-privileges"],
                network_mode=network or settings.network,
                log_config=LogConfig(type="json-file", config={"max-size": str(log_cap), "max-file": "2"}),
            ),
        )
        self._check_aborted()
        loaded.result()
        try:
            self.client.api.start(name)
            if on_start is not None:
                on_start()
        except APIError as exc:  # e.g. a `command` that does not exist in the image
            self._check_aborted()
            outcome.error = f"cannot start: {_explain(exc)}"
            self._pending[run_id].append(self._background.submit(self._remove, run_id, "container", name))
            return outcome
        remaining = deadline - time.monotonic()
        try:
            if remaining <= 0:
                raise requests.exceptions.ReadTimeout()
            # The stub says `int` (after docker-py's docstring), but the value only becomes the
            # requests timeout, which takes seconds as a float; rounding would lengthen the deadline.
            exited = self.client.api.wait(name, timeout=remaining)  # type: ignore[arg-type]
            if on_success is not None and exited.get("StatusCode") == 0:
                on_success()
        except (requests.exceptions.ReadTimeout, requests.exceptions.ConnectionError):
            self._check_aborted()
            self.client.api.kill(name)
            self.client.api.wait(name, timeout=30)
            outcome.timed_out = True
            outcome.error = (f"timed out: the pipeline exceeded its {job.timeout:g}s wall-clock limit "
                             "(runner.timeoutSeconds, or the Promise's "
                             f"{PIPELINE_TIMEOUT_ANNOTATION} annotation); the container was killed")
        self._check_aborted()
        state = self.client.api.inspect_container(name)["State"]
        outcome.exit_code = state.get("ExitCode")
        outcome.logs = self._logs(name, settings.max_log_bytes, secrets)
        if state.get("OOMKilled") and not outcome.timed_out:
            outcome.oom_killed = True
            outcome.error = (f"killed: out of memory (exceeded the {_mebibytes(settings.memory_bytes)} memory "
                             f"limit, runner.memory; exit code {outcome.exit_code})")
        elif outcome.error is None and outcome.exit_code != 0:
            outcome.error = f"exited with code {outcome.exit_code}"
        # Removed while the next step goes on; `_cleanup` waits for it (and retries if it failed).
        self._pending[run_id].append(self._background.submit(self._remove, run_id, "container", name))
        return outcome

    # -- the run's Kubernetes API ---------------------------------------------------------------

    def _sidecar_spec(self, job: PipelineJob) -> tuple[SidecarSpec | None, str | None]:
        """The run's API sidecar (runners/sidecar.py), or None: `runner.kubernetesApi.enabled`
        false, or auto without the sidecar's image for a pipeline that declares no rbac (logged,
        and the reason returned, for the run's error if it fails)."""
        settings = job.settings
        if not kubeapi.wanted(settings.kube_api):
            return None, None
        image = settings.kube_api_image
        missing = self.sidecars.missing_image(image)
        if missing is None:
            try:
                self._ensure_image(image, "IfNotPresent")
            except ImageError as exc:
                missing = str(exc)
                if not kubeapi.required(settings.kube_api, job.pipeline.rbac is not None):
                    log.warning("runner.kubernetesApi: %s; pipelines that declare no spec.rbac run without a "
                                "Kubernetes API (build the image, set runner.kubernetesApi.image, or enabled: "
                                "false)", missing)
            self.sidecars.record_image(image, missing)
        if missing is not None:
            if kubeapi.required(settings.kube_api, job.pipeline.rbac is not None):
                raise KubeApiError(f"the Kubernetes API sidecar (runner.kubernetesApi.image): {missing}")
            return None, f"this run had no Kubernetes API (runner.kubernetesApi.image: {missing})"
        return SidecarSpec(image, settings.network, min(settings.memory_bytes, SIDECAR_MEMORY)), None

    def _kube_run(self, job: PipelineJob, secrets: list[str]) -> tuple[RunCredentials, dict[str, Any]]:
        """Credentials for this run only, and what its API serves (`runners.kubeapi.build_run`)."""
        pipeline = job.pipeline
        permissions = [p.as_dict() for p in pipeline.rbac.permissions] if pipeline.rbac else []
        promise = dict(job.env).get("KRATIX_PROMISE_NAME", "")
        account = pipeline.service_account(promise, job.wtype, job.action)
        run = kubeapi.build_run(job.obj, job.env, pipeline.name, permissions, account, job.kube)
        creds = RunCredentials.new(hosts=(kubeapi.HOST, "localhost"))
        secrets.append(creds.token)  # redacted from logs and errors
        return creds, run

    def _logs(self, name: str, limit: int, secrets: list[str]) -> str:
        """stdout+stderr, redacted, keeping the last `limit` bytes. Redaction runs before the
        cut, over `LOG_REDACTION_MARGIN` more bytes, so a secret is never kept in part."""
        window = limit + LOG_REDACTION_MARGIN
        kept = bytearray()
        dropped = 0
        for chunk in _chunks(self.client.api.logs(name, stdout=True, stderr=True, stream=True, follow=False)):
            kept += chunk
            if len(kept) > 2 * window:
                dropped += len(kept) - window
                del kept[: len(kept) - window]
        if len(kept) > window:
            dropped += len(kept) - window
            del kept[: len(kept) - window]
        data = redact(kept.decode("utf-8", errors="replace"), secrets).encode()
        if len(data) > limit:
            dropped += len(data) - limit
            data = data[len(data) - limit:]
        text = data.decode("utf-8", errors="ignore")
        return f"[... {dropped} earlier bytes of logs dropped]\n{text}" if dropped else text

    # -- images -------------------------------------------------------------------------------

    def _ensure_image(self, image: str, policy: str) -> None:
        if policy not in PULL_POLICIES:
            raise ImageError(f"image {image!r}: unknown imagePullPolicy {policy!r} "
                             f"(expected one of {', '.join(PULL_POLICIES)})")
        if policy != "Always":
            try:
                self.client.api.inspect_image(image)
                return
            except ImageNotFound:
                if policy == "Never":
                    raise ImageError(f"image {image!r} is not present on the Docker engine and its "
                                     "imagePullPolicy is Never (build or load it there first)") from None
        repo, tag = parse_repository_tag(image)
        try:
            self.client.api.pull(repo, tag=tag or "latest")
        except (APIError, DockerException, requests.RequestException) as exc:
            raise ImageError(f"cannot pull image {image!r} (imagePullPolicy {policy}): {_explain(exc)}") from None

    def _ensure_holder_image(self) -> None:
        """Import the tiny image holding /kratix/{input,output,metadata} (no binaries) once."""
        with self._lock:
            if self._holder_ready:
                return
            try:
                self.client.api.inspect_image(HOLDER_IMAGE)
            except ImageNotFound:
                repo, tag = parse_repository_tag(HOLDER_IMAGE)
                dirs = {"kratix/": 0o755, "kratix/input/": 0o755, "kratix/output/": 0o777,
                        "kratix/metadata/": 0o777}
                self.client.api.import_image_from_data(_tar({}, dirs), repository=repo, tag=tag,
                                                       changes=['CMD ["/nothing"]'])
            self._holder_ready = True

    # -- bookkeeping for cleanup --------------------------------------------------------------

    def _labels(self, run_id: str) -> dict[str, str]:
        return {RUN_LABEL: run_id, SESSION_LABEL: self.session, OWNER_LABEL: self._owner}

    def _track(self, run_id: str, kind: str, name: str) -> None:
        """Record a resource before creating it, so an interruption mid-call still removes it."""
        with self._lock:
            if self._aborted:
                raise RunnerAborted("the runner was aborted")
            self._active[run_id].append((kind, name))

    def _remove(self, run_id: str, kind: str, name: str) -> None:
        if kind == "container":
            self.client.api.remove_container(name, force=True)
        else:
            self.client.api.remove_volume(name, force=True)
        with self._lock:
            if (kind, name) in self._active.get(run_id, []):
                self._active[run_id].remove((kind, name))

    def _check_aborted(self) -> None:
        if self._aborted:
            raise RunnerAborted("the runner was aborted")

    def _defer_cleanup(self, run_id: str) -> None:
        future = self._reaper.submit(self._cleanup, run_id)
        with self._lock:
            self._reaping.add(future)

        def done(f: Future[None]) -> None:
            with self._lock:
                if f.exception() is None:
                    self._reaping.discard(f)  # failed removals stay, for `close` to report

        future.add_done_callback(done)

    def _cleanup(self, run_id: str) -> None:
        with self._lock:
            pending = self._pending.pop(run_id, [])
        for future in pending:
            future.exception()  # wait; a failed removal is retried below
        with self._lock:
            items = self._active.pop(run_id, [])
        containers = [name for kind, name in items if kind == "container"]
        volumes = [name for kind, name in items if kind == "volume"]
        # Serially, in this thread: cleanup also runs while the interpreter exits, when no
        # executor accepts new work.
        for name in containers:
            self._remove_retrying(run_id, "container", name)
        for name in volumes:
            self._remove_retrying(run_id, "volume", name)

    def _remove_retrying(self, run_id: str, kind: str, name: str) -> None:
        for attempt in (1, 2):
            try:
                self._remove(run_id, kind, name)
                return
            except NotFound:
                return
            except (APIError, requests.RequestException):  # e.g. removal already in progress
                if attempt == 2:
                    raise
                time.sleep(0.5)

def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by another user
    return True


def _tar(files: dict[str, bytes], dirs: dict[str, int] | None = None, mode: int = 0o444,
         modes: dict[str, int] | None = None) -> bytes:
    """A tar of `files` (mode `mode`, or `modes[<its directory>]`) after the directories `dirs`."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, dir_mode in (dirs or {}).items():
            info = tarfile.TarInfo(name)
            info.type, info.mode = tarfile.DIRTYPE, dir_mode
            tar.addfile(info)
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size, info.mtime = len(data), int(time.time())
            info.mode = (modes or {}).get(name.rpartition("/")[0], mode)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def _chunks(stream: Any) -> Iterator[bytes]:
    if isinstance(stream, bytes):
        yield stream
    else:
        yield from stream


def _explain(exc: Exception) -> str:
    return one_line(str(getattr(exc, "explanation", None) or exc))


def _mebibytes(n: int) -> str:
    return f"{n // 1048576}Mi" if n % 1048576 == 0 else f"{n}-byte"


def _redact_result(result: PipelineResult, secrets: list[str]) -> None:
    """Logs and errors redacted (`bot.redact.redact`); errors on one line."""
    for c in result.containers:
        c.logs = redact(c.logs, secrets)  # already redacted when read; cheap, and idempotent
        if c.error:
            c.error = one_line(redact(c.error, secrets))
    if result.error:
        result.error = one_line(redact(result.error, secrets))
