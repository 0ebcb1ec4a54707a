"""Which changed files of a pull request are Resource request files (pure: no I/O).

When a change comes from someone the platform does not trust (no write access, or a head in a
fork), only its Resource request files are taken from it; Promises, Destinations, State Stores,
pipeline images and `.promisebot.yaml` stay as the default branch has them
(bot.jobs.trust builds that commit). This module decides, path by path:

- `path_reason`: what the path and the file modes alone rule out: the settings file, a
  symlink, a submodule, an executable-bit change, a file the platform does not read (not
  `*.yaml`/`*.yml`, or matching the default branch's `exclude` setting);
- `blob_contents`: what one file holds, read by the loader's own YAML reader
  (bot.platform.yamlload) under the default branch's `maxFileBytes`, each document classified as
  the loader classifies it (bot.platform.objects.build: Kratix objects first, then Resource
  requests of a Promise's API) against the Promises of the default branch only;
- `content_reason`: a file is taken only when every document on both sides of the change (the
  pull request's version when it exists, the default branch's when it existed) is a Resource
  request; a deleted request file is taken (the deletion);
- `blocked_additions`: a taken file that a dropped deletion would stand in the way of (a file
  where the taken path needs a directory, or the reverse) is dropped too.

Each reason is a short phrase following the path ("changes a Promise (...)").
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from bot.model.objects import DESTINATION, KRATIX_API_VERSION, PROMISE, STATE_STORE_KINDS, Platform
from bot.platform.loader import excluded  # the loader's own `exclude` rule
from bot.platform.sources import YAML_SUFFIXES
from bot.platform.yamlload import load_yaml_bytes
from bot.settings import SETTINGS_FILE, Settings, load_settings

REQUEST = "Resource request"
KRATIX_KINDS = (PROMISE, DESTINATION, *STATE_STORE_KINDS)
ONLY_REQUESTS = "only Resource requests are taken from this change"
NOT_A_REQUEST = "not a Resource request"

REGULAR, EXECUTABLE, SYMLINK, SUBMODULE = "100644", "100755", "120000", "160000"


@dataclass(frozen=True, slots=True)
class RequestRules:
    """What the default branch says about which files are Resource request files."""

    apis: frozenset[tuple[str, str]]  # (group, kind) of the API of every Promise
    exclude: tuple[str, ...] = ()  # the `exclude` setting
    max_file_bytes: int = 3 << 20  # the `maxFileBytes` setting

    @classmethod
    def of(cls, platform: Platform, settings: Settings | None = None) -> RequestRules:
        """The rules of a loaded platform (the default branch's) and its settings."""
        settings = settings or load_settings()
        apis = frozenset((p.api.group, p.api.kind) for p in platform.promises.values()
                         if p.api is not None and p.api.group and p.api.kind)
        return cls(apis, tuple(settings.exclude), settings.max_file_bytes)


@dataclass(frozen=True, slots=True)
class Side:
    """One side of a changed path: its file mode and object id."""

    mode: str  # "100644", "100755", "120000" (a symlink), "160000" (a submodule)
    blob: str


@dataclass(frozen=True, slots=True)
class FileChange:
    """One changed path: `old` at the default branch, `new` in the pull request (None: absent)."""

    path: str
    old: Side | None
    new: Side | None


@dataclass(frozen=True, slots=True)
class Document:
    """What one YAML document is: a Kratix object, a Resource request or something else."""

    api_version: str
    kind: str
    role: str  # "kratix", "request" or "other"


@dataclass(frozen=True, slots=True)
class Contents:
    """What a file holds as the platform reads it: its documents, or why it cannot be read."""

    documents: tuple[Document, ...] = ()
    problem: str | None = None


def path_reason(change: FileChange, rules: RequestRules) -> str | None:
    """Why the path or its modes rule the change out, or None when its contents decide."""
    path = change.path
    if path.rsplit("/", 1)[-1] == SETTINGS_FILE:
        return f"changes the settings file {SETTINGS_FILE} (settings are taken from the default branch)"
    sides = [s for s in (change.new, change.old) if s is not None]
    for side in sides:
        if side.mode == SYMLINK:
            return "is a symlink"
        if side.mode == SUBMODULE:
            return "is a submodule"
        if side.mode not in (REGULAR, EXECUTABLE):
            return f"is not a regular file (mode {side.mode})"
    if not path.endswith(YAML_SUFFIXES):
        return NOT_A_REQUEST
    if excluded(path, list(rules.exclude)):
        return f"{NOT_A_REQUEST}: the platform does not read it (the default branch's exclude setting)"
    if change.new is not None and change.old is None and change.new.mode != REGULAR:
        return "is executable (only plain files are taken)"
    if change.new is not None and change.old is not None and change.new.mode != change.old.mode:
        return "changes the executable bit"
    return None


def blob_contents(data: bytes, path: str, rules: RequestRules, size: int | None = None) -> Contents:
    """The documents of one file, as the loader reads them. `data` may stop after
    `max_file_bytes + 1` bytes of a larger file whose real `size` is then given."""
    loaded = load_yaml_bytes(data, path, rules.max_file_bytes, size=size)
    documents = tuple(classify(doc.data, rules) for doc in loaded.docs)
    problem = loaded.problems[0].message if loaded.problems else None
    return Contents(documents, problem)


def classify(data: dict[str, object], rules: RequestRules) -> Document:
    """One document's role, in the loader's order: a Kratix object first, then a Resource
    request when its group/kind is the API of a Promise of the default branch."""
    api_version, kind = data.get("apiVersion"), data.get("kind")
    if not isinstance(api_version, str) or not isinstance(kind, str):
        return Document(str(api_version or ""), str(kind or ""), "other")
    if api_version == KRATIX_API_VERSION and kind in KRATIX_KINDS:
        return Document(api_version, kind, "kratix")
    group = api_version.split("/", 1)[0] if "/" in api_version else ""
    return Document(api_version, kind, "request" if (group, kind) in rules.apis else "other")


def content_reason(change: FileChange, old: Contents | None, new: Contents | None) -> str | None:
    """Why the change is not a change of Resource requests only, or None (it is taken).

    `old` and `new` are the contents of the change's sides (None where the side is absent).
    """
    sides = [(contents, where) for contents, where in ((new, ""), (old, " on the default branch"))
             if contents is not None]
    for contents, where in sides:
        if contents.problem is not None:
            return f"not YAML the platform reads{where}: {contents.problem}"
    for contents, where in sides:
        roles = {d.role for d in contents.documents}
        if "request" in roles and len(roles) > 1:
            other = next(d for d in contents.documents if d.role != "request")
            return f"mixes a {REQUEST} with {_named(other)}{where}"
    for contents, where in sides:
        for doc in contents.documents:
            if doc.role == "kratix":
                verb = "adds" if change.old is None else "deletes" if change.new is None else "changes"
                return f"{verb} {_named(doc)} ({ONLY_REQUESTS})"
            if doc.role == "other":
                what = f"{doc.kind} ({doc.api_version})" if doc.kind else "an object without apiVersion/kind"
                return f"{NOT_A_REQUEST}: no Promise on the default branch provides {what}{where}"
    if not any(contents.documents for contents, _ in sides):
        return f"{NOT_A_REQUEST} (no YAML documents)"
    return None


def blocked_additions(placed: Iterable[str], kept: Iterable[str]) -> dict[str, str]:
    """Taken paths that cannot be written because a path kept at its default-branch version is in
    the way (a file where the path needs a directory, or files under the path): path -> one
    blocking path. Linear in the paths' total depth."""
    kept_files = set(kept)
    kept_dirs: dict[str, str] = {}
    for path in kept_files:
        for parent in _parents(path):
            kept_dirs.setdefault(parent, path)
    blocked: dict[str, str] = {}
    for path in placed:
        blocker = next((p for p in _parents(path) if p in kept_files), None) or kept_dirs.get(path)
        if blocker is not None:
            blocked[path] = blocker
    return blocked


def blocked_reason(blocker: str) -> str:
    """The reason a taken path is dropped after all (`blocked_additions`)."""
    return f"cannot be written: {blocker!r} stays as on the default branch (its change is not taken)"


def _parents(path: str) -> Iterable[str]:
    parts = path.split("/")
    return ("/".join(parts[:i]) for i in range(1, len(parts)))


def _named(doc: Document) -> str:
    if doc.role == "request":
        return f"a {REQUEST}"
    if not doc.kind:
        return "an object without apiVersion/kind"
    article = "an" if doc.kind[:1].lower() in "aeiou" else "a"
    return f"{article} {doc.kind}"
