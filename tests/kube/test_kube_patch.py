"""bot.kube.patch: RFC 7386 merge patch and RFC 6902 JSON patch, with the RFCs' examples."""

from __future__ import annotations

import copy

import pytest

from bot.kube.patch import PatchError, json_patch, merge_patch

# RFC 7386 Appendix A: (target, patch, result)
MERGE_EXAMPLES = [
    ({"a": "b"}, {"a": "c"}, {"a": "c"}),
    ({"a": "b"}, {"b": "c"}, {"a": "b", "b": "c"}),
    ({"a": "b"}, {"a": None}, {}),
    ({"a": "b", "b": "c"}, {"a": None}, {"b": "c"}),
    ({"a": ["b"]}, {"a": "c"}, {"a": "c"}),
    ({"a": "c"}, {"a": ["b"]}, {"a": ["b"]}),
    ({"a": {"b": "c"}}, {"a": {"b": "d", "c": None}}, {"a": {"b": "d"}}),
    ({"a": [{"b": "c"}]}, {"a": [1]}, {"a": [1]}),
    (["a", "b"], ["c", "d"], ["c", "d"]),
    ({"a": "b"}, ["c"], ["c"]),
    ({"a": "foo"}, None, None),
    ({"a": "foo"}, "bar", "bar"),
    ({"e": None}, {"a": 1}, {"e": None, "a": 1}),
    ([1, 2], {"a": "b", "c": None}, {"a": "b"}),
    ({}, {"a": {"bb": {"ccc": None}}}, {"a": {"bb": {}}}),
]


@pytest.mark.parametrize(("target", "patch", "expected"), MERGE_EXAMPLES)
def test_merge_patch_rfc7386_examples(target, patch, expected):
    before = copy.deepcopy(target)
    assert merge_patch(target, patch) == expected
    assert target == before


def test_merge_patch_does_not_alias_the_patch():
    patch = {"a": {"b": [1, 2]}}
    result = merge_patch({}, patch)
    result["a"]["b"].append(3)
    assert patch == {"a": {"b": [1, 2]}}


def test_merge_patch_deep_nesting_is_iterative():
    patch: dict = {}
    node = patch
    for _ in range(5000):
        node["x"] = {}
        node = node["x"]
    node["leaf"] = 1
    result = merge_patch({}, patch)
    for _ in range(5000):
        result = result["x"]
    assert result == {"leaf": 1}


# RFC 6902 Appendix A: (document, patch, result)
JSON_EXAMPLES = [
    ({"foo": "bar"}, [{"op": "add", "path": "/baz", "value": "qux"}], {"baz": "qux", "foo": "bar"}),
    ({"foo": ["bar", "baz"]}, [{"op": "add", "path": "/foo/1", "value": "qux"}], {"foo": ["bar", "qux", "baz"]}),
    ({"baz": "qux", "foo": "bar"}, [{"op": "remove", "path": "/baz"}], {"foo": "bar"}),
    ({"foo": ["bar", "qux", "baz"]}, [{"op": "remove", "path": "/foo/1"}], {"foo": ["bar", "baz"]}),
    ({"baz": "qux", "foo": "bar"}, [{"op": "replace", "path": "/baz", "value": "boo"}],
     {"baz": "boo", "foo": "bar"}),
    ({"foo": {"bar": "baz", "waldo": "fred"}, "qux": {"corge": "grault"}},
     [{"op": "move", "from": "/foo/waldo", "path": "/qux/thud"}],
     {"foo": {"bar": "baz"}, "qux": {"corge": "grault", "thud": "fred"}}),
    ({"foo": ["all", "grass", "cows", "eat"]}, [{"op": "move", "from": "/foo/1", "path": "/foo/3"}],
     {"foo": ["all", "cows", "eat", "grass"]}),
    ({"baz": "qux", "foo": ["a", 2, "c"]},
     [{"op": "test", "path": "/baz", "value": "qux"}, {"op": "test", "path": "/foo/1", "value": 2}],
     {"baz": "qux", "foo": ["a", 2, "c"]}),
    ({"foo": "bar"}, [{"op": "add", "path": "/child", "value": {"grandchild": {}}}],
     {"foo": "bar", "child": {"grandchild": {}}}),
    ({"foo": "bar"}, [{"op": "add", "path": "/baz", "value": "qux", "xyz": 123}], {"foo": "bar", "baz": "qux"}),
    ({"/": 9, "~1": 10}, [{"op": "test", "path": "/~01", "value": 10}], {"/": 9, "~1": 10}),
    ({"foo": ["bar"]}, [{"op": "add", "path": "/foo/-", "value": ["abc", "def"]}],
     {"foo": ["bar", ["abc", "def"]]}),
    ({"foo": {"bar": 1}}, [{"op": "copy", "from": "/foo", "path": "/baz"}],
     {"foo": {"bar": 1}, "baz": {"bar": 1}}),
    ({"foo": 1}, [{"op": "replace", "path": "", "value": [1]}], [1]),
    ({"foo": 1}, [{"op": "test", "path": "/foo", "value": 1.0}], {"foo": 1}),
]


