"""Validation: every broken input yields its own precise error, in one run that never crashes;
the example platform and real-world Kratix YAML validate clean; the `validate` command."""

import json
import shutil
from pathlib import Path

import pytest
from cli import run_validate
from paths import EXAMPLE_PLATFORM, FIXTURES

from bot.platform.loader import load_platform_dir
from bot.platform.validate.platform import validate_platform

FIXTURES = FIXTURES
BROKEN = FIXTURES / "broken"
EXAMPLE = EXAMPLE_PLATFORM

# case file -> (line, field path, message fragment). One error per case; in the static files
# the offending line carries a "# expect" marker (checked below).
EXPECTED = {
    "yaml/malformed.yaml": (5, "", "malformed YAML: did not find expected ',' or ']'"),
    "yaml/billion-laughs.yaml": (1, "", "alias bomb"),
    "yaml/recursive-alias.yaml": (1, "", "recursive YAML alias"),
    "yaml/non-mapping.yml": (2, "", "document 1 is a list, not a mapping"),
    "yaml/duplicate-key.yaml": (3, "", "duplicate key 'kind' in a mapping"),
    "promises/api-no-kind.yaml": (6, "spec.api.kind", "required"),
    "promises/cluster-scoped.yaml": (16, "spec.api.spec.scope", "promise api needs to be namespace scoped; spec.api.spec.scope cannot be: Cluster"),
    "promises/two-storage.yaml": (17, "spec.api.spec.versions", "exactly one version must be marked storage: true"),
    "promises/no-kind.yaml": (13, "spec.api.spec.names.kind", "required"),
    "promises/no-plural.yaml": (13, "spec.api.spec.names.plural", "required"),
    "promises/bad-schema.yaml": (26, "spec.api.spec.versions[0].schema.openAPIV3Schema.properties.size.type",
                                 'Unsupported value: "strin": supported values: "array", "boolean", "integer", '
                                 '"number", "object", "string"'),
    "promises/schema-no-type.yaml": (28, "spec.api.spec.versions[0].schema.openAPIV3Schema.properties.spec.properties.size.type",
                                     "Required value: must not be empty for specified object fields"),
    "promises/schema-array-no-items.yaml": (28, "spec.api.spec.versions[0].schema.openAPIV3Schema.properties.spec.properties.tags.items",
                                            "Required value: must be specified"),
    "promises/schema-metadata.yaml": (25, "spec.api.spec.versions[0].schema.openAPIV3Schema.properties.metadata",
                                      "Forbidden: must not specify anything other than name and generateName, but "
                                      "metadata is implicitly specified"),
    "promises/schema-unique-items.yaml": (32, "spec.api.spec.versions[0].schema.openAPIV3Schema.properties.spec.properties.tags.uniqueItems",
                                          "Forbidden: uniqueItems cannot be set to true since the runtime complexity "
                                          "becomes quadratic"),
    "promises/schema-ref.yaml": (26, "spec.api.spec.versions[0].schema.openAPIV3Schema.properties.spec.$ref", "Forbidden: $ref is not supported"),
    "promises/schema-properties-and-additional.yaml": (30, "spec.api.spec.versions[0].schema.openAPIV3Schema.properties.spec.additionalProperties",
                                                       "Forbidden: additionalProperties and properties are mutual "
                                                       "exclusive"),
    "promises/schema-preserve-false.yaml": (27, "spec.api.spec.versions[0].schema.openAPIV3Schema.properties.spec.x-kubernetes-preserve-unknown-fields",
                                            "Invalid value: false: must be true or undefined"),
    "promises/schema-nested-type.yaml": (31, "spec.api.spec.versions[0].schema.openAPIV3Schema.properties.spec.properties.size.anyOf[0].type",
                                         "Forbidden: must be empty to be structural"),
    "promises/schema-bad-default.yaml": (31, "spec.api.spec.versions[0].schema.openAPIV3Schema.properties.spec.properties.size.default",
                                         'invalid default: unsupported value "huge": must be one of "small", "large"'),
    "promises/schema-root-not-object.yaml": (23, "spec.api.spec.versions[0].schema.openAPIV3Schema.type", 'Invalid value: "string": must be object at the root'),
    "promises/name-path.yaml": (4, "metadata.name", "invalid name 'a/../../../../prod'"),
    "promises/crd-name-mismatch.yaml": (10, "spec.api.metadata.name", 'must be spec.names.plural+"."+spec.group'),
    "promises/pipeline-wrong-kind.yaml": (10, "spec.workflows.resource.configure[0].kind",
                                          "unsupported pipeline \"p1\" with APIVersion \"Job/platform.kratix.io/v1alpha1\""),
    "promises/pipeline-spec-unknown.yaml": (17, "spec.workflows.resource.configure[0].spec.retries", "unknown field"),
    "promises/pipeline-top-unknown.yaml": (17, "spec.workflows.resource.configure[0].status", "unknown field"),
    "promises/container-unknown.yaml": (17, "spec.workflows.resource.configure[0].spec.containers[0].workDir",
                                        "unknown field"),
    "promises/dup-pipeline.yaml": (20, "spec.workflows.resource.configure[1].metadata.name",
                                   "duplicate pipeline name \"p1\" in workflow \"resource\" action \"configure\""),
    "promises/long-pipeline-name.yaml": (12, "spec.workflows.resource.configure[0].metadata.name",
                                         "resource.configure pipeline with name \"this-pipeline-name-is-far-too-long-for-kratix\" is too "
                                         "long. The name is used when generating resources for the pipeline,including "
                                         "the ServiceAccount which follows the format of \"long-pipeline-name-resource-"
                                         "configure-this-pipeline-name-is-far-too-long-for-kratix\", which cannot be "
                                         "longer than 60 characters in total"),
    "promises/container-no-image.yaml": (17, "spec.workflows.resource.configure[0].spec.containers[1].image", "required"),
    "promises/container-no-name.yaml": (15, "spec.workflows.resource.configure[0].spec.containers[0].name", "required"),
    "promises/dup-container.yaml": (17, "spec.workflows.resource.configure[0].spec.containers[1].name",
                                    "duplicate container name 'main'"),
    "promises/pull-policy.yaml": (17, "spec.workflows.resource.configure[0].spec.containers[0].imagePullPolicy",
                                  "unsupported value 'Sometimes': must be one of IfNotPresent, Always, Never"),
    "promises/env-no-name.yaml": (18, "spec.workflows.resource.configure[0].spec.containers[0].env[0].name", "required"),
    "promises/no-containers.yaml": (14, "spec.workflows.resource.configure[0].spec.containers",
                                    "at least one container is required"),
    "promises/short-interval.yaml": (8, "spec.workflows.config.reconciliationInterval",
                                     'spec.workflows.config.reconciliationInterval: Invalid value: "30s": must be at '
                                     "least 1m0s"),
    "promises/bad-interval.yaml": (8, "spec.workflows.config.reconciliationInterval",
                                   'time: invalid duration "soon"'),
    "promises/bad-timeout.yaml": (6, "metadata.annotations[promisebot.io/pipeline-timeout]", "invalid duration \"forever\""),
    "promises/duplicate-promise.yaml": (4, "metadata.name", "duplicate Promise/widget: also defined at base.yaml:19"),
    "promises/same-api.yaml": (14, "spec.api.spec.names.kind",
                               "Widget.test.promisebot.io is already provided by Promise widget (base.yaml:19)"),
    "promises/required-bad.yaml": (9, "spec.requiredPromises[1].version", "required"),
    "promises/bad-name.yaml": (4, "metadata.name", "invalid name 'Bad_Name'"),
    "promises/unknown-workflow-type.yaml": (7, "spec.workflows.cluster", "unknown field"),
    "promises/bad-selector.yaml": (8, "spec.destinationSelectors[0].matchLabels.env", "invalid label value 'not valid'"),
    "destinations/no-path.yaml": (5, "spec.path", "required"),
    "destinations/dup-path.yaml": (6, "spec.path", "path './base/' is already used in GitStateStore/store by "
                                   "Destination base-dest (base.yaml:9)"),
    "destinations/bad-store-kind.yaml": (8, "spec.stateStoreRef.kind", "unsupported value 'ConfigMapStore'"),
    "destinations/missing-store.yaml": (9, "spec.stateStoreRef.name", "GitStateStore/nowhere: not found"),
    "destinations/bad-mode.yaml": (11, "spec.filepath.mode", "unsupported value 'flat'"),
    "destinations/filename-path.yaml": (12, "spec.filepath.filename", "must be a plain file name, not a path"),
    "destinations/filename-escape.yaml": (12, "spec.filepath.filename", "must be a plain file name, not a path "
                                          "('../../../escape.yaml' is a path leaving the Destination's directory)"),
    "destinations/path-dotdot.yaml": (6, "spec.path", "must not contain '..' segments ('../..' would leave"),
    "destinations/path-alias.yaml": (6, "spec.path", "must not contain '..' segments ('x/../prod'"),
    "destinations/path-absolute.yaml": (6, "spec.path", "must be a relative path, not the absolute path '/prod'"),
    "destinations/same-place.yaml": (15, "spec.path", "path './base' resolves to 'base' in the same Git repository "
                                     "branch as Destination base-dest (base.yaml:9), through GitStateStore/store"),
    "destinations/bad-cleanup.yaml": (10, "spec.cleanup", "unsupported value 'some': must be one of none, all"),
    "destinations/strict-not-bool.yaml": (10, "spec.strictMatchLabels", "must be a boolean (true or false), not the string"),
    "destinations/init-not-bool.yaml": (11, "spec.initWorkloads.enabled", "must be a boolean"),
    "destinations/bad-label-key.yaml": (6, "metadata.labels[-env]", "invalid key '-env'"),
    "destinations/bad-label-value.yaml": (6, "metadata.labels.env", "invalid label value"),
    "destinations/label-not-string.yaml": (6, "metadata.labels.canary", "label values must be strings"),
    "destinations/duplicate-dest.yaml": (4, "metadata.name", "duplicate Destination/base-dest: also defined at base.yaml:9"),
    "stores/git-no-url.yaml": (5, "spec.url", "required"),
    "stores/git-bad-auth.yaml": (7, "spec.authMethod", "unsupported value 'token': must be one of basicAuth, ssh, githubApp"),
    "stores/git-password.yaml": (7, "spec.password", "looks like a credential"),
    "stores/git-url-credentials.yaml": (6, "spec.url", "URL embeds a user:password"),
    "stores/git-pem.yaml": (6, "metadata.annotations.note", "contains a PEM private key"),
    "stores/git-secretref-extra.yaml": (9, "spec.secretRef.key", "unknown field (allowed: name, namespace)"),
    "stores/git-ssh-no-secret.yaml": (5, "spec.secretRef", "required with authMethod ssh"),
    "stores/bucket-no-endpoint.yaml": (5, "spec.endpoint", "required"),
    "stores/bucket-bad-auth.yaml": (8, "spec.authMethod", "unsupported value 'OIDC': must be one of accessKey, IAM"),
    "stores/bucket-no-secret.yaml": (5, "spec.secretRef", "required with authMethod accessKey"),
    "stores/bucket-secret-key.yaml": (10, "spec.secretAccessKey", "looks like a credential"),
    "stores/bucket-insecure-string.yaml": (8, "spec.insecure", "must be a boolean"),
    "stores/git-path-escape.yaml": (7, "spec.path", "must not contain '..' segments ('../../../tmp/x'"),
    "stores/bucket-path-absolute.yaml": (8, "spec.path", "must be a relative path, not the absolute path"),
    "stores/git-branch-is-state-branch.yaml": (7, "spec.branch", "'promisebot/state' is the platform repo's "
                                               "bookkeeping branch (stateBranch 'promisebot/state')"),
    "stores/duplicate-store.yaml": (4, "metadata.name", "duplicate GitStateStore/store: also defined at base.yaml:2"),
    "requests/enum.yaml": (7, "spec.size", 'unsupported value "huge": must be one of "small", "large"'),
    "requests/type.yaml": (7, "spec.count", "must be of type integer, not string"),
    "requests/required.yaml": (5, "spec.owner", "required"),
    "requests/pattern.yaml": (6, "spec.owner", "does not match the pattern '^[a-z]+$'"),
    "requests/maximum.yaml": (7, "spec.count", "10 is greater than the maximum of 5"),
    "requests/unknown-field.yaml": (7, "spec.colour", "unknown field (not in the schema)"),
    "requests/format.yaml": (7, "spec.email", '"not-an-email" is not a valid email'),
    "requests/max-items.yaml": (7, "spec.tags", "must have at most 2 items (has 3)"),
    "requests/int-or-string.yaml": (7, "spec.port", "must be an integer or a string"),
    "requests/namespace-bad.yaml": (5, "metadata.namespace", "invalid name 'Team_A'"),
    "requests/name-too-long.yaml": (4, "metadata.name", "must be no more than 63 characters (is 64)"),
    "requests/bad-name.yaml": (4, "metadata.name", "invalid name 'Bad_Name'"),
    "requests/duplicate-request.yaml": (4, "metadata.name",
                                        "duplicate Widget.test.promisebot.io/default/first: also defined at base.yaml:80"),
    "requests/unserved-version.yaml": (1, "apiVersion", "version v2 of Widget.test.promisebot.io is not served by Promise "
                                       "widget (served: v1)"),
}

