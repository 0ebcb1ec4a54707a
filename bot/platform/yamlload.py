"""Safe YAML loading with a line number for every field.

Every document of a file is composed into PyYAML nodes (the safe loader: no Python
object tags) and turned into plain JSON-like data ourselves, so that each mapping key
and sequence item keeps the line it was written on. Field paths are tuples such as
``("spec", "versions", 0, "name")``; `format_path` renders them the way Kubernetes
field paths read (``spec.versions[0].name``, ``metadata.labels[kratix.io/paused]``).

Hostile or broken input never crashes or hangs the loader; each case becomes a
`Problem` naming the file (and line/column where there is one):

- files larger than the cap are reported, not parsed;
- NUL bytes or invalid UTF-8 are reported as binary;
- documents nested more than `MAX_NESTING_DEPTH` mappings/lists deep are refused while
  being composed (an iterative composer: no recursion, whatever the input, and the same
  message whichever PyYAML/libyaml version is installed, with or without its own limit);
- alias bombs ("billion laughs"), recursive aliases and aliases that nest a document deeper
  than the limit are refused before anything is expanded: the expanded size and depth of the
  node graph are computed on the (small) graph itself. A document without aliases is never
  an alias bomb and skips that check;
- malformed YAML and non-mapping documents are reported.

`load_first_document` reads files such as a pipeline's `/kratix/metadata/status.yaml` the same
way (first document only, PyYAML's safe types), raising `YamlLoadError`.

Like Kubernetes' sigs.k8s.io/yaml (go-yaml v2 into interface{}), timestamps stay strings
and non-string scalar keys become their text.
"""

from __future__ import annotations

import gc
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import yaml
from yaml.events import (
    AliasEvent,
    DocumentEndEvent,
    DocumentStartEvent,
    MappingEndEvent,
    MappingStartEvent,
    ScalarEvent,
    SequenceEndEvent,
    SequenceStartEvent,
    StreamEndEvent,
)
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from bot.errors import PromisebotError
from bot.model.objects import Problem, Source

# Aliases may add at most this many nodes beyond those written in the file. Legitimate
# anchors (shared env blocks, merge keys) stay far below; a billion-laughs document
# needs millions.
MAX_ALIAS_EXPANSION = 100_000
# Mappings and lists nested deeper than this are refused (aliases expanded). Kubernetes
# objects, CRD schemas included, stay far below; the limit keeps every consumer of the data
# (deep copies, YAML and JSON writers, schema validation) well within Python's recursion limit.
MAX_NESTING_DEPTH = 100
_SATURATED = 1 << 62  # expanded sizes stop growing here (already far over any cap)

_SEQ, _MAP = "tag:yaml.org,2002:seq", "tag:yaml.org,2002:map"

PathKey = str | int
FieldPath = tuple[PathKey, ...]

_BaseLoader: type = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _Loader(_BaseLoader):
    """Safe loader whose timestamps stay strings (as Kubernetes' YAML decoding does)."""


_Loader.add_constructor("tag:yaml.org,2002:timestamp", yaml.SafeLoader.construct_yaml_str)

_SafeLoader: type = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # PyYAML's safe types, as yaml.safe_load


def nesting_message(limit: int = MAX_NESTING_DEPTH, expanded: bool = False) -> str:
    """The one message for a document nested too deeply."""
    how = " once aliases are expanded" if expanded else ""
    return (f"nesting too deep: more than {limit} levels of nested mappings and lists{how} "
            f"(promisebot's limit is {limit} levels); refused")


class YamlLoadError(PromisebotError):
    """A document that cannot be turned into data; carries the line it concerns."""

    def __init__(self, message: str, line: int) -> None:
        super().__init__(message)
        self.line = line


@dataclass(slots=True)
class YamlDoc:
    """One YAML document: its data, where it starts, and the line of each field."""

    file: str
    index: int  # 0-based position of the document in its file
    line: int  # 1-based line the document's content starts on
    data: Any
    lines: dict[FieldPath, int] = field(default_factory=dict)

    @property
    def source(self) -> Source:
        return Source(self.file, self.line)

    def line_at(self, path: FieldPath) -> int:
        """The line of `path`, or of its longest existing prefix (the document start at worst)."""
        for end in range(len(path), 0, -1):
            line = self.lines.get(tuple(path[:end]))
            if line is not None:
                return line
        return self.line

    def line_of(self, path: str) -> int:
        """`line_at` for a rendered field path such as ``spec.api.spec.versions[0].name``."""
        return self.line_at(parse_path(path))

    def source_at(self, path: FieldPath) -> Source:
        return Source(self.file, self.line_at(path))


@dataclass(slots=True)
class LoadResult:
    docs: list[YamlDoc] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)


