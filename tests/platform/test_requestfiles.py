"""bot.platform.requestfiles: which changed files of an untrusted pull request are Resource
request files (pure: paths, modes and file contents in, a reason or None out)."""

from __future__ import annotations

import yaml
from reconcile_fixtures import GROUP, destination, promise, request

from bot.model.objects import Platform
from bot.platform.loader import load_platform_dir
from bot.platform.requestfiles import (
    EXECUTABLE,
    REGULAR,
    SUBMODULE,
    SYMLINK,
    Contents,
    Document,
    FileChange,
    RequestRules,
    Side,
    blob_contents,
    blocked_additions,
    classify,
    content_reason,
    path_reason,
)
from bot.settings import load_settings

RULES = RequestRules(frozenset({(GROUP, "Redis")}), exclude=("drafts/**",), max_file_bytes=100_000)


def dump(*docs: dict) -> bytes:
    return yaml.safe_dump_all(list(docs), sort_keys=False).encode()


def added(path: str, mode: str = REGULAR) -> FileChange:
    return FileChange(path, None, Side(mode, "b" * 40))


def modified(path: str, old_mode: str = REGULAR, new_mode: str = REGULAR) -> FileChange:
    return FileChange(path, Side(old_mode, "a" * 40), Side(new_mode, "b" * 40))


def deleted(path: str, mode: str = REGULAR) -> FileChange:
    return FileChange(path, Side(mode, "a" * 40), None)


def contents(*docs: dict) -> Contents:
    return blob_contents(dump(*docs), "f.yaml", RULES)


def test_rules_come_from_the_loaded_platforms_promises(tmp_path):
    (tmp_path / "p.yaml").write_text(dump(promise("redis"), promise("pg", kind="Postgres")).decode())
    loaded = load_platform_dir(tmp_path)
    rules = RequestRules.of(loaded, load_settings({"exclude": ["x/**"], "maxFileBytes": 10}))
    assert rules == RequestRules(frozenset({(GROUP, "Redis"), (GROUP, "Postgres")}), ("x/**",), 10)
    assert RequestRules.of(Platform()).apis == frozenset()


def test_paths_and_modes_that_rule_a_change_out_before_reading_it():
    assert path_reason(added("requests/r.yaml"), RULES) is None
    assert path_reason(added("requests/r.yml"), RULES) is None
    assert path_reason(modified("requests/r.yaml"), RULES) is None
    assert path_reason(deleted("requests/r.yaml", EXECUTABLE), RULES) is None
    assert path_reason(modified("r.yaml", EXECUTABLE, EXECUTABLE), RULES) is None
    assert "settings file" in (path_reason(modified(".promisebot.yaml"), RULES) or "")
    assert "settings file" in (path_reason(added("sub/.promisebot.yaml"), RULES) or "")
    assert path_reason(added("README.md"), RULES) == "not a Resource request"
    assert path_reason(added("requests/r.YAML"), RULES) == "not a Resource request"
    assert "exclude setting" in (path_reason(added("drafts/r.yaml"), RULES) or "")
    assert path_reason(added("r.yaml", SYMLINK), RULES) == "is a symlink"
    assert path_reason(FileChange("r.yaml", Side(SYMLINK, "a" * 40), Side(REGULAR, "b" * 40)), RULES) == "is a symlink"
    assert path_reason(added("vendor", SUBMODULE), RULES) == "is a submodule"
    assert path_reason(modified("r.yaml", REGULAR, EXECUTABLE), RULES) == "changes the executable bit"
    assert path_reason(modified("r.yaml", EXECUTABLE, REGULAR), RULES) == "changes the executable bit"
    assert "executable" in (path_reason(added("r.yaml", EXECUTABLE), RULES) or "")


