"""The Kubernetes API sidecar of a pipeline run on Docker, and a warm pool of them
(docs/runner.md, "The Kubernetes API").

A sidecar is a container of `runner.kubernetesApi.image` running `python3 -c` with
`bot/kube/bootstrap.py`, its stdin and stdout attached through the Docker API (so a remote
engine works, and nothing is copied into it with the archive endpoint). The runner sends the
API's code, then the run (`bot.kube.pki.run_message`), reads `ready`, and at the end of the
pipeline asks for the status written through the API (`bot.kube.server.stdio_main`). The
pipeline's containers join the sidecar's network namespace.

Creating and starting a container, its network namespace and a Python interpreter take longer
than the pipeline's own container needs to start, so each process keeps sidecars warm: created,
started and with their code loaded, waiting for a run, holding no run's data. `SidecarPool.claim`
hands one over (each is used by one run only, then removed with it); with none warm, the run
gets a new one, created but not started, which its containers can join while it starts. Once the
run's first container has started, `replenish` warms replacements in the background, up to the
runner's parallelism. In an rq work horse (`one_job_process`) spares are kept only from a job's
second run on. Warm sidecars carry the owner label, so `sweep_orphans` removes those of a dead
process; `drain` (at exit, on abort, at the end of an rq job) removes the others.
"""

from __future__ import annotations

import atexit
import json
import logging
import os
import select
import socket
import struct
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import docker
import requests
from docker.errors import APIError, DockerException, NotFound
from docker.types import LogConfig

from bot.errors import PromisebotError
from bot.kube.pki import RunCredentials, bootstrap_source, code_message, run_message
from runners.base import OWNER_LABEL, SESSION_LABEL, one_line

log = logging.getLogger("promisebot.runner")

SIDECAR_MEMORY = 256 * 1024 * 1024
START_SECONDS = 30.0  # to answer `ready` once given its run (started first, if it was not)
IMAGE_RETRY_SECONDS = 60.0  # a missing sidecar image is looked for (and pulled) again after this
SYNC_SECONDS = 10.0
STDOUT = 1
MAX_LINE = 16 * 1024 * 1024  # a status is at most bot.kube.api.MAX_BODY_BYTES


class KubeApiError(PromisebotError):
    """The run's Kubernetes API sidecar could not be started or read (docs/runner.md)."""


@dataclass(frozen=True, slots=True)
class SidecarSpec:
    """What makes sidecars interchangeable: a warm one serves any run with the same spec."""

    image: str
    network: str
    memory_bytes: int


class Sidecar:
    """One sidecar container with its stdin and stdout attached."""

    def __init__(self, api: docker.APIClient, name: str, sock: Any) -> None:
        self.api, self.name = api, name
        self._io = sock  # keeps the attach response's socket object alive
        self._sock = sock._sock if isinstance(sock, socket.SocketIO) else sock  # type: ignore[attr-defined]
        self._frames = b""  # raw attach stream not yet parsed
        self._lines = b""  # stdout not yet split into lines
        self.closed = False
        self.warm = False  # taken from the pool (not started for its run)
        self.started = False

    def waiting(self) -> bool:
        """Still running and waiting for its run: before it has one, it writes nothing, so
        anything to read on its stream is its end."""
        if self.closed:
            return False
        readable, _, _ = select.select([self._sock], [], [], 0)
        return not readable

    def send(self, data: bytes) -> None:
        self._sock.sendall(data)

    def launch(self) -> None:
        """Start it and send its code (`bot/kube/bootstrap.py`)."""
        try:
            self.api.start(self.name)
            self.send(code_message())
            self.started = True
        except APIError as exc:  # e.g. an image without python3
            self.close()
            raise KubeApiError("the Kubernetes API sidecar (runner.kubernetesApi.image) cannot start: "
                               f"{one_line(str(exc.explanation or exc))}") from None
        except OSError as exc:
            self.close()
            raise KubeApiError(f"the Kubernetes API sidecar cannot start: {self._why(exc)}") from None

    def configure(self, creds: RunCredentials, run: dict[str, Any], deadline: float) -> None:
        """Give it the run (started first if it was not); returns once its API listens, within
        START_SECONDS."""
        deadline = min(deadline, time.monotonic() + START_SECONDS)
        if not self.started:
            self.launch()
        try:
            self.send(run_message(creds, run))
            reply = self.receive(deadline)
        except (OSError, ValueError) as exc:
            raise KubeApiError(f"the Kubernetes API sidecar did not start: {self._why(exc)}") from None
        if "ready" not in reply:
            raise KubeApiError(f"the Kubernetes API sidecar could not serve: {one_line(str(reply.get('error')))}")

    def finish(self, deadline: float) -> dict[str, Any] | None:
        """The object's status as last written through the API (None: never written); then
        closes its stdin, which stops it."""
        try:
            self.send(b'{"sync":true}\n')
            reply = self.receive(deadline)
        except (OSError, ValueError) as exc:
            raise KubeApiError(f"the Kubernetes API sidecar did not answer: {self._why(exc)}") from None
        finally:
            self.close()
        status = reply.get("status")
        return status if isinstance(status, dict) else None

    def receive(self, deadline: float) -> dict[str, Any]:
        """The next line it wrote on stdout, as JSON (a non-TTY attach stream is framed:
        8-byte headers, stream 1 = stdout)."""
        while b"\n" not in self._lines:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError("no answer in time")
            self._sock.settimeout(remaining)
            chunk = self._sock.recv(65536)
            if not chunk:
                raise EOFError("it exited")
            self._frames += chunk
            while len(self._frames) >= 8:
                stream, size = struct.unpack(">BxxxL", self._frames[:8])
                if len(self._frames) < 8 + size:
                    break
                if stream == STDOUT:
                    self._lines += self._frames[8:8 + size]
                self._frames = self._frames[8 + size:]
            if len(self._lines) > MAX_LINE:
                raise ValueError("its answer is too long")
        line, _, self._lines = self._lines.partition(b"\n")
        message = json.loads(line)
        if not isinstance(message, dict):
            raise ValueError("its answer is not a JSON object")
        return message

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            try:
                self._sock.close()
                self._io.close()
            except OSError:
                pass

    def _why(self, exc: BaseException) -> str:
        """The reason, with the end of its log when it exited."""
        try:
            state = self.api.inspect_container(self.name)["State"]
            if not state.get("Running"):
                logs = self.api.logs(self.name, stdout=True, stderr=True, tail=5)
                text = logs.decode("utf-8", "replace") if isinstance(logs, bytes) else str(logs)
                return one_line(f"it exited with code {state.get('ExitCode')}: {text.strip()}")
        except (APIError, DockerException, requests.RequestException):
            pass
        return one_line(f"{type(exc).__name__}: {exc}")


