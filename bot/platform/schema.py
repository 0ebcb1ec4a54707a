"""Kubernetes structural schemas (a CRD version's openAPIV3Schema): defaulting and validation.

Defaulting follows apiextensions-apiserver `structuraldefaulting.Default`, in the order the
API server applies it to a request (contract §4.4 runs on the defaulted object):

1. nulls of fields that are not `nullable` are replaced by the field's default, or dropped
   when it has none (`PruneNonNullableNullsWithoutDefaults`);
2. in every *present* object, each absent property with a `default` gets a deep copy of it;
3. then every present property is defaulted recursively, including the ones just set from a
   default (so a default that is an object is itself defaulted inside), and every item of
   an array is defaulted with the `items` schema. An absent object with no default stays
   absent, so nothing below it is defaulted.

Validation turns the structural schema into a JSON Schema (draft 4, the dialect OpenAPI v3
schemas are based on) for `jsonschema`: `nullable`, `x-kubernetes-int-or-string` and
`x-kubernetes-preserve-unknown-fields` are translated, and the Kubernetes string formats
that can be checked offline are checked. Deliberate deviation: Kubernetes silently *prunes*
fields that are not in the schema; promisebot reports them as errors ("unknown field"), since
in a Git repo a misspelt field is almost always a mistake. `x-kubernetes-validations` (CEL)
rules are not evaluated.
"""

from __future__ import annotations

import base64
import copy
import ipaddress
import re
import threading
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import jsonschema
from jsonschema.exceptions import ValidationError

from bot.kratix.goduration import parse_seconds
from bot.platform.schema_structural import (
    compiles,
    default_nodes,
    json_type,
    normalise,
    pattern_warnings,
    structural_errors,
)

Schema = dict[str, Any]
FieldPath = tuple[str | int, ...]


@dataclass(frozen=True, slots=True)
class SchemaError:
    """One violation: the field path in the object and why."""

    path: FieldPath
    message: str
    severity: str = "error"  # "error" | "warning" (check_schema only)


# ---------------------------------------------------------------------------- defaulting


def apply_defaults(obj: Any, schema: Schema | None) -> Any:
    """`obj` with structural defaults applied (a new object; `obj` is not modified)."""
    out = copy.deepcopy(obj)
    if not isinstance(schema, dict):
        return out
    schema = normalise(schema)
    _prune_nulls(out, schema)
    _default(out, schema)
    _prune_nulls(out, schema)
    return out


def _default(value: Any, schema: Schema) -> None:
    if isinstance(value, dict):
        props = schema.get("properties")
        props = props if isinstance(props, dict) else {}
        for key, prop in props.items():
            if not isinstance(prop, dict) or "default" not in prop:
                continue
            if key not in value or (value[key] is None and not prop.get("nullable")):
                value[key] = copy.deepcopy(prop["default"])
        extra = schema.get("additionalProperties")
        for key, child in value.items():
            sub = props.get(key)
            if isinstance(sub, dict):
                _default(child, sub)
            elif isinstance(extra, dict):
                _default(child, extra)
    elif isinstance(value, list):
        items = schema.get("items")
        if isinstance(items, dict):
            for child in value:
                _default(child, items)


def _prune_nulls(value: Any, schema: Schema) -> None:
    """Drop nulls of non-nullable fields that have no default (Kubernetes does the same)."""
    if isinstance(value, dict):
        props = schema.get("properties")
        props = props if isinstance(props, dict) else {}
        extra = schema.get("additionalProperties")
        for key in list(value):
            sub = props.get(key, extra if isinstance(extra, dict) else None)
            if not isinstance(sub, dict):
                continue
            if value[key] is None and not sub.get("nullable") and "default" not in sub:
                del value[key]
            else:
                _prune_nulls(value[key], sub)
    elif isinstance(value, list):
        items = schema.get("items")
        if isinstance(items, dict):
            for child in value:
                _prune_nulls(child, items)


# ---------------------------------------------------------------------------- validation

