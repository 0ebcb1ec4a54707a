"""Scheduling rules of contract §2: selector precedence, matching, dependency fan-out,
sticky single placement of resource groups, misplacement and pending groups."""

from __future__ import annotations

import hashlib

from bot.kratix.scheduling import matching_destinations, resolve_selectors, schedule
from bot.model.objects import Destination, Source
from bot.model.works import Placement, Selector, Work, Workload, WorkloadGroup

ROOT_ID = hashlib.md5(b".").hexdigest()
DEST1_ID = hashlib.md5(b"dest1").hexdigest()


def dest(name: str, labels: dict[str, str] | None = None, strict: bool = False) -> Destination:
    return Destination(
        name=name,
        body={},
        source=Source(f"destinations/{name}.yaml"),
        labels=dict(labels or {}),
        path=name,
        state_store_kind="GitStateStore",
        state_store_name="default",
        strict_match_labels=strict,
    )


def dests(*items: Destination) -> dict[str, Destination]:
    return {d.name: d for d in items}


def group(directory: str = ".", *selectors: Selector) -> WorkloadGroup:
    gid = hashlib.md5(directory.encode()).hexdigest()
    return WorkloadGroup(directory, gid, [Workload(f"{directory}/a.yaml", b"a: 1\n")], list(selectors))


def sel(source: str, **labels: str) -> Selector:
    return Selector(dict(labels), source)


def dep_work(*groups: WorkloadGroup, promise: str = "redis") -> Work:
    return Work(promise, "promise-configure", list(groups))


def rr_work(*groups: WorkloadGroup, name: str = "my-redis", namespace: str = "default") -> Work:
    return Work("redis", "instance-configure", list(groups), resource_name=name, resource_namespace=namespace)


def names(placements: list[Placement]) -> list[str]:
    return [p.destination for p in placements]


# --- §2.1 selector resolution -------------------------------------------------------------


def test_promise_selectors_win_over_workflow_selectors_regardless_of_order():
    g = group(
        ".",
        sel("promise", env="prod"),
        sel("resource-workflow", env="dev", zone="a"),
        sel("promise-workflow", env="staging", tier="gold", zone="b"),
    )
    assert resolve_selectors(g) == {"env": "prod", "zone": "b", "tier": "gold"}


def test_promise_workflow_selectors_win_over_resource_workflow():
    g = group(".", sel("promise-workflow", env="staging"), sel("resource-workflow", env="dev"))
    assert resolve_selectors(g) == {"env": "staging"}


def test_no_selectors_resolve_to_empty():
    assert resolve_selectors(group(".")) == {}


# --- §2.2 candidates ----------------------------------------------------------------------


def test_subset_label_match():
    ds = [dest("a", {"env": "prod", "zone": "x"}), dest("b", {"env": "prod"}), dest("c", {"env": "dev"})]
    assert [d.name for d in matching_destinations({"env": "prod"}, ds)] == ["a", "b"]
    assert [d.name for d in matching_destinations({"env": "prod", "zone": "x"}, ds)] == ["a"]


def test_empty_selectors_skip_strict_destinations_with_labels_only():
    ds = [
        dest("plain", {"env": "dev"}),
        dest("strict-labelled", {"env": "dev"}, strict=True),
        dest("strict-unlabelled", {}, strict=True),
    ]
    assert [d.name for d in matching_destinations({}, ds)] == ["plain", "strict-unlabelled"]


def test_strict_destination_matches_non_empty_selectors():
    ds = [dest("strict", {"env": "dev"}, strict=True)]
    assert [d.name for d in matching_destinations({"env": "dev"}, ds)] == ["strict"]


def test_dry_run_destinations_never_match():
    ds = [dest("dry", {"kratix.io/dry-run": "true", "env": "dev"}), dest("real", {"env": "dev"})]
    assert [d.name for d in matching_destinations({}, ds)] == ["real"]
    assert [d.name for d in matching_destinations({"env": "dev"}, ds)] == ["real"]


# --- §2.3 dependency Works ----------------------------------------------------------------


