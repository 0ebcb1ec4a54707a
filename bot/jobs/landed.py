"""Where a merged change's objects landed, read from the platform clone: the objects in the
files the merge commit changed (against its first parent) and their bookkeeping records
(`bot.report.landed` makes the rows)."""

from __future__ import annotations

from pathlib import Path

from bot.gitcmd import git, ls_tree, read_blobs
from bot.model.objects import Ref
from bot.platform.loader import read_settings
from bot.platform.sources import FileError, GitTreeSource
from bot.platform.yamlload import load_yaml_bytes
from bot.report.landed import Landed, document_ref, where_landed
from bot.settings import SETTINGS_FILE, load_settings
from bot.state.bookkeeping import Bookkeeping

MAX_PATHSPECS = 200  # more changed files than this: list the whole tree and pick them


def changed_refs(repo: Path, old: str, new: str, max_bytes: int) -> tuple[set[Ref], set[Ref]]:
    """The objects defined in the YAML files that differ between `old` and `new`: those at
    `new`, and those only at `old` (removed). Files over `max_bytes` are skipped, as the
    platform loader skips them."""
    out = git(repo, "diff", "--name-only", "-z", "--no-renames", old, new)
    paths = {p for p in out.decode("utf-8", "surrogateescape").split("\0") if p.endswith((".yaml", ".yml"))}
    found: dict[str, set[Ref]] = {old: set(), new: set()}
    for rev in (old, new) if paths else ():
        listed = ls_tree(repo, rev, sorted(paths) if len(paths) <= MAX_PATHSPECS else None, sizes=True)
        entries = [e for e in listed if e.kind == "blob" and e.path in paths and (e.size or 0) <= max_bytes]
        blobs = read_blobs(repo, [e.object_id for e in entries])
        for entry in entries:
            data = blobs.get(entry.object_id, b"")
            for doc in load_yaml_bytes(data, entry.path, max_bytes).docs:
                if (ref := document_ref(doc.data)) is not None:
                    found[rev].add(ref)
    return found[new], found[old] - found[new]


def landed_for_merge(repo: Path, merge_sha: str) -> list[Landed]:
    """Where each object the merge `merge_sha` changed landed (bookkeeping as the remote has it)."""
    return landed_between(repo, f"{merge_sha}^1", merge_sha)


def landed_between(repo: Path, old: str, new: str) -> list[Landed]:
    """Where each object the commits old..new changed landed (bookkeeping as the remote has it)."""
    try:
        settings, _ = read_settings(GitTreeSource(repo, new, frozenset({SETTINGS_FILE})))
    except FileError:
        settings = load_settings()
    present, removed = changed_refs(repo, old, new, settings.max_file_bytes)
    if not present and not removed:
        return []
    records = Bookkeeping.open(repo, settings.state_branch).get_many(sorted(present | removed, key=str))
    return where_landed(present, records, removed)