_SCHEMA_KEYS_WITH_SCHEMA = ("items", "not", "additionalItems")
_SCHEMA_KEYS_WITH_LIST = ("allOf", "anyOf", "oneOf")
_EMPTY_MEANS_ABSENT = {"enum", "required", "allOf", "anyOf", "oneOf"}
_DROPPED_KEYS = {"nullable", "x-kubernetes-preserve-unknown-fields", "x-kubernetes-int-or-string",
                 "x-kubernetes-embedded-resource", "x-kubernetes-validations", "x-kubernetes-list-type",
                 "x-kubernetes-list-map-keys", "x-kubernetes-map-type", "example", "externalDocs",
                 "default", "description", "title", "$schema", "id", "$ref", "definitions",
                 "dependencies", "patternProperties"}


def to_jsonschema(schema: Schema, *, top_level: bool = False) -> Schema:
    """A draft-4 JSON Schema equivalent of a Kubernetes structural schema.

    Objects with declared properties and no `additionalProperties` get
    `additionalProperties: false` unless they preserve unknown fields (see module doc).
    At the top level of a resource, apiVersion, kind and metadata are implicit (metadata is
    checked separately) and status is free-form, as Kratix makes it (contract §4.1 step 5).
    Keywords set to null are absent and empty `enum`/`required`/`allOf`/`anyOf`/`oneOf` lists
    constrain nothing, as Kubernetes reads them (`properties:` left empty is no properties).
    """
    return _to_jsonschema(normalise(schema), top_level=top_level)


