"""The state store interface (contract §3.1, §3.4, §3.6, §3.7) and what its implementations share.

A `StateStoreWriter` reads and writes files of one GitStateStore or BucketStateStore. Paths are
"/"-separated, relative to the store root (repository root or bucket) and already include the
store's `path` and the Destination's path (`bot.kratix.layout` adds them); writers never add them again.
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Generic, Literal, Protocol, TypeVar

from bot.errors import PromisebotError
from bot.model.objects import BUCKET_STATE_STORE, GIT_STATE_STORE, StateStore
from bot.model.works import FileChanges

if TYPE_CHECKING:
    from bot.secrets import SecretResolver

# Ready reasons (contract §3.6, K:internal/controller/state_store.go)
STATE_STORE_READY = "StateStoreReady"
ERROR_INITIALISING_WRITER = "ErrorInitialisingWriter"
ERROR_VALIDATING_PERMISSIONS = "ErrorValidatingPermissions"
READY_MESSAGE = "State store is ready"

C = TypeVar("C")


class StateStoreError(PromisebotError):
    """A state store could not be read or written. The message never contains a secret."""


@dataclass(frozen=True, slots=True)
class WriteResult:
    """What one `apply` did. `revision` is None when nothing changed (no commit, no upload)."""

    revision: str | None
    added: list[str] = field(default_factory=list)
    modified: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return self.revision is not None


@dataclass(frozen=True, slots=True)
class ReadyResult:
    """The state store's Ready condition (contract §3.4, §3.6)."""

    ready: bool
    reason: str
    message: str

    @classmethod
    def ok(cls) -> ReadyResult:
        return cls(True, STATE_STORE_READY, READY_MESSAGE)

    @classmethod
    def init_failed(cls, message: str) -> ReadyResult:
        return cls(False, ERROR_INITIALISING_WRITER, message)

    @classmethod
    def permission_failed(cls, message: str) -> ReadyResult:
        return cls(False, ERROR_VALIDATING_PERMISSIONS, message)


@dataclass(frozen=True, slots=True)
class Change(Generic[C]):
    """One file differing between two states: `old` is None when added, `new` is None when
    removed. C is what identifies a version: its bytes, or a Git blob id."""

    path: str
    action: Literal["add", "modify", "remove"]
    old: C | None
    new: C | None


class FileDiff(Change[bytes]):
    """One file `apply` would change, with its old and new bytes."""

    __slots__ = ()


class StateStoreWriter(Protocol):
    """One state store. Open one writer per event (see `open_store`)."""

    def read(self, path: str) -> bytes | None:
        """The file's bytes, or None if it does not exist."""
        ...

    def list_files(self, prefix: str) -> list[str]:
        """Every file under the directory `prefix` ("" = the whole store), sorted."""
        ...

    def apply(self, changes: FileChanges, message: str, trailers: dict[str, str]) -> WriteResult:
        """Write the whole change set at once: one commit + one push (Git) or one batch (S3)."""
        ...

    def diff(self, changes: FileChanges) -> list[FileDiff]:
        """What `apply(changes)` would change, without writing anything to the store."""
        ...

    def check_ready(self) -> ReadyResult:
        """Can the store be reached and written? Never raises."""
        ...


def normalise_path(path: str, *, directory: bool = False) -> str:
    """`path` checked and normalised: relative, "/"-separated, no "." / ".." / empty parts.

    With `directory`, "" / "." / "/" mean the store root and return "". Raises ValueError.
    """
    text = str(path).strip("/") if directory else str(path)
    if directory and text in ("", "."):
        return ""
    parts = text.split("/")
    if not text or text.startswith("/") or "\\" in text or "\0" in text or any(
        p in ("", ".", "..") for p in parts
    ):
        raise ValueError(
            f"invalid state store path {path!r}: expected a relative path such as 'dest/resources/x.yaml' "
            "with no empty, '.' or '..' parts"
        )
    return posixpath.join(*parts)


@dataclass(slots=True)
class NormalisedChanges:
    """A `FileChanges` with checked paths; explicit deletes of files also put are dropped."""

    puts: dict[str, bytes]
    deletes: set[str]
    delete_prefixes: set[str]

    @classmethod
    def of(cls, changes: FileChanges) -> NormalisedChanges:
        puts = {normalise_path(p): bytes(c) for p, c in changes.puts.items()}
        deletes = {normalise_path(p) for p in changes.deletes} - set(puts)
        prefixes = {normalise_path(p, directory=True) for p in changes.delete_prefixes}
        return cls(puts, deletes, prefixes)

    def removes(self, path: str) -> bool:
        """Whether an existing file at `path` goes (explicitly, or by a delete prefix) unless put."""
        return path in self.deletes or any(d in self.delete_prefixes for d in ancestors(path))

    def outermost_prefixes(self) -> list[str]:
        """The delete prefixes not inside another one, sorted."""
        return sorted(p for p in self.delete_prefixes if not any(a in self.delete_prefixes for a in ancestors(p)))


def ancestors(path: str) -> list[str]:
    """The directories containing `path`, innermost first, ending with the root ""."""
    out = []
    while path:
        path = path.rpartition("/")[0]
        out.append(path)
    return out


def check_trailers(trailers: dict[str, str]) -> None:
    """Trailer keys are `Token-Like` words and values single lines. Raises ValueError otherwise."""
    for key, value in trailers.items():
        if not key or not all(c.isalnum() or c == "-" for c in key):
            raise ValueError(f"invalid commit trailer key {key!r}: use letters, digits and '-'")
        if "\n" in value or "\r" in value:
            raise ValueError(f"commit trailer {key} must be a single line")


def commit_message(message: str, trailers: dict[str, str], added: int, modified: int, removed: int) -> str:
    """Subject (the caller's first line + file counts), the caller's other lines, then trailers."""
    check_trailers(trailers)
    first, _, rest = (message.strip() or "Update state store").partition("\n")
    lines = [f"{first.strip()} ({added} added, {modified} modified, {removed} removed)"]
    if rest.strip():
        lines += ["", rest.strip()]
    if trailers:
        lines += ["", *(f"{key}: {value}" for key, value in trailers.items())]
    return "\n".join(lines) + "\n"


def open_store(
    store: StateStore, *, platform_root: Path, secrets: SecretResolver, cache_dir: Path
) -> StateStoreWriter:
    """The writer for `store`, by kind (contract §3.6 Git, §3.7 Bucket).

    `platform_root` resolves relative Git URLs; `cache_dir` keeps the Git store's cached clone
    between events. Raises ValueError for an unknown kind or a bad spec; secrets are resolved
    lazily, so a missing secret shows up in `check_ready`/`apply`, not here.
    """
    # Imported here: the implementations import this module.
    if store.kind == GIT_STATE_STORE:
        from bot.statestores.git import GitStateStoreWriter

        return GitStateStoreWriter(store, platform_root=platform_root, secrets=secrets, cache_dir=cache_dir)
    if store.kind == BUCKET_STATE_STORE:
        from bot.statestores.bucket import BucketStateStoreWriter

        return BucketStateStoreWriter(store, secrets=secrets)
    raise ValueError(f"unknown state store kind {store.kind!r} (expected {GIT_STATE_STORE} or {BUCKET_STATE_STORE})")
