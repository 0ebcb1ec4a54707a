"""Load a platform repo (a working tree or one Git commit) into the typed model of bot.model.

Every `*.yaml`/`*.yml` file is read, except `.git/`, the `.promisebot.yaml` settings file
and paths matching the settings' `exclude` globs. Documents are recognised by
apiVersion/kind: `platform.kratix.io/v1alpha1` Promise, Destination, GitStateStore and
BucketStateStore; an object whose apiVersion/kind is a served version of a Promise's API is a
Resource request of that Promise; everything else is listed in `Platform.ignored`.

Loading never fails on bad content: what cannot be read or built becomes a `Problem` in
`Platform.problems`, with defaults of contract §3.5-§3.7 applied to the rest, so validation
(bot.validation) can report every problem in one run. Objects keep the file and line they
came from; the line of any field is in `LoadedPlatform.documents`.
"""

from __future__ import annotations

import fnmatch
import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, Protocol

from bot import schema
from bot.gitcmd import GitError, git, ls_tree, read_blobs, rev_sha
from bot.model import (
    BUCKET_STATE_STORE,
    DEFAULT_NAMESPACE,
    DESTINATION,
    GIT_STATE_STORE,
    KRATIX_API_VERSION,
    PROMISE,
    STATE_STORE_KINDS,
    WORKFLOW_ACTIONS,
    WORKFLOW_TYPES,
    Container,
    Destination,
    Pipeline,
    Platform,
    Problem,
    Promise,
    PromiseAPI,
    ResourceRequest,
    SecretRef,
    Source,
    StateStore,
)
from bot.settings import SETTINGS_FILE, Settings, default_settings_dict, load_settings
from bot.yamlload import YamlDoc, load_yaml_bytes

# Our commits carry this author unless a GitStateStore sets gitAuthor.name (Kratix: "kratix").
DEFAULT_GIT_AUTHOR = "promisebot"
YAML_SUFFIXES = (".yaml", ".yml")
MAX_PATHSPECS = 2000  # GitTreeSource: more paths than this are listed in full, then filtered
READ_AHEAD_BYTES = 8 << 20  # GitTreeSource: blob bytes read per `cat-file --batch` run


class FileError(Exception):
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
            top = git(Path(self.repo_path), "rev-parse", "--show-toplevel").decode().strip()
        except GitError:  # a bare repository
            top = ""
        return Path(top or self.repo_path).resolve()

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


@dataclass(slots=True)
class LoadedPlatform(Platform):
    """A Platform plus what validation needs to point at exact lines."""

    documents: dict[Source, YamlDoc] = field(default_factory=dict)  # keyed by each object's source
    root: Path | None = None  # the platform repo's directory (resolve relative state-store URLs)
    settings: Settings | None = None


def resolve_local_url(url: str, platform_root: Path) -> str:
    """A state-store URL as usable from anywhere: paths relative to the platform repo become
    absolute; URLs with a scheme (https://, ssh://, file://) or scp form (git@host:repo) stay."""
    if "://" in url or os.path.isabs(url):
        return url
    head = url.split("/", 1)[0]
    if ":" in head:  # scp-like host:path
        return url
    return str((platform_root / url).resolve())


def load_platform_dir(path: str | os.PathLike[str]) -> LoadedPlatform:
    """`load_platform` of a working tree, with its own `.promisebot.yaml` settings."""
    return load_platform(DirSource(Path(path)))


