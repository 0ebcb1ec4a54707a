"""Which platform files an incremental reconcile reads (docs/reconciler.md, "Scale").

An incremental reconcile whose commits touch no Kratix object file (no Promise, Destination or
State Store, and not the settings file) reads only the Kratix object files (as recorded by the
previous run, else found with `git grep platform.kratix.io`), the changed files and the files of
objects that need another look — so a one-request change costs the same in a platform of 10,000 requests as in one of a
single request. The files themselves are read by `bot.platform.sources.GitTreeSource` (with `paths`).
"""

from __future__ import annotations

from pathlib import Path

from bot.gitcmd import GitError, git
from bot.model.objects import KRATIX_GROUP
from bot.platform.loader import YAML_SUFFIXES, FileError, GitTreeSource, PlatformFile
from bot.settings import SETTINGS_FILE


def partial_paths(repo: Path, from_sha: str, to_sha: str, attention_files: set[str],
                  object_files: set[str] | None = None) -> frozenset[str] | None:
    """The files an incremental run from `from_sha` to `to_sha` must read, or None to read every
    file: when a Kratix object file changed, a Promise cascade or rescheduling may concern every
    request. `attention_files` are the files of objects that asked for another look;
    `object_files` those of the Kratix objects at `from_sha`, when known (else `git grep`)."""
    changed = _changed_files(repo, from_sha, to_sha)
    if _mentions_kratix(repo, [from_sha, to_sha], changed):
        return None
    # No object file changed: the object files at `to` are those at `from`.
    objects = _object_files(repo, to_sha) if object_files is None else object_files | {SETTINGS_FILE}
    return frozenset(objects | changed | attention_files)


def _git(repo: Path, *args: str) -> bytes:
    try:
        return git(repo, *args, ok=(0, 1) if args[0] == "grep" else (0,))
    except GitError as exc:
        raise FileError(str(exc)) from None


def _object_files(repo: Path, rev: str) -> set[str]:
    """YAML files of `rev` that mention the Kratix API group: every Promise, Destination and
    State Store file (and perhaps a few others), plus the settings file."""
    out = _git(repo, "grep", "-l", "-z", "-F", KRATIX_GROUP, rev, "--", *(f"*{s}" for s in YAML_SUFFIXES))
    prefix = f"{rev}:"
    return {p.decode()[len(prefix):] for p in out.split(b"\0") if p} | {SETTINGS_FILE}


def _changed_files(repo: Path, old: str, new: str) -> set[str]:
    out = _git(repo, "diff", "--name-only", "-z", "--no-renames", old, new)
    return {p.decode() for p in out.split(b"\0") if p}


def _mentions_kratix(repo: Path, revs: list[str], paths: set[str]) -> bool:
    """Whether any of `paths` (as of any of `revs`) is a Kratix object file or the settings file."""
    if SETTINGS_FILE in paths:
        return True
    for rev in revs:
        source = GitTreeSource(repo, rev, frozenset(paths))
        for file in source.files():
            if isinstance(file, PlatformFile) and KRATIX_GROUP.encode() in source.read(file, file.size or 0):
                return True
    return False
