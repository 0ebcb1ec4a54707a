"""Kubernetes' rules for a CRD version's openAPIV3Schema (structural schemas, apiextensions v1),
`properties:` left empty, defaults checked against their schema, and patterns."""

import random

import pytest

from bot.platform.schema import apply_defaults, check_schema, schema_errors, validate
from bot.platform.schema_structural import structural_errors
from bot.platform.yamlload import format_path


def _root(spec_props=None, **spec):
    spec_schema = {"type": "object", **spec}
    if spec_props is not None:
        spec_schema["properties"] = spec_props
    return {"type": "object", "properties": {"spec": spec_schema}}


def _issues(schema):
    return [(format_path(e.path), e.message) for e in check_schema(schema)]


@pytest.mark.parametrize(
    ("schema", "path", "message"),
    [
        (_root({"size": {"description": "no type"}}), "properties.spec.properties.size.type",
         "Required value: must not be empty for specified object fields"),
        (_root({"tags": {"type": "array", "items": {"description": "x"}}}), "properties.spec.properties.tags.items.type",
         "Required value: must not be empty for specified array items"),
        ({"properties": {"spec": {"type": "object"}}}, "type", "Required value: must not be empty at the root"),
        ({"type": "array", "items": {"type": "string"}}, "type", 'Invalid value: "array": must be object at the root'),
        (_root({"tags": {"type": "array"}}), "properties.spec.properties.tags.items", "Required value: must be specified"),
        ({"type": "object", "properties": {"metadata": {"type": "object", "properties": {"labels": {"type": "object"}}}}},
         "properties.metadata", "Forbidden: must not specify anything other than name and generateName, but metadata "
         "is implicitly specified"),
        ({"type": "object", "properties": {"metadata": {"type": "object", "description": "meta"}}},
         "properties.metadata", "Forbidden: must not specify anything other than name and generateName"),
        ({"type": "object", "properties": {"metadata": {"type": "string"}}}, "properties.metadata.type",
         'Invalid value: "string": must be object'),
        ({"type": "object", "properties": {"kind": {"type": "integer"}}}, "properties.kind.type",
         'Invalid value: "integer": must be string'),
        (_root({"a": {"type": "string"}}, uniqueItems=True), "properties.spec.uniqueItems",
         "Forbidden: uniqueItems cannot be set to true since the runtime complexity becomes quadratic"),
        (_root({"a": {"type": "string"}}, additionalProperties={"type": "string"}),
         "properties.spec.additionalProperties", "Forbidden: additionalProperties and properties are mutual exclusive"),
        (_root({"a": {"type": "string"}}, additionalProperties=False),
         "properties.spec.additionalProperties", "Forbidden: additionalProperties and properties are mutual exclusive"),
        (_root(**{"x-kubernetes-preserve-unknown-fields": False}), "properties.spec.x-kubernetes-preserve-unknown-fields",
         "Invalid value: false: must be true or undefined"),
        (_root(**{"$ref": "#/definitions/x"}), "properties.spec.$ref", "Forbidden: $ref is not supported"),
        (_root(definitions={"x": {"type": "string"}}), "properties.spec.definitions",
         "Forbidden: definitions is not supported"),
        (_root(dependencies={"a": ["b"]}), "properties.spec.dependencies", "Forbidden: dependencies is not supported"),
        (_root(patternProperties={"^a": {"type": "string"}}), "properties.spec.patternProperties",
         "Forbidden: patternProperties is not supported"),
        (_root(id="x"), "properties.spec.id", "Forbidden: id is not supported"),
        ({"type": "object", "properties": {"l": {"type": "array", "items": [{"type": "string"}]}}},
         "properties.l.items", "Forbidden: items must be a schema object and not an array"),
        (_root({"a": {"type": "null"}}), "properties.spec.properties.a.type",
         "Forbidden: type cannot be set to null, use nullable as an alternative"),
        (_root({"a": {"type": "strin"}}), "properties.spec.properties.a.type",
         'Unsupported value: "strin": supported values: "array", "boolean", "integer", "number", "object", "string"'),
        (_root({"a": {"type": "string", "anyOf": [{"type": "string"}, {"pattern": "^x"}]}}),
         "properties.spec.properties.a.anyOf[0].type", "Forbidden: must be empty to be structural"),
        (_root({"a": {"type": "string", "allOf": [{"description": "d"}]}}),
         "properties.spec.properties.a.allOf[0].description", "Forbidden: must be empty to be structural"),
        (_root({"a": {"type": "string", "oneOf": [{"default": "x"}]}}),
         "properties.spec.properties.a.oneOf[0].default", "Forbidden: must be undefined to be structural"),
        (_root({"a": {"type": "string", "not": {"nullable": True}}}),
         "properties.spec.properties.a.not.nullable", "Forbidden: must be false to be structural"),
        (_root({"a": {"type": "object", "anyOf": [{"properties": {"metadata": {}}}]}}),
         "properties.spec.properties.a.anyOf[0].properties.metadata",
         "Forbidden: must not be specified in a nested context"),
        ({"type": "object", "properties": {"spec": {"type": "object"}}, "anyOf": [{"properties": {"other": {}}}]},
         "anyOf", "Invalid value: only [Description Type Format Title"),
        ({"type": "object", "additionalProperties": {"type": "string"}}, "additionalProperties",
         "Invalid value: only [Description"),
        (_root({"p": {"x-kubernetes-int-or-string": True, "x-kubernetes-preserve-unknown-fields": True}}),
         "properties.spec.properties.p.x-kubernetes-preserve-unknown-fields",
         "Invalid value: true: must be false if x-kubernetes-int-or-string is true"),
        (_root({"r": {"type": "string", "x-kubernetes-embedded-resource": True}}),
         "properties.spec.properties.r.type", 'Invalid value: "string": must be object if x-kubernetes-embedded-resource'),
        (_root({"r": {"type": "object", "x-kubernetes-embedded-resource": True}}),
         "properties.spec.properties.r.properties",
         "Required value: must not be empty if x-kubernetes-embedded-resource is true without "
         "x-kubernetes-preserve-unknown-fields"),
        (_root({"l": {"type": "string", "x-kubernetes-list-type": "set"}}), "properties.spec.properties.l.type",
         'Invalid value: "string": must be array if x-kubernetes-list-type is specified'),
        (_root({"l": {"type": "array", "items": {"type": "object"}, "x-kubernetes-list-type": "map"}}),
         "properties.spec.properties.l.x-kubernetes-list-map-keys",
         "Required value: must not be empty if x-kubernetes-list-type is map"),
        (_root({"m": {"type": "object", "x-kubernetes-map-type": "loose"}}),
         "properties.spec.properties.m.x-kubernetes-map-type",
         'Unsupported value: "loose": supported values: "atomic", "granular"'),
        (_root({"a": {"type": "string", "pattern": "^(?!x)"}}), "properties.spec.properties.a.pattern",
         "invalid or unsupported Perl syntax: `(?!`"),
        ({"type": "object", "properties": {"metadata": {"type": "object", "default": {}}}},
         "properties.metadata.default", "Forbidden: must not be set in top-level metadata"),
        ({"type": "object", "nullable": True}, "nullable", "Forbidden: nullable cannot be true at the root"),
        ({"type": "object", "properties": {"spec": {"type": "object"}}, "allOf": [{"properties": {"x": {}}}]},
         "properties.x", "Required value: because it is defined in openAPIV3Schema.allOf[0].properties.x"),
        (_root({"a": {"type": "string", "enum": ["x", "y"], "default": "z"}}), "properties.spec.properties.a.default",
         'invalid default: unsupported value "z": must be one of "x", "y"'),
        (_root({"o": {"type": "object", "properties": {"n": {"type": "integer"}}, "default": {"n": "one"}}}),
         "properties.spec.properties.o.default.n", "invalid default: must be of type integer, not string"),
        (_root({"o": {"type": "object", "properties": {"n": {"type": "integer"}}, "default": {"m": 1}}}),
         "properties.spec.properties.o.default.m", "invalid default: unknown field (not in the schema)"),
        (_root({"a": {"type": 5}}), "properties.spec.properties.a.type", "must be a string, not integer"),
        (_root({"a": {"type": "string", "maxLength": "ten"}}), "properties.spec.properties.a.maxLength",
         "must be an integer, not string"),
        (_root({"a": {"type": "string"}}, required="a"), "properties.spec.required", "must be a list of strings"),
        ({"type": "object", "properties": []}, "properties", "must be a mapping of names to schemas, not array"),
    ],
)
def test_kubernetes_refuses(schema, path, message):
    issues = _issues(schema)
    assert any(p == path and message in m for p, m in issues), issues


