"""State-store layout of contract §3: golden paths and bytes for the three filepath modes,
static dependencies, canaries and cleanup, and the mirror semantics of placement writes."""

from __future__ import annotations

import hashlib
import json

import pytest
import yaml
from paths import GOLDEN

from bot.kratix.layout import (
    canary_changes,
    destination_cleanup,
    parse_state_file,
    placement_dir,
    placement_name,
    placement_namespace,
    remove_placement,
    render_aggregated,
    state_file_path,
    static_dependencies_work,
    store_prefix,
    work_name,
    write_placement,
)
from bot.model.objects import Destination, Promise, Source, StateStore
from bot.model.works import FileChanges, Selector, Work, Workload, WorkloadGroup

GOLDEN = GOLDEN / "layout"

NAMESPACE_YAML = b"apiVersion: v1\nkind: Namespace\nmetadata:\n  name: my-redis\n"
DEPLOYMENT_YAML = b"apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: my-redis\n"
CONFIGMAP_YAML = b"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: dest1\n"
OPERATOR_YAML = b"apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: redis-operator\n"


def store(path: str) -> StateStore:
    return StateStore("GitStateStore", "default", {}, Source("stores/default.yaml"), path, {})


def dest(name: str, path: str, mode: str = "nestedByMetadata", **kwargs) -> Destination:
    return Destination(
        name=name,
        body={},
        source=Source(f"destinations/{name}.yaml"),
        labels={},
        path=path,
        state_store_kind="GitStateStore",
        state_store_name="default",
        filepath_mode=mode,
        **kwargs,
    )


def group(directory: str, *workloads: Workload) -> WorkloadGroup:
    return WorkloadGroup(directory, hashlib.md5(directory.encode()).hexdigest(), list(workloads), [])


ROOT = group(
    ".", Workload("namespace.yaml", NAMESPACE_YAML), Workload("sub/deployment.yaml", DEPLOYMENT_YAML)
)
DEST1 = group("dest1", Workload("dest1/configmap.yaml", CONFIGMAP_YAML))
RESOURCE = Work(
    "redis", "instance-configure", [ROOT, DEST1], resource_name="my-redis", resource_namespace="default"
)
DEPENDENCY = Work("redis", "promise-configure", [group(".", Workload("operator.yaml", OPERATOR_YAML))])


def promise(dependencies: list[dict], selectors: dict[str, str] | None = None) -> Promise:
    return Promise(
        name="redis",
        body={},
        source=Source("promises/redis.yaml"),
        dependencies=dependencies,
        destination_selectors=dict(selectors or {}),
    )


REDIS_DEPENDENCIES = [
    {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": "redis-system", "labels": {"kratix.io/paused": "true"}},
    },
    {
        "kind": "ConfigMap",
        "apiVersion": "v1",
        "metadata": {"namespace": "redis-system", "name": "redis-scripts"},
        "data": {"script": "#!/bin/sh\necho hi\n"},
    },
]


def golden(name: str) -> dict:
    """A golden FileChanges; a put whose content is "@file" holds that golden file's bytes."""
    doc = json.loads((GOLDEN / name).read_text())
    puts = {
        path: (GOLDEN / text[1:]).read_bytes() if text.startswith("@") else text.encode()
        for path, text in doc["puts"].items()
    }
    return {
        "puts": puts,
        "deletes": sorted(doc["deletes"]),
        "delete_prefixes": sorted(doc["delete_prefixes"]),
    }


def as_dict(changes: FileChanges) -> dict:
    return {
        "puts": dict(changes.puts),
        "deletes": sorted(changes.deletes),
        "delete_prefixes": sorted(changes.delete_prefixes),
    }


def apply(files: dict[str, bytes], changes: FileChanges) -> dict[str, bytes]:
    """What a state store holds after applying `changes` (the FileChanges contract)."""
    kept = {
        path: content
        for path, content in files.items()
        if path not in changes.deletes and not any(path.startswith(p) for p in changes.delete_prefixes)
    }
    kept.update(changes.puts)
    return kept