# Cases made by the test itself (binary content, sizes, file-system oddities), with a 20000-byte cap.
GENERATED = {
    "yaml/oversize.yaml": (1, "", "over the 20000-byte cap"),
    "yaml/binary.yaml": (1, "", "binary file (contains NUL bytes)"),
    "yaml/latin1.yaml": (2, "", "binary file (not valid UTF-8"),
    "yaml/directory.yaml": (1, "", "unreadable: a directory, not a file"),
    "yaml/dangling.yaml": (1, "", "unreadable: no such file"),
    "yaml/outside.yaml": (1, "", "unreadable: a symbolic link pointing outside the platform repo"),
}


def _make_generated(root: Path) -> None:
    (root / ".promisebot.yaml").write_text("maxFileBytes: 20000\n")
    (root / "yaml/oversize.yaml").write_text("# padding\n" * 3000)
    (root / "yaml/binary.yaml").write_bytes(b"apiVersion: v1\x00\x01\x02")
    (root / "yaml/latin1.yaml").write_bytes(b"apiVersion: v1\nkind: caf\xe9\n")
    (root / "yaml/directory.yaml").mkdir()
    (root / "yaml/dangling.yaml").symlink_to(root / "nowhere.yaml")
    outside = root.parent / "outside-secret.yaml"
    outside.write_text("apiVersion: v1\nkind: Secret\n")
    (root / "yaml/outside.yaml").symlink_to(outside)


