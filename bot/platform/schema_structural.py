"""The rules Kubernetes applies to a CRD version's `openAPIV3Schema` (apiextensions.k8s.io/v1)
before it accepts the CRD, so that `validate` refuses what the API server would refuse.

Pure functions over the schema as written (plain dicts and lists); each problem is a
(path inside the schema, message) pair, with Kubernetes' own wording (its field.Error kinds:
"Required value: ...", "Forbidden: ...", "Invalid value: ...", "Unsupported value: ...").
Read from k8s.io/apiextensions-apiserver:

- decoding into JSONSchemaProps: each keyword has one JSON type; `null` means "not set", and
  a `properties` entry that is null is an empty schema;
- `ValidateCustomResourceDefinitionOpenAPISchema` (pkg/apis/apiextensions/validation): known
  `type`s only, no `$ref`, `id`, `definitions`, `dependencies`, `patternProperties`,
  `additionalItems`, `items` as a list, `uniqueItems: true`, `additionalProperties` together
  with `properties`, `x-kubernetes-preserve-unknown-fields: false`, no `default` in top-level
  metadata, list/map type extensions consistent; `nullable` not at the root;
- `ValidateStructural` (pkg/apiserver/schema/validation.go): every specified field and array
  item has a `type` (unless `x-kubernetes-int-or-string` or
  `x-kubernetes-preserve-unknown-fields`), arrays have `items`, the root is an object without
  `additionalProperties`, root `metadata` restricts only `name` and `generateName`, and inside
  `allOf`/`anyOf`/`oneOf`/`not` no type, default, description, title, nullable or extension
  (except the int-or-string patterns); value validations at the root name only fields
  specified structurally (complete.go);
- Kratix enables the status subresource on every Promise API (and replaces `status` with its
  own schema, so a Promise's own `status` schema is not checked): the root may then hold only
  the fields Kubernetes lists for that case.

Defaults are checked against their schema by bot.platform.schema (it owns request validation).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

SchemaPath = tuple[str | int, ...]
Issue = tuple[SchemaPath, str]

TYPES = ("array", "boolean", "integer", "number", "object", "string")

_STRING_KEYS = ("id", "$schema", "$ref", "description", "type", "format", "title", "pattern",
                "x-kubernetes-list-type", "x-kubernetes-map-type")
_BOOL_KEYS = ("exclusiveMaximum", "exclusiveMinimum", "uniqueItems", "nullable",
              "x-kubernetes-preserve-unknown-fields", "x-kubernetes-embedded-resource",
              "x-kubernetes-int-or-string")
_NUMBER_KEYS = ("maximum", "minimum", "multipleOf")
_INTEGER_KEYS = ("maxLength", "minLength", "maxItems", "minItems", "maxProperties", "minProperties")
_STRING_LIST_KEYS = ("required", "x-kubernetes-list-map-keys")
_SCHEMA_MAP_KEYS = ("properties", "patternProperties", "definitions")
_SCHEMA_LIST_KEYS = ("allOf", "oneOf", "anyOf")
_SCHEMA_OR_BOOL_KEYS = ("additionalProperties", "additionalItems")

# Fields of the structural schema (pkg/apiserver/schema/structural.go); `example`,
# `externalDocs`, `id` and `$schema` have no place there.
_STRUCTURAL_KEYS = frozenset({
    "type", "description", "title", "nullable", "default", "properties", "items", "additionalProperties",
    "format", "maximum", "exclusiveMaximum", "minimum", "exclusiveMinimum", "maxLength", "minLength",
    "pattern", "maxItems", "minItems", "uniqueItems", "multipleOf", "enum", "maxProperties",
    "minProperties", "required", "allOf", "oneOf", "anyOf", "not", "x-kubernetes-preserve-unknown-fields",
    "x-kubernetes-embedded-resource", "x-kubernetes-int-or-string", "x-kubernetes-list-map-keys",
    "x-kubernetes-list-type", "x-kubernetes-map-type", "x-kubernetes-validations",
})
# With the status subresource enabled (Kratix always enables it), only these may be set at the root.
_ROOT_FIELDS = (("description", "Description"), ("type", "Type"), ("format", "Format"), ("title", "Title"),
                ("maximum", "Maximum"), ("exclusiveMaximum", "ExclusiveMaximum"), ("minimum", "Minimum"),
                ("exclusiveMinimum", "ExclusiveMinimum"), ("maxLength", "MaxLength"), ("minLength", "MinLength"),
                ("pattern", "Pattern"), ("maxItems", "MaxItems"), ("minItems", "MinItems"),
                ("uniqueItems", "UniqueItems"), ("multipleOf", "MultipleOf"), ("required", "Required"),
                ("items", "Items"), ("properties", "Properties"), ("externalDocs", "ExternalDocs"),
                ("example", "Example"), ("x-kubernetes-preserve-unknown-fields", "XPreserveUnknownFields"),
                ("x-kubernetes-validations", "XValidations"))
_ROOT_ALLOWED = frozenset(key for key, _ in _ROOT_FIELDS)
_ROOT_MESSAGE = (f"Invalid value: only [{' '.join(name for _, name in _ROOT_FIELDS)}] fields are allowed at "
                 "the root of the schema if the status subresource is enabled")
_META_FIELDS = ("metadata", "kind", "apiVersion")
_UNSUPPORTED = ("id", "additionalItems", "patternProperties", "definitions", "dependencies", "$ref")
_INT_OR_STRING_ANY_OF = [{"type": "integer"}, {"type": "string"}]
# Python `re` syntax that Go's RE2 (which Kubernetes uses) refuses: look-arounds, backreferences.
_PERL_ONLY = re.compile(r"(?<!\\)(?:\\\\)*(\(\?<?[=!]|\\[1-9]|\(\?P=)")

ROOT, ITEMS, FIELD = "root", "items", "field"
_EMPTY_TYPE = {ROOT: "must not be empty at the root", ITEMS: "must not be empty for specified array items",
               FIELD: "must not be empty for specified object fields"}


def structural_errors(schema: Any) -> list[Issue]:
    """Why Kubernetes would refuse `schema` as a CRD version's openAPIV3Schema ([] if it would not)."""
    if not isinstance(schema, dict):
        return [((), "must be an object (a JSON schema)")]
    decoding = list(_decode(schema, ()))
    if decoding:
        return decoding  # the API server could not even read it
    root = without_status(normalise(schema))
    issues: list[Issue] = []
    if root.get("nullable") is True:
        issues.append((("nullable",), "Forbidden: nullable cannot be true at the root"))
    for key, value in root.items():
        if key not in _ROOT_ALLOWED and key in _STRUCTURAL_KEYS | set(_UNSUPPORTED) | {"$schema"} \
                and not _is_zero(value) and key != "nullable":
            issues.append(((key,), _ROOT_MESSAGE))
            break
    issues.extend(_openapi(root, (), root=True, in_meta=False, no_default=""))
    if not any(_has_unsupported(node) for _, node in _nodes(root, ())):
        issues.extend(_invariants(root, (), ROOT))
        issues.extend(_completeness(root))
    return list(dict.fromkeys(issues))


