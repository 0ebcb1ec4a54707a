"""The trees of a Git state store's cache (bot.statestores.git): a change set as `git
fast-import` commands, `git diff-tree` output as changes, and `CommitFiles`, which reads files of
one commit cheaply.

`CommitFiles` lists a directory once (`git ls-tree`, bot.gitcmd) and reads blobs with
`git cat-file --batch`: the file asked for and, in batches that grow with each miss, the files
listed after it. So reading N files of a directory (the none-mode state files of a Destination,
contract §3.2) costs O(N + directory), not O(N x tree), and a single read stays small.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from bot.gitcmd import TreeEntry, ls_tree, read_blobs
from bot.statestores.base import Change, NormalisedChanges, ancestors

READ_AHEAD_START = 64 << 10  # bytes read ahead on the first miss; doubles on each miss
READ_AHEAD_MAX = 8 << 20


class CommitFiles:
    """The files of commit `commit` of the local repository `repo`, read on demand."""

    def __init__(self, repo: Path, commit: str) -> None:
        self.repo, self.commit = repo, commit
        self._entries: dict[str, TreeEntry] = {}  # path -> its blob, for every listed directory
        self._listed: set[str] = set()  # directories listed (recursively)
        self._listing: dict[str, list[str]] = {}  # path -> the sorted files listed with it
        self._ahead: dict[str, bytes] = {}  # read ahead, not asked for yet
        self._returned: set[str] = set()
        self._budget = READ_AHEAD_START

    def read(self, path: str) -> bytes | None:
        """The bytes of the file `path` (a normalised store path), or None if there is none."""
        directory = path.rpartition("/")[0]
        if not any(d in self._listed for d in [directory, *ancestors(directory)]):
            self._list(directory)
        if path not in self._entries:
            return None
        if path not in self._ahead:
            self._fetch(path)
        self._returned.add(path)
        return self._ahead.pop(path, None)

    def _list(self, directory: str) -> None:
        entries = ls_tree(self.repo, self.commit, [directory + "/"] if directory else None, sizes=True)
        files = [e for e in entries if e.kind == "blob"]
        order = sorted(e.path for e in files)
        for e in files:
            self._entries[e.path] = e
            self._listing[e.path] = order
        self._listed.add(directory)

    def _fetch(self, path: str) -> None:
        """Read `path` and, within the budget, the files of its listing not read yet: those
        after it first, then from the start (reads may come in any order)."""
        order = self._listing[path]
        at = order.index(path)
        wanted, budget = [path], self._budget
        for other in order[at + 1:] + order[:at]:
            if other in self._ahead or other in self._returned:
                continue
            size = self._entries[other].size or 0
            if size > budget:
                break
            wanted.append(other)
            budget -= size
        self._budget = min(self._budget * 2, READ_AHEAD_MAX)
        contents = read_blobs(self.repo, [self._entries[p].object_id for p in wanted])
        for p in wanted:
            blob = self._entries[p].object_id
            if blob in contents:
                self._ahead[p] = contents[blob]


def fast_import_commands(changes: NormalisedChanges) -> bytes:
    """The change set as `git fast-import` file commands: delete prefixes, deletes, then puts,
    so a prefix ends up holding exactly the files put under it. Raises ValueError."""
    for path in changes.puts:
        if any(part.lower() == ".git" for part in path.split("/")):
            raise ValueError(f"state store path {path!r}: '.git' is not allowed in a Git state store")
        for parent in ancestors(path):
            if parent in changes.puts:
                raise ValueError(f"state store path {parent!r} is written both as a file and as a directory")
    out: list[bytes] = []
    for prefix in sorted(changes.delete_prefixes):
        out.append(b"deleteall\n" if prefix == "" else b"D " + _quote(prefix) + b"\n")
    out += [b"D " + _quote(path) + b"\n" for path in sorted(changes.deletes)]
    for path, content in sorted(changes.puts.items()):
        out += [b"M 100644 inline ", _quote(path), b"\ndata %d\n" % len(content), content, b"\n"]
    return b"".join(out)


def _quote(path: str) -> bytes:
    """A path as a C-style quoted fast-import string."""
    escaped = path.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return b'"' + escaped.encode() + b'"'


def parse_raw_diff(out: str) -> list[Change[str]]:
    """`git diff-tree -r -z` raw output -> changes (type changes count as modifications)."""
    fields = out.split("\0")
    changes: list[Change[str]] = []
    for meta, path in zip(fields[0::2], fields[1::2], strict=False):
        if not meta.startswith(":"):
            continue
        _old_mode, _new_mode, old, new, status = meta[1:].split()
        action: Literal["add", "modify", "remove"] = (
            "add" if status[0] == "A" else "remove" if status[0] == "D" else "modify"
        )
        changes.append(
            Change(path, action, None if action == "add" else old, None if action == "remove" else new)
        )
    return changes


def split_changes(diff: list[Change[str]]) -> tuple[list[str], list[str], list[str]]:
    by = {a: sorted(c.path for c in diff if c.action == a) for a in ("add", "modify", "remove")}
    return by["add"], by["modify"], by["remove"]
