"""Where a merged change's objects landed: rows from bookkeeping records (pure)."""

from __future__ import annotations

from bot.forges.comment import render_landed
from bot.model.objects import Ref
from bot.model.records import ObjectRecord, PlacementRecord
from bot.report.landed import Landed, document_ref, where_landed

R1 = Ref("Redis.marketplace.kratix.io", "r1", "default")
R2 = Ref("Redis.marketplace.kratix.io", "r2", "team-a")


def test_document_ref_reads_requests_and_kratix_objects():
    assert document_ref({"apiVersion": "marketplace.kratix.io/v1alpha1", "kind": "Redis",
                         "metadata": {"name": "r1"}}) == R1
    assert document_ref({"apiVersion": "marketplace.kratix.io/v1", "kind": "Redis",
                         "metadata": {"name": "r2", "namespace": "team-a"}}) == R2
    assert document_ref({"apiVersion": "platform.kratix.io/v1alpha1", "kind": "Destination",
                         "metadata": {"name": "dev", "namespace": "ignored"}}) == Ref("Destination", "dev")
    for junk in ({}, {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}},
                 {"apiVersion": "a/v1", "kind": "K", "metadata": {}}, {"apiVersion": 1, "kind": "K"}):
        assert document_ref(junk) is None


def test_rows_per_placement_pending_removed_and_unknown():
    placed = ObjectRecord(R1, placements=[
        PlacementRecord("w", "g2", "prod", "GitStateStore/state", commit="c" * 40),
        PlacementRecord("w", "g1", "dev", "GitStateStore/state", commit="a" * 40),
    ])
    waiting = ObjectRecord(R2, placements=[PlacementRecord("w", "g", "dev", "BucketStateStore/s3",
                                                           pending="connection refused")])
    gone = Ref("Redis.marketplace.kratix.io", "old", "default")
    new = Ref("Redis.marketplace.kratix.io", "new", "default")
    rows = where_landed([R1, R2, new], {R1: placed, R2: waiting}, removed=[gone])
    assert rows == [
        Landed(new, "not reconciled", note="no record of it yet"),
        Landed(gone, "removed"),
        Landed(R1, "landed", "dev", "GitStateStore/state", "a" * 40),
        Landed(R1, "landed", "prod", "GitStateStore/state", "c" * 40),
        Landed(R2, "pending", "dev", "BucketStateStore/s3", note="connection refused"),
    ]
    invalid = ObjectRecord(R1, invalid=True)
    assert where_landed([R1], {R1: invalid}) == [Landed(R1, "not reconciled", note="invalid: not acted on")]


def test_the_table_names_store_commit_and_destination():
    lines = render_landed([Landed(R1, "landed", "dev", "GitStateStore/state", "a" * 40),
                           Landed(R2, "pending", "dev", "BucketStateStore/s3", note="a | b")])
    text = "\n".join(lines)
    assert "#### Where it landed" in text
    assert "| `Redis.marketplace.kratix.io/default/r1` | `dev` | `GitStateStore/state` | `aaaaaaaaaaaa` |" in text
    assert "pending: a \\| b" in text
    assert render_landed([]) == []
