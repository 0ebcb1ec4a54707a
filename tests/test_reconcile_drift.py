"""Drift repair (contract §3.8): a full reconcile (`--all`, or the periodic one) writes every
placement, canary and aggregated file again, so files changed or deleted by hand in a state
store come back; a store that has not drifted gets no commit. On the example platform: its Git
store (nestedByMetadata and none modes) and its S3 bucket (aggregatedYAML)."""

from __future__ import annotations

import pytest
from example_fixtures import example_fixture  # noqa: F401 - provides the `example` fixture
from s3_server import s3_fixture  # noqa: F401 - provides the `s3` fixture

from bot.model import Ref

pytestmark = [pytest.mark.docker, pytest.mark.s3]

PAYMENTS = "dev/resources/default/team-namespace/payments/create-namespace/5058f"
SHOP_DEPLOY = "dev/resources/payments/web-app/shop/deploy/5058f"
SHOP_CATALOG = "catalog/catalog/payments-shop.yaml"
SEARCH_API_STATE = "catalog/.kratix/search-web-app-search-api-expose-02411.catalog-46f22.yaml"
SEARCH_API_CATALOG = "catalog/catalog/search-search-api.yaml"
PAYMENTS_REF = Ref("TeamNamespace.examples.promisebot.io", "payments", "default")
SHOP_REF = Ref("WebApp.examples.promisebot.io", "shop", "payments")
GIT_STORE, BUCKET_STORE = "GitStateStore/platform-state", "BucketStateStore/s3-state"


def commits_by_destination(example, ref: Ref) -> dict[str, str | None]:
    return {f"{p.work_key}@{p.destination}": p.commit for p in example.bookkeeping().get(ref).placements}


def test_full_and_periodic_reconciles_repair_drift(example):
    example.reconcile()
    files, objects = example.files(), example.objects()
    shop_before = commits_by_destination(example, SHOP_REF)
    store_commits, state_commits = example.store_commits(), example.state_branch_commits()

    # Nothing drifted: a full reconcile writes nothing anywhere.
    quiet = example.reconcile(full=True)
    assert quiet.outcomes == [] and quiet.commits == {} and quiet.bookkeeping_commit is None
    assert (example.store_commits(), example.state_branch_commits()) == (store_commits, state_commits)

    example.edit_store({
        f"{PAYMENTS}/namespace.yaml": None,  # nestedByMetadata: a file deleted,
        f"{PAYMENTS}/rolebinding.yaml": "kind: RoleBinding\nhacked: true\n",  # one changed,
        f"{PAYMENTS}/extra.yaml": "kind: Extra\n",  # one added
        SHOP_CATALOG: "changed by hand\n",  # none: a flat file changed,
        SEARCH_API_STATE: None,  # a state file deleted
        "dev/resources/kratix-canary-configmap.yaml": None,  # a canary deleted
    })
    example.put_object("prod/workloads.yaml", "edited by hand\n")  # aggregatedYAML
    example.put_object("prod/kratix-canary-namespace.yaml", None)
    report = example.reconcile(full=True)
    assert report.outcomes == []  # drift repair runs no pipeline
    assert set(report.commits) == {GIT_STORE, BUCKET_STORE}
    assert example.files() == files and example.objects() == objects
    # The placements whose files were repaired record the repair commit; the others keep theirs.
    payments = commits_by_destination(example, PAYMENTS_REF)
    assert set(payments.values()) == {report.commits[GIT_STORE]}
    shop = commits_by_destination(example, SHOP_REF)
    assert shop["web-app/payments/shop/expose@catalog"] == report.commits[GIT_STORE]
    for key in ("web-app/payments/shop/deploy@dev", "web-app/payments/shop/expose@dev"):
        assert shop[key] == shop_before[key]

    # The periodic reconcile repairs drift too: make it due by moving its clock back.
    example.edit_store({f"{SHOP_DEPLOY}/service.yaml": None, SEARCH_API_CATALOG: None})
    bk = example.bookkeeping()
    bk.set_meta(lastFullReconcile="2000-01-01T00:00:00Z")
    bk.commit("the periodic reconcile is due")
    report = example.reconcile()
    assert report.full and report.outcomes == [] and set(report.commits) == {GIT_STORE}
    assert example.files() == files and example.objects() == objects
