"""bot.gitcmd's process-wide caches are bounded: a long-running worker reconciling many platform
repos for months holds them the whole time."""

from __future__ import annotations

import subprocess
import threading

import pytest

from bot import gitcmd
from bot.gitcmd import RecentSet, rev_sha


def test_recent_set_keeps_only_the_most_recently_used():
    recent: RecentSet[int] = RecentSet(3)
    for i in range(10):
        recent.add(i)
    assert len(recent) == 3 and 6 not in recent and 9 in recent
    assert 7 in recent  # found: now the most recent
    recent.add(10)
    assert 7 in recent and 8 not in recent and len(recent) == 3


def test_recent_set_from_many_threads_stays_bounded():
    recent: RecentSet[tuple[int, int]] = RecentSet(50)

    def fill(t: int) -> None:
        for i in range(2000):
            recent.add((t, i))
            _ = (t, i - 1) in recent

    threads = [threading.Thread(target=fill, args=(t,)) for t in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(recent) == 50


def commits(repo, count: int) -> list[str]:
    subprocess.run(["git", "init", "-q", "-b", "main", str(repo)], check=True)
    shas = []
    for i in range(count):
        subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "--allow-empty",
                        "-m", str(i)], cwd=repo, check=True)
        shas.append(subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo, check=True, capture_output=True,
                                   text=True).stdout.strip())
    return shas


def test_known_commits_are_bounded(tmp_path, monkeypatch):
    assert gitcmd.COMMITS_KNOWN > 0 and gitcmd._COMMITS.size == gitcmd.COMMITS_KNOWN
    monkeypatch.setattr(gitcmd, "_COMMITS", RecentSet(3))
    repo = tmp_path / "repo"
    shas = commits(repo, 6)
    assert [rev_sha(repo, sha) for sha in shas] == shas
    assert rev_sha(repo, "HEAD") == shas[-1]
    assert len(gitcmd._COMMITS) == 3

    def no_git(*args, **kwargs):
        raise AssertionError("git was run")

    monkeypatch.setattr(gitcmd, "git", no_git)
    assert rev_sha(repo, shas[-1]) == shas[-1]  # remembered: no `git rev-parse`
    with pytest.raises(AssertionError, match="git was run"):
        rev_sha(repo, shas[0])  # forgotten: asked again


def test_toplevel_cache_is_bounded():
    assert gitcmd.toplevel.cache_info().maxsize is not None