def test_dependency_goes_to_every_matching_destination():
    w = dep_work(group(".", sel("promise", env="prod")))
    ds = dests(dest("p1", {"env": "prod"}), dest("p2", {"env": "prod"}), dest("d1", {"env": "dev"}))
    s = schedule([w], ds, [])
    assert s.placements == [Placement(w.key, ROOT_ID, "p1"), Placement(w.key, ROOT_ID, "p2")]
    assert not s.misplaced and not s.pending and not s.removed


def test_dependency_reaches_destinations_added_or_relabelled_later():
    w = dep_work(group(".", sel("promise", env="prod")))
    first = schedule([w], dests(dest("p1", {"env": "prod"}), dest("d1", {"env": "dev"})), [])
    later = dests(dest("p1", {"env": "prod"}), dest("d1", {"env": "prod"}), dest("p9", {"env": "prod"}))
    s = schedule([w], later, first.placements)
    assert names(s.placements) == ["d1", "p1", "p9"]
    assert not s.misplaced


def test_dependency_placement_on_relabelled_destination_is_kept_and_misplaced():
    w = dep_work(group(".", sel("promise", env="prod")))
    first = schedule([w], dests(dest("p1", {"env": "prod"}), dest("p2", {"env": "prod"})), [])
    s = schedule([w], dests(dest("p1", {"env": "prod"}), dest("p2", {"env": "dev"})), first.placements)
    assert names(s.placements) == ["p1", "p2"]
    assert s.misplaced == {Placement(w.key, ROOT_ID, "p2")}
    assert not s.removed


def test_dependency_placement_on_deleted_destination_is_removed():
    w = dep_work(group("."))
    first = schedule([w], dests(dest("a"), dest("b")), [])
    s = schedule([w], dests(dest("a")), first.placements)
    assert names(s.placements) == ["a"]
    assert s.removed == [Placement(w.key, ROOT_ID, "b")]


# --- §2.3 resource Works ------------------------------------------------------------------


def expected_pick(work: Work, group_id: str, candidates: list[str]) -> str:
    """Rendezvous hashing as documented, computed independently of the module."""
    key = f"{work.promise}/{work.resource_namespace}/{work.resource_name}/{group_id}"
    scores = {c: hashlib.sha256(f"{key}\0{c}".encode()).hexdigest() for c in candidates}
    return max(candidates, key=lambda c: scores[c])


def test_resource_group_goes_to_exactly_one_destination_by_stable_hash():
    ds = dests(*(dest(f"worker-{i}", {"env": "prod"}) for i in range(8)))
    for i in range(20):
        w = rr_work(group(".", sel("promise", env="prod")), name=f"req-{i}")
        s = schedule([w], ds, [])
        assert len(s.placements) == 1
        assert s.placements[0].destination == expected_pick(w, ROOT_ID, sorted(ds))


def test_resource_pick_is_spread_over_destinations():
    ds = dests(*(dest(f"worker-{i}") for i in range(4)))
    picked = {
        schedule([rr_work(group("."), name=f"req-{i}")], ds, []).placements[0].destination for i in range(60)
    }
    assert picked == set(ds)


def test_resource_pick_does_not_depend_on_destination_order():
    w = rr_work(group("."))
    forward = dests(*(dest(f"d{i}") for i in range(6)))
    backward = dict(reversed(list(forward.items())))
    assert schedule([w], forward, []).placements == schedule([w], backward, []).placements


def test_adding_a_destination_only_attracts_unplaced_groups_to_the_new_one():
    """Without stickiness, rendezvous hashing moves a fresh pick only onto the added Destination."""
    before = dests(*(dest(f"d{i}") for i in range(5)))
    after = dict(before, d5=dest("d5"))
    for i in range(50):
        w = rr_work(group("."), name=f"req-{i}")
        old = schedule([w], before, []).placements[0].destination
        new = schedule([w], after, []).placements[0].destination
        assert new in (old, "d5")