def normalise(schema: Any) -> Any:
    """`schema` as Kubernetes reads it: keywords set to null are absent, a null schema inside
    `properties` (or a schema list) is the empty schema. Returns a new structure."""
    if not isinstance(schema, dict):
        return schema
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if value is None:
            continue
        if key in _SCHEMA_MAP_KEYS and isinstance(value, dict):
            value = {k: normalise(v) if v is not None else {} for k, v in value.items()}
        elif key in _SCHEMA_LIST_KEYS and isinstance(value, list):
            value = [normalise(v) if v is not None else {} for v in value]
        elif key == "items" and isinstance(value, list):
            value = [normalise(v) if v is not None else {} for v in value]
        elif key in ("items", "not", *_SCHEMA_OR_BOOL_KEYS) and isinstance(value, dict):
            value = normalise(value)
        elif key == "dependencies" and isinstance(value, dict):
            value = {k: normalise(v) for k, v in value.items()}
        out[key] = value
    return out


def without_status(root: dict[str, Any]) -> dict[str, Any]:
    """The root schema without `properties.status`, which Kratix replaces with its own."""
    props = root.get("properties")
    if isinstance(props, dict) and "status" in props:
        return {**root, "properties": {k: v for k, v in props.items() if k != "status"}}
    return root


def pattern_warnings(schema: Any) -> list[Issue]:
    """`pattern`s Python's `re` cannot compile (RE2 syntax such as `\\p{L}` or `\\z`): Kubernetes
    may accept them, promisebot cannot check requests against them (it skips them)."""
    if not isinstance(schema, dict):
        return []
    out = []
    for path, node in _nodes(normalise(schema), ()):
        pattern = node.get("pattern")
        if isinstance(pattern, str) and pattern and not compiles(pattern):
            out.append(((*path, "pattern"), f"{_quote(pattern)} is not a regular expression promisebot can "
                                            "apply (Python's re); requests are not checked against it"))
    return out


