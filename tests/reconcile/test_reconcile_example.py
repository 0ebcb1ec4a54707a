"""End to end on the real example platform (config/examples/platform): its three Destinations
cover the three filepath modes (contract §3.2) — `dev` nestedByMetadata in the Git store,
`catalog` none (flat files and `.kratix/` state files) in the Git store, `prod` aggregatedYAML
in the S3 bucket — reconciled through the example pipeline images, then updated, deleted, and
reconciled again with nothing to do.

Drift repair (§3.8): a full reconcile (`--all`, or the periodic one) writes every placement,
canary and aggregated file again, so files changed or deleted by hand in a store come back; a
store that has not drifted gets no commit."""

from __future__ import annotations

import re

import pytest
import yaml

from bot.model.objects import Ref

pytestmark = [pytest.mark.docker, pytest.mark.s3]

TN, WA = "TeamNamespace.examples.promisebot.io", "WebApp.examples.promisebot.io"
PAYMENTS = "dev/resources/default/team-namespace/payments/create-namespace/5058f"
SHOP = "dev/resources/payments/web-app/shop"
DEV_FILES = {
    "dev/dependencies/kratix-canary-namespace.yaml",
    "dev/resources/kratix-canary-configmap.yaml",
    "dev/dependencies/team-namespace/5058f/static/team-namespace-dependencies.yaml",
    "dev/dependencies/team-namespace/install-rbac/5058f/clusterrole.yaml",
    f"{PAYMENTS}/namespace.yaml", f"{PAYMENTS}/resourcequota.yaml", f"{PAYMENTS}/rolebinding.yaml",
    f"{SHOP}/deploy/5058f/deployment.yaml", f"{SHOP}/deploy/5058f/service.yaml",
    f"{SHOP}/expose/5058f/ingress.yaml",
}
SHOP_CATALOG = "catalog/catalog/payments-shop.yaml"
SEARCH_API_CATALOG = "catalog/catalog/search-search-api.yaml"
SHOP_STATE = "catalog/.kratix/payments-web-app-shop-expose-c16fb.catalog-46f22.yaml"
SEARCH_API_STATE = "catalog/.kratix/search-web-app-search-api-expose-02411.catalog-46f22.yaml"
CATALOG_FILES = {SHOP_STATE, SEARCH_API_STATE, SHOP_CATALOG, SEARCH_API_CATALOG}
PROD = "prod/workloads.yaml"
PROD_FILES = {PROD, "prod/kratix-canary-namespace.yaml", "prod/kratix-canary-configmap.yaml"}
SHOP_DEPLOY = "dev/resources/payments/web-app/shop/deploy/5058f"
PAYMENTS_REF = Ref(TN, "payments", "default")
SHOP_REF = Ref(WA, "shop", "payments")
GIT_STORE, BUCKET_STORE = "GitStateStore/platform-state", "BucketStateStore/s3-state"


def runs(report) -> list[str]:
    return sorted(f"{o.task.ref} {o.task.wtype}.{o.task.action} {o.state}" for o in report.outcomes)


def kinds(text: str) -> list[str]:
    return re.findall(r"^kind: (\w+)$", text, re.M)


def state_files(text: str) -> list[str]:
    return yaml.safe_load(text)["files"]


def test_first_reconcile_lays_out_all_three_modes(example):
    report = example.reconcile()
    assert runs(report) == [
        "Promise/team-namespace promise.configure succeeded",
        f"{TN}/default/payments resource.configure succeeded",
        f"{TN}/default/search resource.configure succeeded",
        f"{WA}/payments/shop resource.configure succeeded",
        f"{WA}/search/search-api resource.configure succeeded",
    ]
    assert set(report.commits) == {"GitStateStore/platform-state", "BucketStateStore/s3-state"}
    files = example.files()
    assert set(files) == DEV_FILES | CATALOG_FILES
    assert "requests.cpu: \"4\"" in files[f"{PAYMENTS}/resourcequota.yaml"]
    # none mode: flat files (the output's own catalog/ directory kept) and one state file each.
    assert state_files(files[SHOP_STATE]) == [SHOP_CATALOG]
    assert state_files(files[SEARCH_API_STATE]) == [SEARCH_API_CATALOG]
    assert "url: http://shop.payments.example.com" in files[SHOP_CATALOG]

    objects = example.objects()
    assert set(objects) == PROD_FILES
    # aggregatedYAML: every workload placed on prod, placements sorted by name, joined by "\n---\n".
    workloads = objects[PROD]
    assert kinds(workloads) == ["ClusterRole", "Namespace", "ResourceQuota", "RoleBinding",  # search's team
                                "Namespace", "ConfigMap",  # static dependencies: one file, two documents
                                "Deployment", "Service", "Ingress"]  # search-api
    clusterrole = files["dev/dependencies/team-namespace/install-rbac/5058f/clusterrole.yaml"]
    static = files["dev/dependencies/team-namespace/5058f/static/team-namespace-dependencies.yaml"]
    assert workloads.startswith(clusterrole + "\n---\n")
    assert f"\n---\n{static}\n---\n" in workloads
    assert workloads.count("\n---\n") == 8  # 9 files, and the static file's own separator
    assert "shop" not in workloads and "payments" not in workloads


