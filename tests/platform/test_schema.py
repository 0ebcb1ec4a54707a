"""Structural defaulting (Kubernetes' rules) and openAPIV3Schema validation."""

import pytest

from bot.platform.schema import apply_defaults, check_schema, validate

# The CronTab example of the Kubernetes CRD docs ("Defaulting"), plus nesting and arrays.
SCHEMA = {
    "type": "object",
    "properties": {
        "spec": {
            "type": "object",
            "properties": {
                "cronSpec": {"type": "string", "default": "5 0 * * *"},
                "image": {"type": "string"},
                "replicas": {"type": "integer", "minimum": 1, "maximum": 10, "default": 1},
                "backup": {  # object with no default of its own
                    "type": "object",
                    "properties": {"schedule": {"type": "string", "default": "@daily"}},
                },
                "storage": {  # default is an object, defaulted inside in turn
                    "type": "object",
                    "default": {},
                    "properties": {
                        "size": {"type": "string", "default": "1Gi"},
                        "class": {"type": "string", "default": "standard"},
                    },
                },
                "ports": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "properties": {
                            "name": {"type": "string"},
                            "protocol": {"type": "string", "default": "TCP"},
                        },
                    },
                },
                "labels": {"type": "object", "additionalProperties": {
                    "type": "object", "properties": {"weight": {"type": "integer", "default": 5}}}},
                "note": {"type": "string", "nullable": True, "default": "n/a"},
                "level": {"type": "string", "default": "info"},
                "comment": {"type": "string"},
            },
        },
    },
}


def _defaulted(spec):
    return apply_defaults({"apiVersion": "x.io/v1", "kind": "CronTab", "spec": spec}, SCHEMA)["spec"]


def test_absent_fields_of_a_present_object_get_their_defaults():
    got = _defaulted({"image": "nginx"})
    assert got["cronSpec"] == "5 0 * * *"
    assert got["replicas"] == 1
    assert got["image"] == "nginx"


def test_present_values_are_kept():
    assert _defaulted({"replicas": 3, "cronSpec": "* * * * */5"})["replicas"] == 3


def test_no_default_below_an_absent_parent_without_default():
    assert "backup" not in _defaulted({})


def test_defaults_apply_inside_a_present_nested_object():
    assert _defaulted({"backup": {}})["backup"] == {"schedule": "@daily"}


def test_a_default_object_is_itself_defaulted_inside():
    assert _defaulted({})["storage"] == {"size": "1Gi", "class": "standard"}
    assert _defaulted({"storage": {"size": "5Gi"}})["storage"] == {"size": "5Gi", "class": "standard"}


def test_defaults_apply_to_each_item_of_an_array_of_objects():
    got = _defaulted({"ports": [{"name": "http"}, {"name": "dns", "protocol": "UDP"}]})
    assert got["ports"] == [{"name": "http", "protocol": "TCP"}, {"name": "dns", "protocol": "UDP"}]


def test_defaults_apply_to_additional_properties_values():
    assert _defaulted({"labels": {"a": {}}})["labels"] == {"a": {"weight": 5}}


def test_whole_object_absent_means_no_spec_defaults():
    # spec itself has no default: a request without spec stays without one (as in Kubernetes).
    assert apply_defaults({"kind": "CronTab"}, SCHEMA) == {"kind": "CronTab"}


def test_null_of_non_nullable_field_takes_the_default_or_is_dropped():
    got = _defaulted({"level": None, "comment": None, "note": None})
    assert got["level"] == "info"  # non-nullable with default: defaulted
    assert "comment" not in got  # non-nullable without default: pruned
    assert got["note"] is None  # nullable: null kept


def test_input_is_not_modified():
    spec = {"ports": [{"name": "http"}]}
    _defaulted(spec)
    assert spec == {"ports": [{"name": "http"}]}


def test_defaulted_copies_are_independent():
    first, second = _defaulted({}), _defaulted({})
    first["storage"]["size"] = "9Gi"
    assert second["storage"]["size"] == "1Gi"
    assert SCHEMA["properties"]["spec"]["properties"]["storage"]["default"] == {}


def _errors(spec, props, required=()):
    schema = {"type": "object", "properties": {"spec": {"type": "object", "properties": props,
                                                        **({"required": list(required)} if required else {})}}}
    return [(".".join(map(str, e.path)), e.message) for e in validate({"spec": spec}, schema)]


