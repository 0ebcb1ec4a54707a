"""Validation of what decides where files are written (Destination and State Store paths,
aggregatedYAML file names), of the bookkeeping branch, of `spec.api`'s apiVersion/kind and of
the file-size cap; and `validate` never crashing, whatever the input."""

from pathlib import Path

import git
import pytest
from cli import run_validate
from paths import write_files

from bot.model.objects import Ref
from bot.platform.loader import GitTreeSource, load_platform, load_platform_dir
from bot.platform.validate.platform import invalid_objects, validate_platform
from bot.platform.validate.stores import filename_error, path_error
from bot.settings import state_branch_conflict

GIT_STORE = """apiVersion: platform.kratix.io/v1alpha1
kind: GitStateStore
metadata: {{name: {name}}}
spec:
  url: {url}
{extra}"""

DESTINATION = """apiVersion: platform.kratix.io/v1alpha1
kind: Destination
metadata: {{name: {name}}}
spec:
  path: {path}
  stateStoreRef: {{kind: {kind}, name: {store}}}
{extra}"""

PROMISE = """apiVersion: platform.kratix.io/v1alpha1
kind: Promise
metadata:
  name: {name}
spec:
  api:
{api_head}    metadata: {{name: things.test.io}}
    spec:
      group: test.io
      names: {{kind: Thing, plural: things}}
      scope: Namespaced
      versions:
        - name: v1
          served: true
          storage: true
          schema:
            openAPIV3Schema:
{schema}"""
CRD_HEAD = "    apiVersion: apiextensions.k8s.io/v1\n    kind: CustomResourceDefinition\n"
SIMPLE_SCHEMA = "              type: object\n              properties: {spec: {type: object}}\n"


def _store(name: str = "store", url: str = "https://git.example.com/state.git", extra: str = "") -> str:
    return GIT_STORE.format(name=name, url=url, extra=extra)


def _dest(name: str, path: str, store: str = "store", kind: str = "GitStateStore", extra: str = "") -> str:
    return DESTINATION.format(name=name, path=path, store=store, kind=kind, extra=extra)


def _errors(root: Path) -> list[tuple[str, int, str, str]]:
    problems = validate_platform(load_platform_dir(root))
    return [(p.source.file, p.source.line, p.field, p.message) for p in problems if p.severity == "error"]


# ---------------------------------------------------------------------------- paths (issue item 3)


@pytest.mark.parametrize("path", [".", "/", "./", "", "prod", "clusters/prod", "a.b/c-d", "x/./y"])
def test_safe_paths(path):
    assert path_error(path) is None


@pytest.mark.parametrize(
    ("path", "fragment"),
    [
        ("..", "must not contain '..' segments"),
        ("../..", "must not contain '..' segments"),
        ("x/../prod", "must not contain '..' segments"),
        ("../../../tmp/x", "must not contain '..' segments"),
        ("a/..", "must not contain '..' segments"),
        ("/prod", "must be a relative path, not the absolute path '/prod'"),
        ("/etc/passwd", "must be a relative path"),
        ("//", "must be a relative path"),
        ("a\\..\\b", "not a backslash"),
        ("a\0b", "NUL"),
        (5, "must be a string"),
    ],
)
def test_unsafe_paths(path, fragment):
    assert fragment in path_error(path)


@pytest.mark.parametrize("name", ["aggregated.yaml", "all.yaml", "..yaml", "a..b.yaml", ""])
def test_safe_filenames(name):
    assert filename_error(name) is None


@pytest.mark.parametrize(
    ("name", "why"),
    [
        ("../../../escape.yaml", "is a path leaving the Destination's directory"),
        ("..", "is a path leaving the Destination's directory"),
        ("/etc/escape.yaml", "is an absolute path"),
        ("sub/all.yaml", "is a path with a directory part"),
        ("..\\escape.yaml", "is a path leaving the Destination's directory"),
        (".", "is a directory"),
    ],
)
def test_unsafe_filenames(name, why):
    message = filename_error(name)
    assert message.startswith("must be a plain file name, not a path") and why in message


@pytest.mark.parametrize("path", ["../..", "x/../prod", "/prod", "../../../tmp/x"])
def test_validate_rejects_an_escaping_destination_path(tmp_path, path):
    write_files(tmp_path, {"s.yaml": _store(), "d.yaml": _dest("d", f"'{path}'")})
    errors = _errors(tmp_path)
    assert [(f, line, field) for f, line, field, _ in errors] == [("d.yaml", 5, "spec.path")]


