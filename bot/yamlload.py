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
- alias bombs ("billion laughs") and recursive aliases are refused before anything is
  expanded: the expanded size of the node graph is computed on the (small) graph itself;
- nesting too deep for the parser, malformed YAML and non-mapping documents are reported.

Like Kubernetes' sigs.k8s.io/yaml (go-yaml v2 into interface{}), timestamps stay strings
and non-string scalar keys become their text.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from bot.model import Problem, Source

# Aliases may add at most this many nodes beyond those written in the file. Legitimate
# anchors (shared env blocks, merge keys) stay far below; a billion-laughs document
# needs millions.
MAX_ALIAS_EXPANSION = 100_000

_SEQ, _MAP = "tag:yaml.org,2002:seq", "tag:yaml.org,2002:map"

PathKey = str | int
FieldPath = tuple[PathKey, ...]

_BaseLoader: type = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _Loader(_BaseLoader):  # type: ignore[misc, valid-type]
    """Safe loader whose timestamps stay strings (as Kubernetes' YAML decoding does)."""


_Loader.add_constructor("tag:yaml.org,2002:timestamp", yaml.SafeLoader.construct_yaml_str)


class YamlLoadError(Exception):
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


def load_yaml_bytes(data: bytes, file: str, max_bytes: int) -> LoadResult:
    """Every document of `data` (the content of repo-relative `file`), or the problems."""
    result = LoadResult()
    if len(data) > max_bytes:
        result.problems.append(_problem(file, 1, f"file is {len(data)} bytes, over the {max_bytes}-byte cap "
                                        "(maxFileBytes); not parsed"))
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
                if not loader.check_node():
                    return
                node = loader.get_node()
            except yaml.MarkedYAMLError as exc:
                mark = exc.problem_mark or exc.context_mark
                where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
                problem = exc.problem or exc.context or "invalid YAML"
                raise YamlLoadError(f"malformed YAML: {problem}{where}", mark.line + 1 if mark else 1) from None
            except yaml.YAMLError as exc:
                raise YamlLoadError(f"malformed YAML: {exc}", 1) from None
            except RecursionError:
                raise YamlLoadError("malformed YAML: nesting too deep", 1) from None
            if node is None:
                continue
            try:
                doc = _to_doc(node, loader, file, index)
            except YamlLoadError as exc:
                yield _problem(file, exc.line, str(exc))
            else:
                if doc is not None:
                    yield doc
            index += 1
    finally:
        loader.dispose()


def _to_doc(node: Node, loader: Any, file: str, index: int) -> YamlDoc | None:
    line = node.start_mark.line + 1
    _check_expansion(node, line)
    if isinstance(node, ScalarNode) and node.tag == "tag:yaml.org,2002:null":
        return None  # an empty document ("---" alone, or only comments)
    if not isinstance(node, MappingNode):
        kind = "a list" if isinstance(node, SequenceNode) else "a scalar"
        raise YamlLoadError(f"document {index + 1} is {kind}, not a mapping (an object with "
                            "apiVersion and kind)", line)
    doc = YamlDoc(file=file, index=index, line=line, data=None)
    try:
        doc.data = _build(node, (), doc.lines, loader)
    except RecursionError:
        raise YamlLoadError("malformed YAML: nesting too deep", line) from None
    except yaml.YAMLError as exc:  # e.g. a bad merge key, an unhashable key
        mark = getattr(exc, "problem_mark", None)
        raise YamlLoadError(f"malformed YAML: {getattr(exc, 'problem', None) or exc}",
                            mark.line + 1 if mark else line) from None
    return doc


def _check_expansion(root: Node, line: int) -> None:
    """Refuse documents whose aliases expand to far more nodes than were written.

    Sizes are memoised per node object, so this runs in time linear in the written
    graph however large the expansion; a node reached again while being sized is a
    recursive alias.
    """
    sizes: dict[int, int] = {}
    in_progress: set[int] = set()
    unique = 0

    def size(node: Node) -> int:
        nonlocal unique
        key = id(node)
        if key in sizes:
            return sizes[key]
        if key in in_progress:
            raise YamlLoadError("recursive YAML alias (an anchor used inside itself); refused", line)
        in_progress.add(key)
        unique += 1
        total = 1
        if isinstance(node, SequenceNode):
            total += sum(size(child) for child in node.value)
        elif isinstance(node, MappingNode):
            total += sum(size(k) + size(v) for k, v in node.value)
        in_progress.discard(key)
        sizes[key] = total
        return total

    try:
        expanded = size(root)
    except RecursionError:
        raise YamlLoadError("malformed YAML: nesting too deep", line) from None
    if expanded - unique > MAX_ALIAS_EXPANSION:
        raise YamlLoadError(f"YAML aliases expand to {expanded} nodes from {unique} written "
                            "(alias bomb); refused", line)


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
