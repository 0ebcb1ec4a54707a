"""Kubernetes' server-side `Table` output (meta.k8s.io), for `kubectl get` (issue 13).

STDLIB ONLY: shipped to the pipeline's API sidecar next to `bot/kube/api.py`
(`bot.kube.pki.SIDECAR_CODE`).

kubectl asks for a Table (`Accept: application/json;as=Table;v=v1;g=meta.k8s.io,...`) and prints the
columns the server chose. As kube-apiserver does:

- `requested_version` negotiates the Accept header as apiserver's `NegotiateMediaTypeOptions` does
  (goautoneg's clause order; the first clause promisebot can serve decides; none: plain JSON);
- `columns_for` picks the column set: a CRD's `additionalPrinterColumns` of the served version (or its
  default `Age`) as apiextensions-apiserver's `tableconvertor` does; the built-in printers of
  `pkg/printers/internalversion` for ConfigMap, Secret and Namespace;
- `to_table` builds the Table, its rows' `object` as `includeObject` asks (`Metadata` by default).

Ages follow `k8s.io/apimachinery/pkg/util/duration`: built-in printers use `human_duration`
("5m12s", "3h4m"), custom resources' `date` columns `short_human_duration` ("5m", "3h").
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

TABLE_GROUP = "meta.k8s.io"
TABLE_VERSIONS = ("v1", "v1beta1")
INCLUDE_OBJECT = ("Metadata", "Object", "None")

# The swagger descriptions Kubernetes gives these columns (ObjectMeta, ConfigMap, Secret).
NAME_DOC = ("Name must be unique within a namespace. Is required when creating resources, although some "
            "resources may allow a client to request the generation of an appropriate name automatically. Name "
            "is primarily intended for creation idempotence and configuration definition. Cannot be updated. "
            "More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/names#names")
CREATED_DOC = ("CreationTimestamp is a timestamp representing the server time when this object was created. It "
               "is not guaranteed to be set in happens-before order across separate operations. Clients may not "
               "set this value. It is represented in RFC3339 form and is in UTC.\n\nPopulated by the system. "
               "Read-only. Null for lists. More info: "
               "https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata")
CONFIGMAP_DATA_DOC = ("Data contains the configuration data. Each key must consist of alphanumeric characters, "
                      "'-', '_' or '.'. Values with non-UTF-8 byte sequences must use the BinaryData field. The "
                      "keys stored in Data must not overlap with the keys in the BinaryData field, this is "
                      "enforced during validation process.")
SECRET_TYPE_DOC = ("Used to facilitate programmatic handling of secret data. More info: "
                   "https://kubernetes.io/docs/concepts/configuration/secret/#secret-types")
SECRET_DATA_DOC = ("Data contains the secret data. Each key must consist of alphanumeric characters, '-', '_' or "
                   "'.'. The serialized form of the secret data is a base64 encoded string, representing the "
                   "arbitrary (possibly non-string) data value here. Described in "
                   "https://tools.ietf.org/html/rfc4648#section-4")

# apiextensions-apiserver's serveDefaultColumnsIfEmpty: a CRD version without columns gets Age.
CREATED_PATH = ".metadata.creationTimestamp"
CRD_DEFAULT_COLUMNS = ({"name": "Age", "type": "date", "description": CREATED_DOC, "jsonPath": CREATED_PATH},)

Cell = Callable[[Mapping[str, Any], datetime], Any]


@dataclass(frozen=True)
class Column:
    """One TableColumnDefinition and how its cell is computed from an object."""

    name: str
    type: str
    cell: Cell
    format: str = ""
    description: str = ""
    priority: int = 0

    def definition(self) -> dict[str, Any]:
        return {"name": self.name, "type": self.type, "format": self.format, "description": self.description,
                "priority": self.priority}


class TableError(ValueError):
    """A Table request Kubernetes answers 400 Bad Request."""


# ---- durations (k8s.io/apimachinery/pkg/util/duration) ----------------------------------------

def human_duration(seconds: float) -> str:
    """`duration.HumanDuration`: ~2-3 significant figures ("90s", "5m12s", "3h4m", "2d5h", "3y20d")."""
    whole = int(seconds)  # Go's int(d.Seconds()) truncates toward zero
    if whole < -1:
        return "<invalid>"
    if whole < 0:
        return "0s"
    if whole < 120:
        return f"{whole}s"
    minutes = whole // 60
    if minutes < 10:
        return f"{minutes}m{whole % 60}s" if whole % 60 else f"{minutes}m"
    if minutes < 180:
        return f"{minutes}m"
    hours = whole // 3600
    if hours < 8:
        return f"{hours}h{minutes % 60}m" if minutes % 60 else f"{hours}h"
    if hours < 48:
        return f"{hours}h"
    if hours < 24 * 8:
        return f"{hours // 24}d{hours % 24}h" if hours % 24 else f"{hours // 24}d"
    if hours < 24 * 365 * 2:
        return f"{hours // 24}d"
    if hours < 24 * 365 * 8:
        days = (hours // 24) % 365
        return f"{hours // 24 // 365}y{days}d" if days else f"{hours // 24 // 365}y"
    return f"{hours // 24 // 365}y"


def short_human_duration(seconds: float) -> str:
    """`duration.ShortHumanDuration`: one unit ("59s", "5m", "3h", "2d", "1y")."""
    whole = int(seconds)
    if whole < -1:
        return "<invalid>"
    if whole < 0:
        return "0s"
    if whole < 60:
        return f"{whole}s"
    if whole // 60 < 60:
        return f"{whole // 60}m"
    hours = whole // 3600
    if hours < 24:
        return f"{hours}h"
    if hours < 24 * 365:
        return f"{hours // 24}d"
    return f"{hours // 24 // 365}y"


_RFC3339 = re.compile(r"(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?(Z|[+-]\d{2}:\d{2})")


def parse_time(text: str) -> datetime | None:
    """An RFC 3339 time as Go's `time.Parse(time.RFC3339, ...)` takes it; None when it does not."""
    match = _RFC3339.fullmatch(text)
    if match is None:
        return None
    year, month, day, hour, minute, second, fraction, zone = match.groups()
    offset = timedelta(0) if zone == "Z" else \
        (1 if zone[0] == "+" else -1) * timedelta(hours=int(zone[1:3]), minutes=int(zone[4:6]))
    try:
        return datetime(int(year), int(month), int(day), int(hour), int(minute), int(second),
                        int((fraction or "0")[:6].ljust(6, "0")), tzinfo=timezone(offset))
    except ValueError:
        return None