@pytest.mark.parametrize("kind", ["GitStateStore", "BucketStateStore"])
@pytest.mark.parametrize("path", ["../../../tmp/x", "/abs/path", "a/../../b"])
def test_validate_rejects_an_escaping_state_store_path(tmp_path, kind, path):
    spec = ("  url: https://git.example.com/s.git\n" if kind == "GitStateStore" else
            "  bucketName: b\n  endpoint: s3.example.com\n  secretRef: {name: creds}\n")
    write_files(tmp_path, {"s.yaml": f"apiVersion: platform.kratix.io/v1alpha1\nkind: {kind}\nmetadata: {{name: s}}\n"
                                     f"spec:\n{spec}  path: '{path}'\n"})
    errors = _errors(tmp_path)
    assert [(f, field) for f, _line, field, _ in errors] == [("s.yaml", "spec.path")]
    assert errors[0][1] == len(spec.splitlines()) + 5  # the line of spec.path


def test_root_store_and_destination_paths_are_accepted(tmp_path):
    write_files(tmp_path, {"s.yaml": _store(extra="  path: /\n"), "d.yaml": _dest("d", "/"),
                           "e.yaml": _dest("e", "'./team-a/'")})
    assert _errors(tmp_path) == []


def test_validate_rejects_an_escaping_aggregated_filename(tmp_path):
    extra = "  filepath: {mode: aggregatedYAML, filename: ../../../escape.yaml}\n"
    write_files(tmp_path, {"s.yaml": _store(), "d.yaml": _dest("d", "d", extra=extra)})
    assert [(f, field) for f, _, field, _ in _errors(tmp_path)] == [("d.yaml", "spec.filepath.filename")]


@pytest.mark.parametrize("mode", ["nestedByMetadata", "none"])
def test_filename_with_other_modes_is_accepted_and_ignored(tmp_path, mode):
    # Kratix types filename as a plain optional string and only uses it for aggregatedYAML.
    extra = f"  filepath: {{mode: {mode}, filename: whatever.yaml}}\n"
    write_files(tmp_path, {"s.yaml": _store(), "d.yaml": _dest("d", "d", extra=extra)})
    assert validate_platform(load_platform_dir(tmp_path)) == []


def test_filename_of_another_type_is_still_an_error(tmp_path):
    extra = "  filepath: {mode: none, filename: [a]}\n"
    write_files(tmp_path, {"s.yaml": _store(), "d.yaml": _dest("d", "d", extra=extra)})
    assert [(field, msg) for _, _, field, msg in _errors(tmp_path)] == [
        ("spec.filepath.filename", "must be a string, not list")]


def test_empty_aggregated_filename_takes_the_default(tmp_path):
    extra = "  filepath: {mode: aggregatedYAML, filename: ''}\n"
    write_files(tmp_path, {"s.yaml": _store(), "d.yaml": _dest("d", "d", extra=extra)})
    platform = load_platform_dir(tmp_path)
    assert validate_platform(platform) == []
    assert platform.destinations["d"].filename == "aggregated.yaml"


def test_a_promise_name_that_is_a_path_is_an_error(tmp_path):
    write_files(tmp_path, {"p.yaml": "apiVersion: platform.kratix.io/v1alpha1\nkind: Promise\n"
                                     "metadata: {name: a/../../../../prod}\nspec: {}\n"})
    errors = _errors(tmp_path)
    assert [(field, line) for _, line, field, _ in errors] == [("metadata.name", 3)]
    assert "invalid name 'a/../../../../prod'" in errors[0][3]


def test_destinations_resolving_to_the_same_path_of_one_store_are_an_error(tmp_path):
    write_files(tmp_path, {"s.yaml": _store(), "a.yaml": _dest("a", "prod"), "b.yaml": _dest("b", "./prod/")})
    assert [(f, field) for f, _, field, _ in _errors(tmp_path)] == [("b.yaml", "spec.path")]