def _problems_by_place(problems):
    return {(p.source.file, p.source.line, p.field): p.message for p in problems if p.severity == "error"}


def test_the_table_has_at_least_40_distinct_cases():
    assert len(EXPECTED) + len(GENERATED) >= 40
    assert len({(f, line, field) for f, (line, field, _) in EXPECTED.items()}) == len(EXPECTED)


def test_expected_lines_carry_the_marker():
    for file, (line, _field, _msg) in EXPECTED.items():
        if file.startswith("yaml/"):
            continue  # the loader's errors point where the parser stopped
        text = (BROKEN / file).read_text().splitlines()[line - 1]
        assert "# expect" in text, f"{file}:{line} is not the marked line: {text!r}"


def test_whole_broken_tree_in_one_run_reports_exactly_every_expected_error(tmp_path):
    root = tmp_path / "platform"
    shutil.copytree(BROKEN, root)
    _make_generated(root)

    problems = validate_platform(load_platform_dir(root))

    found = _problems_by_place(problems)
    expected = {**EXPECTED, **GENERATED}
    for file, (line, field, fragment) in expected.items():
        message = found.get((file, line, field))
        assert message is not None, f"missing {file}:{line}: {field}; got {[k for k in found if k[0] == file]}"
        assert fragment in message, f"{file}:{line}: {field}: {message!r} lacks {fragment!r}"
    unexpected = {k: v for k, v in found.items() if k[0] not in expected}
    assert not unexpected
    assert len(found) == len(expected)  # one error per case, none elsewhere (base.yaml is clean)