def read_settings(source: PlatformSource) -> tuple[Settings, list[Problem]]:
    """The repo's settings (defaults overlaid with `.promisebot.yaml`) and any problem with it.

    A bad settings file is reported and the defaults are used.
    """
    defaults = load_settings()
    problems: list[Problem] = []
    entry = next((f for f in source.files() if isinstance(f, PlatformFile) and f.path == SETTINGS_FILE), None)
    if entry is None:
        return defaults, problems
    try:
        data = source.read(entry, defaults.max_file_bytes)
    except FileError as exc:
        return defaults, [Problem(Source(SETTINGS_FILE), "", str(exc))]
    loaded = load_yaml_bytes(data, SETTINGS_FILE, defaults.max_file_bytes)
    problems.extend(loaded.problems)
    if not loaded.docs:
        return defaults, problems
    doc = loaded.docs[0]
    known = default_settings_dict()
    for key in doc.data:
        if key not in known:
            problems.append(Problem(doc.source_at((key,)), key, f"unknown setting (known: {', '.join(known)})"))
    overrides = {}
    for key, value in doc.data.items():
        expected = known.get(key)
        if key not in known:
            continue
        if isinstance(expected, list | dict) and not isinstance(value, type(expected)):
            kind = "a list" if isinstance(expected, list) else "a mapping"
            problems.append(Problem(doc.source_at((key,)), key, f"must be {kind}; using the default"))
            continue
        overrides[key] = value
    try:
        return load_settings(overrides), problems
    except (ValueError, TypeError) as exc:
        problems.append(Problem(doc.source, "", f"{exc}; using the default settings"))
        return defaults, problems


def load_platform(source: PlatformSource, settings: Settings | None = None) -> LoadedPlatform:
    """Everything in the platform repo at `source`, with load problems collected.

    `settings` defaults to the repo's own (`read_settings`).
    """
    platform = LoadedPlatform()
    try:
        platform.revision = source.revision
        platform.root = source.root
        entries = list(source.files())
    except FileError as exc:
        platform.problems.append(Problem(Source("."), "", str(exc)))
        return platform
    if settings is None:
        settings, problems = read_settings(source)
        platform.problems.extend(problems)
    platform.settings = settings
    docs: list[YamlDoc] = []
    for entry in entries:
        if isinstance(entry, Problem):
            if not _excluded(entry.source.file, settings.exclude):
                platform.problems.append(entry)
            continue
        if entry.path == SETTINGS_FILE or _excluded(entry.path, settings.exclude):
            continue
        docs.extend(_read_docs(source, entry, settings, platform.problems))
    _build(platform, docs)
    return platform


def _excluded(path: str, patterns: list[str]) -> bool:
    pure = PurePosixPath(path)
    for pattern in patterns:
        pattern = pattern.rstrip("/")
        if fnmatch.fnmatchcase(path, pattern) or pure.match(pattern):
            return True
        if pattern.endswith("/**") and (path + "/").startswith(pattern[:-2]):
            return True
        if any(fnmatch.fnmatchcase(str(parent), pattern) for parent in pure.parents if str(parent) != "."):
            return True
    return False


def _read_docs(source: PlatformSource, entry: PlatformFile, settings: Settings,
               problems: list[Problem]) -> list[YamlDoc]:
    cap = settings.max_file_bytes
    if entry.size is not None and entry.size > cap:
        problems.append(Problem(Source(entry.path), "", f"file is {entry.size} bytes, over the {cap}-byte "
                                "cap (maxFileBytes); not parsed"))
        return []
    try:
        data = source.read(entry, cap)
    except FileError as exc:
        problems.append(Problem(Source(entry.path), "", str(exc)))
        return []
    loaded = load_yaml_bytes(data, entry.path, cap)
    problems.extend(loaded.problems)
    return loaded.docs


# ---------------------------------------------------------------------------- building


def _build(platform: LoadedPlatform, docs: list[YamlDoc]) -> None:
    """Kratix objects first (a request's kind is only known once every Promise is), then requests."""
    rest: list[YamlDoc] = []
    for doc in docs:
        kind = doc.data.get("kind")
        if doc.data.get("apiVersion") == KRATIX_API_VERSION and kind in (PROMISE, DESTINATION, *STATE_STORE_KINDS):
            platform.documents[doc.source] = doc
            if kind == PROMISE:
                _add(platform, platform.promises, _promise(doc), doc)
            elif kind == DESTINATION:
                _add(platform, platform.destinations, _destination(doc), doc)
            else:
                _add(platform, platform.state_stores, _state_store(doc), doc)
        else:
            rest.append(doc)
    apis = _request_apis(platform)
    for doc in rest:
        api_version, kind = doc.data.get("apiVersion"), doc.data.get("kind")
        match = apis.get((api_version, kind)) if isinstance(api_version, str) and isinstance(kind, str) else None
        if match is None:
            unserved = _unserved_version(platform, api_version, kind)
            if unserved:
                platform.problems.append(Problem(doc.source_at(("apiVersion",)), "apiVersion", unserved))
            platform.ignored.append(doc.source)
            continue
        platform.documents[doc.source] = doc
        _add(platform, platform.requests, _request(doc, match), doc)


