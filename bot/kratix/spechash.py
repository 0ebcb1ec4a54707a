"""Kratix's `kratix.io/hash` of a Promise's and a request's spec (contract §1.7), and the Go
`encoding/json` bytes it hashes. Pure.

    spec_hash(promise: Promise, request: ResourceRequest | None = None) -> str
    go_json(value: Any) -> bytes
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from bot.model.objects import Promise, ResourceRequest


def spec_hash(promise: Promise, request: ResourceRequest | None = None) -> str:
    """Kratix's `kratix.io/hash` (contract §1.7, K:lib/hash/hasher.go, K:pipeline_factory.go):
    md5(json(promise.spec)) for promise workflows, md5(md5(json(promise.spec)) + "-" +
    md5(json(request.spec))) for resource workflows. A request without `spec` hashes JSON null,
    as Kratix's unstructured object does. Kratix hashes the Promise after a typed round trip,
    so a spec carrying empty or unknown fields can hash differently there."""
    promise_hash = _md5(go_json(promise.spec))
    if request is None:
        return promise_hash
    return _md5(f"{promise_hash}-{_md5(go_json(request.body.get('spec')))}".encode())


def go_json(value: Any) -> bytes:
    """`encoding/json.Marshal` of a decoded YAML/JSON value: map keys sorted, no spaces,
    <, >, & and U+2028/U+2029 escaped, non-ASCII left as UTF-8, floats formatted as Go does."""
    return _encode(value).encode()


def _md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


_GO_ESCAPES = {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029"}


def _encode(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return _go_float(value)
    if isinstance(value, str):
        text = json.dumps(value, ensure_ascii=False)
        return "".join(_GO_ESCAPES.get(c, c) for c in text)
    if isinstance(value, Mapping):
        items = sorted((str(k), v) for k, v in value.items())
        return "{" + ",".join(f"{_encode(k)}:{_encode(v)}" for k, v in items) + "}"
    if isinstance(value, list | tuple):
        return "[" + ",".join(_encode(v) for v in value) + "]"
    raise TypeError(f"cannot encode {type(value).__name__} as JSON")


def _go_float(value: float) -> str:
    """strconv.FormatFloat(f, 'f' or 'e', -1, 64) as encoding/json picks it: shortest digits,
    exponent form below 1e-6 and from 1e21, "e-07" tidied to "e-7"."""
    if math.isnan(value) or math.isinf(value):
        raise ValueError(f"JSON cannot encode {value}")
    magnitude = abs(value)
    if magnitude != 0 and (magnitude < 1e-6 or magnitude >= 1e21):
        return re.sub(r"e-0(\d)$", r"e-\1", repr(value))
    return format(Decimal(repr(value)).normalize(), "f")