@pytest.mark.parametrize(
    "schema",
    [
        _root({"p": {"x-kubernetes-int-or-string": True}}),
        _root({"p": {"x-kubernetes-int-or-string": True, "anyOf": [{"type": "integer"}, {"type": "string"}]}}),
        _root({"p": {"x-kubernetes-int-or-string": True,
                     "allOf": [{"anyOf": [{"type": "integer"}, {"type": "string"}]}, {"pattern": "^[0-9]+%?$"}]}}),
        _root({"free": {"x-kubernetes-preserve-unknown-fields": True}}),
        _root({"r": {"type": "object", "x-kubernetes-embedded-resource": True,
                     "x-kubernetes-preserve-unknown-fields": True}}),
        _root({"a": {"type": "string", "anyOf": [{"pattern": "^x"}, {"enum": ["y"]}], "not": {"enum": ["z"]}}}),
        _root({"m": {"type": "object", "additionalProperties": {"type": "string"}}}),
        _root({"m": {"type": "object", "additionalProperties": True, "properties": {"a": {"type": "string"}}}}),
        _root({"l": {"type": "array", "items": {"type": "object", "required": ["name"],
                                                "properties": {"name": {"type": "string"}}},
                     "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"]}}),
        {"type": "object", "properties": {"metadata": {"type": "object", "properties": {
            "name": {"type": "string", "maxLength": 20}, "generateName": {"type": "string"}}}}},
        {"type": "object", "properties": {"apiVersion": {"type": "string"}, "kind": {"type": "string"},
                                          "spec": {"type": "object"}}},
        {"type": "object", "description": "root", "required": ["spec"], "properties": {"spec": {"type": "object"}},
         "x-kubernetes-validations": [{"rule": "has(self.spec)"}]},
        # Kratix replaces status with its own schema: whatever the Promise says there is not used
        {"type": "object", "properties": {"spec": {"type": "object"}, "status": {"properties": {"x": {}}}}},
        _root({"a": {"type": "string", "enum": ["x", "y"], "default": "x"}}),
        _root({"o": {"type": "object", "default": {}, "properties": {"n": {"type": "integer", "default": 1}}}}),
        _root({"a": {"type": "string"}}, required=[]),
        _root({"a": {"type": "string", "enum": []}}),
        {"type": "object", "properties": {"spec": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}},
         "x-kubernetes-preserve-unknown-fields": True},
    ],
)
def test_kubernetes_accepts(schema):
    assert _issues(schema) == []


