"""JSON merge patch (RFC 7386) and JSON patch (RFC 6902) over parsed JSON values.

STDLIB ONLY: this module is shipped into the pipeline's API sidecar (bot.kube.server), whose
Python has no third-party packages. Both functions return a new value and never mutate their
arguments. `json_patch` raises `PatchError` with a message saying which operation failed and why
(an invalid operation, a path that does not exist, a failed `test`).
"""

from __future__ import annotations

import copy
from typing import Any


class PatchError(ValueError):
    """A JSON patch cannot be applied: invalid operation, bad path or failed test."""


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386: a patch that is an object is merged key by key (null removes a key); anything
    else replaces the target. Iterative over nested objects, so deep patches cannot exhaust the
    stack."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result: dict[str, Any] = copy.deepcopy(target) if isinstance(target, dict) else {}
    stack: list[tuple[dict[str, Any], dict[str, Any]]] = [(result, patch)]
    while stack:
        dest, src = stack.pop()
        for key, value in src.items():
            if value is None:
                dest.pop(key, None)
            elif isinstance(value, dict):
                existing = dest.get(key)
                child: dict[str, Any] = existing if isinstance(existing, dict) else {}
                dest[key] = child
                stack.append((child, value))
            else:
                dest[key] = copy.deepcopy(value)
    return result


def parse_pointer(pointer: str) -> list[str]:
    """The reference tokens of an RFC 6901 JSON pointer ("" is the whole document)."""
    if not isinstance(pointer, str):
        raise PatchError(f"JSON pointer must be a string, got {type(pointer).__name__}")
    if pointer == "":
        return []
    if not pointer.startswith("/"):
        raise PatchError(f"invalid JSON pointer {pointer!r}: must be empty or start with '/'")
    return [token.replace("~1", "/").replace("~0", "~") for token in pointer[1:].split("/")]


def _index(container: list[Any], token: str, pointer: str, *, allow_end: bool) -> int:
    if token == "-" and allow_end:
        return len(container)
    if not token.isdigit() or (len(token) > 1 and token.startswith("0")):
        raise PatchError(f"invalid array index {token!r} in path {pointer!r}")
    index = int(token)
    limit = len(container) if allow_end else len(container) - 1
    if index > limit:
        raise PatchError(f"array index {index} out of bounds in path {pointer!r}")
    return index


def _resolve(doc: Any, tokens: list[str], pointer: str) -> Any:
    node = doc
    for token in tokens:
        if isinstance(node, dict):
            if token not in node:
                raise PatchError(f"path {pointer!r} does not exist (no key {token!r})")
            node = node[token]
        elif isinstance(node, list):
            node = node[_index(node, token, pointer, allow_end=False)]
        else:
            raise PatchError(f"path {pointer!r} does not exist ({token!r} under a scalar)")
    return node


def _get(doc: Any, pointer: str) -> Any:
    return _resolve(doc, parse_pointer(pointer), pointer)


def _add(doc: Any, pointer: str, value: Any) -> Any:
    tokens = parse_pointer(pointer)
    if not tokens:
        return value
    parent = _resolve(doc, tokens[:-1], pointer)
    last = tokens[-1]
    if isinstance(parent, dict):
        parent[last] = value
    elif isinstance(parent, list):
        parent.insert(_index(parent, last, pointer, allow_end=True), value)
    else:
        raise PatchError(f"cannot add at {pointer!r}: parent is not an object or array")
    return doc


def _remove(doc: Any, pointer: str) -> tuple[Any, Any]:
    """The document without the value at pointer, and that value."""
    tokens = parse_pointer(pointer)
    if not tokens:
        raise PatchError("cannot remove the whole document")
    parent = _resolve(doc, tokens[:-1], pointer)
    last = tokens[-1]
    if isinstance(parent, dict):
        if last not in parent:
            raise PatchError(f"cannot remove {pointer!r}: path does not exist")
        return doc, parent.pop(last)
    if isinstance(parent, list):
        return doc, parent.pop(_index(parent, last, pointer, allow_end=False))
    raise PatchError(f"cannot remove {pointer!r}: parent is not an object or array")


def _field(op: dict[str, Any], name: str, number: int) -> Any:
    if name not in op:
        raise PatchError(f"operation {number} ({op.get('op')!r}) is missing {name!r}")
    return op[name]


def json_patch(target: Any, ops: Any) -> Any:
    """RFC 6902: apply the operations in order to a copy of target; all or nothing."""
    if not isinstance(ops, list):
        raise PatchError("a JSON patch must be an array of operations")
    doc = copy.deepcopy(target)
    for number, op in enumerate(ops):
        if not isinstance(op, dict):
            raise PatchError(f"operation {number} is not an object")
        kind = op.get("op")
        path = _field(op, "path", number)
        try:
            if kind == "add":
                doc = _add(doc, path, copy.deepcopy(_field(op, "value", number)))
            elif kind == "remove":
                doc, _ = _remove(doc, path)
            elif kind == "replace":
                value = copy.deepcopy(_field(op, "value", number))
                if not parse_pointer(path):
                    doc = value
                else:
                    doc, _ = _remove(doc, path)
                    doc = _add(doc, path, value)
            elif kind == "move":
                source = _field(op, "from", number)
                if source != path and (path + "/").startswith(source + "/"):
                    raise PatchError(f"cannot move {source!r} into its own child {path!r}")
                if source != path:
                    doc, value = _remove(doc, source)
                    doc = _add(doc, path, value)
                else:
                    _get(doc, source)
            elif kind == "copy":
                value = copy.deepcopy(_get(doc, _field(op, "from", number)))
                doc = _add(doc, path, value)
            elif kind == "test":
                expected = _field(op, "value", number)
                actual = _get(doc, path)
                if not _equal(actual, expected):
                    raise PatchError(f"test failed: value at {path!r} is not {expected!r}")
            else:
                raise PatchError(f"operation {number} has unknown op {kind!r}")
        except PatchError as exc:
            if str(exc).startswith("operation "):
                raise
            raise PatchError(f"operation {number} ({kind}): {exc}") from None
    return doc


def _equal(a: Any, b: Any) -> bool:
    """JSON equality: booleans are not numbers, 1 equals 1.0."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_equal(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_equal(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, int | float) and isinstance(b, int | float):
        return a == b
    return type(a) is type(b) and a == b