_PLAIN_KEY = re.compile(r"^[A-Za-z_$][A-Za-z0-9_$-]*$")
_PATH_TOKEN = re.compile(r"\.?([^.\[\]]+)|\[([^\]]*)\]")


def format_path(path: FieldPath) -> str:
    """Render a field path like Kubernetes: ``a.b[0].c``, odd keys as ``[kratix.io/x]``."""
    out = ""
    for key in path:
        if isinstance(key, int):
            out += f"[{key}]"
        elif _PLAIN_KEY.match(key):
            out += f".{key}" if out else key
        else:
            out += f"[{key}]"
    return out


def parse_path(text: str) -> FieldPath:
    """Inverse of `format_path`; bracketed digits become list indices."""
    parts: list[PathKey] = []
    for m in _PATH_TOKEN.finditer(text):
        if m.group(1) is not None:
            parts.append(m.group(1))
        else:
            inner = m.group(2)
            parts.append(int(inner) if inner.isdigit() else inner)
    return tuple(parts)


def load_yaml_bytes(data: bytes, file: str, max_bytes: int, size: int | None = None) -> LoadResult:
    """Every document of `data` (the content of repo-relative `file`), or the problems.

    `data` may be the first `max_bytes + 1` bytes of a larger file (callers stop reading there):
    a file over the cap is then reported as "more than N bytes", unless its real `size` is given.
    """
    result = LoadResult()
    if len(data) > max_bytes:
        if size is None and len(data) == max_bytes + 1:
            shown = f"more than {max_bytes} bytes"  # reading stopped at the cap
        else:
            shown = f"{max(size or 0, len(data))} bytes"
        result.problems.append(_problem(file, 1, f"file is {shown}, over the {max_bytes}-byte cap "
                                        "(the maxFileBytes setting); not parsed"))
        return result
    if b"\x00" in data:
        result.problems.append(_problem(file, 1, "binary file (contains NUL bytes); not parsed"))
        return result
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        result.problems.append(_problem(file, line, f"binary file (not valid UTF-8 at byte {exc.start}); "
                                        "not parsed"))
        return result
    try:
        for doc in _documents(text, file):
            if isinstance(doc, YamlDoc):
                result.docs.append(doc)
            else:
                result.problems.append(doc)
    except YamlLoadError as exc:  # the stream itself is broken: nothing of the file is used
        result.docs = []
        result.problems.append(_problem(file, exc.line, str(exc)))
    return result


def _problem(file: str, line: int, message: str) -> Problem:
    return Problem(Source(file, line), "", message)


def _documents(text: str, file: str) -> Iterator[YamlDoc | Problem]:
    """Each document in turn; a document that is not an object is a Problem, the rest go on."""
    loader = _Loader(text)
    try:
        index = 0
        while True:
            try:
                with _GC_PAUSED:
                    node, aliases = _next_document(loader)
            except yaml.YAMLError as exc:
                raise _load_error(exc) from None
            except RecursionError:  # not expected (nothing recurses): never a traceback anyway
                raise YamlLoadError(nesting_message(), 1) from None
            if node is None:
                return
            try:
                doc = _to_doc(node, aliases, loader, file, index)
            except YamlLoadError as exc:
                yield _problem(file, exc.line, str(exc))
            else:
                if doc is not None:
                    yield doc
            index += 1
    finally:
        loader.dispose()


def load_first_document(text: str, max_depth: int = MAX_NESTING_DEPTH) -> Any:
    """The data of the first YAML document of `text` (None when there is none), built with
    PyYAML's safe types as `yaml.safe_load` builds them; later documents are never read, as
    Kratix's sigs.k8s.io/yaml reads metadata files. Nesting deeper than `max_depth`, alias bombs
    and recursive aliases are refused before anything is built.

    Raises YamlLoadError (its `line` is where the problem is; the message has no file name).
    """
    loader = _SafeLoader(text)
    try:
        with _GC_PAUSED:
            node, aliases = _next_document(loader, max_depth)
            if node is None:
                return None
            if aliases:
                _check_expansion(node, node.start_mark.line + 1, max_depth)
            return loader.construct_document(node)
    except yaml.YAMLError as exc:
        raise _load_error(exc) from None
    except RecursionError:  # not expected: depth is bounded above
        raise YamlLoadError(nesting_message(max_depth), 1) from None
    finally:
        loader.dispose()


def _load_error(exc: yaml.YAMLError) -> YamlLoadError:
    """A YamlLoadError for a parser or constructor error, with its line and column."""
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    line = mark.line + 1 if mark else 1
    problem = getattr(exc, "problem", None) or getattr(exc, "context", None)
    if problem and "maximum nesting depth" in problem:  # libyaml's own limit, in newer PyYAML wheels
        return YamlLoadError(nesting_message(), line)
    if not isinstance(exc, yaml.MarkedYAMLError):
        return YamlLoadError(f"malformed YAML: {exc}", 1)
    where = f" (line {line}, column {mark.column + 1})" if mark else ""
    return YamlLoadError(f"malformed YAML: {problem or 'invalid YAML'}{where}", line)