def _since(value: Any, now: datetime, render: Callable[[float], str]) -> str:
    if value in (None, "", "null", '""'):  # metav1.Time's zero value
        return "<unknown>"
    when = parse_time(value) if isinstance(value, str) else None
    if when is None:
        return "<invalid>"
    return render((now - when).total_seconds())


def age(obj: Mapping[str, Any], now: datetime) -> str:
    """The built-in printers' Age cell (`translateTimestampSince`)."""
    return _since(_metadata(obj).get("creationTimestamp"), now, human_duration)


# ---- Accept negotiation ----------------------------------------------------------------------

def _clauses(accept: str) -> list[tuple[str, str, float, dict[str, str]]]:
    """goautoneg.ParseAccept: (type, subtype, q, params), best first."""
    clauses = []
    for part in accept.split(","):
        media, *params = part.strip(" ").split(";")
        kind, _, sub = media.partition("/")
        kind, sub = kind.strip(" ").lower(), sub.strip(" ").lower()
        if (not sub and kind != "*") or "/" in sub:
            continue
        q, values = 1.0, {}
        for param in params:
            key, equals, value = param.partition("=")
            if not equals or "=" in value:
                continue
            if key.strip(" ") == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
            else:
                values[key.strip(" ")] = value.strip(" ")
        clauses.append((kind, sub or "*", q, values))
    return sorted(clauses, key=lambda c: (-c[2], c[0] == "*", c[1] == "*"))


def requested_version(accept: str) -> str | None:
    """The meta.k8s.io version of Table the Accept header asks for; None for the object itself.

    The first clause promisebot can serve as JSON decides: a Table (v1 or v1beta1) or plain JSON.
    Clauses it cannot serve (protobuf, YAML, other conversions) are passed over; when none is left
    the answer is plain JSON, as kube-apiserver falls back to its first media type."""
    for kind, sub, _, params in _clauses(accept):
        if kind not in ("application", "*") or sub not in ("json", "*"):
            continue
        if params.get("sv"):
            continue
        wanted = (params.get("as"), params.get("g"), params.get("v"))
        if wanted == (None, None, None):
            return None
        if wanted[0] == "Table" and wanted[1] == TABLE_GROUP and wanted[2] in TABLE_VERSIONS:
            return wanted[2]
    return None


