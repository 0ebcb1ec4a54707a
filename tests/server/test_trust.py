"""bot.jobs.trust on real Git repositories: a pull request from an untrusted author restricted
to its Resource request files, as a new commit on the base made with plumbing alone."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from reconcile_fixtures import destination, git, git_store, promise, request

from bot.jobs.trust import Dropped, Restricted, TrustError, restrict_to_requests
from bot.platform.loader import GitTreeSource, load_platform

ONLY = "(only Resource requests are taken from this change)"


def dump(*docs: dict[str, Any]) -> str:
    return yaml.safe_dump_all(list(docs), sort_keys=False)


class PlatformRepo:
    """A platform repo (work tree) whose main holds a Promise, a Destination, a State Store and a
    request; `change` makes a pull request's head and its merge result."""

    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir()
        git(root, "init", "-q", "-b", "main")
        git(root, "config", "user.email", "dev@example.com")
        git(root, "config", "user.name", "dev")
        self.write("promises/redis.yaml", dump(promise("redis")))
        self.write("destinations/dev.yaml", dump(destination("dev")))
        self.write("stores/state.yaml", dump(git_store("state", "../state.git")))
        self.write("requests/r1.yaml", dump(request("Redis", "r1")))
        self.write("README.md", "# platform\n")
        self.base = self.commit("platform")

    def write(self, path: str, text: str) -> None:
        target = self.root / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)

    def commit(self, message: str) -> str:
        git(self.root, "add", "-A")
        git(self.root, "commit", "-q", "--allow-empty", "-m", message)
        return git(self.root, "rev-parse", "HEAD")

    def change(self, files: dict[str, str | None], *, links: dict[str, str] | None = None,
               modes: dict[str, int] | None = None) -> str:
        """A branch off main with `files` written (None: deleted), merged as a forge would;
        returns the merge result (main and the work tree are left as they were)."""
        git(self.root, "checkout", "-q", "-B", "change", self.base)
        for path, text in files.items():
            if text is None:
                git(self.root, "rm", "-q", "-r", "--", path)
            else:
                self.write(path, text)
        for path, target in (links or {}).items():
            (self.root / path).symlink_to(target)
        for path, mode in (modes or {}).items():
            os.chmod(self.root / path, mode)
        head = self.commit("change")
        git(self.root, "checkout", "-q", "main")
        tree = git(self.root, "merge-tree", "--write-tree", self.base, head)
        return git(self.root, "commit-tree", tree, "-p", self.base, "-p", head, "-m", "merge")

    def restrict(self, merged: str) -> Restricted:
        return restrict_to_requests(self.root, self.base, merged, message="restricted")

    def show(self, rev: str, path: str) -> str:
        return git(self.root, "show", f"{rev}:{path}")

    def paths(self, rev: str) -> set[str]:
        return set(git(self.root, "ls-tree", "-r", "-z", "--name-only", rev).split("\0")) - {""}


@pytest.fixture
def repo(tmp_path: Path) -> PlatformRepo:
    return PlatformRepo(tmp_path / "platform")


def test_a_pull_request_adding_a_request_is_taken_whole(repo):
    merged = repo.change({"requests/r2.yaml": dump(request("Redis", "r2"))})
    result = repo.restrict(merged)
    assert result.taken == ("requests/r2.yaml",) and result.dropped == ()
    assert git(repo.root, "rev-parse", f"{result.commit}^{{tree}}") == git(repo.root, "rev-parse", f"{merged}^{{tree}}")
    assert git(repo.root, "rev-list", "--parents", "-n1", result.commit).split() == [result.commit, repo.base]
    assert git(repo.root, "log", "-1", "--format=%B", result.commit) == "restricted"
    assert repo.restrict(merged) == result  # the same change is the same commit


def test_a_changed_promise_stays_as_on_the_default_branch_and_the_request_is_taken(repo):
    changed = promise("redis")
    changed["spec"]["workflows"]["resource"]["configure"][0]["spec"]["containers"][0]["image"] = "evil/image:1"
    merged = repo.change({"promises/redis.yaml": dump(changed), "requests/r2.yaml": dump(request("Redis", "r2"))})
    result = repo.restrict(merged)
    assert result.taken == ("requests/r2.yaml",)
    assert result.dropped == (Dropped("promises/redis.yaml", f"changes a Promise {ONLY}"),)
    assert repo.show(result.commit, "promises/redis.yaml") == repo.show(repo.base, "promises/redis.yaml")
    assert repo.show(result.commit, "requests/r2.yaml") == dump(request("Redis", "r2")).rstrip("\n")
    loaded = load_platform(GitTreeSource(repo.root, result.commit))
    assert "evil/image:1" not in str(loaded.promises["redis"].body)
    assert {r.name for r in loaded.requests.values()} == {"r1", "r2"}