def test_destinations_resolving_to_the_same_place_through_two_stores_are_an_error(tmp_path):
    write_files(tmp_path, {
        "s.yaml": _store("one", extra="  path: clusters\n"),
        "t.yaml": _store("two", url="https://git.example.com/state.git/", extra="  branch: main\n"),
        "a.yaml": _dest("a", "prod", store="one"),
        "b.yaml": _dest("b", "clusters/prod", store="two"),
    })
    errors = _errors(tmp_path)
    assert [(f, field) for f, _, field, _ in errors] == [("b.yaml", "spec.path")]
    assert "resolves to 'clusters/prod' in the same Git repository branch as Destination a" in errors[0][3]


def test_same_path_on_other_branches_or_buckets_is_fine(tmp_path):
    bucket = ("apiVersion: platform.kratix.io/v1alpha1\nkind: BucketStateStore\nmetadata: {name: b}\n"
              "spec: {bucketName: b, endpoint: s3.example.com, secretRef: {name: c}}\n")
    write_files(tmp_path, {
        "s.yaml": _store("one"),
        "t.yaml": _store("two", extra="  branch: other\n"),
        "u.yaml": bucket,
        "a.yaml": _dest("a", "prod", store="one"),
        "b.yaml": _dest("b", "prod", store="two"),
        "c.yaml": _dest("c", "prod", store="b", kind="BucketStateStore"),
    })
    assert _errors(tmp_path) == []


def test_invalid_objects_names_what_the_engine_must_not_reconcile(tmp_path):
    write_files(tmp_path, {
        "s.yaml": _store(),
        "bad-store.yaml": _store("bad", extra="  path: ../../x\n"),
        "ok.yaml": _dest("ok", "ok"),
        "d.yaml": _dest("escape", "../.."),
        "f.yaml": _dest("f", "f", extra="  filepath: {mode: aggregatedYAML, filename: ../x.yaml}\n"),
        "p.yaml": "apiVersion: platform.kratix.io/v1alpha1\nkind: Promise\nmetadata: {name: a/../b}\nspec: {}\n",
    })
    bad = invalid_objects(load_platform_dir(tmp_path))
    assert set(bad) == {Ref("GitStateStore", "bad"), Ref("Destination", "escape"), Ref("Destination", "f"),
                        Ref("Promise", "a/../b")}
    assert bad[Ref("Destination", "escape")][0].startswith("spec.path: must not contain '..' segments")


# ---------------------------------------------------------------------------- stateBranch (item 4)


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        ("main", "must not be 'main'"),
        ("master", "must not be 'master'"),
        ("''", "must not be empty"),
        ("'bad..name'", "must not contain '..'"),
        ("'state branch'", "must not contain ' '"),
        ("'-state'", "must not start with '-'"),
        ("'state.lock'", "may end with '.lock'"),
        ("'a/.hidden'", "may start with '.'"),
        ("HEAD", "'HEAD' is not allowed"),
        ("5", "must be a branch name (a string), not int"),
    ],
)
def test_a_bad_state_branch_is_reported_at_its_line(tmp_path, value, fragment):
    write_files(tmp_path, {".promisebot.yaml": f"exclude: []\nstateBranch: {value}\n"})
    problems = validate_platform(load_platform_dir(tmp_path))
    assert [(p.source.file, p.source.line, p.field, p.severity) for p in problems] == [
        (".promisebot.yaml", 2, "stateBranch", "error")]
    assert fragment in problems[0].message and "using the default settings" in problems[0].message


def test_a_bad_state_branch_is_never_used(tmp_path):
    write_files(tmp_path, {".promisebot.yaml": "stateBranch: main\n"})
    assert load_platform_dir(tmp_path).settings.state_branch == "promisebot/state"


def test_state_branch_equal_to_a_git_store_branch_is_an_error(tmp_path):
    write_files(tmp_path, {".promisebot.yaml": "# settings\nstateBranch: deploy\n",
                           "s.yaml": _store(extra="  branch: deploy\n"), "t.yaml": _store("other")})
    errors = _errors(tmp_path)
    assert [(f, line, field) for f, line, field, _ in errors] == [(".promisebot.yaml", 2, "stateBranch")]
    assert "'deploy' is the branch GitStateStore store (s.yaml:1) writes to" in errors[0][3]


def test_default_state_branch_equal_to_a_git_store_branch_is_reported_on_the_store(tmp_path):
    write_files(tmp_path, {"s.yaml": _store(extra="  branch: promisebot/state\n")})
    assert [(f, line, field) for f, line, field, _ in _errors(tmp_path)] == [("s.yaml", 6, "spec.branch")]