def compiles(pattern: str) -> bool:
    try:
        re.compile(pattern)
    except (re.error, RecursionError, OverflowError):
        return False
    return True


def default_nodes(schema: dict[str, Any]) -> Iterator[tuple[SchemaPath, dict[str, Any]]]:
    """(path, node) of each structural node with a `default` whose value Kubernetes checks
    against the node (not under additionalProperties, not in root metadata/apiVersion/kind)."""
    def walk(node: dict[str, Any], path: SchemaPath, root: bool) -> Iterator[tuple[SchemaPath, dict[str, Any]]]:
        if "default" in node and not root:
            yield path, node
        items = node.get("items")
        if isinstance(items, dict):
            yield from walk(items, (*path, "items"), False)
        props = node.get("properties")
        if isinstance(props, dict):
            for key, sub in props.items():
                if isinstance(sub, dict) and not (root and key in _META_FIELDS):
                    yield from walk(sub, (*path, "properties", key), False)
    yield from walk(without_status(normalise(schema)), (), True)


# ---------------------------------------------------------------------------- decoding


def json_type(value: Any) -> str:
    """The JSON type name of a decoded value that is not None (the schema decoder skips nulls)."""
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    return "array" if isinstance(value, list) else "object"


def _decode(node: Any, path: SchemaPath) -> Iterator[Issue]:
    """Values of the wrong JSON type (Kubernetes fails to decode the CRD on those)."""
    if not isinstance(node, dict):
        yield path, f"must be a schema (a mapping), not {json_type(node)}"
        return
    for key, value in node.items():
        at = (*path, key)
        if value is None:
            continue
        if key in _STRING_KEYS and not isinstance(value, str):
            yield at, f"must be a string, not {json_type(value)}"
        elif key in _BOOL_KEYS and not isinstance(value, bool):
            yield at, f"must be a boolean, not {json_type(value)}"
        elif key in _NUMBER_KEYS and (isinstance(value, bool) or not isinstance(value, int | float)):
            yield at, f"must be a number, not {json_type(value)}"
        elif key in _INTEGER_KEYS and (isinstance(value, bool) or not isinstance(value, int)):
            yield at, f"must be an integer, not {json_type(value)}"
        elif key in _STRING_LIST_KEYS and (not isinstance(value, list) or not all(isinstance(x, str) for x in value)):
            yield at, "must be a list of strings"
        elif key == "enum" and not isinstance(value, list):
            yield at, f"must be a list, not {json_type(value)}"
        elif key in _SCHEMA_MAP_KEYS:
            if not isinstance(value, dict):
                yield at, f"must be a mapping of names to schemas, not {json_type(value)}"
            else:
                for name, sub in value.items():
                    if sub is not None:
                        yield from _decode(sub, (*at, name))
        elif key in _SCHEMA_LIST_KEYS:
            if not isinstance(value, list):
                yield at, f"must be a list of schemas, not {json_type(value)}"
            else:
                for i, sub in enumerate(value):
                    if sub is not None:
                        yield from _decode(sub, (*at, i))
        elif key in ("items", "not"):
            if key == "items" and isinstance(value, list):
                for i, sub in enumerate(value):
                    if sub is not None:
                        yield from _decode(sub, (*at, i))
            else:
                yield from _decode(value, at)
        elif key in _SCHEMA_OR_BOOL_KEYS and not isinstance(value, bool):
            yield from _decode(value, at)
        elif key == "dependencies":
            if not isinstance(value, dict):
                yield at, f"must be a mapping, not {json_type(value)}"
            else:
                for name, sub in value.items():
                    if not isinstance(sub, list):
                        yield from _decode(sub, (*at, name))
        elif key == "externalDocs" and not isinstance(value, dict):
            yield at, f"must be a mapping, not {json_type(value)}"
        elif key == "x-kubernetes-validations":
            if not isinstance(value, list) or not all(isinstance(x, dict) for x in value):
                yield at, "must be a list of rules (mappings with a rule)"