# ---------------------------------------------------------------------------- properties left empty (item 14)


def test_properties_left_empty_is_an_empty_map():
    schema = {"type": "object", "properties": {"spec": {"type": "object", "properties": None}}}
    assert check_schema(schema) == []
    request = {"apiVersion": "x/v1", "kind": "K", "metadata": {"name": "a"}, "spec": {}}
    assert apply_defaults(request, schema) == request
    assert validate(request, schema) == []
    errors = validate({**request, "spec": {"size": 1}}, schema)
    assert [(e.path, e.message) for e in errors] == [(("spec", "size"), "unknown field (not in the schema)")]


def test_properties_left_empty_at_the_root_and_null_keywords():
    schema = {"type": "object", "properties": None, "required": None, "description": None,
              "x-kubernetes-preserve-unknown-fields": True}
    assert check_schema(schema) == []
    assert validate({"apiVersion": "x/v1", "kind": "K", "spec": {"any": 1}}, schema) == []


def test_a_null_property_schema_is_an_empty_schema_so_it_needs_a_type():
    schema = _root({"a": None})
    assert _issues(schema) == [("properties.spec.properties.a.type",
                                "Required value: must not be empty for specified object fields")]


def test_properties_left_empty_in_a_promise_validates_requests(tmp_path):
    from bot.platform.loader import load_platform_dir
    from bot.platform.validate.platform import validate_platform

    (tmp_path / "p.yaml").write_text("""apiVersion: platform.kratix.io/v1alpha1
kind: Promise
metadata: {name: p}
spec:
  api:
    apiVersion: apiextensions.k8s.io/v1
    kind: CustomResourceDefinition
    metadata: {name: things.test.io}
    spec:
      group: test.io
      names: {kind: Thing, plural: things}
      scope: Namespaced
      versions:
        - name: v1
          served: true
          storage: true
          schema:
            openAPIV3Schema:
              type: object
              properties:
                spec:
                  type: object
                  properties:
""")
    (tmp_path / "r.yaml").write_text("apiVersion: test.io/v1\nkind: Thing\nmetadata: {name: r}\nspec: {}\n")
    (tmp_path / "s.yaml").write_text("apiVersion: test.io/v1\nkind: Thing\nmetadata: {name: s}\nspec: {x: 1}\n")
    problems = validate_platform(load_platform_dir(tmp_path))
    assert [(p.source.file, p.field, p.message) for p in problems] == [
        ("s.yaml", "spec.x", "unknown field (not in the schema)")]