def test_a_valid_state_branch_is_fine(tmp_path):
    write_files(tmp_path, {".promisebot.yaml": "stateBranch: platform/bookkeeping\n", "s.yaml": _store()})
    platform = load_platform_dir(tmp_path)
    assert validate_platform(platform) == []
    assert platform.settings.state_branch == "platform/bookkeeping"


def test_state_branch_is_checked_in_a_commit_too(tmp_path):
    repo = git.Repo.init(tmp_path, initial_branch="work")
    write_files(tmp_path, {".promisebot.yaml": "exclude: []\n\nstateBranch: master\n"})
    repo.index.add([".promisebot.yaml"])
    repo.index.commit("settings", author=git.Actor("t", "t@example.com"))
    (tmp_path / ".promisebot.yaml").write_text("stateBranch: fine\n")  # the commit is what counts
    problems = validate_platform(load_platform(GitTreeSource(tmp_path, "HEAD")))
    assert [(p.source.file, p.source.line, p.field) for p in problems] == [(".promisebot.yaml", 3, "stateBranch")]


def test_state_branch_conflict_helper():
    assert state_branch_conflict("promisebot/state", "main") is None
    assert "stateBranch 'main'" in state_branch_conflict("main", "main")
    assert state_branch_conflict("deploy", "refs/heads/deploy") is not None


# ---------------------------------------------------------------------------- spec.api apiVersion/kind (item 11)


@pytest.mark.parametrize(
    "head",
    ["    apiVersion: apiextensions.k8s.io/v1beta1\n    kind: CustomResourceDefinition\n",
     "    apiVersion: apiextensions.k8s.io/v1\n    kind: Deployment\n"],
)
def test_other_api_version_or_kind_only_warns(tmp_path, head):
    write_files(tmp_path, {"p.yaml": PROMISE.format(name="p", api_head=head, schema=SIMPLE_SCHEMA)})
    problems = validate_platform(load_platform_dir(tmp_path))
    assert [(p.severity, p.source.line) for p in problems] == [("warning", 7 if "v1beta1" in head else 8)]
    assert "whatever it says (Kratix ignores this field)" in problems[0].message
    result = run_validate(str(tmp_path))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "valid: 0 error(s), 1 warning(s)" in result.stdout


@pytest.mark.parametrize("missing", ["apiVersion", "kind"])
def test_api_version_and_kind_are_required(tmp_path, missing):
    head = "".join(line + "\n" for line in CRD_HEAD.splitlines() if missing not in line)
    write_files(tmp_path, {"p.yaml": PROMISE.format(name="p", api_head=head, schema=SIMPLE_SCHEMA)})
    assert [(field, msg) for _, _, field, msg in _errors(tmp_path)] == [(f"spec.api.{missing}", "required")]


# ---------------------------------------------------------------------------- file size cap (item 15)


def _big_promise(target_bytes: int) -> str:
    """A Promise whose API schema has enough documented fields to weigh target_bytes."""
    field = ("                    field{i}:\n                      type: string\n"
             "                      description: \"" + "x" * 200 + "\"\n")
    head = PROMISE.format(name="big", api_head=CRD_HEAD,
                          schema="              type: object\n              properties:\n                spec:\n"
                                 "                  type: object\n                  properties:\n")
    parts, size = [head], len(head)
    while size < target_bytes:
        parts.append(field.format(i=len(parts)))
        size += len(parts[-1])
    return "".join(parts)


def test_a_promise_of_1_4_mb_loads_and_validates(tmp_path):
    text = _big_promise(1_400_000)
    assert 1_400_000 <= len(text) < 1_500_000
    write_files(tmp_path, {"p.yaml": text})
    platform = load_platform_dir(tmp_path)
    assert validate_platform(platform) == []
    assert platform.settings.max_file_bytes == 3 * 2**20
    assert len(platform.promises["big"].api.schema["properties"]["spec"]["properties"]) > 4000


