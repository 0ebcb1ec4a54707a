"""Safe reading of what a pipeline left in /kratix/output and /kratix/metadata (contract §1.5, §1.6).

The engine hands back a tar stream (Docker's archive API of `/kratix`). It is read as a stream,
member by member, straight into memory: nothing is ever extracted to host paths. Output is
all-or-nothing: a symlink, hard link, device file, FIFO, path escaping the output directory,
a file name with a backslash, or a total over the caps rejects the whole output with an error
naming the file, the real sizes and the cap that applied (and the setting behind it).
Metadata YAML is read with `bot.platform.yamlload.load_first_document` (nesting, alias and size caps).
"""

from __future__ import annotations

import io
import posixpath
import tarfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from bot.errors import PromisebotError
from bot.kratix.status_merge import StatusError, WorkflowControl, check_incoming, parse_workflow_control
from bot.kratix.workloads import DirectorySelector, SelectorsError, parse_destination_selectors
from bot.model.objects import WorkflowAction, WorkflowType
from bot.platform.yamlload import YamlLoadError, load_first_document

OUTPUT_DIR = "/kratix/output"
METADATA_DIR = "/kratix/metadata"
STATUS_FILE = "status.yaml"
SELECTORS_FILE = "destination-selectors.yaml"
CONTROL_FILE = "workflow-control.yaml"
KRATIX_METADATA_FILES = (STATUS_FILE, SELECTORS_FILE, CONTROL_FILE)
OUTPUT_BYTES_CAP = "the runner.maxOutputBytes setting"
OUTPUT_FILES_CAP = "the runner.maxOutputFiles setting"
METADATA_CAP = f"promisebot's fixed cap for {METADATA_DIR}, not a setting"


class OutputRejected(PromisebotError, ValueError):
    """The pipeline's output (or metadata) breaks a rule of §1.6 or a cap; nothing is used."""


@dataclass(slots=True)
class Tree:
    """Regular files (relative path -> bytes) and directories found under one /kratix dir."""

    files: dict[str, bytes] = field(default_factory=dict)
    directories: set[str] = field(default_factory=set)
    total_bytes: int = 0


@dataclass(frozen=True, slots=True)
class Limits:
    max_bytes: int
    max_files: int
    bytes_cap: str = OUTPUT_BYTES_CAP  # what sets max_bytes, for messages
    files_cap: str = OUTPUT_FILES_CAP


@dataclass(slots=True)
class Metadata:
    """The three files Kratix reads from /kratix/metadata, parsed and validated."""

    status: dict[str, Any] | None = None  # what the status-writer will merge (None: no file)
    status_warnings: list[str] = field(default_factory=list)
    control: WorkflowControl = field(default_factory=WorkflowControl)
    selectors: list[DirectorySelector] = field(default_factory=list)


class _ChunkStream(io.RawIOBase):
    """A readable file over an iterator of byte chunks (the engine's HTTP response)."""

    def __init__(self, chunks: Iterable[bytes]) -> None:
        self._chunks: Iterator[bytes] = iter(chunks)
        self._buf = b""

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        while not self._buf:
            try:
                self._buf = next(self._chunks)
            except StopIteration:
                return 0
        n = min(len(b), len(self._buf))
        b[:n] = self._buf[:n]
        self._buf = self._buf[n:]
        return n


def read_kratix_archive(chunks: Iterable[bytes], output: Limits | None, metadata: Limits,
                        root: str = "kratix") -> tuple[Tree, Tree]:
    """Read a tar stream of the directory `/kratix` into (output tree, metadata tree).

    `output=None` skips /kratix/output entirely (delete workflows ignore it, §1.2).
    Raises OutputRejected naming the offending file.
    """
    out_tree, meta_tree = Tree(), Tree()
    stream = io.BufferedReader(_ChunkStream(chunks), buffer_size=1 << 16)
    with tarfile.open(fileobj=stream, mode="r|") as tar:
        for member in tar:
            rel = _relative(member.name, root)
            if rel is None:
                raise OutputRejected(f"{'/' + member.name.lstrip('/')}: path escapes {OUTPUT_DIR}")
            top, _, inner = rel.partition("/")
            if top == "output" and output is not None:
                _add(tar, member, inner, out_tree, output, OUTPUT_DIR, strict=True)
            elif top == "metadata":
                _add(tar, member, inner, meta_tree, metadata, METADATA_DIR,
                     strict=inner in KRATIX_METADATA_FILES)
    return out_tree, meta_tree


