"""Safe YAML loading: lines per field, and every hostile input reported, never a crash or hang."""

import pytest

from bot.yamlload import MAX_ALIAS_EXPANSION, format_path, load_yaml_bytes, parse_path

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


def test_deep_nesting_is_reported_not_a_crash():
    assert "nesting too deep" in _only_problem("[" * 3000 + "]" * 3000).message


def test_size_cap():
    problem = _only_problem("a: " + "x" * 100 + "\n", cap=50)
    assert "over the 50-byte cap" in problem.message


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
