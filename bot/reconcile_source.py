"""Platform snapshots for the reconciler, read with git plumbing in time linear in the files
read (adapter over `bot.platform`'s `PlatformSource`; `GitTreeSource` re-walks trees per file).

An incremental reconcile whose commits touch no Kratix object file (no Promise, Destination or
State Store; found with `git grep platform.kratix.io`) loads only those object files, the
changed files and the files of objects that need another look — so a one-request change costs
the same in a platform of 10,000 requests as in one of a single request.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from bot.model import KRATIX_GROUP, Problem, Source
from bot.platform import YAML_SUFFIXES, FileError, PlatformFile
from bot.settings import SETTINGS_FILE


def _git(repo: Path, *args: str, input_bytes: bytes | None = None) -> bytes:
    proc = subprocess.run(["git", *args], cwd=repo, input=input_bytes, capture_output=True, check=False)
    if proc.returncode not in (0, 1) or (proc.returncode == 1 and args[0] != "grep"):
        raise FileError(f"git {args[0]} failed in {repo}: {proc.stderr.decode(errors='replace').strip()}")
    return proc.stdout


@dataclass(slots=True)
class GitSnapshot:
    """The YAML files of one commit (optionally only the paths in `only`), blobs read in one batch."""

    repo: Path
    rev: str
    only: set[str] | None = None
    _entries: dict[str, tuple[str, str]] = field(default_factory=dict, init=False)  # path -> (mode, sha)
    _blobs: dict[str, bytes] | None = field(default=None, init=False)
    _listing: list[PlatformFile | Problem] | None = field(default=None, init=False)

    @property
    def root(self) -> Path:
        top = subprocess.run(["git", "rev-parse", "--show-toplevel"], cwd=self.repo, capture_output=True,
                             text=True, check=False).stdout.strip()
        return Path(top or self.repo).resolve()

    @property
    def revision(self) -> str | None:
        return self.rev

    def files(self) -> Iterator[PlatformFile | Problem]:
        if self._listing is None:
            self._listing = self._list()
        yield from self._listing

    def _list(self) -> list[PlatformFile | Problem]:
        # A small `only` set is passed as pathspecs, so git lists just those files.
        paths = sorted(self.only) if self.only is not None and len(self.only) <= 2000 else []
        out = _git(self.repo, "ls-tree", "-r", "-z", "-l", "--full-tree", self.rev, *(["--", *paths] if paths else []))
        found: list[PlatformFile | Problem] = []
        for entry in out.split(b"\0"):
            if not entry:
                continue
            info, raw_path = entry.split(b"\t", 1)
            path = raw_path.decode()
            mode, kind, sha, size = info.decode().split()
            if kind != "blob" or not path.endswith(YAML_SUFFIXES) or (self.only is not None and path not in self.only):
                continue
            if mode == "120000":
                found.append(Problem(Source(path, 1), "", "unreadable: a symbolic link (not followed in a Git tree)"))
                continue
            self._entries[path] = (mode, sha)
            found.append(PlatformFile(path, int(size)))
        return sorted(found, key=lambda f: f.path if isinstance(f, PlatformFile) else f.source.file)

    def read(self, file: PlatformFile, max_bytes: int) -> bytes:
        if self._blobs is None:
            self._blobs = {}
            paths = sorted(self._entries)
            data = _git(self.repo, "cat-file", "--batch",
                        input_bytes="".join(self._entries[p][1] + "\n" for p in paths).encode())
            pos = 0
            for p in paths:
                header_end = data.index(b"\n", pos)
                size = int(data[pos:header_end].split()[2])
                self._blobs[p] = data[header_end + 1:header_end + 1 + size]
                pos = header_end + 1 + size + 1
        if file.path not in self._blobs:
            raise FileError("unreadable: not in this commit")
        return self._blobs[file.path][: max_bytes + 1]


def object_files(repo: Path, rev: str) -> set[str]:
    """YAML files of `rev` that mention the Kratix API group: every Promise, Destination and
    State Store file (and perhaps a few others), plus the settings file."""
    out = _git(repo, "grep", "-l", "-z", "-F", KRATIX_GROUP, rev, "--", *(f"*{s}" for s in YAML_SUFFIXES))
    prefix = f"{rev}:"
    return {p.decode()[len(prefix):] for p in out.split(b"\0") if p} | {SETTINGS_FILE}


def changed_files(repo: Path, old: str, new: str) -> set[str]:
    out = _git(repo, "diff", "--name-only", "-z", "--no-renames", old, new)
    return {p.decode() for p in out.split(b"\0") if p}


def mentions_kratix(repo: Path, revs: list[str], paths: set[str]) -> bool:
    """Whether any of `paths` (as of any of `revs`) is a Kratix object file or the settings file."""
    if SETTINGS_FILE in paths:
        return True
    specs = [f"{rev}:{p}" for rev in revs for p in sorted(paths) if p.endswith(YAML_SUFFIXES)]
    if not specs:
        return False
    out = _git(repo, "cat-file", "--batch", input_bytes="".join(s + "\n" for s in specs).encode())
    return KRATIX_GROUP.encode() in out
