"""Safe YAML loading: lines per field, and every hostile input reported, never a crash or hang."""

import datetime
import time

import pytest
import yaml

from bot.platform import yamlload
from bot.platform.yamlload import (
    MAX_ALIAS_EXPANSION,
    MAX_NESTING_DEPTH,
    YamlLoadError,
    format_path,
    load_first_document,
    load_yaml_bytes,
    parse_path,
)

CAP = 1 << 20


def _load(text, cap=CAP):
    data = text.encode() if isinstance(text, str) else text
    return load_yaml_bytes(data, "f.yaml", cap)


def _only_problem(text, cap=CAP):
    result = _load(text, cap)
    assert result.docs == []
    assert len(result.problems) == 1, result.problems
    return result.problems[0]


DOC = """# leading comment
apiVersion: v1
kind: Thing
metadata:
  name: x
  labels:
    kratix.io/promise-name: p
spec:
  versions:
    - name: v1
      served: true
    - name: v2
"""


def test_every_field_has_its_line():
    doc = _load(DOC).docs[0]
    assert doc.line == 2
    assert doc.line_of("kind") == 3
    assert doc.line_of("metadata.labels[kratix.io/promise-name]") == 7
    assert doc.line_of("spec.versions[0].name") == 10
    assert doc.line_of("spec.versions[1]") == 12
    assert doc.line_of("spec.versions[0].served") == 11


def test_missing_fields_point_at_the_nearest_existing_parent():
    doc = _load(DOC).docs[0]
    assert doc.line_of("spec.versions[1].schema.openAPIV3Schema") == 12
    assert doc.line_of("status.message") == doc.line


def test_paths_render_like_kubernetes_and_parse_back():
    path = ("spec", "versions", 0, "labels", "kratix.io/x", "a-b")
    assert format_path(path) == "spec.versions[0].labels[kratix.io/x].a-b"
    assert parse_path(format_path(path)) == path


def test_multi_document_files_keep_each_document_and_skip_empty_ones():
    result = _load("a: 1\n---\n---\n# only a comment\n---\nb: 2\n")
    assert [(d.index, d.line, d.data) for d in result.docs] == [(0, 1, {"a": 1}), (3, 6, {"b": 2})]
    assert result.problems == []


def test_kubernetes_style_scalars():
    data = _load("when: 2024-01-02\n1: one\ntrue: yes\nport: 080\n").docs[0].data
    assert data["when"] == "2024-01-02"  # timestamps stay strings
    assert data["1"] == "one"  # non-string keys become their text
    assert data["true"] is True


def test_merge_keys_and_aliases_give_independent_copies():
    data = _load("base: &b {x: 1, y: 2}\nm:\n  <<: *b\n  y: 3\nn: *b\n").docs[0].data
    assert data["m"] == {"x": 1, "y": 3}
    data["n"]["x"] = 99
    assert data["base"]["x"] == 1