def test_the_cap_still_applies_above_3_mib(tmp_path):
    write_files(tmp_path, {"big.yaml": "# padding\n" * (3 * 2**20 // 10 + 1)})
    problems = validate_platform(load_platform_dir(tmp_path))
    assert [p.source.file for p in problems] == ["big.yaml"]
    assert "over the 3145728-byte cap" in problems[0].message and "not parsed" in problems[0].message


def test_the_cap_is_still_configurable(tmp_path):
    write_files(tmp_path, {".promisebot.yaml": "maxFileBytes: 1000000\n", "p.yaml": _big_promise(1_400_000)})
    problems = validate_platform(load_platform_dir(tmp_path))
    assert [p.source.file for p in problems] == ["p.yaml"]
    assert "over the 1000000-byte cap" in problems[0].message


# ---------------------------------------------------------------------------- never a traceback


ODD_DOCUMENTS = {
    "d1.yaml": _dest("d1", "[a, b]"),
    "d2.yaml": _dest("d2", "{a: 1}", extra="  filepath: x\n"),
    "d3.yaml": _dest("d3", "d3", extra="  filepath: {mode: aggregatedYAML, filename: {a: 1}}\n"),
    "d4.yaml": _dest("d4", "'\\0'", extra="  filepath: {mode: [x], filename: null}\n"),
    "d5.yaml": _dest("d5", "d5", kind="[x]", store="{a: b}"),
    "s1.yaml": _store("s1", url="[x]", extra="  path: 5\n  branch: [main]\n"),
    "s2.yaml": _store("s2", extra="  path: null\n  branch: null\n"),
    "s3.yaml": "apiVersion: platform.kratix.io/v1alpha1\nkind: BucketStateStore\nmetadata: {name: s3}\n"
               "spec: {path: '../x', endpoint: [1], bucketName: {}}\n",
    "p1.yaml": PROMISE.format(name="p1", api_head="    apiVersion: [x]\n    kind: {a: b}\n", schema=SIMPLE_SCHEMA),
    "p2.yaml": "apiVersion: platform.kratix.io/v1alpha1\nkind: Promise\nmetadata: {name: p2}\nspec: {api: nope}\n",
    "p3.yaml": PROMISE.format(name="p3", api_head=CRD_HEAD, schema="              type: object\n"
                              "              properties: 5\n              items: [1, 2]\n"
                              "              anyOf: {a: 1}\n              required: a\n"),
    "p4.yaml": PROMISE.format(name="p4", api_head=CRD_HEAD, schema="              type: object\n"
                              "              properties:\n                spec:\n                  type: [a]\n"
                              "                  pattern: '(('\n                  items: {items: {items: 5}}\n"
                              "                  not: 3\n                  additionalProperties: [1]\n"),
    "p5.yaml": PROMISE.format(name="p5", api_head=CRD_HEAD, schema="              []\n"),
    "p6.yaml": PROMISE.format(name="p6", api_head=CRD_HEAD, schema="              type: object\n"
                              "              properties:\n                spec:\n                  type: object\n"
                              "                  properties:\n                    s: {type: string, pattern: '\\p{L}+'}\n"
                              "                    d: {type: integer, default: {a: [1]}}\n"
                              "                    m: {type: integer, multipleOf: 0}\n"),
    ".promisebot.yaml": "stateBranch: [x]\nmaxFileBytes: lots\n",
}


def test_odd_inputs_are_reported_never_raised(tmp_path):
    write_files(tmp_path, ODD_DOCUMENTS)
    platform = load_platform_dir(tmp_path)
    problems = validate_platform(platform)
    invalid_objects(platform)
    files = {p.source.file for p in problems if p.severity == "error"}
    assert files >= set(ODD_DOCUMENTS) - {"s2.yaml"}
    assert not any("None" in p.message for p in problems)
    result = run_validate(str(tmp_path))
    assert result.returncode == 1
    assert "Traceback" not in result.stderr + result.stdout


def test_state_branch_conflict_uses_the_file_value_when_another_setting_is_bad(tmp_path):
    write_files(tmp_path, {".promisebot.yaml": "maxFileBytes: lots\nstateBranch: deploy\n",
                           "s.yaml": _store(extra="  branch: deploy\n")})
    errors = _errors(tmp_path)
    assert [(f, line, field) for f, line, field, _ in errors] == [(".promisebot.yaml", 1, ""),
                                                                 (".promisebot.yaml", 2, "stateBranch")]
    assert "'deploy' is the branch GitStateStore store" in errors[1][3]
