"""Loading a platform repo: recognition, defaults, settings, exclusions, Git commits."""


import git
from paths import EXAMPLE_PLATFORM, write_files

from bot.model.objects import Ref, Source
from bot.platform.loader import DirSource, GitTreeSource, load_platform, load_platform_dir
from bot.platform.validate.platform import validate_platform

EXAMPLE = EXAMPLE_PLATFORM

PROMISE = """apiVersion: platform.kratix.io/v1alpha1
kind: Promise
metadata:
  name: db
spec:
  destinationSelectors:
    - matchLabels: {env: dev, zone: a}
    - matchLabels: {env: prod, tier: gold}
  requiredPromises:
    - {name: network, version: v1.0.0}
  api:
    apiVersion: apiextensions.k8s.io/v1
    kind: CustomResourceDefinition
    metadata: {name: dbs.test.io}
    spec:
      group: test.io
      names: {kind: Database, plural: dbs}
      scope: Namespaced
      versions:
        - name: v1beta1
          served: true
          storage: false
          schema: {openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}}
        - name: v1
          served: true
          storage: true
          schema:
            openAPIV3Schema:
              type: object
              properties:
                spec:
                  type: object
                  properties:
                    size: {type: string, default: small}
  workflows:
    resource:
      configure:
        - apiVersion: platform.kratix.io/v1alpha1
          kind: Pipeline
          metadata: {name: make}
          spec:
            containers:
              - name: one
                image: example/one:v1
                args: [--fast]
                env: [{name: A, value: b}]
                workingDir: /work
                imagePullPolicy: Never
"""


def test_example_platform_objects_and_defaults():
    platform = load_platform_dir(EXAMPLE)
    assert set(platform.promises) == {"team-namespace", "web-app"}
    assert platform.revision is None
    assert platform.root == EXAMPLE

    dev = platform.destinations["dev"]
    assert (dev.path, dev.filepath_mode, dev.cleanup, dev.init_workloads, dev.strict_match_labels) == (
        "dev", "nestedByMetadata", "none", True, False)
    assert dev.state_store_ref == Ref("GitStateStore", "platform-state")
    prod = platform.destinations["prod"]
    assert (prod.filepath_mode, prod.filename, prod.cleanup) == ("aggregatedYAML", "workloads.yaml", "all")

    git_store = platform.state_stores[Ref("GitStateStore", "platform-state")]
    assert git_store.spec["authMethod"] == "basicAuth"
    assert git_store.secret_ref is None
    bucket = platform.state_stores[Ref("BucketStateStore", "s3-state")]
    assert bucket.secret_ref.name == "s3-credentials" and bucket.secret_ref.namespace == "default"
    assert bucket.spec["authMethod"] == "accessKey"


def test_example_requests_have_namespace_and_schema_defaults():
    platform = load_platform_dir(EXAMPLE)
    search = platform.requests[Ref("TeamNamespace.examples.promisebot.io", "search", "default")]
    assert search.body["metadata"]["namespace"] == "default"
    assert search.spec["quota"] == {"cpu": "2", "memory": "4Gi"}  # default object defaulted inside
    shop = platform.requests[Ref("WebApp.examples.promisebot.io", "shop", "payments")]
    assert shop.spec["tier"] == "frontend" and shop.spec["replicas"] == 2
    assert shop.promise == "web-app" and shop.api_version == "examples.promisebot.io/v1alpha1"