def _add(platform: Platform, table: dict[Any, Any], obj: Any, doc: YamlDoc) -> None:
    """Keep the first object of a name; a later one is a duplicate, reported with both places."""
    key = obj.ref if table is platform.state_stores or table is platform.requests else obj.name
    first = table.get(key)
    if first is None:
        table[key] = obj
        return
    what = f"{obj.ref}" if obj.name else f"{obj.ref.kind} without a name"
    platform.problems.append(Problem(doc.source_at(("metadata", "name")), "metadata.name",
                                     f"duplicate {what}: also defined at {first.source}"))


def _request_apis(platform: Platform) -> dict[tuple[str, str], tuple[Promise, str]]:
    """(apiVersion, kind) of every served version of every Promise API -> (promise, version)."""
    apis: dict[tuple[str, str], tuple[Promise, str]] = {}
    for promise in platform.promises.values():
        if promise.api is None or not promise.api.group or not promise.api.kind:
            continue
        for version in promise.api.served_versions:
            apis.setdefault((f"{promise.api.group}/{version}", promise.api.kind), (promise, version))
    return apis


def _unserved_version(platform: Platform, api_version: Any, kind: Any) -> str:
    """A message when apiVersion/kind names a Promise's API at a version it does not serve."""
    if not isinstance(api_version, str) or "/" not in api_version:
        return ""
    group, version = api_version.split("/", 1)
    for promise in platform.promises.values():
        api = promise.api
        if api is not None and api.group == group and api.kind == kind:
            served = ", ".join(api.served_versions) or "none"
            return f"version {version} of {kind}.{group} is not served by Promise {promise.name} (served: {served})"
    return ""


