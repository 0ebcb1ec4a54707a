"""The files a plan or a reconcile changes in a state store, as people read them: one unified
diff per file, grouped per Destination, with add/modify/remove counts (`promisebot plan` and
the bot's PR/MR comments show the same groups and counts).

`mask_secret_values` hides the values of Kubernetes `Secret` objects before a diff is published
(the bot's comments); the CLI shows the files as they are, to whoever can read the stores.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable
from typing import Any, Literal

import yaml

from bot.reconcile.writes import StoreBatch
from bot.redact import REDACTED
from bot.statestores.base import FileDiff

Action = Literal["add", "modify", "remove"]
ACTIONS: tuple[Action, ...] = ("add", "modify", "remove")
NO_DESTINATION = "(store)"  # a path under no Destination's prefix (e.g. a store-wide file)

# What a file holding a Secret that cannot be parsed shows instead of its content.
UNPARSEABLE_SECRET = b"(a file with a Kubernetes Secret that is not valid YAML: its content is not shown)\n"
SECRET_VALUES_CHANGED = "# only values of a Kubernetes Secret changed; they are not shown\n"
_LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"  # holds the Secret's data, as JSON
_SECRET_KIND = re.compile(r"""^\s*(?:-\s+)?["']?kind["']?\s*:\s*["']?Secret["']?\s*(?:#.*)?$""", re.MULTILINE)


def destination_of(batch: StoreBatch, path: str) -> str:
    """The Destination of `batch` whose path in the store holds `path` (the longest prefix), or
    NO_DESTINATION."""
    best = ""
    for name, prefix in batch.prefixes.items():
        if (not prefix or path.startswith(prefix + "/")) and len(prefix) >= len(batch.prefixes.get(best, "")):
            best = name
    return best or NO_DESTINATION


def text_lines(data: bytes | None) -> list[str]:
    """A file's lines as `difflib` takes them; a binary file is one line saying so."""
    if data is None:
        return []
    try:
        return data.decode("utf-8").splitlines(keepends=True)
    except UnicodeDecodeError:
        return [f"(binary, {len(data)} bytes)\n"]


def unified(diff: FileDiff) -> str:
    """The unified diff of one file (`a/` and `b/` prefixes, /dev/null when added or removed)."""
    return unified_text(diff.path, diff.old, diff.new)


def unified_text(path: str, old_data: bytes | None, new_data: bytes | None) -> str:
    old = "/dev/null" if old_data is None else f"a/{path}"
    new = "/dev/null" if new_data is None else f"b/{path}"
    lines = list(difflib.unified_diff(text_lines(old_data), text_lines(new_data), old, new))
    return "".join(line if line.endswith("\n") else line + "\n\\ No newline at end of file\n" for line in lines)


def unified_masked(diff: FileDiff) -> str:
    """`unified`, with the values of Kubernetes Secrets masked on both sides (`mask_secret_values`).
    When only such values changed, the diff says so instead of showing nothing."""
    old, new = mask_secret_values(diff.old), mask_secret_values(diff.new)
    text = unified_text(diff.path, old, new)
    if not text and diff.old != diff.new:
        text = f"--- a/{diff.path}\n+++ b/{diff.path}\n{SECRET_VALUES_CHANGED}"
    return text


def by_destination(batch: StoreBatch, diffs: Iterable[FileDiff] | None = None) -> dict[str, list[FileDiff]]:
    """The file diffs of `batch` (or `diffs`) per Destination, Destinations sorted by name, each
    Destination's files in the order given."""
    out: dict[str, list[FileDiff]] = {}
    for d in batch.diff if diffs is None else diffs:
        out.setdefault(destination_of(batch, d.path), []).append(d)
    return dict(sorted(out.items()))


def counts(diffs: Iterable[FileDiff]) -> dict[Action, int]:
    """How many files are added, modified and removed."""
    out: dict[Action, int] = dict.fromkeys(ACTIONS, 0)
    for d in diffs:
        out[d.action] += 1
    return out


def written_by_destination(batch: StoreBatch) -> dict[str, dict[Action, list[str]]]:
    """What a state-store write did (`batch.result`) per Destination, Destinations sorted by
    name: the paths added, modified and removed."""
    out: dict[str, dict[Action, list[str]]] = {}
    if batch.result is None:
        return out
    for action, paths in zip(ACTIONS, (batch.result.added, batch.result.modified, batch.result.removed),
                             strict=True):
        for path in paths:
            out.setdefault(destination_of(batch, path), {a: [] for a in ACTIONS})[action].append(path)
    return dict(sorted(out.items()))


def mask_secret_values(data: bytes | None) -> bytes | None:
    """A file's bytes with every value under `data` and `stringData` of each Kubernetes `Secret`
    it holds (any YAML document, or an object nested in one, such as a List's items) replaced by
    `***`, and their kubectl last-applied annotation too; such a file is shown re-serialised.
    A file holding no Secret is returned as it is, as is a file that is not YAML, unless it
    looks like it holds a Secret, which is then not shown at all."""
    if data is None or b"Secret" not in data:
        return data
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return data
    try:
        docs = list(yaml.safe_load_all(text))
    except yaml.YAMLError:
        return UNPARSEABLE_SECRET if _SECRET_KIND.search(text) else data
    if not any(_holds_secret(doc) for doc in docs):
        return data
    masked = [_mask(doc) for doc in docs]
    return yaml.safe_dump_all(masked, sort_keys=False, allow_unicode=True, default_flow_style=False).encode()


def _is_secret(value: Any) -> bool:
    return isinstance(value, dict) and value.get("kind") == "Secret"


def _holds_secret(value: Any) -> bool:
    if _is_secret(value):
        return True
    if isinstance(value, dict):
        return any(_holds_secret(v) for v in value.values())
    if isinstance(value, list):
        return any(_holds_secret(v) for v in value)
    return False


def _mask(value: Any) -> Any:
    if isinstance(value, list):
        return [_mask(v) for v in value]
    if not isinstance(value, dict):
        return value
    if not _is_secret(value):
        return {k: _mask(v) for k, v in value.items()}
    out = dict(value)
    for key in ("data", "stringData"):
        if isinstance(out.get(key), dict):
            out[key] = dict.fromkeys(out[key], REDACTED)
        elif out.get(key) is not None:
            out[key] = REDACTED
    metadata = out.get("metadata")
    if isinstance(metadata, dict) and isinstance(metadata.get("annotations"), dict) \
            and _LAST_APPLIED in metadata["annotations"]:
        out["metadata"] = {**metadata, "annotations": {**metadata["annotations"], _LAST_APPLIED: REDACTED}}
    return out