@pytest.mark.parametrize(("doc", "ops", "expected"), JSON_EXAMPLES)
def test_json_patch_rfc6902_examples(doc, ops, expected):
    before = copy.deepcopy(doc)
    assert json_patch(doc, ops) == expected
    assert doc == before


def test_copy_is_independent():
    result = json_patch({"a": {"b": 1}}, [{"op": "copy", "from": "/a", "path": "/c"},
                                          {"op": "replace", "path": "/c/b", "value": 2}])
    assert result == {"a": {"b": 1}, "c": {"b": 2}}


@pytest.mark.parametrize(("doc", "ops", "message"), [
    ({"foo": "bar"}, [{"op": "add", "path": "/baz/bat", "value": "qux"}], "does not exist"),
    ({"/": 9, "~1": 10}, [{"op": "test", "path": "/~01", "value": "10"}], "test failed"),
    ({"foo": True}, [{"op": "test", "path": "/foo", "value": 1}], "test failed"),
    ({"foo": "bar"}, [{"op": "remove", "path": "/nope"}], "does not exist"),
    ({"foo": "bar"}, [{"op": "replace", "path": "/nope", "value": 1}], "does not exist"),
    ({"foo": [1]}, [{"op": "add", "path": "/foo/2", "value": 1}], "out of bounds"),
    ({"foo": [1]}, [{"op": "add", "path": "/foo/01", "value": 1}], "invalid array index"),
    ({"foo": [1]}, [{"op": "remove", "path": "/foo/-"}], "invalid array index"),
    ({"foo": 1}, [{"op": "frobnicate", "path": "/foo"}], "unknown op"),
    ({"foo": 1}, [{"op": "add", "value": 1}], "missing 'path'"),
    ({"foo": 1}, [{"op": "add", "path": "/x"}], "missing 'value'"),
    ({"foo": 1}, [{"op": "move", "path": "/x"}], "missing 'from'"),
    ({"foo": {"a": 1}}, [{"op": "move", "from": "/foo", "path": "/foo/a/b"}], "own child"),
    ({"foo": 1}, [{"op": "add", "path": "foo", "value": 1}], "invalid JSON pointer"),
    ({"foo": 1}, [{"op": "remove", "path": ""}], "whole document"),
    ({"foo": 1}, {"op": "add"}, "must be an array"),
    ({"foo": 1}, ["add"], "not an object"),
    ({"foo": 1}, [{"op": "add", "path": "/foo/x", "value": 1}], "not an object or array"),
])
def test_json_patch_errors(doc, ops, message):
    before = copy.deepcopy(doc)
    with pytest.raises(PatchError, match=message):
        json_patch(doc, ops)
    assert doc == before


def test_json_patch_is_all_or_nothing():
    doc = {"a": 1}
    with pytest.raises(PatchError, match="operation 1"):
        json_patch(doc, [{"op": "add", "path": "/b", "value": 2}, {"op": "test", "path": "/a", "value": 2}])
    assert doc == {"a": 1}
