"""GitTreeSource on a real repository: partial snapshots (`paths`), batched reads in any order,
and the scope of incremental reconciles built on it (bot.reconcile.scope)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from bot.platform import sources as platform_sources
from bot.platform.loader import FileError, GitTreeSource, PlatformFile, load_platform
from bot.reconcile.scope import partial_paths

STORE = "apiVersion: platform.kratix.io/v1alpha1\nkind: GitStateStore\nmetadata: {name: s}\nspec: {url: x}\n"


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True, text=True).stdout.strip()


def commit(repo: Path, files: dict[str, str | None]) -> str:
    for rel, text in files.items():
        path = repo / rel
        if text is None:
            path.unlink()
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    git(repo, "add", "-A")
    git(repo, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "--allow-empty", "-m", "c")
    return git(repo, "rev-parse", "HEAD")


def make_repo(tmp_path: Path, files: dict[str, str | None]) -> tuple[Path, str]:
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    return repo, commit(repo, files)


def listed(source: GitTreeSource) -> list[str]:
    return [f.path for f in source.files() if isinstance(f, PlatformFile)]


def test_partial_snapshot_lists_only_its_paths_taken_literally(tmp_path):
    repo, sha = make_repo(tmp_path, {"a.yaml": "a: 1\n", "b.yaml": "b: 1\n", "[ab].yaml": "c: 1\n",
                                     "dir/d.yaml": "d: 1\n", "notes.txt": "x\n"})
    assert listed(GitTreeSource(repo, sha)) == ["[ab].yaml", "a.yaml", "b.yaml", "dir/d.yaml"]
    partial = GitTreeSource(repo, sha, frozenset({"[ab].yaml", "dir/d.yaml", "gone.yaml", "notes.txt"}))
    assert listed(partial) == ["[ab].yaml", "dir/d.yaml"]  # a pathspec glob would also match a.yaml
    assert partial.read(PlatformFile("dir/d.yaml", None), 100) == b"d: 1\n"
    with pytest.raises(FileError, match="not in this commit"):
        partial.read(PlatformFile("a.yaml", None), 100)
    assert listed(GitTreeSource(repo, sha, frozenset())) == []


def test_reads_in_any_order_across_read_ahead_batches(tmp_path, monkeypatch):
    files = {f"f{i:03d}.yaml": f"i: {i}\n" * (i % 7 + 1) for i in range(120)}
    files["same.yaml"] = files["f001.yaml"]  # one blob, two paths
    repo, sha = make_repo(tmp_path, files)
    monkeypatch.setattr(platform_sources, "READ_AHEAD_BYTES", 200)
    source = GitTreeSource(repo, sha)
    entries = [f for f in source.files() if isinstance(f, PlatformFile)]
    order = entries[::-1] + entries[::3]  # backwards, then some again
    assert [source.read(f, 1000) for f in order] == [files[f.path].encode() for f in order]
    assert source.read(PlatformFile("f119.yaml", None), 3) == b"i: 1"  # max_bytes + 1 bytes


def test_load_platform_of_a_partial_snapshot(tmp_path):
    repo, sha = make_repo(tmp_path, {"stores/s.yaml": STORE, "other.yaml": "kind: X\n"})
    full = load_platform(GitTreeSource(repo, sha))
    partial = load_platform(GitTreeSource(repo, sha, frozenset({"other.yaml"})))
    assert len(full.state_stores) == 1 and not partial.state_stores
    assert [s.file for s in partial.ignored] == ["other.yaml"]
    assert partial.revision == sha


def test_incremental_scope(tmp_path):
    repo, first = make_repo(tmp_path, {"stores/s.yaml": STORE, "r/one.yaml": "kind: R\n", "r/two.yaml": "kind: R\n"})
    second = commit(repo, {"r/one.yaml": "kind: R\nspec: 2\n", "r/three.yaml": "kind: R\n"})
    # Only requests changed: the object files, the changed files and the attention files.
    expected = frozenset({".promisebot.yaml", "stores/s.yaml", "r/one.yaml", "r/three.yaml", "r/two.yaml"})
    assert partial_paths(repo, first, second, {"r/two.yaml"}) == expected  # object files from git grep
    assert partial_paths(repo, first, second, {"r/two.yaml"}, {"stores/s.yaml"}) == expected  # as recorded
    # A Kratix object file changed (or was deleted), or the settings did: read everything.
    third = commit(repo, {"stores/s.yaml": STORE.replace("url: x", "url: y")})
    assert partial_paths(repo, second, third, set()) is None
    fourth = commit(repo, {"stores/s.yaml": None})
    assert partial_paths(repo, third, fourth, set()) is None
    fifth = commit(repo, {".promisebot.yaml": "exclude: []\n"})
    assert partial_paths(repo, fourth, fifth, set()) is None
