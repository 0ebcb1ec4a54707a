"""Where platform files come from (bot.platform.loader loads them): a working tree (`DirSource`) or
one Git commit read without a checkout (`GitTreeSource`), behind the `PlatformSource` protocol.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from bot.errors import PromisebotError
from bot.gitcmd import GitError, ls_tree, read_blobs, rev_sha, toplevel
from bot.model.objects import Problem, Source

YAML_SUFFIXES = (".yaml", ".yml")
MAX_PATHSPECS = 2000  # GitTreeSource: more paths than this are listed in full, then filtered
READ_AHEAD_BYTES = 8 << 20  # GitTreeSource: blob bytes read per `cat-file --batch` run


class FileError(PromisebotError):
    """A file that cannot be read; the message says why (never its content)."""


@dataclass(frozen=True, slots=True)
class PlatformFile:
    path: str  # repo-relative, "/"-separated
    size: int | None  # None when unknown before reading

    def __str__(self) -> str:
        return self.path


class PlatformSource(Protocol):
    """Where platform files come from: a directory or a Git commit."""

    @property
    def root(self) -> Path:
        """The platform repo's directory, against which relative state-store URLs resolve."""
        ...

    @property
    def revision(self) -> str | None: ...

    def files(self) -> Iterator[PlatformFile | Problem]:
        """Every YAML file (sorted), or a Problem for an entry that is not a readable file."""
        ...

    def read(self, file: PlatformFile, max_bytes: int) -> bytes:
        """Up to max_bytes + 1 bytes of the file. Raises FileError."""
        ...


def _is_yaml(name: str) -> bool:
    return name.endswith(YAML_SUFFIXES)


@dataclass(frozen=True, slots=True)
class DirSource:
    """A platform repo's working tree. Symlinks are followed only inside the tree."""

    path: Path

    @property
    def root(self) -> Path:
        return Path(self.path).resolve()

    @property
    def revision(self) -> str | None:
        return None

    def files(self) -> Iterator[PlatformFile | Problem]:
        root = self.root
        found: list[PlatformFile | Problem] = []
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames[:] = sorted(d for d in dirnames if d != ".git")
            rel_dir = Path(dirpath).relative_to(root).as_posix()
            for name in dirnames:
                if _is_yaml(name) and not os.path.islink(os.path.join(dirpath, name)):
                    rel = name if rel_dir == "." else f"{rel_dir}/{name}"
                    found.append(Problem(Source(rel, 1), "", "unreadable: a directory, not a file"))
            for name in filenames:
                if _is_yaml(name):
                    rel = name if rel_dir == "." else f"{rel_dir}/{name}"
                    found.append(PlatformFile(rel, None))
        yield from sorted(found, key=lambda f: f.path if isinstance(f, PlatformFile) else f.source.file)

    def read(self, file: PlatformFile, max_bytes: int) -> bytes:
        full = self.root / file.path
        try:
            real = full.resolve(strict=True)
            if not real.is_relative_to(self.root):
                raise FileError("unreadable: a symbolic link pointing outside the platform repo")
            info = real.stat()
            if not stat.S_ISREG(info.st_mode):
                raise FileError("unreadable: not a regular file")
            with real.open("rb") as handle:
                return handle.read(max_bytes + 1)
        except FileNotFoundError:
            raise FileError("unreadable: no such file (a dangling symbolic link?)") from None
        except OSError as exc:
            raise FileError(f"unreadable: {exc.strerror or exc}") from None


@dataclass(slots=True)
class GitTreeSource:
    """The tree of one commit of a platform repo, read without checking it out, in time linear
    in the files read: one `git ls-tree` lists it, `git cat-file --batch` reads the blobs, many
    per run (the files listed after the one asked for are read ahead, up to READ_AHEAD_BYTES).

    `paths` makes a partial snapshot: only those files are listed (and read).
    """

    repo_path: Path
    rev: str = "HEAD"
    paths: frozenset[str] | None = None
    _sha: str | None = field(default=None, init=False, repr=False)
    _listing: list[PlatformFile | Problem] | None = field(default=None, init=False, repr=False)
    _blobs: dict[str, tuple[str, int]] = field(default_factory=dict, init=False, repr=False)  # path -> (id, size)
    _order: list[str] = field(default_factory=list, init=False, repr=False)
    _position: dict[str, int] = field(default_factory=dict, init=False, repr=False)
    _read_ahead: dict[str, bytes] = field(default_factory=dict, init=False, repr=False)

    @property
    def root(self) -> Path:
        try:
            return toplevel(Path(self.repo_path)).resolve()
        except GitError:  # a bare repository
            return Path(self.repo_path).resolve()

    @property
    def revision(self) -> str | None:
        if self._sha is None:
            self._sha = rev_sha(Path(self.repo_path), self.rev)
            if self._sha is None:
                raise FileError(f"cannot read revision {self.rev!r} of {self.repo_path}")
        return self._sha

    def files(self) -> Iterator[PlatformFile | Problem]:
        yield from self._listed()

    def _listed(self) -> list[PlatformFile | Problem]:
        if self._listing is None:
            self._listing = self._ls_tree()
        return self._listing

    def _ls_tree(self) -> list[PlatformFile | Problem]:
        sha = self.revision
        assert sha is not None
        wanted = self.paths
        if wanted is not None and not wanted:
            return []
        # A small set of paths is passed as pathspecs, so git lists just those files.
        pathspecs = sorted(wanted) if wanted is not None and len(wanted) <= MAX_PATHSPECS else None
        try:
            entries = ls_tree(Path(self.repo_path), sha, pathspecs, sizes=True)
        except GitError as exc:
            raise FileError(f"cannot read revision {self.rev!r} of {self.repo_path}: {exc}") from None
        found: list[PlatformFile | Problem] = []
        for e in entries:
            if e.kind != "blob" or not _is_yaml(e.path) or (wanted is not None and e.path not in wanted):
                continue
            if stat.S_ISLNK(int(e.mode, 8)):
                found.append(Problem(Source(e.path, 1), "", "unreadable: a symbolic link (not followed in a Git tree)"))
                continue
            self._blobs[e.path] = (e.object_id, e.size or 0)
            found.append(PlatformFile(e.path, e.size))
        found.sort(key=lambda f: f.path if isinstance(f, PlatformFile) else f.source.file)
        self._order = [f.path for f in found if isinstance(f, PlatformFile)]
        self._position = {path: i for i, path in enumerate(self._order)}
        return found

    def read(self, file: PlatformFile, max_bytes: int) -> bytes:
        self._listed()  # the blob ids
        if file.path not in self._read_ahead:
            if file.path not in self._blobs:
                raise FileError("unreadable: not in this commit")
            self._fetch(file.path)
        data = self._read_ahead.pop(file.path, None)
        if data is None:
            raise FileError("unreadable: its blob is missing from the repository")
        return data[: max_bytes + 1]

    def _fetch(self, path: str) -> None:
        """Read `path` and the files listed after it not read yet, up to READ_AHEAD_BYTES."""
        wanted, budget = [path], READ_AHEAD_BYTES - self._blobs[path][1]
        for later in self._order[self._position[path] + 1:]:
            size = self._blobs[later][1]
            if size > budget:
                break
            if later not in self._read_ahead:
                wanted.append(later)
                budget -= size
        try:
            contents = read_blobs(Path(self.repo_path), [self._blobs[p][0] for p in wanted])
        except GitError as exc:
            raise FileError(f"unreadable: {exc}") from None
        for p in wanted:
            blob = self._blobs[p][0]
            if blob in contents:
                self._read_ahead[p] = contents[blob]