# --- §3.1 prefixes ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "store_path,dest_path,prefix,resource_dir", json.loads((GOLDEN / "prefixes.json").read_text())["cases"]
)
def test_store_and_destination_path_combinations(store_path, dest_path, prefix, resource_dir):
    s, d = store(store_path), dest("worker-1", dest_path)
    assert store_prefix(s, d) == prefix
    assert placement_dir(s, d, RESOURCE, ROOT.id) == resource_dir


@pytest.mark.parametrize("mode", ["nestedByMetadata", "none"])
def test_workload_path_escaping_its_placement_is_refused(mode):
    bad = group(".", Workload("../../etc/passwd", b"x"))
    with pytest.raises(ValueError, match="escapes"):
        write_placement(store("state"), dest("w", "worker-1", mode), DEPENDENCY, bad)


# --- §3.2 nestedByMetadata ----------------------------------------------------------------


def test_nested_resource_paths_with_directory_group():
    s, d = store("clusters"), dest("worker-1", "worker-1")
    changes = write_placement(s, d, RESOURCE, ROOT)
    changes.update(write_placement(s, d, RESOURCE, DEST1))
    assert as_dict(changes) == golden("nested_resource_write.json")


def test_directory_group_id_prefix_is_md5_of_directory():
    d = placement_dir(store(""), dest("w", "."), RESOURCE, DEST1.id)
    assert d.endswith("/ba6cb")


def test_nested_dependency_paths():
    changes = write_placement(store("/"), dest("dev", "dev"), DEPENDENCY, DEPENDENCY.groups[0])
    assert as_dict(changes) == golden("nested_dependency_write.json")


def test_nested_write_mirrors_latest_output_exactly():
    s, d = store("clusters"), dest("worker-1", "worker-1")
    other = {"clusters/worker-1/resources/default/redis/other/instance-configure/5058f/x.yaml": b"x"}
    files = apply(dict(other), write_placement(s, d, RESOURCE, ROOT))
    smaller = group(".", Workload("namespace.yaml", b"changed\n"))
    files = apply(files, write_placement(s, d, RESOURCE, smaller))
    base = "clusters/worker-1/resources/default/redis/my-redis/instance-configure/5058f"
    assert files == {**other, f"{base}/namespace.yaml": b"changed\n"}


def test_nested_remove_deletes_the_placement_directory_only():
    s, d = store("clusters"), dest("worker-1", "worker-1")
    files = apply({}, write_placement(s, d, RESOURCE, ROOT))
    files = apply(files, write_placement(s, d, RESOURCE, DEST1))
    files = apply(files, remove_placement(s, d, RESOURCE, ROOT.id))
    assert list(files) == [
        "clusters/worker-1/resources/default/redis/my-redis/instance-configure/ba6cb/dest1/configmap.yaml"
    ]


# --- static dependencies (§4.1 step 6) ----------------------------------------------------


def test_static_dependencies_work_and_path():
    work = static_dependencies_work(promise(REDIS_DEPENDENCIES, {"env": "prod"}))
    assert work is not None and work.is_dependency and work.pipeline == ""
    (g,) = work.groups
    assert (g.directory, g.id) == (".", "5058f1af8388633f609cadb75a75dc9d")
    assert g.selectors == [Selector({"env": "prod"}, "promise")]
    assert [w.filepath for w in g.workloads] == ["static/redis-dependencies.yaml"]
    changes = write_placement(store("state"), dest("w", "."), work, g)
    assert as_dict(changes) == golden("static_dependencies_write.json")


def test_static_dependencies_round_trip_as_documents():
    work = static_dependencies_work(promise(REDIS_DEPENDENCIES))
    assert work is not None and work.groups[0].selectors == []
    assert list(yaml.safe_load_all(work.groups[0].workloads[0].content)) == REDIS_DEPENDENCIES


def test_static_dependencies_bytes_follow_yaml_v2():
    # Kratix encodes spec.dependencies with gopkg.in/yaml.v2 (bytes checked against Go's output).
    dep = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"},
           "data": {"file10": "a: b", "file2": "y", "ratio": 1.0, "json": '{"k": 1}', "small": 1e-05}}
    work = static_dependencies_work(promise([dep]))
    assert work is not None
    assert work.groups[0].workloads[0].content == (
        b"apiVersion: v1\ndata:\n  file2: \"y\"\n  file10: 'a: b'\n  json: '{\"k\": 1}'\n  ratio: 1\n"
        b"  small: 1e-05\nkind: ConfigMap\nmetadata:\n  name: c\n")