def _map(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _text(value: Any, default: str = "") -> str:
    return value if isinstance(value, str) else default


def _name(doc: YamlDoc) -> str:
    return _text(_map(doc.data.get("metadata")).get("name"))


def _promise(doc: YamlDoc) -> Promise:
    spec = _map(doc.data.get("spec"))
    promise = Promise(name=_name(doc), body=doc.data, source=doc.source, api=_promise_api(spec.get("api")))
    for entry in _list(spec.get("destinationSelectors")):  # squashed: AND, first entry wins (§2.1)
        for key, value in _map(_map(entry).get("matchLabels")).items():
            promise.destination_selectors.setdefault(str(key), str(value))
    promise.dependencies = [d for d in _list(spec.get("dependencies")) if isinstance(d, dict)]
    promise.required_promises = [
        {"name": _text(r.get("name")), "version": _text(r.get("version"))}
        for r in _list(spec.get("requiredPromises")) if isinstance(r, dict)
    ]
    workflows = _map(spec.get("workflows"))
    for wtype in WORKFLOW_TYPES:
        for action in WORKFLOW_ACTIONS:
            items = _list(_map(workflows.get(wtype)).get(action))
            if items:
                path = ("spec", "workflows", wtype, action)
                promise.workflows[(wtype, action)] = [
                    _pipeline(item, doc.source_at((*path, i))) for i, item in enumerate(items)
                ]
    return promise


def _promise_api(api: Any) -> PromiseAPI | None:
    """The CRD reduced to what promisebot needs; the storage version (or the first) defines it (§4.1)."""
    if not isinstance(api, dict):
        return None
    spec = _map(api.get("spec"))
    names = _map(spec.get("names"))
    versions = [v for v in _list(spec.get("versions")) if isinstance(v, dict)]
    storage = next((v for v in versions if v.get("storage") is True), versions[0] if versions else {})
    return PromiseAPI(
        group=_text(spec.get("group")),
        kind=_text(names.get("kind")),
        plural=_text(names.get("plural")),
        version=_text(storage.get("name")),
        scope=_text(spec.get("scope")),
        schema=_map(_map(storage.get("schema")).get("openAPIV3Schema")),
        served_versions=tuple(_text(v.get("name")) for v in versions if v.get("served") is True),
    )


def _pipeline(item: Any, source: Source) -> Pipeline:
    item = _map(item)
    meta = _map(item.get("metadata"))
    spec = _map(item.get("spec"))
    containers = [
        Container(
            name=_text(c.get("name")),
            image=_text(c.get("image")),
            command=[str(x) for x in c["command"]] if isinstance(c.get("command"), list) else None,
            args=[str(x) for x in c["args"]] if isinstance(c.get("args"), list) else None,
            env=[e for e in _list(c.get("env")) if isinstance(e, dict)],
            working_dir=_text(c.get("workingDir")) or None,
            image_pull_policy=_text(c.get("imagePullPolicy"), "IfNotPresent"),
        )
        for c in _list(spec.get("containers")) if isinstance(c, dict)
    ]
    return Pipeline(
        name=_text(meta.get("name")),
        containers=containers,
        spec=spec,
        source=source,
        labels={str(k): str(v) for k, v in _map(meta.get("labels")).items()},
        annotations={str(k): str(v) for k, v in _map(meta.get("annotations")).items()},
    )


def _destination(doc: YamlDoc) -> Destination:
    """Contract §3.5 defaults: nestedByMetadata, aggregated.yaml, cleanup none, init workloads on."""
    spec = _map(doc.data.get("spec"))
    ref = _map(spec.get("stateStoreRef"))
    filepath = _map(spec.get("filepath"))
    init = _map(spec.get("initWorkloads"))
    labels = _map(_map(doc.data.get("metadata")).get("labels"))
    return Destination(
        name=_name(doc),
        body=doc.data,
        source=doc.source,
        labels={str(k): str(v) for k, v in labels.items()},
        path=_text(spec.get("path")),
        state_store_kind=_text(ref.get("kind")),
        state_store_name=_text(ref.get("name")),
        strict_match_labels=spec.get("strictMatchLabels") is True,
        filepath_mode=_text(filepath.get("mode"), "nestedByMetadata"),
        filename=_text(filepath.get("filename"), "aggregated.yaml"),
        cleanup=_text(spec.get("cleanup"), "none"),
        init_workloads=init.get("enabled") is not False,
    )


def _state_store(doc: YamlDoc) -> StateStore:
    """Contract §3.6/§3.7 defaults. Deviation: our commits' default author is "promisebot"."""
    kind = doc.data["kind"]
    spec = dict(_map(doc.data.get("spec")))
    if kind == GIT_STATE_STORE:
        spec.setdefault("branch", "main")
        spec.setdefault("authMethod", "basicAuth")
        author = dict(_map(spec.get("gitAuthor")))
        author.setdefault("name", DEFAULT_GIT_AUTHOR)
        author.setdefault("email", "")
        spec["gitAuthor"] = author
    elif kind == BUCKET_STATE_STORE:
        spec.setdefault("authMethod", "accessKey")
        spec.setdefault("insecure", False)
        spec.setdefault("useDualStack", False)
    spec.setdefault("path", "")
    secret = spec.get("secretRef")
    secret_ref = None
    if isinstance(secret, dict):
        secret_ref = SecretRef(_text(secret.get("name")), _text(secret.get("namespace")) or DEFAULT_NAMESPACE)
        spec["secretRef"] = {**secret, "namespace": secret_ref.namespace}
    return StateStore(kind=kind, name=_name(doc), body=doc.data, source=doc.source,
                      path=_text(spec.get("path")), spec=spec, secret_ref=secret_ref)


def _request(doc: YamlDoc, match: tuple[Promise, str]) -> ResourceRequest:
    """A Resource request: namespace defaulted to "default", the API schema's defaults applied."""
    promise, _version = match
    api = promise.api
    assert api is not None
    body = schema.apply_defaults(doc.data, api.schema)
    metadata = body.get("metadata")
    if not isinstance(metadata, dict):
        metadata = body["metadata"] = {}
    namespace = _text(metadata.get("namespace")) or DEFAULT_NAMESPACE
    metadata["namespace"] = namespace
    return ResourceRequest(
        promise=promise.name,
        api_version=_text(doc.data.get("apiVersion")),
        kind=api.kind,
        group=api.group,
        name=_text(metadata.get("name")),
        namespace=namespace,
        body=body,
        source=doc.source,
    )