def test_promise_model(tmp_path):
    write_files(tmp_path, {"db.yaml": PROMISE})
    promise = load_platform_dir(tmp_path).promises["db"]
    assert promise.destination_selectors == {"env": "dev", "zone": "a", "tier": "gold"}  # AND, first wins
    assert promise.required_promises == [{"name": "network", "version": "v1.0.0"}]
    api = promise.api
    assert (api.group, api.kind, api.plural, api.version, api.scope) == ("test.io", "Database", "dbs", "v1", "Namespaced")
    assert api.served_versions == ("v1beta1", "v1")
    assert api.schema["properties"]["spec"]["properties"]["size"]["default"] == "small"
    [pipeline] = promise.pipelines("resource", "configure")
    item_line = PROMISE.splitlines().index("        - apiVersion: platform.kratix.io/v1alpha1") + 1
    assert pipeline.name == "make" and pipeline.source == Source("db.yaml", item_line)
    [container] = pipeline.containers
    assert (container.name, container.image, container.args, container.image_pull_policy) == (
        "one", "example/one:v1", ["--fast"], "Never")
    assert container.env == [{"name": "A", "value": "b"}]
    assert container.working_dir == "/work"


def test_requests_match_any_served_version_and_other_objects_are_ignored(tmp_path):
    write_files(tmp_path, {
        "db.yaml": PROMISE,
        "requests/a.yaml": "apiVersion: test.io/v1beta1\nkind: Database\nmetadata: {name: a, namespace: team}\n",
        "requests/b.yml": "apiVersion: test.io/v1\nkind: Database\nmetadata: {name: b}\nspec: {size: big}\n",
        "other/cm.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n---\nfoo: bar\n",
        "notes.txt": "not yaml",
    })
    platform = load_platform_dir(tmp_path)
    assert sorted(platform.requests) == [Ref("Database.test.io", "a", "team"), Ref("Database.test.io", "b", "default")]
    assert platform.requests[Ref("Database.test.io", "b", "default")].spec == {"size": "big"}
    assert [str(s) for s in platform.ignored] == ["other/cm.yaml:1", "other/cm.yaml:5"]
    assert [p.field for p in validate_platform(platform)] == ["spec.requiredPromises[0].name"]  # a warning


def test_state_store_defaults(tmp_path):
    write_files(tmp_path, {"stores.yaml": """apiVersion: platform.kratix.io/v1alpha1
kind: GitStateStore
metadata: {name: g}
spec:
  url: https://example.com/r.git
  secretRef: {name: creds}
---
apiVersion: platform.kratix.io/v1alpha1
kind: BucketStateStore
metadata: {name: b}
spec: {bucketName: x, endpoint: s3.example.com, secretRef: {name: s3}}
"""})
    platform = load_platform_dir(tmp_path)
    g = platform.state_stores[Ref("GitStateStore", "g")]
    assert g.spec["branch"] == "main"
    assert g.spec["authMethod"] == "basicAuth"
    assert g.spec["gitAuthor"] == {"name": "promisebot", "email": ""}  # deviation: Kratix says "kratix"
    assert (g.secret_ref.name, g.secret_ref.namespace) == ("creds", "default")
    assert g.path == ""
    b = platform.state_stores[Ref("BucketStateStore", "b")]
    assert (b.spec["authMethod"], b.spec["insecure"], b.spec["useDualStack"]) == ("accessKey", False, False)


def test_settings_file_excludes_and_is_not_an_object(tmp_path):
    write_files(tmp_path, {
        ".promisebot.yaml": "exclude: ['drafts/**', '*.draft.yaml']\nrunner: {timeoutSeconds: 30}\n",
        "drafts/broken.yaml": "a: [\n",
        "x/y.draft.yaml": "a: [\n",
        ".git/config.yaml": "a: [\n",
        "ok.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n",
    })
    platform = load_platform_dir(tmp_path)
    assert platform.problems == []
    assert [s.file for s in platform.ignored] == ["ok.yaml"]
    assert platform.settings.runner.timeout_seconds == 30


def test_a_bad_settings_file_is_a_problem_and_defaults_apply(tmp_path):
    write_files(tmp_path, {".promisebot.yaml": "maxFileBytes: lots\ncolour: blue\n"})
    platform = load_platform_dir(tmp_path)
    messages = [(p.source.line, p.field, p.message) for p in platform.problems]
    assert (2, "colour", messages[0][2]) == messages[0] and "unknown setting" in messages[0][2]
    assert "using the default settings" in messages[1][2]
    assert platform.settings.max_file_bytes == 3145728