def test_none_mode_state_file_quotes_like_yaml_v2():
    files = group(".", Workload("on", b"x"), Workload("a: b.yaml", b"y"))
    changes = write_placement(store(""), dest("flat", "/", "none"), RESOURCE, files)
    state = next(v for k, v in changes.puts.items() if k.startswith(".kratix/"))
    assert state == b"files:\n- \"on\"\n- 'a: b.yaml'\n"


def test_no_static_dependencies_work_without_dependencies():
    assert static_dependencies_work(promise([])) is None


# --- §3.2 none ----------------------------------------------------------------------------


def test_none_mode_write_with_state_file_and_stale_removal():
    s, d = store("gitops"), dest("edge", "edge", "none")
    changes = write_placement(s, d, RESOURCE, ROOT, previous_state=["edge/old.yaml", "edge/namespace.yaml"])
    assert as_dict(changes) == golden("none_write.json")


def test_none_mode_remove_uses_the_state_file():
    s, d = store("gitops"), dest("edge", "edge", "none")
    state_path = state_file_path(s, d, RESOURCE, ROOT.id)
    state = parse_state_file(write_placement(s, d, RESOURCE, ROOT).puts[state_path])
    assert as_dict(remove_placement(s, d, RESOURCE, ROOT.id, state)) == golden("none_remove.json")


def test_none_mode_mirror_across_writes():
    s, d = store("gitops"), dest("edge", "edge", "none")
    unrelated = {"gitops/edge/kept-by-someone-else.yaml": b"k"}
    first = write_placement(s, d, RESOURCE, ROOT)
    files = apply(dict(unrelated), first)
    state_path = state_file_path(s, d, RESOURCE, ROOT.id)
    smaller = group(".", Workload("sub/deployment.yaml", b"v2\n"))
    files = apply(files, write_placement(s, d, RESOURCE, smaller, parse_state_file(files[state_path])))
    assert files == {
        **unrelated,
        "gitops/edge/sub/deployment.yaml": b"v2\n",
        state_path: b"files:\n- edge/sub/deployment.yaml\n",
    }


def test_state_file_written_by_kratix_at_root_destination_is_understood():
    s, d = store(""), dest("edge", "/", "none")
    # Kratix joins "//" + filepath, giving a leading "/"
    state = parse_state_file(b"files:\n- /old.yaml\n- /namespace.yaml\n")
    changes = write_placement(s, d, RESOURCE, ROOT, state)
    assert changes.deletes == {"old.yaml"}
    assert "namespace.yaml" in changes.puts


def test_parse_state_file_rejects_other_documents():
    with pytest.raises(ValueError):
        parse_state_file(b"- a\n- b\n")


def test_dependency_state_file_uses_the_platform_namespace():
    assert placement_namespace(DEPENDENCY) == "kratix-platform-system"
    path = state_file_path(store(""), dest("edge", "edge", "none"), DEPENDENCY, DEPENDENCY.groups[0].id)
    assert path == "edge/.kratix/kratix-platform-system-redis-promise-configure-dd4d0.edge-5058f.yaml"


# --- §3.2 aggregatedYAML ------------------------------------------------------------------


def test_aggregated_file_joins_placements_in_name_order():
    s, d = store(""), dest("agg", "platform", "aggregatedYAML", filename="catalog.yaml")
    items = [
        (placement_name(DEPENDENCY, DEPENDENCY.groups[0].id, "agg"), DEPENDENCY.groups[0]),
        (placement_name(RESOURCE, ROOT.id, "agg"), ROOT),
    ]
    assert as_dict(render_aggregated(s, d, items)) == golden("aggregated_write.json")


def test_aggregated_file_removed_when_empty():
    s, d = store("x"), dest("agg", "platform", "aggregatedYAML")
    assert as_dict(render_aggregated(s, d, [])) == {
        "puts": {},
        "deletes": ["x/platform/aggregated.yaml"],
        "delete_prefixes": [],
    }