@pytest.mark.parametrize(
    ("props", "spec", "fragment"),
    [
        ({"n": {"type": "integer"}}, {"n": "1"}, "must be of type integer, not string"),
        ({"n": {"type": "integer"}}, {"n": True}, "must be of type integer, not boolean"),
        ({"n": {"type": "number", "minimum": 2}}, {"n": 1.5}, "less than the minimum of 2"),
        ({"n": {"type": "integer", "maximum": 2, "exclusiveMaximum": True}}, {"n": 2}, "maximum"),
        ({"s": {"type": "string", "enum": ["a", "b"]}}, {"s": "c"}, 'unsupported value "c": must be one of "a", "b"'),
        ({"s": {"type": "string", "pattern": "^x+$"}}, {"s": "y"}, "does not match the pattern"),
        ({"s": {"type": "string", "minLength": 2}}, {"s": "y"}, "at least 2 characters"),
        ({"s": {"type": "string", "maxLength": 2}}, {"s": "yyy"}, "at most 2 characters"),
        ({"l": {"type": "array", "minItems": 1, "items": {"type": "string"}}}, {"l": []}, "at least 1 items"),
        ({"l": {"type": "array", "items": {"type": "string"}}}, {"l": [1]}, "must be of type string"),
        ({"p": {"x-kubernetes-int-or-string": True}}, {"p": [1]}, "integer or a string"),
        ({"m": {"type": "object", "additionalProperties": {"type": "integer"}}}, {"m": {"a": "x"}}, "type integer"),
        ({"o": {"type": "object", "properties": {"a": {"type": "string"}}}}, {"o": {"b": 1}}, "unknown field"),
        ({"ip": {"type": "string", "format": "ipv4"}}, {"ip": "300.1.1.1"}, "not a valid ipv4"),
        ({"ip": {"type": "string", "format": "ipv6"}}, {"ip": "1.2.3.4"}, "not a valid ipv6"),
        ({"c": {"type": "string", "format": "cidr"}}, {"c": "10.0.0.0"}, "not a valid cidr"),
        ({"h": {"type": "string", "format": "hostname"}}, {"h": "-bad-.example"}, "not a valid hostname"),
        ({"u": {"type": "string", "format": "uuid"}}, {"u": "nope"}, "not a valid uuid"),
        ({"d": {"type": "string", "format": "date-time"}}, {"d": "yesterday"}, "not a valid date-time"),
        ({"d": {"type": "string", "format": "duration"}}, {"d": "3 fortnights"}, "not a valid duration"),
        ({"b": {"type": "string", "format": "byte"}}, {"b": "***"}, "not a valid byte"),
        ({"m": {"type": "string", "format": "mac"}}, {"m": "00:11"}, "not a valid mac"),
        ({"e": {"type": "string", "format": "email"}}, {"e": "@"}, "not a valid email"),
    ],
)
def test_each_violation_is_reported_at_its_field(props, spec, fragment):
    errors = _errors(spec, props)
    assert len(errors) == 1, errors
    path, message = errors[0]
    assert path.startswith("spec." + next(iter(spec)))
    assert fragment in message


@pytest.mark.parametrize(
    ("props", "spec"),
    [
        ({"p": {"x-kubernetes-int-or-string": True}}, {"p": 80}),
        ({"p": {"x-kubernetes-int-or-string": True}}, {"p": "80%"}),
        ({"n": {"type": "string", "nullable": True}}, {"n": None}),
        ({"n": {"type": "string", "enum": ["a"], "nullable": True}}, {"n": None}),
        ({"f": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}}, {"f": {"any": {"thing": 1}}}),
        ({"ip": {"type": "string", "format": "ipv4"}}, {"ip": "10.1.2.3"}),
        ({"d": {"type": "string", "format": "duration"}}, {"d": "1h30m"}),
        ({"x": {"type": "string", "format": "some-unknown-format"}}, {"x": "anything"}),
        ({"r": {"type": "object", "x-kubernetes-embedded-resource": True, "x-kubernetes-preserve-unknown-fields": True}},
         {"r": {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}}}),
    ],
)
def test_valid_values_pass(props, spec):
    assert _errors(spec, props) == []


def test_missing_required_fields_are_reported_one_by_one():
    errors = _errors({}, {"a": {"type": "string"}, "b": {"type": "string"}}, required=["a", "b"])
    assert errors == [("spec.a", "required"), ("spec.b", "required")]


def test_null_is_refused_where_not_nullable():
    assert _errors({"n": None}, {"n": {"type": "string"}}) == [("spec.n", "must be of type string, not null")]


def test_top_level_allows_apiversion_kind_metadata_and_status_but_not_other_fields():
    schema = {"type": "object", "properties": {"spec": {"type": "object"}}}
    ok = {"apiVersion": "x/v1", "kind": "K", "metadata": {"name": "a", "labels": {}}, "status": {"x": 1}}
    assert validate(ok, schema) == []
    assert [e.path for e in validate({**ok, "extra": 1}, schema)] == [("extra",)]


def test_check_schema_reports_broken_schemas():
    assert check_schema({"type": "object", "properties": {"a": {"type": "strin"}}})
    assert check_schema({"type": "string"})[0].message == 'Invalid value: "string": must be object at the root'
    assert check_schema([]) != []
    assert check_schema(SCHEMA) == []