def include_object(query: Mapping[str, str]) -> str:
    """The `includeObject` of a Table request, validated as apiserver's ValidateTableOptions does."""
    value = query.get("includeObject", "")
    if value and value not in INCLUDE_OBJECT:
        raise TableError(f"Unable to convert to Table as requested: includeObject: Invalid value: "
                         f"{json.dumps(value, ensure_ascii=False)}: must be 'Metadata', 'Object', 'None', or empty")
    return value or "Metadata"


# ---- JSONPath (the subset of client-go's jsonpath that printer columns use) ----------------------

_STEP = re.compile(r"""\.(?P<field>(?:\\.|[^.\[\\])+)|\[(?P<bracket>'[^']*'|"[^"]*"|-?\d+|\*|\?\(.*?\))\]""")
_FILTER = re.compile(r"""\?\(@(?P<path>[^=!<>]*?)\s*(?:(?P<op>==|!=|<=|>=|<|>)\s*(?P<literal>.+?))?\s*\)""")


def parse_path(path: str) -> list[tuple[str, Any]] | None:
    """Steps of a JSONPath like `.status.conditions[?(@.type=="Ready")].status`; None when unsupported."""
    path = path.strip()
    if path.startswith("{") and path.endswith("}"):
        path = path[1:-1].strip()
    if path.startswith("$"):
        path = path[1:]
    steps: list[tuple[str, Any]] = []
    at = 0
    while at < len(path):
        match = _STEP.match(path, at)
        if match is None:
            return None
        at = match.end()
        step = _step(match)
        if step is None:
            return None
        steps.append(step)
    return steps


def _step(match: re.Match[str]) -> tuple[str, Any] | None:
    field, bracket = match.group("field"), match.group("bracket")
    if field is not None:
        return ("all", None) if field == "*" else ("field", field.replace("\\.", "."))
    if bracket[0] in "'\"":
        return "field", bracket[1:-1]
    if bracket == "*":
        return "all", None
    if bracket[0] != "?":
        return "index", int(bracket)
    found = _FILTER.fullmatch(bracket)
    if found is None:
        return None
    sub = parse_path(found.group("path"))
    if sub is None:
        return None
    literal = found.group("literal")
    if literal is None:
        return "filter", (sub, None, None)
    try:
        value = json.loads(literal) if literal[0] != "'" else literal[1:-1]
    except ValueError:
        return None
    return "filter", (sub, found.group("op"), value)


def find(steps: Sequence[tuple[str, Any]], data: Any) -> list[Any]:
    """Every value the steps reach in data (missing keys reach nothing, as AllowMissingKeys does)."""
    nodes = [data]
    for kind, arg in steps:
        found: list[Any] = []
        for node in nodes:
            found.extend(_apply(kind, arg, node))
        nodes = found
    return nodes


def _apply(kind: str, arg: Any, node: Any) -> list[Any]:
    if kind == "field":
        return [node[arg]] if isinstance(node, dict) and arg in node else []
    if kind == "all":
        return list(node.values()) if isinstance(node, dict) else list(node) if isinstance(node, list) else []
    if kind == "index":
        return [node[arg]] if isinstance(node, list) and -len(node) <= arg < len(node) else []
    if not isinstance(node, list):
        return []
    return [item for item in node if _keep(arg, item)]


_COMPARE: dict[str, Callable[[Any, Any], bool]] = {
    "==": lambda a, b: a == b, "!=": lambda a, b: a != b, "<": lambda a, b: a < b, ">": lambda a, b: a > b,
    "<=": lambda a, b: a <= b, ">=": lambda a, b: a >= b}


def _keep(arg: tuple[list[tuple[str, Any]], str | None, Any], item: Any) -> bool:
    steps, op, literal = arg
    values = find(steps, item)
    if op is None:
        return bool(values)
    for value in values:
        if isinstance(value, bool) != isinstance(literal, bool) or \
                isinstance(value, str) != isinstance(literal, str):
            continue
        try:
            if _COMPARE[op](value, literal):
                return True
        except TypeError:
            continue
    return False