@pytest.mark.parametrize("case", sorted(EXPECTED))
def test_each_case_alone_yields_its_own_error(tmp_path, case):
    shutil.copy(BROKEN / "base.yaml", tmp_path / "base.yaml")
    (tmp_path / case).parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(BROKEN / case, tmp_path / case)
    line, field, fragment = EXPECTED[case]

    errors = [p for p in validate_platform(load_platform_dir(tmp_path)) if p.severity == "error"]

    assert [(p.source.file, p.source.line, p.field) for p in errors] == [(case, line, field)]
    assert fragment in errors[0].message


def test_base_objects_alone_are_valid(tmp_path):
    shutil.copy(BROKEN / "base.yaml", tmp_path / "base.yaml")
    assert validate_platform(load_platform_dir(tmp_path)) == []


def test_credential_values_never_appear_in_problems():
    problems = validate_platform(load_platform_dir(BROKEN))
    text = "\n".join(str(p) for p in problems)
    for secret in ("hunter2", "s3cr3t", "b3BlbnNzaC1rZXktdjEAAAAA", "abc123"):
        assert secret not in text


def test_missing_required_promise_is_only_a_warning():
    problems = validate_platform(load_platform_dir(BROKEN))
    warning = [p for p in problems if p.severity == "warning" and p.source.file == "promises/required-bad.yaml"]
    assert [(w.source.line, w.field) for w in warning] == [(9, "spec.requiredPromises[1].name")]
    assert "widget-two is not in this platform repo" in warning[0].message