def _to_jsonschema(schema: Schema, *, top_level: bool = False) -> Schema:
    out: Schema = {k: v for k, v in schema.items()
                   if k not in _DROPPED_KEYS and not (k in _EMPTY_MEANS_ABSENT and v == [])}
    if isinstance(out.get("pattern"), str) and not compiles(out["pattern"]):
        del out["pattern"]  # RE2-only syntax: reported by check_schema as a warning, not applied
    for key in _SCHEMA_KEYS_WITH_SCHEMA:
        if isinstance(schema.get(key), dict):
            out[key] = _to_jsonschema(schema[key])
    for key in _SCHEMA_KEYS_WITH_LIST:
        if isinstance(schema.get(key), list) and schema[key]:
            out[key] = [_to_jsonschema(s) if isinstance(s, dict) else s for s in schema[key]]
    props = schema.get("properties")
    props = dict(props) if isinstance(props, dict) else {}
    if top_level or schema.get("x-kubernetes-embedded-resource"):
        for key in ("apiVersion", "kind"):
            props.setdefault(key, {"type": "string"})
        props["metadata"] = {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
    if top_level:
        props["status"] = {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
    out.pop("properties", None)
    if props:
        out["properties"] = {k: _to_jsonschema(v) if isinstance(v, dict) else v for k, v in props.items()}
    extra = schema.get("additionalProperties")
    if isinstance(extra, dict):
        out["additionalProperties"] = _to_jsonschema(extra)
    elif extra is None and not schema.get("x-kubernetes-preserve-unknown-fields"):
        is_object = schema.get("type") == "object" or props or top_level
        if is_object:
            out["additionalProperties"] = False
    if schema.get("x-kubernetes-int-or-string"):
        out.pop("type", None)
        out.setdefault("anyOf", [{"type": "integer"}, {"type": "string"}])
    if schema.get("nullable"):
        _allow_null(out)
    return out


def _allow_null(out: Schema) -> None:
    kind = out.get("type")
    if isinstance(kind, str):
        out["type"] = [kind, "null"]
    if isinstance(out.get("enum"), list) and None not in out["enum"]:
        out["enum"] = [*out["enum"], None]
    if "anyOf" in out:
        out["anyOf"] = [*out["anyOf"], {"type": "null"}]


def check_schema(schema: Any) -> list[SchemaError]:
    """Problems with an openAPIV3Schema itself (so requests are never checked with a broken one):
    the rules the Kubernetes API server applies to a CRD's schema (bot.platform.schema_structural),
    then every `default` against its own schema, then what `jsonschema` needs to use it.

    Warnings (severity "warning": patterns promisebot cannot apply) come after the errors;
    only errors make the schema unusable.
    """
    warnings = [SchemaError(path, message, "warning") for path, message in pattern_warnings(schema)]
    return _schema_errors(schema) + warnings


def schema_errors(schema: Any) -> list[SchemaError]:
    """The errors of `check_schema` (a schema with none can validate and default requests).

    Asked once per request of a Promise, so the answer for the last few schema objects is
    kept (by identity: loaded schemas are never modified in place)."""
    key = id(schema)
    with _ERRORS_LOCK:
        cached = _ERRORS_CACHE.get(key)
    if cached is not None and cached[0] is schema:
        return list(cached[1])
    errors = _schema_errors(schema)
    with _ERRORS_LOCK:
        if len(_ERRORS_CACHE) >= _ERRORS_CACHE_SIZE:
            _ERRORS_CACHE.pop(next(iter(_ERRORS_CACHE)))
        _ERRORS_CACHE[key] = (schema, errors)  # the reference keeps the id from being reused
    return list(errors)


_ERRORS_CACHE: dict[int, tuple[Any, list[SchemaError]]] = {}
_ERRORS_CACHE_SIZE = 64
_ERRORS_LOCK = threading.Lock()


def _schema_errors(schema: Any) -> list[SchemaError]:
    issues = structural_errors(schema)
    if issues:
        return [SchemaError(path, message) for path, message in issues]
    errors = []
    for path, node in default_nodes(schema):
        default = node["default"]
        for error in validate(apply_defaults(default, node), node, top_level=False):
            errors.append(SchemaError((*path, "default", *error.path), f"invalid default: {error.message}"))
    if errors:
        return errors
    try:
        jsonschema.Draft4Validator.check_schema(to_jsonschema(schema, top_level=True))
    except jsonschema.SchemaError as exc:
        return [SchemaError(tuple(exc.absolute_path), f"invalid schema: {exc.message}")]
    return []


def validate(obj: Any, schema: Schema, *, top_level: bool = True) -> list[SchemaError]:
    """Every violation of `schema` by `obj` (already defaulted), sorted by field path.

    Never raises: a schema `jsonschema` cannot apply (check_schema reports those) is one error.
    """
    errors: list[SchemaError] = []
    try:
        validator = jsonschema.Draft4Validator(to_jsonschema(schema, top_level=top_level),
                                               format_checker=FORMATS)
        for error in validator.iter_errors(obj):
            errors.extend(_explain(error))
    except Exception as exc:  # a broken schema must not crash validation
        return [SchemaError((), f"the schema cannot be applied ({type(exc).__name__}: {exc})")]
    unique = {(tuple(str(p) for p in e.path), e.message): e for e in errors}
    return sorted(unique.values(), key=lambda e: ([str(p) for p in e.path], e.message))


def _explain(error: ValidationError) -> Iterable[SchemaError]:
    path = tuple(error.absolute_path)
    kind, expected, instance = error.validator, error.validator_value, error.instance
    # The schema that failed: always a mapping for Draft 4 errors (the stubs also allow a
    # boolean schema and jsonschema's "unset" marker).
    schema: Mapping[str, Any] = error.schema if isinstance(error.schema, Mapping) else {}
    if kind == "required" and isinstance(instance, dict) and isinstance(expected, Iterable):
        return [SchemaError((*path, name), "required") for name in expected if name not in instance]
    if kind == "additionalProperties" and isinstance(instance, dict):
        known = set(schema.get("properties") or {})
        return [SchemaError((*path, key), "unknown field (not in the schema)")
                for key in instance if key not in known]
    if kind == "enum" and isinstance(expected, Iterable):
        allowed = ", ".join(_show(v) for v in expected)
        return [SchemaError(path, f"unsupported value {_show(instance)}: must be one of {allowed}")]
    if kind == "type":
        wanted = " or ".join(expected) if isinstance(expected, list) else expected
        got = "null" if instance is None else json_type(instance)
        return [SchemaError(path, f"must be of type {wanted}, not {got}")]
    if kind == "anyOf" and schema.get("anyOf", [None])[0] == {"type": "integer"}:
        return [SchemaError(path, "must be an integer or a string (int-or-string)")]
    if kind in ("maxItems", "minItems") and isinstance(instance, list):  # only arrays are checked
        bound = "most" if kind == "maxItems" else "least"
        return [SchemaError(path, f"must have at {bound} {expected} items (has {len(instance)})")]
    if kind in ("maxLength", "minLength") and isinstance(instance, str):  # only strings are checked
        bound = "most" if kind == "maxLength" else "least"
        return [SchemaError(path, f"must be at {bound} {expected} characters long (is {len(instance)})")]
    if kind == "format":
        return [SchemaError(path, f"{_show(instance)} is not a valid {expected}")]
    if kind == "pattern":
        return [SchemaError(path, f"{_show(instance)} does not match the pattern {expected!r}")]
    return [SchemaError(path, error.message)]


def _show(value: Any) -> str:
    text = f'"{value}"' if isinstance(value, str) else repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


# ---------------------------------------------------------------------------- formats
# The kube-openapi string formats Kubernetes checks (k8s.io/kube-openapi/pkg/validation/strfmt);
# formats it does not know are ignored, as Kubernetes does.

FORMATS = jsonschema.FormatChecker(formats=())

_HOSTNAME = re.compile(r"^(?=.{1,253}$)[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
                       r"(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_URI = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:\S*$")
_MAC = re.compile(r"^([0-9A-Fa-f]{2}[:-]){5}[0-9A-Fa-f]{2}$|^([0-9A-Fa-f]{4}\.){2}[0-9A-Fa-f]{4}$")
_UUID = re.compile(r"^[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}$")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?([Zz]|[+-]\d{2}:?\d{2})?$")
_HEXCOLOR = re.compile(r"^#([0-9A-Fa-f]{3}|[0-9A-Fa-f]{6})$")
_RGBCOLOR = re.compile(r"^rgb\(\s*\d{1,3}%?\s*,\s*\d{1,3}%?\s*,\s*\d{1,3}%?\s*\)$")
_BSON = re.compile(r"^[0-9a-fA-F]{24}$")


def _regex_format(name: str, pattern: re.Pattern[str]) -> None:
    FORMATS.checks(name)(lambda v: not isinstance(v, str) or bool(pattern.match(v)))


def _ip(version: int) -> Any:
    def check(value: object) -> bool:
        if not isinstance(value, str):
            return True
        try:
            return ipaddress.ip_address(value).version == version
        except ValueError:
            return False
    return check


def _cidr(value: object) -> bool:
    if not isinstance(value, str):
        return True
    try:
        ipaddress.ip_network(value, strict=False)
    except ValueError:
        return False
    return "/" in value


def _uuid_version(version: int) -> Any:
    def check(value: object) -> bool:
        if not isinstance(value, str):
            return True
        try:
            return uuid.UUID(value).version == version
        except ValueError:
            return False
    return check


def _byte(value: object) -> bool:
    if not isinstance(value, str):
        return True
    try:
        base64.b64decode(value, validate=True)
    except ValueError:
        return False
    return True


def _duration(value: object) -> bool:
    if not isinstance(value, str):
        return True
    try:
        parse_seconds(value)
    except ValueError:
        return False
    return True


for _name, _pattern in (("hostname", _HOSTNAME), ("email", _EMAIL), ("uri", _URI), ("mac", _MAC),
                        ("uuid", _UUID), ("date", _DATE), ("date-time", _DATETIME),
                        ("datetime", _DATETIME), ("hexcolor", _HEXCOLOR), ("rgbcolor", _RGBCOLOR),
                        ("bsonobjectid", _BSON)):
    _regex_format(_name, _pattern)
FORMATS.checks("ipv4")(_ip(4))
FORMATS.checks("ipv6")(_ip(6))
FORMATS.checks("cidr")(_cidr)
FORMATS.checks("byte")(_byte)
FORMATS.checks("duration")(_duration)
for _version in (3, 4, 5):
    FORMATS.checks(f"uuid{_version}")(_uuid_version(_version))