# ---- cells ----------------------------------------------------------------------------------

def go_float(value: float) -> str:
    """A float64 as Go's fmt prints it with %v: %g with the shortest digits, so an exponent below
    1e-4 and from 1e6 on ("0.5", "1e-05", "123456.5", "1.2345675e+06")."""
    if value == 0:
        return "-0" if str(value).startswith("-") else "0"
    sign, digits, exponent = Decimal(repr(value)).normalize().as_tuple()
    if not isinstance(exponent, int):  # infinities and NaN: JSON carries none
        return repr(value)
    text = "".join(str(d) for d in digits)
    point = len(text) + exponent  # digits before the decimal point
    if point - 1 < -4 or point - 1 >= 6:
        mantissa = text[0] + ("." + text[1:] if len(text) > 1 else "")
        out = f"{mantissa}e{'-' if point - 1 < 0 else '+'}{abs(point - 1):02d}"
    elif point <= 0:
        out = "0." + "0" * -point + text
    elif point >= len(text):
        out = text + "0" * (point - len(text))
    else:
        out = text[:point] + "." + text[point:]
    return ("-" if sign else "") + out


def _go_json(value: Any) -> str:
    """Go's json.Marshal of a decoded JSON value: compact, keys sorted, <>& escaped."""
    text = json.dumps(value, separators=(",", ":"), sort_keys=True, ensure_ascii=False)
    for char, escape in (("&", "\\u0026"), ("<", "\\u003c"), (">", "\\u003e"),
                         ("\u2028", "\\u2028"), ("\u2029", "\\u2029")):
        text = text.replace(char, escape)
    return text


def text_cell(value: Any) -> str:
    """A `string` column's cell: the value as client-go's jsonpath prints it."""
    if value is None:
        return "<no value>"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return go_float(value)
    if isinstance(value, dict | list):
        return _go_json(value)
    return str(value)


def typed_cell(kind: str, value: Any, now: datetime) -> Any:
    """tableconvertor's cellForJSONValue: the value if it fits the column's type, else null."""
    if value is None:
        return None
    if kind == "integer" and isinstance(value, int | float) and not isinstance(value, bool):
        return int(value)
    if kind == "number" and isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if kind == "boolean" and isinstance(value, bool):
        return value
    if kind == "string" and isinstance(value, str):
        return value
    if kind == "date" and isinstance(value, str):
        return _since(value, now, short_human_duration)
    return None


