"""The object a pipeline sees as /kratix/input/object.yaml (contract §1.3), and objects rebuilt
from the bodies bookkeeping recorded (deleted ones, last valid versions; §4.3, §4.5).

Kratix hands pipelines the full stored object: metadata with the `kratix.io/promise-name`
label (requests), and the current `status` — which promisebot keeps in bookkeeping, so a
pipeline sees what the previous run and the previous pipelines recorded.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from bot.kratix.labels import PROMISE_NAME_LABEL
from bot.model.objects import (
    DEFAULT_NAMESPACE,
    KRATIX_API_VERSION,
    PROMISE,
    Problem,
    Promise,
    ResourceRequest,
)
from bot.platform.loader import LoadedPlatform, PlatformFile, load_platform
from bot.settings import Settings


def _with_status(body: dict[str, Any], status: dict[str, Any] | None) -> dict[str, Any]:
    obj = copy.deepcopy(body)
    obj["status"] = copy.deepcopy(status) if status else {}
    return obj


def request_object(req: ResourceRequest, status: dict[str, Any] | None) -> dict[str, Any]:
    """object.yaml for a Resource request: its body (schema defaults applied), the Kratix
    promise-name label, namespace defaulted, and the current status (§1.3)."""
    obj = _with_status(req.body, status)
    obj.setdefault("apiVersion", req.api_version)
    obj.setdefault("kind", req.kind)
    md = obj.setdefault("metadata", {})
    md["name"] = req.name
    md["namespace"] = req.namespace or DEFAULT_NAMESPACE
    labels = md.get("labels") or {}
    labels[PROMISE_NAME_LABEL] = req.promise
    md["labels"] = labels
    return obj


def promise_object(promise: Promise, status: dict[str, Any] | None) -> dict[str, Any]:
    """object.yaml for a Promise workflow: the whole Promise with its current status (§1.3)."""
    obj = _with_status(promise.body, status)
    obj.setdefault("apiVersion", KRATIX_API_VERSION)
    obj.setdefault("kind", PROMISE)
    obj.setdefault("metadata", {})["name"] = promise.name
    return obj


@dataclass(frozen=True, slots=True)
class MemorySource:
    """A platform source made of bodies kept in bookkeeping: how a deleted Promise, request,
    Destination or State Store is rebuilt into the typed model to run its delete pipeline or
    clean up its files (§4.3, §4.5, §3.5)."""

    bodies: tuple[str, ...]  # YAML texts, one object each
    base: Path

    @property
    def root(self) -> Path:
        return self.base

    @property
    def revision(self) -> str | None:
        return None

    def files(self) -> Iterator[PlatformFile | Problem]:
        for i, text in enumerate(self.bodies):
            yield PlatformFile(f"bookkeeping/{i:05d}.yaml", len(text.encode()))

    def read(self, file: PlatformFile, max_bytes: int) -> bytes:
        index = int(file.path.split("/")[1].split(".")[0])
        return self.bodies[index].encode()[: max_bytes + 1]


def rebuild(bodies: list[dict[str, Any]], base: Path, settings: Settings) -> LoadedPlatform:
    """The typed objects of `bodies` (as recorded), as `load_platform` would build them."""
    texts = tuple(yaml.safe_dump(b, sort_keys=True) for b in bodies)
    return load_platform(MemorySource(texts, base), settings)