def test_a_new_promise_and_a_request_of_its_kind_are_both_dropped(repo):
    merged = repo.change({"promises/pg.yaml": dump(promise("pg", kind="Postgres")),
                          "requests/db.yaml": dump(request("Postgres", "db"))})
    result = repo.restrict(merged)
    assert result.taken == ()
    reasons = {d.path: d.reason for d in result.dropped}
    assert reasons == {"promises/pg.yaml": f"adds a Promise {ONLY}",
                       "requests/db.yaml": "not a Resource request: no Promise on the default branch provides "
                                           "Postgres (test.promisebot.io/v1)"}
    assert repo.paths(result.commit) == repo.paths(repo.base)


def test_deleting_a_request_is_taken_and_renaming_one_is_a_deletion_and_an_addition(repo):
    result = repo.restrict(repo.change({"requests/r1.yaml": None}))
    assert result.taken == ("requests/r1.yaml",) and result.dropped == ()
    assert "requests/r1.yaml" not in repo.paths(result.commit)
    moved = repo.change({"requests/r1.yaml": None, "requests/renamed.yaml": dump(request("Redis", "r1"))})
    assert repo.restrict(moved).taken == ("requests/r1.yaml", "requests/renamed.yaml")


def test_settings_and_other_platform_objects_are_dropped(repo):
    merged = repo.change({
        ".promisebot.yaml": "exclude: ['requests/**']\n",
        "requests/.promisebot.yaml": dump(request("Redis", "r9")),
        "destinations/dev.yaml": dump(destination("dev", {"env": "prod"})),
        "stores/state.yaml": None,
        "requests/r1.yaml": dump(destination("sneaky")),
        "README.md": "# pwned\n",
        "requests/r2.yaml": dump(request("Redis", "r2")),
    })
    result = repo.restrict(merged)
    assert result.taken == ("requests/r2.yaml",)
    reasons = {d.path: d.reason for d in result.dropped}
    assert reasons == {
        ".promisebot.yaml": "changes the settings file .promisebot.yaml (settings are taken from the default branch)",
        "requests/.promisebot.yaml": "changes the settings file .promisebot.yaml (settings are taken from the "
                                     "default branch)",
        "destinations/dev.yaml": f"changes a Destination {ONLY}",
        "stores/state.yaml": f"deletes a GitStateStore {ONLY}",
        "requests/r1.yaml": f"changes a Destination {ONLY}",
        "README.md": "not a Resource request",
    }
    assert [str(d) for d in result.dropped if d.path == "README.md"] == ["README.md: not a Resource request"]
    assert repo.paths(result.commit) == repo.paths(repo.base) | {"requests/r2.yaml"}
    for path in repo.paths(repo.base):
        assert repo.show(result.commit, path) == repo.show(repo.base, path)


def test_mixed_unreadable_linked_and_executable_files_are_dropped_and_multi_document_requests_taken(repo):
    config_map = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"a": "b"}}
    merged = repo.change(
        {"requests/mixed.yaml": dump(request("Redis", "m"), config_map),
         "requests/two.yaml": dump(request("Redis", "t1"), request("Redis", "t2")),
         "requests/broken.yaml": "kind: [\n",
         "requests/exec.yaml": dump(request("Redis", "x"))},
        links={"requests/link.yaml": "../destinations/dev.yaml"},
        modes={"requests/exec.yaml": 0o755})
    result = repo.restrict(merged)
    assert result.taken == ("requests/two.yaml",)
    reasons = {d.path: d.reason for d in result.dropped}
    assert reasons["requests/mixed.yaml"] == "mixes a Resource request with a ConfigMap"
    assert reasons["requests/broken.yaml"].startswith("not YAML the platform reads: malformed YAML")
    assert reasons["requests/link.yaml"] == "is a symlink"
    assert reasons["requests/exec.yaml"] == "is executable (only plain files are taken)"
    assert len(reasons) == 4
    loaded = load_platform(GitTreeSource(repo.root, result.commit))
    assert {r.name for r in loaded.requests.values()} == {"r1", "t1", "t2"}


def test_excluded_paths_and_requests_blocked_by_a_kept_file_are_dropped(repo):
    repo.write(".promisebot.yaml", "exclude: ['drafts/**']\n")
    repo.write("requests/box.yaml", dump(destination("box")))
    repo.base = repo.commit("settings")
    merged = repo.change({"drafts/r.yaml": dump(request("Redis", "d")),
                          "requests/box.yaml": None,
                          "requests/box.yaml/r.yaml": dump(request("Redis", "b"))})
    result = repo.restrict(merged)
    assert result.taken == ()
    reasons = {d.path: d.reason for d in result.dropped}
    assert reasons["drafts/r.yaml"].startswith("not a Resource request: the platform does not read it")
    assert reasons["requests/box.yaml"] == f"deletes a Destination {ONLY}"
    assert reasons["requests/box.yaml/r.yaml"] == ("cannot be written: 'requests/box.yaml' stays as on the default "
                                                   "branch (its change is not taken)")
    assert git(repo.root, "rev-parse", f"{result.commit}^{{tree}}") == git(repo.root, "rev-parse", f"{repo.base}^{{tree}}")