# ---------------------------------------------------------------------------- patterns


def test_a_pattern_python_cannot_apply_is_a_warning_and_is_skipped():
    schema = _root({"name": {"type": "string", "pattern": "^\\p{L}+\\z"}})
    assert [(e.severity, format_path(e.path)) for e in check_schema(schema)] == [
        ("warning", "properties.spec.properties.name.pattern")]
    assert schema_errors(schema) == []
    assert validate({"spec": {"name": "héllo"}}, schema) == []


def test_validate_never_raises_on_a_broken_schema():
    errors = validate({"spec": {"n": 3}}, _root({"n": {"type": "integer", "multipleOf": 0}}))
    assert isinstance(errors, list)
    assert schema_errors(_root({"n": {"type": "integer", "multipleOf": 0}}))


# ---------------------------------------------------------------------------- never a traceback


def _garbage(rng: random.Random, depth: int = 0):
    keys = ["type", "properties", "items", "additionalProperties", "anyOf", "allOf", "oneOf", "not", "required",
            "enum", "default", "nullable", "pattern", "x-kubernetes-int-or-string", "metadata", "spec", "$ref",
            "x-kubernetes-preserve-unknown-fields", "x-kubernetes-embedded-resource", "x-kubernetes-list-type",
            "x-kubernetes-list-map-keys", "x-kubernetes-map-type", "dependencies", "minimum", "maxLength", "kind"]
    choice = rng.random()
    if depth > 4 or choice < 0.3:
        return rng.choice([None, True, False, 0, 1.5, "", "object", "array", "string", "(", "^a$", [], {}])
    if choice < 0.45:
        return [_garbage(rng, depth + 1) for _ in range(rng.randint(0, 3))]
    return {rng.choice(keys): _garbage(rng, depth + 1) for _ in range(rng.randint(0, 5))}


def test_random_schemas_never_raise():
    rng = random.Random(20240611)
    for _ in range(3000):
        schema = _garbage(rng)
        if isinstance(schema, dict):
            schema.setdefault("type", "object")
        check_schema(schema)
        structural_errors(schema)
        validate(_garbage(rng), schema if isinstance(schema, dict) else {})
        apply_defaults(_garbage(rng), schema if isinstance(schema, dict) else None)