def test_documents_are_classified_as_the_loader_does_against_the_base_promises():
    assert classify(request("Redis", "r"), RULES) == Document(f"{GROUP}/v1", "Redis", "request")
    assert classify({**request("Redis", "r"), "apiVersion": f"{GROUP}/v9"}, RULES).role == "request"
    assert classify(request("Postgres", "r"), RULES).role == "other"  # no such Promise at base
    assert classify(promise("redis"), RULES) == Document("platform.kratix.io/v1alpha1", "Promise", "kratix")
    assert classify(destination("dev"), RULES).role == "kratix"
    assert classify({"apiVersion": "platform.kratix.io/v1alpha1", "kind": "Pipeline"}, RULES).role == "other"
    assert classify({"apiVersion": "v1", "kind": "Redis"}, RULES).role == "other"
    assert classify({"kind": "Redis"}, RULES).role == "other"


def test_request_files_are_taken_on_both_sides_of_the_change():
    two = contents(request("Redis", "a"), request("Redis", "b"))
    assert two.problem is None and [d.role for d in two.documents] == ["request", "request"]
    assert content_reason(added("r.yaml"), None, two) is None
    assert content_reason(modified("r.yaml"), contents(request("Redis", "a")), two) is None
    assert content_reason(deleted("r.yaml"), two, None) is None
    assert content_reason(modified("r.yaml"), two, Contents()) is None  # emptied: its requests deleted


def test_anything_else_is_dropped_with_its_reason():
    redis = contents(request("Redis", "a"))
    assert content_reason(modified("p.yaml"), contents(promise("redis")), contents(promise("redis", kind="Redis"))) \
        == "changes a Promise (only Resource requests are taken from this change)"
    assert content_reason(added("p.yaml"), None, contents(promise("pg", kind="Pg"))).startswith("adds a Promise")
    assert content_reason(deleted("d.yaml"), contents(destination("dev")), None).startswith("deletes a Destination")
    assert content_reason(modified("d.yaml"), contents(destination("dev")), redis).startswith("changes a Destination")
    assert content_reason(modified("r.yaml"), redis, contents(destination("dev"))).startswith("changes a Destination")
    config_map = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}}
    assert content_reason(added("r.yaml"), None, contents(request("Redis", "a"), config_map)) \
        == "mixes a Resource request with a ConfigMap"
    assert content_reason(modified("r.yaml"), contents(request("Redis", "a"), destination("d")), redis) \
        == "mixes a Resource request with a Destination on the default branch"
    assert content_reason(added("r.yaml"), None, contents(request("Pg", "a"))) \
        == f"not a Resource request: no Promise on the default branch provides Pg ({GROUP}/v1)"
    assert content_reason(added("r.yaml"), None, contents({"a": 1})) \
        == "not a Resource request: no Promise on the default branch provides an object without apiVersion/kind"
    assert content_reason(added("r.yaml"), None, Contents()) == "not a Resource request (no YAML documents)"


def test_files_the_loader_cannot_read_are_dropped_with_the_loaders_message():
    broken = blob_contents(b"kind: [\n", "r.yaml", RULES)
    assert content_reason(added("r.yaml"), None, broken).startswith("not YAML the platform reads: malformed YAML")
    listed = blob_contents(dump(request("Redis", "a")) + b"---\n- 1\n", "r.yaml", RULES)
    assert "not a mapping" in content_reason(added("r.yaml"), None, listed)
    big = blob_contents(b"x" * 100_001, "r.yaml", RULES, size=500_000)
    assert content_reason(added("r.yaml"), None, big) == (
        "not YAML the platform reads: file is 500000 bytes, over the 100000-byte cap (the maxFileBytes setting); not parsed")
    assert "binary" in content_reason(added("r.yaml"), None, blob_contents(b"\0", "r.yaml", RULES))
    assert content_reason(modified("r.yaml"), broken, contents(request("Redis", "a"))).startswith(
        "not YAML the platform reads on the default branch")


def test_additions_a_kept_path_stands_in_the_way_of():
    kept = ["reqs", "old/dir/a.yaml", "x.yaml"]
    assert blocked_additions(["reqs/a.yaml", "old/dir", "old", "x.yaml", "fine/a.yaml", "oldish.yaml"], kept) \
        == {"reqs/a.yaml": "reqs", "old/dir": "old/dir/a.yaml", "old": "old/dir/a.yaml"}
    assert blocked_additions(["a.yaml"], []) == {}