def _relative(name: str, root: str) -> str | None:
    """Member name relative to `root`, or None when it is absolute or escapes it."""
    if name.startswith("/"):
        return None
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if ".." in parts or not parts or parts[0] != root:
        return None
    return "/".join(parts[1:])


def _add(tar: tarfile.TarFile, member: tarfile.TarInfo, rel: str, tree: Tree, limits: Limits,
         where: str, strict: bool) -> None:
    shown = posixpath.join(where, rel) if rel else where
    if member.isdir():
        if rel:
            tree.directories.add(rel)
        return
    if not member.isreg():
        if not strict:  # scratch files between containers: not Kratix's business, not ours
            return
        kind = ("a symbolic link" if member.issym() else "a hard link" if member.islnk()
                else "a device file" if member.ischr() or member.isblk() else "a FIFO" if member.isfifo()
                else "not a regular file")
        target = f" (to {member.linkname})" if member.issym() or member.islnk() else ""
        raise OutputRejected(f"{shown}: is {kind}{target}; only regular files are allowed")
    if strict and "\\" in rel:
        raise OutputRejected(f"{shown}: the file name contains a backslash ('\\'), which promisebot does not accept "
                             "in output paths (state stores refuse it: Windows and many tools read it as a "
                             "directory separator); rename the file")
    if len(tree.files) + 1 > limits.max_files:
        raise OutputRejected(f"{shown}: more than {limits.max_files} files in {where} (the cap: {limits.files_cap})")
    total = tree.total_bytes + member.size
    if total > limits.max_bytes:
        raise OutputRejected(f"{shown}: {member.size} bytes, which takes {where} to {total} bytes, over the "
                             f"{limits.max_bytes}-byte cap ({limits.bytes_cap})")
    fh = tar.extractfile(member)
    data = fh.read() if fh is not None else b""
    tree.files[rel] = data
    tree.total_bytes += len(data)


def parse_metadata(tree: Tree, wtype: WorkflowType, action: WorkflowAction, max_yaml_bytes: int) -> Metadata:
    """Parse status.yaml, workflow-control.yaml and (configure only) destination-selectors.yaml.

    Raises StatusError / SelectorsError with the file named: each fails the pipeline as in Kratix.
    """
    meta = Metadata()
    if STATUS_FILE in tree.files:
        doc = _yaml(tree.files[STATUS_FILE], STATUS_FILE, max_yaml_bytes, StatusError)
        meta.status, meta.status_warnings = check_incoming(doc if doc is not None else {}, wtype)
    if CONTROL_FILE in tree.files:
        meta.control = parse_workflow_control(
            _yaml(tree.files[CONTROL_FILE], CONTROL_FILE, max_yaml_bytes, StatusError) or {})
    if action == "configure" and SELECTORS_FILE in tree.files:
        meta.selectors = parse_destination_selectors(
            _yaml(tree.files[SELECTORS_FILE], SELECTORS_FILE, max_yaml_bytes, SelectorsError))
    return meta


def _yaml(data: bytes, name: str, max_bytes: int, error: type[ValueError]) -> Any:
    """The first YAML document, safely (`bot.platform.yamlload.load_first_document`: nesting depth,
    alias expansion); a size cap and UTF-8 checked first. Like Kratix's sigs.k8s.io/yaml, later
    documents are never read."""
    path = f"{METADATA_DIR}/{name}"
    if len(data) > max_bytes:
        raise error(f"{path}: {len(data)} bytes, over the {max_bytes}-byte cap ({METADATA_CAP})")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise error(f"{path}: not valid UTF-8 (at byte {exc.start})") from None
    try:
        return load_first_document(text)
    except YamlLoadError as exc:
        where = "" if "(line " in str(exc) else f", line {exc.line}"
        raise error(f"{path}{where}: {exc}") from None