def test_billion_laughs_is_refused_without_expanding():
    lines = ['a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for i in range(1, 12):
        lines.append(f"a{i}: &a{i} [" + ",".join([f"*a{i - 1}"] * 10) + "]")
    problem = _only_problem("\n".join(lines) + "\n")
    assert "alias bomb" in problem.message


def test_moderate_alias_use_is_fine():
    text = "env: &env [{name: A, value: b}]\n" + "".join(f"c{i}: *env\n" for i in range(100))
    assert len(_load(text).docs[0].data) == 101
    assert MAX_ALIAS_EXPANSION > 1000


def test_recursive_alias_is_refused():
    assert "recursive YAML alias" in _only_problem("a: &x\n  - *x\n").message


DEEP_MESSAGE = ("nesting too deep: more than 100 levels of nested mappings and lists (promisebot's limit is "
                "100 levels); refused")


class _PurePythonLoader(yaml.SafeLoader):
    """The loader PyYAML gives without libyaml (no C nesting limit, a recursive composer)."""


_PurePythonLoader.add_constructor("tag:yaml.org,2002:timestamp", yaml.SafeLoader.construct_yaml_str)


@pytest.fixture(params=["libyaml", "pure-python"])
def parser(request, monkeypatch):
    """Both parsers PyYAML may give: libyaml (whose newer versions have their own nesting limit,
    with another message) and the pure-Python one."""
    if request.param == "pure-python":
        monkeypatch.setattr(yamlload, "_Loader", _PurePythonLoader)
        monkeypatch.setattr(yamlload, "_SafeLoader", yaml.SafeLoader)
    elif not hasattr(yaml, "CSafeLoader"):
        pytest.skip("PyYAML without libyaml")
    return request.param


def _block(depth):
    return "".join("  " * i + "a:\n" for i in range(depth)) + "  " * depth + "x\n"


@pytest.mark.parametrize("text, line", [
    ("[" * 3000 + "]" * 3000, 1),  # libyaml >= 0.2.5 in PyYAML 6.0.4 wheels fires its own limit at 1000
    ("[" * 500 + "]" * 500, 1),  # below libyaml's limit: a RecursionError in PyYAML's composers
    (_block(500), 101),
    ("- " * 101 + "x\n", 1),
])
def test_deep_nesting_is_reported_not_a_crash(parser, text, line):
    problem = _only_problem(text)
    assert problem.message == DEEP_MESSAGE
    assert problem.source.line == line
    with pytest.raises(YamlLoadError, match="nesting too deep: more than 100 levels") as err:
        load_first_document(text)
    assert err.value.line == line


def test_nesting_up_to_the_limit_is_fine(parser):
    doc = _load(_block(MAX_NESTING_DEPTH)).docs[0]
    assert doc.line_of("a" + ".a" * 99) == 100
    assert load_first_document(_block(MAX_NESTING_DEPTH))["a"]["a"]["a"] is not None


def test_aliases_nesting_past_the_limit_are_refused(parser):
    # 60 + 50 written levels, each under the limit, but 110 once the alias is expanded
    text = "a0: &a0 " + "[" * 60 + "x" + "]" * 60 + "\na1: " + "[" * 50 + "*a0" + "]" * 50 + "\n"
    assert _only_problem(text).message == DEEP_MESSAGE.replace("lists (", "lists once aliases are expanded (")
    with pytest.raises(YamlLoadError, match="once aliases are expanded"):
        load_first_document(text)


def test_a_chain_of_merge_keys_is_refused_not_a_crash(parser):
    text = "a0: &a0 {x: 1}\n" + "".join(f"a{i}: &a{i} {{<<: *a{i - 1}}}\n" for i in range(1, 3000))
    assert "nesting too deep" in _only_problem(text).message


def test_size_cap():
    problem = _only_problem("a: " + "x" * 100 + "\n", cap=50)
    assert problem.message == "file is 104 bytes, over the 50-byte cap (the maxFileBytes setting); not parsed"


def test_size_cap_on_a_file_read_only_up_to_the_cap_does_not_invent_a_size():
    # Issue 10: callers read cap + 1 bytes of a 3,000,092-byte file; it was reported as "1048577 bytes".
    cap = 1_048_576
    head = b"a" * (cap + 1)
    problem = load_yaml_bytes(head, "big.yaml", cap).problems[0]
    assert problem.message == ("file is more than 1048576 bytes, over the 1048576-byte cap (the maxFileBytes "
                               "setting); not parsed")
    problem = load_yaml_bytes(head, "big.yaml", cap, size=3_000_092).problems[0]
    assert problem.message.startswith("file is 3000092 bytes, over the 1048576-byte cap")


def test_binary_content_is_reported():
    assert "contains NUL bytes" in _only_problem(b"a: 1\x00").message
    problem = _only_problem(b"a: 1\nb: \xff\xfe\n")
    assert "not valid UTF-8" in problem.message
    assert problem.source.line == 2


def test_malformed_yaml_names_line_and_column():
    problem = _only_problem("a: 1\nb: [1, 2\nc: 3\n")
    assert problem.message.startswith("malformed YAML")
    assert "line" in problem.message and "column" in problem.message
    assert problem.source.line >= 2


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("a: !!python/object/apply:os.system ['true']\n", "unsupported YAML tag"),
        ("a: 1\na: 2\n", "duplicate key 'a'"),
        ("? [a, b]\n: c\n", "mapping key must be a plain value"),
        ("a: !custom x\n", "could not determine a constructor"),
    ],
)
def test_unsafe_or_ambiguous_content_is_reported(text, fragment):
    assert fragment in _only_problem(text).message


def test_a_non_mapping_document_is_reported_and_the_others_kept():
    result = _load("a: 1\n---\n- x\n---\njust text\n---\nb: 2\n")
    assert [d.data for d in result.docs] == [{"a": 1}, {"b": 2}]
    assert [(p.source.line, p.message.split(",")[0]) for p in result.problems] == [
        (3, "document 2 is a list"),
        (5, "document 3 is a scalar"),
    ]


def test_duplicate_anchor_names_both_lines(parser):
    problem = _only_problem("a: &x 1\nb: &x 2\n")
    assert problem.message == "malformed YAML: found duplicate anchor 'x' (first defined on line 1) (line 2, column 4)"
    assert problem.source.line == 2


def test_first_document_only_and_safe_types():
    assert load_first_document("a: 1\nwhen: 2024-01-02\n---\n[") == {"a": 1, "when": datetime.date(2024, 1, 2)}
    assert load_first_document("") is None and load_first_document("# nothing\n") is None
    assert load_first_document("---\n") is None
    with pytest.raises(YamlLoadError, match="recursive YAML alias"):
        load_first_document("a: &x [*x]\n")
    with pytest.raises(YamlLoadError, match=r"malformed YAML: .*\(line 2, column 1\)"):
        load_first_document("a: [\n")


def test_a_big_document_without_aliases_loads_in_linear_time():
    # Issue 10: 300k plain keys (3.3 MB) are not an alias bomb; composing them took 23 s.
    text = "".join(f"k{i:06d}: v\n" for i in range(300_000))
    started = time.monotonic()
    result = _load(text, cap=10 << 20)
    assert result.problems == [] and len(result.docs[0].data) == 300_000
    assert time.monotonic() - started < 15  # ~2 s here; generous for a busy machine