# ---------------------------------------------------------------------------- helpers


def _is_zero(value: Any) -> bool:
    """Go's zero value of the field (numbers are pointers there: 0 is set)."""
    return value is None or value is False or value == "" or value == [] or value == {}


def _quote(value: Any) -> str:
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, bool):
        return "true" if value else "false"
    return repr(value)


def _must_be(kind: str, wanted: str, condition: str) -> str:
    if kind:
        return f"Invalid value: {_quote(kind)}: must be {wanted} if {condition}"
    return f"Required value: must be {wanted} if {condition}"


def _show_path(path: SchemaPath) -> str:
    out = "openAPIV3Schema"
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else f".{part}"
    return out


def _children(node: dict[str, Any], path: SchemaPath) -> Iterator[tuple[SchemaPath, dict[str, Any]]]:
    """Every sub-schema written under `node` (structural or not)."""
    for key in _SCHEMA_MAP_KEYS:
        if isinstance(node.get(key), dict):
            for name, sub in node[key].items():
                if isinstance(sub, dict):
                    yield (*path, key, name), sub
    for key in _SCHEMA_LIST_KEYS:
        if isinstance(node.get(key), list):
            for i, sub in enumerate(node[key]):
                if isinstance(sub, dict):
                    yield (*path, key, i), sub
    items = node.get("items")
    if isinstance(items, dict):
        yield (*path, "items"), items
    elif isinstance(items, list):
        for i, sub in enumerate(items):
            if isinstance(sub, dict):
                yield (*path, "items", i), sub
    for key in ("not", *_SCHEMA_OR_BOOL_KEYS):
        if isinstance(node.get(key), dict):
            yield (*path, key), node[key]
    if isinstance(node.get("dependencies"), dict):
        for name, sub in node["dependencies"].items():
            if isinstance(sub, dict):
                yield (*path, "dependencies", name), sub


def _properties(node: dict[str, Any]) -> dict[str, Any]:
    """`node`'s `properties` when that is a mapping, else an empty one."""
    props = node.get("properties")
    return props if isinstance(props, dict) else {}


def _nodes(node: dict[str, Any], path: SchemaPath) -> Iterator[tuple[SchemaPath, dict[str, Any]]]:
    yield path, node
    for sub_path, sub in _children(node, path):
        yield from _nodes(sub, sub_path)


def _has_unsupported(node: dict[str, Any]) -> bool:
    """What NewStructural cannot convert (Kubernetes then skips the structural checks)."""
    return any(not _is_zero(node.get(key)) for key in _UNSUPPORTED) or isinstance(node.get("items"), list) \
        or node.get("dependencies") is not None


# ---------------------------------------------------------------------------- OpenAPI rules