def test_update_and_delete_across_modes(example):
    example.reconcile()
    # By hand: a stale file in a nestedByMetadata placement directory, and a none-mode state
    # file that lists an older flat file; plus a flat file no state file lists.
    old_entry = "catalog/catalog/search-old-name.yaml"
    example.edit_store({
        f"{PAYMENTS}/stale.yaml": "kind: Stale\n",
        old_entry: "kind: ConfigMap\n",
        "catalog/notes.yaml": "kept\n",
        SEARCH_API_STATE: yaml.safe_dump({"files": [SEARCH_API_CATALOG, old_entry]}),
    })

    requests = example.platform / "requests"
    team = yaml.safe_load((requests / "team-payments.yaml").read_text())
    team["spec"]["quota"]["cpu"] = 8
    example.write("requests/team-payments.yaml", team)
    shop, search_api = yaml.safe_load_all((requests / "web-apps.yaml").read_text())
    search_api["spec"]["domain"] = "search.example.org"
    example.write("requests/web-apps.yaml", shop, search_api)
    example.commit("payments gets 8 CPUs, search-api a new domain")
    report = example.reconcile()
    assert runs(report) == [f"{TN}/default/payments resource.configure succeeded",
                            f"{WA}/search/search-api resource.configure succeeded"]
    files = example.files()
    assert "requests.cpu: \"8\"" in files[f"{PAYMENTS}/resourcequota.yaml"]
    assert f"{PAYMENTS}/stale.yaml" not in files  # the placement directory mirrors the output
    assert "url: http://search-api.search.example.org" in files[SEARCH_API_CATALOG]
    assert old_entry not in files  # listed in the previous state file, not written again
    assert state_files(files[SEARCH_API_STATE]) == [SEARCH_API_CATALOG]
    assert files["catalog/notes.yaml"] == "kept\n"
    workloads = example.objects()[PROD]
    assert "host: search-api.search.example.org" in workloads
    assert "apps.example.com" not in workloads

    # Delete the shop (dev + catalog; its delete pipeline runs first) and the search team (prod).
    example.write("requests/web-apps.yaml", search_api)
    example.remove("requests/team-search.yaml")
    example.commit("delete shop and the search team")
    report = example.reconcile()
    assert runs(report) == [f"{WA}/payments/shop resource.delete succeeded"]
    files = example.files()
    assert not any(p.startswith(SHOP) for p in files)
    assert SHOP_STATE not in files and SHOP_CATALOG not in files
    assert {SEARCH_API_STATE, SEARCH_API_CATALOG, f"{PAYMENTS}/namespace.yaml"} <= set(files)
    objects = example.objects()
    assert set(objects) == PROD_FILES
    assert kinds(objects[PROD]) == ["ClusterRole", "Namespace", "ConfigMap", "Deployment", "Service", "Ingress"]
    assert "search-admins" not in objects[PROD]
    bk = example.bookkeeping()
    assert not bk.has(SHOP_REF) and not bk.has(Ref(TN, "search", "default"))


def test_second_run_is_idempotent(example):
    example.reconcile()
    store_commits, state_commits = example.store_commits(), example.state_branch_commits()
    etags = example.etags()
    for kwargs in ({}, {"full": True}):
        again = example.reconcile(**kwargs)
        assert again.outcomes == [] and again.commits == {} and again.bookkeeping_commit is None
    assert example.store_commits() == store_commits
    assert example.state_branch_commits() == state_commits
    assert example.etags() == etags



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
