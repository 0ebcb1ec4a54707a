"""Load a platform repo (a working tree or one Git commit) into the typed model of bot.model.

Every `*.yaml`/`*.yml` file is read, except `.git/`, the `.promisebot.yaml` settings file
and paths matching the settings' `exclude` globs. Documents are recognised by
apiVersion/kind: `platform.kratix.io/v1alpha1` Promise, Destination, GitStateStore and
BucketStateStore; an object whose apiVersion/kind is a served version of a Promise's API is a
Resource request of that Promise; everything else is listed in `Platform.ignored`.

Loading never fails on bad content: what cannot be read or built becomes a `Problem` in
`Platform.problems`, with defaults of contract §3.5-§3.7 applied to the rest, so validation
(bot.platform.validate.platform) can report every problem in one run. Objects keep the file and line they
came from; the line of any field is in `LoadedPlatform.documents`.

This module reads files and settings; where files come from is bot.platform.sources
(`DirSource`, `GitTreeSource`), building typed objects from documents bot.platform.objects.
Both are re-exported here for callers.
"""

from __future__ import annotations

import fnmatch
import os
from pathlib import Path, PurePosixPath

from bot.model.objects import Problem, Source
from bot.platform.objects import LoadedPlatform, build
from bot.platform.sources import (
    YAML_SUFFIXES,
    DirSource,
    FileError,
    GitTreeSource,
    PlatformFile,
    PlatformSource,
)
from bot.platform.yamlload import YamlDoc, load_yaml_bytes
from bot.settings import POLICY_SECTIONS, SETTINGS_FILE, Settings, default_settings_dict, load_settings

__all__ = [
    "YAML_SUFFIXES",
    "DirSource",
    "FileError",
    "GitTreeSource",
    "LoadedPlatform",
    "PlatformFile",
    "PlatformSource",
    "load_platform",
    "load_platform_dir",
    "read_settings",
]


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
        if key not in known and key not in POLICY_SECTIONS:
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
            if not excluded(entry.source.file, settings.exclude):
                platform.problems.append(entry)
            continue
        if entry.path == SETTINGS_FILE or excluded(entry.path, settings.exclude):
            continue
        docs.extend(_read_docs(source, entry, settings, platform.problems))
    build(platform, docs)
    return platform


def excluded(path: str, patterns: list[str]) -> bool:
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
    loaded = load_yaml_bytes(data, entry.path, cap, size=entry.size)
    problems.extend(loaded.problems)
    return loaded.docs