def _openapi(node: dict[str, Any], path: SchemaPath, *, root: bool, in_meta: bool,
             no_default: str) -> Iterator[Issue]:
    """ValidateCustomResourceDefinitionOpenAPISchema and specStandardValidatorV3.validate."""
    kind = node.get("type")
    if kind == "null":
        yield (*path, "type"), "Forbidden: type cannot be set to null, use nullable as an alternative"
    elif kind and kind not in TYPES:
        yield (*path, "type"), f"Unsupported value: {_quote(kind)}: supported values: " + ", ".join(
            _quote(t) for t in TYPES)
    if "default" in node and no_default:
        yield (*path, "default"), f"Forbidden: must not be set {no_default}"
    for key in _UNSUPPORTED:
        if key in node and (key == "dependencies" or not _is_zero(node[key])):
            yield (*path, key), f"Forbidden: {key} is not supported"
    if isinstance(node.get("items"), list):
        yield (*path, "items"), "Forbidden: items must be a schema object and not an array"
    if in_meta and node.get("x-kubernetes-embedded-resource") is True:
        yield (*path, "x-kubernetes-embedded-resource"), "Forbidden: must not be used inside of resource meta"
    if node.get("uniqueItems") is True:
        yield (*path, "uniqueItems"), ("Forbidden: uniqueItems cannot be set to true since the runtime complexity "
                                       "becomes quadratic")
    props = _properties(node)
    extra = node.get("additionalProperties")
    if extra is not None:
        if props and extra is not True:
            yield (*path, "additionalProperties"), ("Forbidden: additionalProperties and properties are mutual "
                                                    "exclusive")
        if isinstance(extra, dict):
            reason = "inside additionalProperties applying to object metadata" if in_meta else no_default
            yield from _openapi(extra, (*path, "additionalProperties"), root=False, in_meta=in_meta,
                                no_default=reason)
    embedded = node.get("x-kubernetes-embedded-resource") is True
    for key, sub in props.items():
        sub_meta, reason = in_meta, no_default
        if (root or embedded) and key in _META_FIELDS:
            sub_meta = True
            if root:
                reason = f"in top-level {key}"
        yield from _openapi(sub, (*path, "properties", key), root=False, in_meta=sub_meta, no_default=reason)
    for sub_path, sub in _children(node, path):
        if len(sub_path) > len(path) and sub_path[len(path)] in ("properties", "additionalProperties"):
            continue
        yield from _openapi(sub, sub_path, root=False, in_meta=in_meta, no_default=no_default)
    if node.get("x-kubernetes-preserve-unknown-fields") is False:
        yield (*path, "x-kubernetes-preserve-unknown-fields"), "Invalid value: false: must be true or undefined"
    yield from _list_and_map_types(node, path)
    pattern = node.get("pattern")
    if pattern and (perl := _PERL_ONLY.search(pattern)):
        yield (*path, "pattern"), (f"Invalid value: {_quote(pattern)}: must be a valid regular expression, but "
                                   f"isn't: error parsing regexp: invalid or unsupported Perl syntax: "
                                   f"`{perl.group(1)}`")
    for i, rule in enumerate(node.get("x-kubernetes-validations") or []):
        if isinstance(rule, dict) and not rule.get("rule"):
            yield (*path, "x-kubernetes-validations", i, "rule"), "Required value: rule is not specified"


def _list_and_map_types(node: dict[str, Any], path: SchemaPath) -> Iterator[Issue]:
    kind = node.get("type") or ""
    map_type = node.get("x-kubernetes-map-type")
    if map_type is not None:
        if kind != "object":
            yield (*path, "type"), _must_be(kind, "object", "x-kubernetes-map-type is specified")
        if map_type not in ("atomic", "granular"):
            yield (*path, "x-kubernetes-map-type"), (f'Unsupported value: {_quote(map_type)}: supported values: '
                                                     '"atomic", "granular"')
    list_type = node.get("x-kubernetes-list-type")
    if list_type is not None:
        if kind != "array":
            yield (*path, "type"), _must_be(kind, "array", "x-kubernetes-list-type is specified")
        if list_type not in ("atomic", "set", "map"):
            yield (*path, "x-kubernetes-list-type"), (f'Unsupported value: {_quote(list_type)}: supported values: '
                                                      '"atomic", "map", "set"')
    keys = node.get("x-kubernetes-list-map-keys") or []
    if keys and list_type != "map":
        yield (*path, "x-kubernetes-list-type"), (
            "Required value: must be map if x-kubernetes-list-map-keys is non-empty" if list_type is None
            else f"Invalid value: {_quote(list_type)}: must be map if x-kubernetes-list-map-keys is non-empty")
    if list_type == "map":
        items = node.get("items")
        if not keys:
            yield (*path, "x-kubernetes-list-map-keys"), ("Required value: must not be empty if "
                                                          "x-kubernetes-list-type is map")
        if items is None:
            yield (*path, "items"), "Required value: must have a schema if x-kubernetes-list-type is map"
        elif isinstance(items, dict):
            if items.get("type") != "object":
                yield (*path, "items", "type"), (f"Invalid value: {_quote(items.get('type') or '')}: must be "
                                                 "object if parent array's x-kubernetes-list-type is map")
            item_props = _properties(items)
            if any(key not in item_props for key in keys):
                yield (*path, "x-kubernetes-list-map-keys"), ("Invalid value: entries must all be names of item "
                                                              "properties")
            if len(set(keys)) != len(keys):
                yield (*path, "x-kubernetes-list-map-keys"), "Invalid value: must not contain duplicate entries"