def test_a_mistyped_setting_is_reported_and_its_default_kept(tmp_path):
    write_files(tmp_path, {".promisebot.yaml": "exclude: drafts\nrunner: 5\nstateBranch: state\n"})
    platform = load_platform_dir(tmp_path)
    assert [(p.source.line, p.field) for p in platform.problems] == [(1, "exclude"), (2, "runner")]
    assert platform.settings.exclude == [] and platform.settings.state_branch == "state"


def test_git_commit_is_read_without_checkout(tmp_path):
    repo = git.Repo.init(tmp_path, initial_branch="main")
    write_files(tmp_path, {"db.yaml": PROMISE, "r.yaml": "apiVersion: test.io/v1\nkind: Database\nmetadata: {name: r}\n"})
    (tmp_path / "link.yaml").symlink_to("db.yaml")
    repo.index.add(["db.yaml", "r.yaml", "link.yaml"])
    first = repo.index.commit("first", author=git.Actor("t", "t@example.com"))
    (tmp_path / "r.yaml").write_text("apiVersion: test.io/v1\nkind: Database\nmetadata: {name: changed}\n")
    repo.index.add(["r.yaml"])
    repo.index.commit("second", author=git.Actor("t", "t@example.com"))
    (tmp_path / "r.yaml").write_text("a: [\n")  # working tree edits are invisible to a commit

    old = load_platform(GitTreeSource(tmp_path, first.hexsha))
    assert old.revision == first.hexsha
    assert [r.name for r in old.requests.values()] == ["r"]
    head = load_platform(GitTreeSource(tmp_path, "HEAD"))
    assert [r.name for r in head.requests.values()] == ["changed"]
    assert [(p.source.file, p.message) for p in head.problems] == [
        ("link.yaml", "unreadable: a symbolic link (not followed in a Git tree)")]
    assert head.root == tmp_path.resolve()

    working = load_platform(DirSource(tmp_path))
    assert any(p.source.file == "r.yaml" and "malformed" in p.message for p in working.problems)


def test_unknown_revision_is_a_problem_not_a_crash(tmp_path):
    git.Repo.init(tmp_path)
    platform = load_platform(GitTreeSource(tmp_path, "no-such-rev"))
    assert len(platform.problems) == 1 and "cannot read revision" in platform.problems[0].message


def test_null_store_fields_and_an_empty_filename_take_their_defaults(tmp_path):
    write_files(tmp_path, {
        "s.yaml": "apiVersion: platform.kratix.io/v1alpha1\nkind: GitStateStore\nmetadata: {name: g}\n"
                  "spec: {url: 'https://x/s.git', branch: null, authMethod: null, path: null}\n",
        "d.yaml": "apiVersion: platform.kratix.io/v1alpha1\nkind: Destination\nmetadata: {name: d}\n"
                  "spec: {path: d, stateStoreRef: {kind: GitStateStore, name: g},\n"
                  "       filepath: {mode: aggregatedYAML, filename: ''}}\n",
    })
    platform = load_platform_dir(tmp_path)
    g = platform.state_stores[Ref("GitStateStore", "g")]
    assert (g.spec["branch"], g.spec["authMethod"], g.path) == ("main", "basicAuth", "")
    assert platform.destinations["d"].filename == "aggregated.yaml"
    assert validate_platform(platform) == []


def test_the_chatops_policy_sections_are_not_unknown_settings(tmp_path):
    write_files(tmp_path, {".promisebot.yaml": "commands:\n  apply: {permission: maintain}\n"
                           "destinations: {}\napply: {approvals: 2}\nplan: {drafts: true}\nmaxFileBytes: 1000\n"})
    platform = load_platform_dir(tmp_path)
    assert platform.problems == []
    assert platform.settings.max_file_bytes == 1000