def test_each_group_of_a_resource_work_is_placed_independently():
    w = rr_work(group(".", sel("promise", env="prod")), group("dest1", sel("resource-workflow", env="dev")))
    ds = dests(dest("prod-1", {"env": "prod"}), dest("dev-1", {"env": "dev"}))
    s = schedule([w], ds, [])
    assert s.placements == sorted([Placement(w.key, ROOT_ID, "prod-1"), Placement(w.key, DEST1_ID, "dev-1")])


def test_resource_placement_is_sticky_when_destinations_are_added():
    w = rr_work(group("."))
    existing = [Placement(w.key, ROOT_ID, "a")]
    ds = dests(*(dest(n) for n in ["a", "b", "c", "d", "e", "f"]))
    s = schedule([w], ds, existing)
    assert s.placements == existing
    assert not s.misplaced and not s.removed


def test_resource_placement_is_kept_and_misplaced_when_destination_no_longer_matches():
    w = rr_work(group(".", sel("promise", env="prod")))
    existing = [Placement(w.key, ROOT_ID, "a")]
    s = schedule([w], dests(dest("a", {"env": "dev"}), dest("b", {"env": "prod"})), existing)
    assert s.placements == existing
    assert s.misplaced == set(existing)
    assert not s.pending


def test_resource_group_is_rescheduled_when_its_destination_is_gone():
    w = rr_work(group("."))
    existing = [Placement(w.key, ROOT_ID, "gone")]
    s = schedule([w], dests(dest("b"), dest("c")), existing)
    assert s.placements == [Placement(w.key, ROOT_ID, expected_pick(w, ROOT_ID, ["b", "c"]))]
    assert s.removed == existing


def test_group_dropped_from_work_is_removed():
    w = rr_work(group("."))
    existing = [Placement(w.key, ROOT_ID, "a"), Placement(w.key, DEST1_ID, "a")]
    s = schedule([w], dests(dest("a")), existing)
    assert s.placements == [Placement(w.key, ROOT_ID, "a")]
    assert s.removed == [Placement(w.key, DEST1_ID, "a")]


def test_work_without_groups_removes_its_placements():
    w = dep_work()
    existing = [Placement(w.key, ROOT_ID, "a")]
    s = schedule([w], dests(dest("a")), existing)
    assert s.placements == [] and s.removed == existing


def test_placements_of_other_works_are_left_alone():
    w = rr_work(group("."))
    other = Placement("redis/default/other/instance-configure", ROOT_ID, "a")
    s = schedule([w], dests(dest("a")), [other])
    assert other not in s.placements and other not in s.removed


# --- §2.4 no match ------------------------------------------------------------------------


def test_unmatched_group_is_pending_and_other_groups_still_land():
    w = rr_work(group(".", sel("promise", env="prod")), group("dest1", sel("resource-workflow", env="dev")))
    s = schedule([w], dests(dest("dev-1", {"env": "dev"})), [])
    assert s.placements == [Placement(w.key, DEST1_ID, "dev-1")]
    assert len(s.pending) == 1
    p = s.pending[0]
    assert (p.work_key, p.group_id) == (w.key, ROOT_ID)
    assert (
        p.message == f'waiting for a destination with labels {{env: prod}} for workload group "." ({ROOT_ID})'
    )


def test_pending_message_lists_all_needed_labels_sorted():
    w = dep_work(group("dest1", sel("promise-workflow", zone="b", env="prod")))
    s = schedule([w], {}, [])
    assert s.pending[0].message == (
        f'waiting for a destination with labels {{env: prod, zone: b}} for workload group "dest1" ({DEST1_ID})'
    )


def test_group_without_selectors_and_no_destinations_is_pending():
    w = dep_work(group("."))
    s = schedule([w], dests(dest("strict", {"a": "b"}, strict=True)), [])
    assert s.placements == []
    assert s.pending[0].message == f'waiting for a destination for workload group "." ({ROOT_ID})'


def test_misplaced_dependency_is_not_pending():
    w = dep_work(group(".", sel("promise", env="prod")))
    existing = [Placement(w.key, ROOT_ID, "a")]
    s = schedule([w], dests(dest("a", {"env": "dev"})), existing)
    assert s.placements == existing and s.misplaced == set(existing) and not s.pending