# ---------------------------------------------------------------------------- structural invariants


def _invariants(node: dict[str, Any], path: SchemaPath, level: str) -> Iterator[Issue]:
    """validateStructuralInvariants."""
    kind = node.get("type") or ""
    items = node.get("items")
    if kind == "array" and not isinstance(items, dict):
        yield (*path, "items"), "Required value: must be specified"
    if isinstance(items, dict):
        yield from _invariants(items, (*path, "items"), ITEMS)
    props = _properties(node)
    for key, sub in props.items():
        yield from _invariants(sub, (*path, "properties", key), FIELD)
    extra = node.get("additionalProperties")
    if extra is not None:
        if level == ROOT:
            yield (*path, "additionalProperties"), "Forbidden: must not be used at the root"
        if isinstance(extra, dict):
            yield from _invariants(extra, (*path, "additionalProperties"), FIELD)
    int_or_string = node.get("x-kubernetes-int-or-string") is True
    preserve = node.get("x-kubernetes-preserve-unknown-fields") is True
    embedded = node.get("x-kubernetes-embedded-resource") is True
    if int_or_string and preserve:
        yield (*path, "x-kubernetes-preserve-unknown-fields"), ("Invalid value: true: must be false if "
                                                                "x-kubernetes-int-or-string is true")
    if int_or_string and embedded:
        yield (*path, "x-kubernetes-embedded-resource"), ("Invalid value: true: must be false if "
                                                          "x-kubernetes-int-or-string is true")
    any_of, all_of = node.get("anyOf"), node.get("allOf")
    skip_any_of = _is_int_or_string_any_of(any_of)
    skip_first_all_of = isinstance(all_of, list) and bool(all_of) and isinstance(all_of[0], dict) \
        and _is_int_or_string_any_of(all_of[0].get("anyOf"))
    yield from _value_validation(node, path, skip_any_of, skip_first_all_of)
    if embedded and kind != "object":
        yield (*path, "type"), _must_be(kind, "object", "x-kubernetes-embedded-resource is true")
    elif not kind and not int_or_string and not preserve:
        yield (*path, "type"), f"Required value: {_EMPTY_TYPE[level]}"
    if embedded and extra is not None:
        yield (*path, "additionalProperties"), "Forbidden: must not be used if x-kubernetes-embedded-resource is set"
    if level == ROOT and kind and kind != "object":
        yield (*path, "type"), f"Invalid value: {_quote(kind)}: must be object at the root"
    check_metadata = level == ROOT or embedded
    for key in ("kind", "apiVersion"):
        if check_metadata and key in props and (props[key].get("type") or "") != "string":
            value = _quote(props[key].get("type") or "")
            yield (*path, "properties", key, "type"), f"Invalid value: {value}: must be string"
    if "metadata" in props:
        yield from _metadata(props["metadata"], (*path, "properties", "metadata"), check_metadata, level)
    if embedded and not preserve and not props:
        yield (*path, "properties"), ("Required value: must not be empty if x-kubernetes-embedded-resource is true "
                                      "without x-kubernetes-preserve-unknown-fields")


def _is_int_or_string_any_of(value: Any) -> bool:
    if not isinstance(value, list) or len(value) != 2:
        return False
    return [{k: v for k, v in entry.items() if not _is_zero(v)} if isinstance(entry, dict) else entry
            for entry in value] == _INT_OR_STRING_ANY_OF


def _metadata(node: dict[str, Any], path: SchemaPath, check_metadata: bool, level: str) -> Iterator[Issue]:
    kind = node.get("type") or ""
    if check_metadata and kind != "object":
        yield (*path, "type"), f"Invalid value: {_quote(kind)}: must be object"
    if level != ROOT:
        return
    rest = {k: v for k, v in node.items()
            if k in _STRUCTURAL_KEYS and k not in ("type", "default") and not _is_zero(v)}
    props = rest.get("properties")
    if isinstance(props, dict) and set(props) <= {"name", "generateName"}:
        rest.pop("properties")
    if rest:
        yield path, ("Forbidden: must not specify anything other than name and generateName, but metadata is "
                     "implicitly specified")