def _mapping(obj: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = obj.get(key)
    return value if isinstance(value, Mapping) else {}


def _metadata(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    return _mapping(obj, "metadata")


def _name(obj: Mapping[str, Any], now: datetime) -> str:
    return str(_metadata(obj).get("name") or "")


def _phase(namespace: Mapping[str, Any]) -> str:
    return str(_mapping(namespace, "status").get("phase") or "Active")


def _count(obj: Mapping[str, Any], *fields: str) -> int:
    return sum(len(obj[f]) for f in fields if isinstance(obj.get(f), dict))


# ---- column sets ----------------------------------------------------------------------------

NAME = Column("Name", "string", _name, format="name", description=NAME_DOC)
AGE = Column("Age", "string", age, description=CREATED_DOC)

# pkg/printers/internalversion: printConfigMap, printSecret, printNamespace. A Secret's type and a
# Namespace's phase are what kube-apiserver defaults them to when the object does not say.
BUILTIN: dict[tuple[str, str], tuple[Column, ...]] = {
    ("", "configmaps"): (NAME, Column("Data", "string", lambda o, n: _count(o, "data", "binaryData"),
                                      description=CONFIGMAP_DATA_DOC), AGE),
    ("", "secrets"): (NAME, Column("Type", "string", lambda o, n: str(o.get("type") or "Opaque"),
                                   description=SECRET_TYPE_DOC),
                      Column("Data", "string", lambda o, n: _count(o, "data"), description=SECRET_DATA_DOC), AGE),
    ("", "namespaces"): (NAME, Column("Status", "string", lambda o, n: _phase(o),
                                      description="The status of the namespace"), AGE),
}


def crd_column(spec: Mapping[str, Any]) -> Column:
    """One of a CRD version's additionalPrinterColumns, as apiextensions' tableconvertor serves it."""
    path = str(spec.get("jsonPath") or "")
    kind = str(spec.get("type") or "")
    steps = parse_path(path)  # None: a path beyond the subset above; its cells are null

    def cell(obj: Mapping[str, Any], now: datetime) -> Any:
        values = find(steps, obj) if steps is not None else []
        if not values and kind == "date" and path == CREATED_PATH:
            # kube-apiserver always sets creationTimestamp; an object of the run may lack it: its
            # age is that of a zero time, as MetaToTableRow computes it.
            return "<unknown>"
        if not values:
            return None
        return text_cell(values[0]) if kind == "string" else typed_cell(kind, values[0], now)

    priority = spec.get("priority")
    return Column(str(spec.get("name") or ""), kind, cell, format=str(spec.get("format") or ""),
                  description=str(spec.get("description") or
                                  f"Custom resource definition column (in JSONPath format): {path}"),
                  priority=priority if isinstance(priority, int) and not isinstance(priority, bool) else 0)


def crd_columns(specs: Sequence[Mapping[str, Any]]) -> tuple[Column, ...]:
    """Name, then the CRD version's columns, or Age when it declares none."""
    return (NAME, *(crd_column(s) for s in (specs or CRD_DEFAULT_COLUMNS) if isinstance(s, Mapping)))


def printer_columns(crd: Mapping[str, Any], version: str) -> list[Mapping[str, Any]]:
    """A CRD's additionalPrinterColumns for one version ([] when it declares none)."""
    for entry in _mapping(crd, "spec").get("versions") or []:
        if isinstance(entry, Mapping) and entry.get("name") == version:
            columns = entry.get("additionalPrinterColumns")
            return [c for c in columns if isinstance(c, Mapping)] if isinstance(columns, list) else []
    return []


def defines(crd: Mapping[str, Any], group: str, plural: str) -> bool:
    """Whether a CustomResourceDefinition defines the resource group/plural."""
    spec = _mapping(crd, "spec")
    return bool(group) and spec.get("group") == group and _mapping(spec, "names").get("plural") == plural


def columns_for(group: str, version: str, plural: str, crd: Mapping[str, Any] | None) -> tuple[Column, ...]:
    """The columns kube-apiserver prints for a resource.

    A resource whose CRD promisebot holds (for the object of a resource workflow, the Promise's
    `spec.api`) gets that CRD's columns; ConfigMaps, Secrets and Namespaces their built-in printers.
    Anything else gets Name and Age: a built-in type (core or *.k8s.io group) the Age its printer
    computes, a custom resource the CRD default `date` column. Promises are in the last case: the run
    data does not carry Kratix's own Promise CRD, whose printer columns on a real cluster are Status,
    Kind, API Version, Version and Message (and no Age). Kubernetes' built-ins beyond these three
    print more columns than Name and Age."""
    if crd is not None:
        return crd_columns(printer_columns(crd, version))
    if (group, plural) in BUILTIN:
        return BUILTIN[(group, plural)]
    if "." not in group or group.endswith(".k8s.io"):
        return NAME, AGE
    return crd_columns(())


# ---- the Table ------------------------------------------------------------------------------

def _row_object(obj: Mapping[str, Any], include: str, version: str) -> dict[str, Any] | None:
    if include == "None":
        return None
    if include == "Object":
        return copy.deepcopy(dict(obj))
    return {"kind": "PartialObjectMetadata", "apiVersion": f"{TABLE_GROUP}/{version}",
            "metadata": copy.deepcopy(dict(_metadata(obj)))}


def to_table(objects: Sequence[Mapping[str, Any]], columns: Sequence[Column], *, version: str, include: str,
             resource_version: str, now: datetime) -> dict[str, Any]:
    """The Table of objects (one for a GET, the items of a LIST)."""
    rows = [{"cells": [c.cell(obj, now) for c in columns], "object": _row_object(obj, include, version)}
            for obj in objects]
    return {"kind": "Table", "apiVersion": f"{TABLE_GROUP}/{version}",
            "metadata": {"resourceVersion": resource_version} if resource_version else {},
            "columnDefinitions": [c.definition() for c in columns], "rows": rows}