class _GcPause:
    """Pauses the cyclic garbage collector while nodes are composed: hundreds of thousands of
    new container objects otherwise trigger collections over a growing heap (3 s instead of
    1 s for 300,000 keys). Composition creates no reference cycles. Thread-safe, re-entrant:
    the collector runs again once the last thread leaves (if it was enabled before)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._inside = 0
        self._restore = False

    def __enter__(self) -> None:
        with self._lock:
            if self._inside == 0:
                self._restore = gc.isenabled()
                gc.disable()
            self._inside += 1

    def __exit__(self, *exc: object) -> None:
        with self._lock:
            self._inside -= 1
            if self._inside == 0 and self._restore:
                gc.enable()


_GC_PAUSED = _GcPause()


def _next_document(loader: Any, max_depth: int = MAX_NESTING_DEPTH) -> tuple[Node | None, int]:
    """The root node of the next document of the stream (None at its end) and how many aliases
    it uses. Composes iteratively, from the parser's events, as PyYAML's Composer does (same
    nodes, tags and anchor errors, no path resolvers), refusing nesting deeper than `max_depth`
    as soon as it is reached. Raises yaml.YAMLError, YamlLoadError."""
    while True:
        event = loader.get_event()
        if event is None or event.__class__ is StreamEndEvent:
            return None, 0
        if event.__class__ is DocumentStartEvent:
            break  # (the stream's first event, StreamStartEvent, is skipped)
    return _compose(loader, max_depth)


def _compose(loader: Any, max_depth: int) -> tuple[Node, int]:
    resolve = loader.resolve
    get_event = loader.get_event
    anchors: dict[str, Node] = {}
    stack: list[Node] = []  # open collections, innermost last
    keys: list[Node | None] = []  # per open mapping: its key waiting for a value
    root: Node | None = None
    aliases = 0
    while True:
        event = get_event()
        cls = event.__class__
        if cls is ScalarEvent:
            tag = event.tag
            if tag is None or tag == "!":
                tag = resolve(ScalarNode, event.value, event.implicit)
            node: Node = ScalarNode(tag, event.value, event.start_mark, event.end_mark, style=event.style)
            if event.anchor is not None:
                _anchor(anchors, event, node)
        elif cls is MappingStartEvent or cls is SequenceStartEvent:
            if len(stack) >= max_depth:
                raise YamlLoadError(nesting_message(max_depth), event.start_mark.line + 1)
            kind = MappingNode if cls is MappingStartEvent else SequenceNode
            tag = event.tag
            if tag is None or tag == "!":
                tag = resolve(kind, None, event.implicit)
            node = kind(tag, [], event.start_mark, None, flow_style=event.flow_style)
            if event.anchor is not None:
                _anchor(anchors, event, node)
            stack.append(node)
            keys.append(None)
            continue
        elif cls is MappingEndEvent or cls is SequenceEndEvent:
            node = stack.pop()
            keys.pop()
            node.end_mark = event.end_mark
        elif cls is AliasEvent:
            if event.anchor not in anchors:
                raise yaml.composer.ComposerError(None, None, f"found undefined alias {event.anchor!r}",
                                                  event.start_mark)
            node = anchors[event.anchor]
            aliases += 1
        elif cls is DocumentEndEvent:
            assert root is not None
            return root, aliases
        else:  # not produced inside a document by a working parser
            raise yaml.composer.ComposerError(None, None, f"unexpected {cls.__name__}", event.start_mark)
        if not stack:
            root = node
        elif stack[-1].__class__ is MappingNode:
            key = keys[-1]
            if key is None:
                keys[-1] = node
            else:
                stack[-1].value.append((key, node))
                keys[-1] = None
        else:
            stack[-1].value.append(node)


def _anchor(anchors: dict[str, Node], event: Any, node: Node) -> None:
    if event.anchor in anchors:
        first = anchors[event.anchor].start_mark.line + 1
        raise yaml.composer.ComposerError(None, None, f"found duplicate anchor {event.anchor!r} (first defined on "
                                          f"line {first})", event.start_mark)
    anchors[event.anchor] = node


def _to_doc(node: Node, aliases: int, loader: Any, file: str, index: int) -> YamlDoc | None:
    line = node.start_mark.line + 1
    if aliases:
        _check_expansion(node, line)
    if isinstance(node, ScalarNode) and node.tag == "tag:yaml.org,2002:null":
        return None  # an empty document ("---" alone, or only comments)
    if not isinstance(node, MappingNode):
        kind = "a list" if isinstance(node, SequenceNode) else "a scalar"
        raise YamlLoadError(f"document {index + 1} is {kind}, not a mapping (an object with "
                            "apiVersion and kind)", line)
    doc = YamlDoc(file=file, index=index, line=line, data=None)
    try:
        with _GC_PAUSED:
            doc.data = _build(node, (), doc.lines, loader)
    except RecursionError:  # not expected: depth is bounded by the checks above
        raise YamlLoadError(nesting_message(), line) from None
    except yaml.YAMLError as exc:  # e.g. a bad merge key, an unhashable key
        mark = getattr(exc, "problem_mark", None)
        raise YamlLoadError(f"malformed YAML: {getattr(exc, 'problem', None) or exc}",
                            mark.line + 1 if mark else line) from None
    return doc


def _check_expansion(root: Node, line: int, max_depth: int = MAX_NESTING_DEPTH) -> None:
    """Refuse documents whose aliases expand to far more nodes than were written, nest the
    data deeper than `max_depth`, or refer to themselves.

    Iterative, with sizes and depths memoised per node object, so it runs in time linear in
    the written graph however large the expansion; a node reached again while being sized is
    a recursive alias.
    """
    measured: dict[int, tuple[int, int]] = {}  # id(node) -> (expanded size, nesting depth)
    in_progress: set[int] = set()
    unique = 0
    stack: list[tuple[Node, bool]] = [(root, False)]
    while stack:
        node, children_done = stack.pop()
        key = id(node)
        if children_done:
            children = _children(node)
            size = 1 + sum(measured[id(c)][0] for c in children)
            depth = 1 + max((measured[id(c)][1] for c in children), default=0)
            if depth > max_depth:
                raise YamlLoadError(nesting_message(max_depth, expanded=True), line)
            measured[key] = (min(size, _SATURATED), depth)
            in_progress.discard(key)
            continue
        if key in measured:
            continue
        if key in in_progress:
            raise YamlLoadError("recursive YAML alias (an anchor used inside itself); refused", line)
        if isinstance(node, ScalarNode):
            measured[key] = (1, 0)
            unique += 1
            continue
        in_progress.add(key)
        unique += 1
        stack.append((node, True))
        stack.extend((c, False) for c in _children(node) if id(c) not in measured)
    expanded = measured[id(root)][0]
    if expanded - unique > MAX_ALIAS_EXPANSION:
        shown = f"more than {_SATURATED}" if expanded >= _SATURATED else str(expanded)
        raise YamlLoadError(f"YAML aliases expand to {shown} nodes from {unique} written "
                            f"(alias bomb: aliases may add at most {MAX_ALIAS_EXPANSION}); refused", line)


def _children(node: Node) -> list[Node]:
    if isinstance(node, SequenceNode):
        return node.value
    if isinstance(node, MappingNode):
        return [n for pair in node.value for n in pair]
    return []


def _build(node: Node, path: FieldPath, lines: dict[FieldPath, int], loader: Any) -> Any:
    """Plain data from a node, recording the line of every path; aliases are copied."""
    if isinstance(node, ScalarNode):
        return loader.construct_object(node, deep=True)
    if node.tag not in (_SEQ, _MAP):
        raise YamlLoadError(f"unsupported YAML tag {node.tag!r}", node.start_mark.line + 1)
    if isinstance(node, SequenceNode):
        items = []
        for i, child in enumerate(node.value):
            lines[(*path, i)] = child.start_mark.line + 1
            items.append(_build(child, (*path, i), lines, loader))
        return items
    if isinstance(node, MappingNode):
        own = sum(1 for k, _ in node.value if k.tag != "tag:yaml.org,2002:merge")
        loader.flatten_mapping(node)  # resolves "<<" merge keys; merged entries come first
        merged = len(node.value) - own
        out: dict[str, Any] = {}
        written: set[str] = set()
        for position, (key_node, value_node) in enumerate(node.value):
            if not isinstance(key_node, ScalarNode):
                raise YamlLoadError("a mapping key must be a plain value, not a list or mapping",
                                    key_node.start_mark.line + 1)
            key = key_node.value if key_node.tag != "tag:yaml.org,2002:null" else ""
            if position >= merged:
                if key in written:
                    raise YamlLoadError(f"duplicate key {key!r} in a mapping", key_node.start_mark.line + 1)
                written.add(key)
            lines[(*path, key)] = key_node.start_mark.line + 1
            out[key] = _build(value_node, (*path, key), lines, loader)
        return out
    raise YamlLoadError(f"unsupported YAML node {type(node).__name__}", node.start_mark.line + 1)