def _value_validation(node: dict[str, Any], path: SchemaPath, skip_any_of: bool,
                      skip_first_all_of: bool) -> Iterator[Issue]:
    """validateValueValidation: what anyOf/allOf/oneOf/not may hold."""
    if not skip_any_of:
        for i, sub in enumerate(node.get("anyOf") or []):
            yield from _nested(sub, (*path, "anyOf", i), False)
    for i, sub in enumerate(node.get("allOf") or []):
        yield from _nested(sub, (*path, "allOf", i), skip_first_all_of and i == 0)
    for i, sub in enumerate(node.get("oneOf") or []):
        yield from _nested(sub, (*path, "oneOf", i), False)
    if isinstance(node.get("not"), dict):
        yield from _nested(node["not"], (*path, "not"), False)


_NESTED_FORBIDDEN = (
    ("type", "must be empty to be structural"),
    ("additionalProperties", "must be undefined to be structural"),
    ("default", "must be undefined to be structural"),
    ("title", "must be empty to be structural"),
    ("description", "must be empty to be structural"),
    ("nullable", "must be false to be structural"),
    ("x-kubernetes-preserve-unknown-fields", "must be false to be structural"),
    ("x-kubernetes-embedded-resource", "must be false to be structural"),
    ("x-kubernetes-int-or-string", "must be false to be structural"),
    ("x-kubernetes-list-map-keys", "must be empty to be structural"),
    ("x-kubernetes-list-type", "must be undefined to be structural"),
    ("x-kubernetes-map-type", "must be undefined to be structural"),
    ("x-kubernetes-validations", "must be empty to be structural"),
)


def _nested(node: Any, path: SchemaPath, skip_any_of: bool) -> Iterator[Issue]:
    """validateNestedValueValidation: inside a logic junctor only value validations are allowed."""
    if not isinstance(node, dict):
        return
    yield from _value_validation(node, path, skip_any_of, False)
    if isinstance(node.get("items"), dict):
        yield from _nested(node["items"], (*path, "items"), False)
    props = _properties(node)
    for key, sub in props.items():
        yield from _nested(sub, (*path, "properties", key), False)
    for key, message in _NESTED_FORBIDDEN:
        value = node.get(key)
        present = value is not None if key in ("additionalProperties", "default", "x-kubernetes-list-type",
                                               "x-kubernetes-map-type") else not _is_zero(value)
        if present:
            yield (*path, key), f"Forbidden: {message}"
    if "metadata" in props:
        yield (*path, "properties", "metadata"), "Forbidden: must not be specified in a nested context"


def _completeness(root: dict[str, Any]) -> Iterator[Issue]:
    """validateStructuralCompleteness: properties and items that the root's value validations
    constrain are specified structurally too."""
    yield from _complete_value_validation(root, root, (), ())


def _complete_value_validation(v: dict[str, Any], s: dict[str, Any] | None, s_path: SchemaPath,
                               v_path: SchemaPath) -> Iterator[Issue]:
    if s is None:
        yield s_path, f"Required value: because it is defined in {_show_path(v_path)}"
        return
    if isinstance(v.get("not"), dict):
        yield from _complete_nested(v["not"], s, s_path, (*v_path, "not"))
    for key in ("allOf", "anyOf", "oneOf"):
        for i, sub in enumerate(v.get(key) or []):
            if isinstance(sub, dict):
                yield from _complete_nested(sub, s, s_path, (*v_path, key, i))


def _complete_nested(v: dict[str, Any], s: dict[str, Any] | None, s_path: SchemaPath,
                     v_path: SchemaPath) -> Iterator[Issue]:
    if s is None:
        yield s_path, f"Required value: because it is defined in {_show_path(v_path)}"
        return
    yield from _complete_value_validation(v, s, s_path, v_path)
    if isinstance(v.get("items"), dict):
        items = s.get("items") if isinstance(s.get("items"), dict) else None
        yield from _complete_nested(v["items"], items, (*s_path, "items"), (*v_path, "items"))
    s_props = _properties(s)
    v_props = _properties(v)
    for key, sub in v_props.items():
        if not isinstance(sub, dict):
            continue
        if key not in s_props:
            yield (*s_path, "properties", key), (f"Required value: because it is defined in "
                                                 f"{_show_path((*v_path, 'properties', key))}")
        else:
            yield from _complete_nested(sub, s_props[key], (*s_path, "properties", key), (*v_path, "properties", key))