def test_several_delete_pipelines_warn_that_only_the_first_runs(tmp_path):
    pipeline = """    - apiVersion: platform.kratix.io/v1alpha1
      kind: Pipeline
      metadata: {{name: {name}}}
      spec: {{containers: [{{name: c, image: example/x:v1}}]}}
"""
    (tmp_path / "p.yaml").write_text(
        "apiVersion: platform.kratix.io/v1alpha1\nkind: Promise\nmetadata: {name: p}\nspec:\n"
        "  workflows:\n   resource:\n    delete:\n" + pipeline.format(name="one") + pipeline.format(name="two"))
    problems = validate_platform(load_platform_dir(tmp_path))
    assert [(p.severity, p.field) for p in problems] == [("warning", "spec.workflows.resource.delete[1]")]
    assert "only the first will be used" in problems[0].message


def test_example_platform_is_valid():
    platform = load_platform_dir(EXAMPLE)
    assert validate_platform(platform) == []
    assert len(platform.promises) >= 2
    assert len(platform.destinations) == 3
    assert {d.filepath_mode for d in platform.destinations.values()} == {"nestedByMetadata", "aggregatedYAML", "none"}
    assert {s.kind for s in platform.state_stores.values()} == {"GitStateStore", "BucketStateStore"}
    with_deps = [p for p in platform.promises.values() if p.dependencies and p.pipelines("promise", "configure")]
    assert with_deps
    assert any(len(p.pipelines("resource", "configure")) >= 2 and p.pipelines("resource", "delete")
               for p in platform.promises.values())
    assert all(platform.requests_of(name) for name in platform.promises)


def test_real_world_kratix_yaml_validates_unchanged():
    platform = load_platform_dir(FIXTURES / "kratix")
    assert validate_platform(platform) == []
    assert platform.ignored == []
    postgres = platform.promises["postgresql"]
    assert [p.name for p in postgres.pipelines("resource", "configure")] == ["instance-configure"]
    assert postgres.destination_selectors == {"environment": "dev"}
    assert len(platform.requests_of("postgresql")) == 1
    assert len(platform.requests_of("app")) == 1


# ---------------------------------------------------------------------------- CLI


def test_cli_valid_platform_exits_0_with_a_summary():
    result = run_validate(str(EXAMPLE))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Promises: 2" in result.stdout
    assert "Destinations: 3" in result.stdout
    assert "valid: 0 error(s)" in result.stdout


def test_cli_invalid_platform_exits_1_listing_file_line_field():
    result = run_validate(str(BROKEN))
    assert result.returncode == 1
    assert "promises/container-no-image.yaml:17: spec.workflows.resource.configure[0].spec.containers[1].image: " \
           "required" in result.stdout.splitlines()


def test_cli_json_output(tmp_path):
    result = run_validate(str(BROKEN), "--output", "json")
    assert result.returncode == 1
    report = json.loads(result.stdout)
    assert report["valid"] is False
    places = {(p["file"], p["line"], p["field"]) for p in report["problems"] if p["severity"] == "error"}
    assert ("stores/git-no-url.yaml", 5, "spec.url") in places
    assert "widget" in report["objects"]["promises"]
    assert "default/first" in report["objects"]["requests"]["widget"]
    assert report["objects"]["ignored"] == ["requests/unserved-version.yaml:1"]

    ok = json.loads(run_validate(str(EXAMPLE), "--output", "json").stdout)
    assert ok["valid"] is True and ok["problems"] == []


def test_cli_usage_errors_exit_2(tmp_path):
    assert run_validate(str(tmp_path / "missing")).returncode == 2
    (tmp_path / "file").write_text("x")
    result = run_validate(str(tmp_path / "file"))
    assert result.returncode == 2
    assert "is not a directory" in result.stderr
    assert run_validate("--output", "xml").returncode == 2


def test_validate_checks_the_chatops_policy_in_the_settings_file(tmp_path):
    (tmp_path / ".promisebot.yaml").write_text("maxFileBytes: 100000\ncommands:\n  aply: {permission: write}\n"
                                               "apply:\n  mergeMethod: fastforward\n")
    result = run_validate(str(tmp_path))
    assert result.returncode == 1, result.stdout
    assert ".promisebot.yaml:3: commands.aply: unknown command" in result.stdout
    assert ".promisebot.yaml:5: apply.mergeMethod" in result.stdout
    (tmp_path / ".promisebot.yaml").write_text("commands:\n  apply: {permission: maintain}\n")
    assert run_validate(str(tmp_path)).returncode == 0