def test_odd_path_names_are_taken(repo):
    names = ["requests/with space.yaml", "requests/ünïcødé.yaml", "requests/new\nline.yaml", 'requests/"q".yaml']
    merged = repo.change({name: dump(request("Redis", f"odd{i}")) for i, name in enumerate(names)})
    result = repo.restrict(merged)
    assert sorted(result.taken) == sorted(names) and result.dropped == ()
    assert repo.paths(result.commit) == repo.paths(repo.base) | set(names)


def test_the_repositorys_head_index_and_work_tree_are_untouched(repo):
    merged = repo.change({"requests/r2.yaml": dump(request("Redis", "r2")),
                          "promises/redis.yaml": dump(promise("redis", kind="Redis", configure="true"))})
    repo.write("requests/r1.yaml", "edited, not committed\n")
    repo.write("staged.yaml", "staged: true\n")
    git(repo.root, "add", "staged.yaml")
    git_dir = repo.root / ".git"
    before = (git(repo.root, "status", "--porcelain=v2", "-z"), (git_dir / "index").read_bytes(),
              git(repo.root, "rev-parse", "HEAD"), git(repo.root, "for-each-ref"))
    result = repo.restrict(merged)
    after = (git(repo.root, "status", "--porcelain=v2", "-z"), (git_dir / "index").read_bytes(),
             git(repo.root, "rev-parse", "HEAD"), git(repo.root, "for-each-ref"))
    assert after == before
    assert (repo.root / "requests/r1.yaml").read_text() == "edited, not committed\n"
    assert not (repo.root / "requests/r2.yaml").exists()
    assert git(repo.root, "cat-file", "-t", result.commit) == "commit"


def test_it_works_in_a_bare_clone_like_the_clone_cache(repo, tmp_path):
    merged = repo.change({"requests/r2.yaml": dump(request("Redis", "r2")), "README.md": "x\n"})
    git(repo.root, "update-ref", "refs/merged", merged)
    bare = tmp_path / "cache.git"
    subprocess.run(["git", "clone", "-q", "--bare", str(repo.root), str(bare)], check=True)
    git(bare, "fetch", "-q", "origin", "refs/merged:refs/merged")
    result = restrict_to_requests(bare, "main", "refs/merged", message="m")
    assert result.taken == ("requests/r2.yaml",) and [d.path for d in result.dropped] == ["README.md"]
    assert git(bare, "rev-parse", f"{result.commit}^") == repo.base


def test_a_missing_commit_is_a_clear_error(repo, tmp_path):
    with pytest.raises(TrustError, match="commit 'deadbeef' is not in"):
        restrict_to_requests(repo.root, repo.base, "deadbeef", message="m")
    with pytest.raises(TrustError, match="commit 'nosuchbranch' is not in"):
        restrict_to_requests(repo.root, "nosuchbranch", repo.base, message="m")
    with pytest.raises(TrustError, match="not a directory"):
        restrict_to_requests(tmp_path / "nowhere", repo.base, repo.base, message="m")


class GitProcesses:
    """Counts the git processes started (every git command goes through subprocess.Popen)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.commands: list[list[str]] = []
        commands = self.commands

        class Counting(subprocess.Popen):
            def __init__(self, args: Any, *rest: Any, **kwargs: Any) -> None:
                if isinstance(args, list | tuple) and args and os.path.basename(str(args[0])) == "git":
                    commands.append([str(a) for a in args])
                super().__init__(args, *rest, **kwargs)

        monkeypatch.setattr(subprocess, "Popen", Counting)

    def count(self, *words: str) -> int:
        return sum(1 for c in self.commands if all(w in c for w in words))


def test_a_huge_pull_request_costs_the_same_git_processes_as_a_small_one(repo, monkeypatch):
    repo.restrict(repo.change({"requests/zero.yaml": dump(request("Redis", "zero"))}))  # the base is known
    small = repo.change({"requests/one.yaml": dump(request("Redis", "one"))})
    files: dict[str, str | None] = {f"requests/bulk/r{i:04d}.yaml": dump(request("Redis", f"r{i:04d}"))
                                    for i in range(2000)}
    files["promises/redis.yaml"] = dump(promise("redis", configure="true"))
    huge = repo.change(files)
    processes = GitProcesses(monkeypatch)
    repo.restrict(small)
    small_count, small_cat = len(processes.commands), processes.count("cat-file", "--batch")
    processes.commands.clear()
    result = repo.restrict(huge)
    assert len(result.taken) == 2000 and [d.path for d in result.dropped] == ["promises/redis.yaml"]
    assert (len(processes.commands), processes.count("cat-file", "--batch")) == (small_count, small_cat)
    assert small_cat <= 2  # the default branch's platform, read by the loader, and the change
    assert len(repo.paths(result.commit)) == len(repo.paths(repo.base)) + 2000