def test_per_placement_writes_refuse_aggregated_mode():
    s, d = store(""), dest("agg", "platform", "aggregatedYAML")
    with pytest.raises(ValueError, match="render_aggregated"):
        write_placement(s, d, RESOURCE, ROOT)
    with pytest.raises(ValueError, match="render_aggregated"):
        remove_placement(s, d, RESOURCE, ROOT.id)


# --- placement names ----------------------------------------------------------------------


def test_placement_name_is_kratix_shaped_and_deterministic():
    suffix = hashlib.md5(b"redis/default/my-redis/instance-configure").hexdigest()[:5]
    assert (
        placement_name(RESOURCE, ROOT.id, "worker-1")
        == f"redis-my-redis-instance-configure-{suffix}.worker-1-5058f"
    )
    static = static_dependencies_work(promise(REDIS_DEPENDENCIES))
    assert static is not None
    assert work_name(static) == "redis-static-deps-" + hashlib.md5(b"redis/static").hexdigest()[:5]


def test_same_request_name_in_two_namespaces_gets_distinct_placement_names():
    other = Work("redis", "instance-configure", [ROOT], resource_name="my-redis", resource_namespace="team-a")
    assert placement_name(other, ROOT.id, "w") != placement_name(RESOURCE, ROOT.id, "w")


def test_long_work_identifiers_are_truncated_like_kratix():
    long = Work("p" * 40, "pipe-line", [ROOT], resource_name="r" * 30 + "-x", resource_namespace="ns")
    name = work_name(long)
    identifier, suffix = name.rsplit("-", 1)
    assert len(identifier) == 56 and identifier == ("p" * 40 + "-" + "r" * 30)[:56]
    assert len(suffix) == 5
    trailing = Work("p" * 55, "xy", [ROOT])  # 58 chars, cut at 56 leaves a trailing "-"
    assert work_name(trailing).rsplit("-", 1)[0] == "p" * 55


# --- §3.3 canaries ------------------------------------------------------------------------


def test_canaries_nested():
    assert as_dict(canary_changes(store("state"), dest("w", "worker-1"))) == golden("canaries_nested.json")


@pytest.mark.parametrize("mode", ["aggregatedYAML", "none"])
def test_canaries_flat_modes(mode):
    assert as_dict(canary_changes(store("state"), dest("w", "worker-1", mode))) == golden(
        "canaries_flat.json"
    )


def test_canaries_deleted_when_init_workloads_disabled():
    changes = canary_changes(store("state"), dest("w", "worker-1", init_workloads=False))
    assert not changes.puts
    assert changes.deletes == set(golden("canaries_nested.json")["puts"])


# --- §3.5 cleanup -------------------------------------------------------------------------


def test_cleanup_all_removes_every_placement_and_canaries():
    s, d = store("state"), dest("worker-1", "worker-1", cleanup="all")
    static = static_dependencies_work(promise(REDIS_DEPENDENCIES))
    assert static is not None
    placements = [
        (RESOURCE, ROOT.id, None),
        (DEPENDENCY, DEPENDENCY.groups[0].id, None),
        (static, static.groups[0].id, None),
    ]
    assert as_dict(destination_cleanup(s, d, placements)) == golden("cleanup_all_nested.json")


def test_cleanup_all_none_mode_removes_listed_files_and_state_files():
    s, d = store("gitops"), dest("edge", "edge", "none", cleanup="all")
    changes = destination_cleanup(
        s, d, [(RESOURCE, ROOT.id, ["edge/namespace.yaml", "edge/sub/deployment.yaml"])]
    )
    assert changes.deletes == set(golden("none_remove.json")["deletes"]) | {
        "gitops/edge/kratix-canary-namespace.yaml",
        "gitops/edge/kratix-canary-configmap.yaml",
    }


def test_cleanup_all_aggregated_removes_the_file_and_canaries():
    s, d = store(""), dest("agg", "platform", "aggregatedYAML", cleanup="all")
    changes = destination_cleanup(s, d, [(RESOURCE, ROOT.id, None)])
    assert changes.deletes == {
        "platform/aggregated.yaml",
        "platform/kratix-canary-namespace.yaml",
        "platform/kratix-canary-configmap.yaml",
    }


def test_cleanup_none_leaves_everything():
    s, d = store("state"), dest("worker-1", "worker-1")
    assert not destination_cleanup(s, d, [(RESOURCE, ROOT.id, None)])