class SidecarPool:
    """This process's warm sidecars on one engine, by spec. Thread-safe."""

    def __init__(self, api: docker.APIClient, owner: str, spares_from: int = 1) -> None:
        self.api = api
        # Spares are kept from this claim on: 1 = at once; 2 in an rq work horse, a process for
        # one job, where a spare warmed for a job with one pipeline would be thrown away.
        self.spares_from = spares_from
        self._claims = 0
        self.labels = {SESSION_LABEL: f"warm-{uuid.uuid4().hex[:8]}", OWNER_LABEL: owner}
        self._lock = threading.Lock()
        self._warm: dict[SidecarSpec, list[Sidecar]] = {}
        self._starting: dict[SidecarSpec, int] = {}
        self._owned: set[str] = set()  # containers made here and not handed to a run
        self._images: dict[str, tuple[float, str]] = {}  # image -> (when, why) it was found missing
        self._background = ThreadPoolExecutor(max_workers=2, thread_name_prefix="kube-warm")
        self._warming: set[Future[None]] = set()

    def claim(self, spec: SidecarSpec, take: Callable[[str], None]) -> Sidecar:
        """A sidecar for one run: a warm one if one is waiting, else a new one, created but not
        started (`configure` starts it; the run's containers may join it meanwhile). `take(name)`
        records it as the run's before the pool lets go of it. The run calls `replenish` once
        its first container started, so the spare's start does not slow the run's."""
        sidecar = self._take_warm(spec)
        with self._lock:
            self._claims += 1
        if sidecar is None:  # created only: the run's containers can join it while it starts
            sidecar = self._start(spec, launch=False)
        take(sidecar.name)
        with self._lock:
            self._owned.discard(sidecar.name)
        return sidecar

    def missing_image(self, image: str) -> str | None:
        """Why `image` was not found (nor pulled) less than IMAGE_RETRY_SECONDS ago; None when
        it is to be looked for."""
        with self._lock:
            found = self._images.get(image)
        if found is None or time.monotonic() - found[0] >= IMAGE_RETRY_SECONDS:
            return None
        return found[1]

    def record_image(self, image: str, missing: str | None) -> None:
        """`image` was just looked for: found (None), or missing and why."""
        with self._lock:
            if missing is None:
                self._images.pop(image, None)
            else:
                self._images[image] = (time.monotonic(), missing)

    def settle(self) -> None:
        """Wait until the sidecars being started are warm (or failed)."""
        with self._lock:
            warming = list(self._warming)
        for future in warming:
            future.exception()

    def drain(self) -> None:
        """Remove every sidecar not handed to a run (warm, or still starting: waited for)."""
        self.settle()
        with self._lock:
            for warm in self._warm.values():
                for sidecar in warm:
                    sidecar.close()
            self._warm.clear()
            names = list(self._owned)
        for name in names:
            self._remove(name)

    # -- internals --------------------------------------------------------------------------

    def _take_warm(self, spec: SidecarSpec) -> Sidecar | None:
        """A warm sidecar still waiting for its run; those that exited meanwhile (an engine
        restart, a kill) are removed in the background."""
        while True:
            with self._lock:
                warm = self._warm.get(spec) or []
                sidecar = warm.pop(0) if warm else None
            if sidecar is None or sidecar.waiting():
                break
            sidecar.close()
            log.warning("the warm Kubernetes API sidecar %s had exited; not used", sidecar.name)
            self._background.submit(self._remove, sidecar.name)
        if sidecar is not None:
            sidecar.warm = True
        return sidecar

    def replenish(self, spec: SidecarSpec, spares: int) -> None:
        """Start warming sidecars in the background until `spares` are waiting or starting
        (from the `spares_from`th claim on)."""
        with self._lock:
            if self._claims < self.spares_from:
                return
            if len(self._warm.get(spec) or []) + self._starting.get(spec, 0) >= spares:
                return
            self._starting[spec] = self._starting.get(spec, 0) + 1
        future = self._background.submit(self._warm_one, spec)
        with self._lock:
            self._warming.add(future)
        future.add_done_callback(self._warmed)

    def _warmed(self, future: Future[None]) -> None:
        with self._lock:
            self._warming.discard(future)

    def _warm_one(self, spec: SidecarSpec) -> None:
        try:
            sidecar = self._start(spec)
        except (KubeApiError, APIError, DockerException, requests.RequestException, OSError) as exc:
            log.info("could not warm a Kubernetes API sidecar (a run will start its own): %s", exc)
            sidecar = None
        with self._lock:
            self._starting[spec] -= 1
            if sidecar is not None:
                self._warm.setdefault(spec, []).append(sidecar)

    def _start(self, spec: SidecarSpec, launch: bool = True) -> Sidecar:
        """Create and attach; with `launch`, start and send the code: it then waits for its run."""
        name = f"pb-kube-{uuid.uuid4().hex[:12]}"
        with self._lock:
            self._owned.add(name)
        try:
            sidecar = self._create(spec, name)
            if launch:
                sidecar.launch()
            return sidecar
        except BaseException:
            self._remove(name)
            raise

    def _create(self, spec: SidecarSpec, name: str) -> Sidecar:
        # stdin_open without detach: StdinOnce, so closing the attached stdin stops it.
        self.api.create_container(
            spec.image, name=name, command=["python3", "-S", "-c", bootstrap_source()],
            environment=["PYTHONDONTWRITEBYTECODE=1", "PYTHONUNBUFFERED=1"],
            stdin_open=True, labels=self.labels,
            host_config=self.api.create_host_config(
                mem_limit=spec.memory_bytes, memswap_limit=spec.memory_bytes,
                pids_limit=64, privileged=False, cap_drop=["ALL"], security_opt=["no-new-privileges"],
                network_mode=spec.network,
                log_config=LogConfig(type="json-file", config={"max-size": "1m", "max-file": "1"}),
            ),
        )
        return Sidecar(self.api, name, self.api.attach_socket(name, params={"stdin": 1, "stdout": 1, "stream": 1}))

    def _remove(self, name: str) -> None:
        """Remove it (it stays owned, for `drain` to try again, if the engine refuses twice)."""
        for attempt in (1, 2):
            try:
                self.api.remove_container(name, force=True)
                break
            except NotFound:
                break
            except (APIError, DockerException, requests.RequestException) as exc:
                if attempt == 2:
                    log.warning("could not remove the Kubernetes API sidecar %s: %s", name, one_line(str(exc)))
                    return
                time.sleep(0.5)
        with self._lock:
            self._owned.discard(name)

    def _alive(self, name: str) -> bool:
        try:
            return bool(self.api.inspect_container(name)["State"].get("Running"))
        except (APIError, DockerException, requests.RequestException):
            return False


_pools: dict[str, SidecarPool] = {}
_pools_lock = threading.Lock()
_spares_from = 1


def pool_for(api: docker.APIClient, owner: str) -> SidecarPool:
    """This process's pool for the engine `api` talks to."""
    with _pools_lock:
        pool = _pools.get(api.base_url)
        if pool is None:
            pool = _pools[api.base_url] = SidecarPool(api, owner, _spares_from)
        return pool


def one_job_process() -> None:
    """This process runs one job and exits (an rq work horse): its pools keep spares only
    from their second run on."""
    global _spares_from
    with _pools_lock:
        _spares_from = 2
        for pool in _pools.values():
            pool.spares_from = 2


def drain_all() -> None:
    """Remove this process's warm sidecars on every engine (exit, end of an rq job)."""
    with _pools_lock:
        pools = list(_pools.values())
    for pool in pools:
        pool.drain()


def _forget_after_fork() -> None:
    """A forked child (an rq work horse) must not use its parent's sidecars or connections."""
    global _pools_lock
    _pools.clear()
    _pools_lock = threading.Lock()


atexit.register(drain_all)
os.register_at_fork(after_in_child=_forget_after_fork)
