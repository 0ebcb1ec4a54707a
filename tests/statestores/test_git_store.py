"""GitStateStore (contract §3.6) against real repositories: bare remotes on disk and a real
`git http-backend` behind basic auth on loopback."""

from __future__ import annotations

import subprocess
import threading
import time
from pathlib import Path

import pytest
from git_http import GitHttpServer

from bot.model.objects import SecretRef, Source, StateStore
from bot.model.works import FileChanges
from bot.secrets import SecretResolver
from bot.statestores import StateStoreError, open_store
from bot.statestores.git import GitStateStoreWriter, parse_remote

PASSWORD = "correct-horse-battery-staple"


def git(cwd: Path, *args: str, input: bytes | None = None) -> str:
    return subprocess.run(
        ["git", *args], cwd=cwd, input=input, capture_output=True, check=True
    ).stdout.decode()


def bare_remote(path: Path, branch: str = "main") -> Path:
    path.mkdir(parents=True)
    git(path, "init", "-q", "--bare", f"--initial-branch={branch}")
    return path


def log(remote: Path, branch: str = "main") -> list[str]:
    return git(remote, "log", "--format=%H %P|%an <%ae>|%B%x00", branch).split("\0")[:-1]


def subjects(remote: Path, branch: str = "main") -> list[str]:
    return git(remote, "log", "--format=%s", branch).splitlines()


def files(remote: Path, branch: str = "main") -> dict[str, bytes]:
    names = [n for n in git(remote, "ls-tree", "-r", "-z", "--name-only", branch).split("\0") if n]
    return {n: subprocess.run(["git", "cat-file", "blob", f"{branch}:{n}"], cwd=remote, capture_output=True,
                              check=True).stdout for n in names}


def head(remote: Path, branch: str = "main") -> str | None:
    out = subprocess.run(["git", "rev-parse", "--verify", "-q", f"refs/heads/{branch}"], cwd=remote,
                         capture_output=True, text=True)
    return out.stdout.strip() or None


def store(url: str, *, secret: SecretRef | None = None, **spec: object) -> StateStore:
    return StateStore(kind="GitStateStore", name="default", body={}, source=Source("stores.yaml"), path="",
                      spec={"url": url, **spec}, secret_ref=secret)


def writer(tmp_path: Path, url: str, cache: str = "cache", environ: dict[str, str] | None = None,
           secret: SecretRef | None = None, **spec: object) -> GitStateStoreWriter:
    w = open_store(store(url, secret=secret, **spec), platform_root=tmp_path,
                   secrets=SecretResolver(None, environ or {}), cache_dir=tmp_path / cache)
    assert isinstance(w, GitStateStoreWriter)
    return w


def test_one_commit_for_a_change_set_with_author_subject_and_trailers(tmp_path):
    remote = bare_remote(tmp_path / "remote.git")
    w = writer(tmp_path, "remote.git", gitAuthor={"name": "Platform Bot", "email": "bot@example.com"})
    result = w.apply(
        FileChanges(puts={"dev/resources/default/redis/a/configure/5058f/a.yaml": b"a: 1\n",
                          "prod/dependencies/redis/deps/5058f/b.yaml": b"b: 2\n"}),
        "Update redis/a on dev, prod", {"Platform-Commit": "0123abc", "Promisebot-Event": "push-42"},
    )
    assert result.revision == head(remote)
    assert result.added == ["dev/resources/default/redis/a/configure/5058f/a.yaml",
                            "prod/dependencies/redis/deps/5058f/b.yaml"]
    assert result.modified == [] and result.removed == []
    [entry] = log(remote)
    parents, author, message = entry.strip().split("|", 2)
    assert len(parents.split()) == 1  # a root commit: the branch did not exist
    assert author == "Platform Bot <bot@example.com>"
    assert message.strip() == (
        "Update redis/a on dev, prod (2 added, 0 modified, 0 removed)\n\n"
        "Platform-Commit: 0123abc\nPromisebot-Event: push-42"
    )
    assert files(remote) == {"dev/resources/default/redis/a/configure/5058f/a.yaml": b"a: 1\n",
                             "prod/dependencies/redis/deps/5058f/b.yaml": b"b: 2\n"}


def test_default_author_is_promisebot_and_branch_is_created_next_to_others(tmp_path):
    remote = bare_remote(tmp_path / "remote.git")
    other = writer(tmp_path, "remote.git", cache="c1", branch="other")
    other.apply(FileChanges(puts={"x.yaml": b"x"}), "other branch", {})
    w = writer(tmp_path, str(remote), cache="c2", branch="state")
    w.apply(FileChanges(puts={"y.yaml": b"y"}), "state branch", {})
    assert files(remote, "state") == {"y.yaml": b"y"} and files(remote, "other") == {"x.yaml": b"x"}
    assert log(remote, "state")[0].split("|")[1] == "promisebot <>"


def test_unchanged_write_makes_no_commit(tmp_path):
    remote = bare_remote(tmp_path / "remote.git")
    w = writer(tmp_path, "remote.git")
    changes = FileChanges(puts={"d/a.yaml": b"a", "d/b.yaml": b"b"}, delete_prefixes={"d"})
    first = w.apply(changes, "first", {})
    again = w.apply(changes, "again", {})
    assert again.revision is None and not again.changed
    assert (again.added, again.modified, again.removed) == ([], [], [])
    assert head(remote) == first.revision and subjects(remote) == ["first (2 added, 0 modified, 0 removed)"]
    # A fresh writer (cold cache) agrees nothing changed.
    assert writer(tmp_path, "remote.git", cache="cold").apply(changes, "cold", {}).revision is None


def test_delete_prefixes_mirror_the_latest_output(tmp_path):
    remote = bare_remote(tmp_path / "remote.git")
    w = writer(tmp_path, "remote.git")
    place = "dest/resources/default/redis/a/configure/5058f"
    w.apply(FileChanges(puts={f"{place}/keep.yaml": b"1", f"{place}/gone.yaml": b"2",
                              f"{place}/sub/deep.yaml": b"3", "dest/resources/other.yaml": b"4",
                              "dest/old.yaml": b"5"}), "seed", {})
    result = w.apply(FileChanges(puts={f"{place}/keep.yaml": b"1 changed", f"{place}/new.yaml": b"6"},
                                 deletes={"dest/old.yaml"}, delete_prefixes={place}), "mirror", {})
    assert result.added == [f"{place}/new.yaml"]
    assert result.modified == [f"{place}/keep.yaml"]
    assert result.removed == ["dest/old.yaml", f"{place}/gone.yaml", f"{place}/sub/deep.yaml"]
    assert files(remote) == {f"{place}/keep.yaml": b"1 changed", f"{place}/new.yaml": b"6",
                             "dest/resources/other.yaml": b"4"}
    # Removing a whole placement leaves no empty directory behind, siblings stay.
    w.apply(FileChanges(delete_prefixes={place}), "remove placement", {})
    assert files(remote) == {"dest/resources/other.yaml": b"4"}
    assert w.list_files("dest") == ["dest/resources/other.yaml"]
    # The root as a delete prefix empties the branch (an empty tree, still one commit).
    assert w.apply(FileChanges(delete_prefixes={""}), "remove all", {}).removed == ["dest/resources/other.yaml"]
    assert files(remote) == {} and len(subjects(remote)) == 4


def test_read_list_and_diff_do_not_write(tmp_path):
    remote = bare_remote(tmp_path / "remote.git")
    w = writer(tmp_path, "remote.git")
    assert w.read("a/x.yaml") is None and w.list_files("") == []
    w.apply(FileChanges(puts={"a/x.yaml": b"old", "a/y.yaml": b"y", "b/z.yaml": b"z"}), "seed", {})
    before = head(remote)
    reader = writer(tmp_path, "remote.git", cache="reader")
    assert reader.read("a/x.yaml") == b"old" and reader.read("a") is None and reader.read("a/nope") is None
    assert reader.list_files("a") == ["a/x.yaml", "a/y.yaml"]
    assert reader.list_files("/") == ["a/x.yaml", "a/y.yaml", "b/z.yaml"]
    diffs = reader.diff(FileChanges(puts={"a/x.yaml": b"new", "c/n.yaml": b"n", "b/z.yaml": b"z"},
                                    delete_prefixes={"a"}))
    assert {(d.path, d.action, d.old, d.new) for d in diffs} == {
        ("a/x.yaml", "modify", b"old", b"new"), ("a/y.yaml", "remove", b"y", None),
        ("c/n.yaml", "add", None, b"n"),
    }
    assert head(remote) == before


def test_reading_many_files_in_any_order(tmp_path):
    """Many none-mode state files in one directory, next to nested files and a large one: every
    read is right whatever the order (reads are batched, bot.statestores.git_tree)."""
    bare_remote(tmp_path / "remote.git")
    state = {f"dev/.kratix/default-w{i:04d}.yaml": f"files: [dev/f{i}.yaml]\n".encode() for i in range(600)}
    big = b"x" * (200 << 10)  # larger than the first read-ahead batch
    others = {"dev/f1.yaml": b"f1", "dev/nested/deep/g.yaml": b"g", "dev/.kratix/zz-big.yaml": big, "top.yaml": b"t"}
    seeded = writer(tmp_path, "remote.git", cache="seed")
    seeded.apply(FileChanges(puts=state | others), "seed", {})
    reader = writer(tmp_path, "remote.git", cache="reader")
    names = sorted(state)
    order = names[::-1][:200] + names[::7] + names[1::3] + names[::2]  # reversed, strided, repeats
    for path in order:
        assert reader.read(path) == state[path], path
    assert reader.read("dev/.kratix/zz-big.yaml") == big
    assert reader.read("dev/.kratix/default-w9999.yaml") is None and reader.read("dev/.kratix") is None
    assert reader.read("dev/nested/deep/g.yaml") == b"g" and reader.read("dev/nested") is None
    assert reader.read("dev/f1.yaml") == b"f1" and reader.read("top.yaml") == b"t"
    assert reader.read("elsewhere/x.yaml") is None
    assert len(reader.list_files("dev/.kratix")) == 601
    # A write moves the snapshot: reads see what it pushed.
    reader.apply(FileChanges(puts={"dev/.kratix/default-w0000.yaml": b"new"}, deletes={"top.yaml"}), "update", {})
    assert reader.read("dev/.kratix/default-w0000.yaml") == b"new" and reader.read("top.yaml") is None
    assert reader.read("dev/.kratix/default-w0001.yaml") == state["dev/.kratix/default-w0001.yaml"]


def test_rejected_push_reapplies_the_change_set_on_top_of_the_winner(tmp_path):
    """Writer A's push is held in the remote's pre-receive hook while writer B lands a commit;
    A's push is then rejected, and A re-reads the remote and re-applies its change set."""
    remote = bare_remote(tmp_path / "remote.git")
    holding, go = tmp_path / "holding", tmp_path / "go"
    hook = remote / "hooks" / "pre-receive"
    hook.write_text(f"#!/bin/sh\ncat >/dev/null\nif mkdir {holding} 2>/dev/null; then\n"
                    f"  while [ ! -e {go} ]; do sleep 0.02; done\nfi\n")
    hook.chmod(0o755)
    a = GitStateStoreWriter(store("remote.git"), platform_root=tmp_path, secrets=SecretResolver(None, {}),
                            cache_dir=tmp_path / "cache-a", backoff_seconds=0.01)
    b = writer(tmp_path, "remote.git", cache="cache-b")
    result: dict[str, object] = {}
    thread = threading.Thread(target=lambda: result.update(
        a=a.apply(FileChanges(puts={"dest-a/a.yaml": b"a"}, delete_prefixes={"dest-a"}), "from a", {})))
    thread.start()
    for _ in range(1000):
        if holding.exists():
            break
        time.sleep(0.01)
    assert holding.exists(), "writer A never reached the remote"
    b_result = b.apply(FileChanges(puts={"dest-b/b.yaml": b"b"}), "from b", {})
    go.touch()
    thread.join()
    a_result = result["a"]
    assert files(remote) == {"dest-a/a.yaml": b"a", "dest-b/b.yaml": b"b"}
    assert subjects(remote) == ["from a (1 added, 0 modified, 0 removed)", "from b (1 added, 0 modified, 0 removed)"]
    assert log(remote)[0].split("|")[0].split()[1] == b_result.revision  # A now sits on top of B
    assert a_result.revision == head(remote)


def test_concurrent_writers_lose_nothing(tmp_path):
    remote = bare_remote(tmp_path / "remote.git")
    rounds = 6
    barrier = threading.Barrier(3)
    errors: list[BaseException] = []

    def run(name: str) -> None:
        w = GitStateStoreWriter(store("remote.git"), platform_root=tmp_path, secrets=SecretResolver(None, {}),
                                cache_dir=tmp_path / f"cache-{name}", max_attempts=20, backoff_seconds=0.005)
        barrier.wait()
        try:
            for i in range(rounds):
                w.apply(FileChanges(puts={f"{name}/{i}.yaml": f"{name} {i}".encode(), "shared/last": name.encode()},
                                    delete_prefixes={f"{name}/tmp"}), f"{name} round {i}", {})
        except BaseException as exc:  # surfaced by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(n,)) for n in ("w1", "w2", "w3")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    landed = files(remote)
    for name in ("w1", "w2", "w3"):
        for i in range(rounds):
            assert landed[f"{name}/{i}.yaml"] == f"{name} {i}".encode()
    # Every apply added a new file, so every apply is one commit: nothing squashed or lost.
    assert len(subjects(remote)) == 3 * rounds
    assert git(remote, "rev-list", "--merges", "main") == ""


def test_remote_force_pushed_under_the_bot_recovers(tmp_path):
    remote = bare_remote(tmp_path / "remote.git")
    w = writer(tmp_path, "remote.git")
    first = w.apply(FileChanges(puts={"a.yaml": b"a"}), "one", {})
    w.apply(FileChanges(puts={"b.yaml": b"b"}), "two", {})
    # Someone rewrites history: a new root commit with other content, force-pushed.
    work = tmp_path / "human"
    git(tmp_path, "clone", "-q", str(remote), str(work))
    git(work, "checkout", "-q", "--orphan", "rewritten")
    git(work, "rm", "-rq", "--cached", ".")
    (work / "a.yaml").unlink()
    (work / "b.yaml").unlink()
    (work / "human.yaml").write_text("h")
    git(work, "add", "human.yaml")
    git(work, "-c", "user.name=h", "-c", "user.email=h@x", "commit", "-qm", "rewrite")
    git(work, "push", "-qf", "origin", "rewritten:main")
    rewritten = head(remote)
    result = w.apply(FileChanges(puts={"c.yaml": b"c"}), "three", {})
    assert files(remote) == {"human.yaml": b"h", "c.yaml": b"c"}
    assert log(remote)[0].split("|")[0].split()[1] == rewritten
    assert result.added == ["c.yaml"]
    # Reset back to a commit the cache already knows: still follows the remote.
    git(remote, "update-ref", "refs/heads/main", first.revision)
    w.apply(FileChanges(puts={"d.yaml": b"d"}), "four", {})
    assert files(remote) == {"a.yaml": b"a", "d.yaml": b"d"}


def test_remote_reset_to_an_ancestor_is_not_undone_by_the_next_write(tmp_path):
    # The writer builds on the remote head it last saw; a fast-forward from there would
    # silently re-add what an operator rolled back. The push's lease refuses that.
    remote = bare_remote(tmp_path / "remote.git")
    w = writer(tmp_path, "remote.git")
    first = w.apply(FileChanges(puts={"a.yaml": b"a"}), "one", {})
    w.apply(FileChanges(puts={"bad.yaml": b"rolled back"}), "two", {})
    git(remote, "update-ref", "refs/heads/main", first.revision)  # the operator's rollback
    later = writer(tmp_path, "remote.git")  # a later process, same cache
    result = later.apply(FileChanges(puts={"c.yaml": b"c"}), "three", {})
    assert files(remote) == {"a.yaml": b"a", "c.yaml": b"c"}
    assert log(remote)[1].split("|")[0].split()[0] == first.revision  # built on the rollback
    assert result.added == ["c.yaml"]


def test_a_change_that_is_a_no_op_on_a_stale_view_is_checked_against_the_remote(tmp_path):
    remote = bare_remote(tmp_path / "remote.git")
    a = writer(tmp_path, "remote.git", cache="cache-a")
    a.apply(FileChanges(puts={"f.yaml": b"1"}), "a writes f", {})
    b = writer(tmp_path, "remote.git", cache="cache-b")
    b.apply(FileChanges(deletes={"f.yaml"}), "b removes f", {})
    # Against what `a` last saw, f.yaml is already there; against the remote it is not.
    result = a.apply(FileChanges(puts={"f.yaml": b"1"}), "a writes f again", {})
    assert result.revision is not None and result.added == ["f.yaml"]
    assert files(remote) == {"f.yaml": b"1"}


def test_ready_check(tmp_path):
    bare_remote(tmp_path / "remote.git")
    ok = writer(tmp_path, "file://remote.git").check_ready()
    assert (ok.ready, ok.reason, ok.message) == (True, "StateStoreReady", "State store is ready")
    missing = writer(tmp_path, "does-not-exist.git", cache="c2").check_ready()
    assert (missing.ready, missing.reason) == (False, "ErrorInitialisingWriter")
    assert "does-not-exist.git" in missing.message


def test_bad_input_is_refused_with_clear_errors(tmp_path):
    bare_remote(tmp_path / "remote.git")
    w = writer(tmp_path, "remote.git")
    with pytest.raises(ValueError, match="invalid state store path"):
        w.apply(FileChanges(puts={"../escape.yaml": b"x"}), "bad", {})
    with pytest.raises(ValueError, match="both as a file and as a directory"):
        w.apply(FileChanges(puts={"a": b"x", "a/b": b"y"}), "bad", {})
    with pytest.raises(ValueError, match="trailer"):
        w.apply(FileChanges(puts={"a": b"x"}), "bad", {"Platform-Commit": "x\nInjected: y"})
    with pytest.raises(ValueError, match="password"):
        parse_remote("https://bot:hunter2@example.com/x.git", tmp_path)
    with pytest.raises(ValueError, match="authMethod: ssh"):
        writer(tmp_path, "git@example.com:org/state.git")
    with pytest.raises(ValueError, match="not supported"):
        writer(tmp_path, "https://example.com/x.git", authMethod="token")
    with pytest.raises(ValueError, match="githubApp needs an https url"):
        writer(tmp_path, "remote.git", authMethod="githubApp")
    assert parse_remote("file://remote.git", tmp_path).url == str(tmp_path / "remote.git")
    assert parse_remote("git@github.com:org/state.git", tmp_path).transport == "ssh"


def test_ssh_store_without_secret_is_not_ready(tmp_path):
    w = writer(tmp_path, "ssh://git@127.0.0.1:1/state.git", authMethod="ssh",
               secret=SecretRef("git-ssh", "flux"))
    result = w.check_ready()
    assert (result.ready, result.reason) == (False, "ErrorInitialisingWriter")
    assert "PROMISEBOT_SECRET_FLUX_GIT_SSH_SSHPRIVATEKEY" in result.message


# -- https basic auth through a real git http-backend ---------------------------------------

CREDS = SecretRef("git-creds", "default")


def env_creds(password: str) -> dict[str, str]:
    return {"PROMISEBOT_SECRET_DEFAULT_GIT_CREDS_USERNAME": "bot",
            "PROMISEBOT_SECRET_DEFAULT_GIT_CREDS_PASSWORD": password}


@pytest.fixture
def http_remote(tmp_path):
    root = tmp_path / "served"
    remote = bare_remote(root / "state.git")
    with GitHttpServer(root, "bot", PASSWORD) as server:
        yield server, remote


def test_https_basic_auth_with_the_right_password(tmp_path, http_remote):
    server, remote = http_remote
    w = writer(tmp_path, server.url("state.git"), environ=env_creds(PASSWORD), secret=CREDS)
    assert w.check_ready().ready
    result = w.apply(FileChanges(puts={"dev/a.yaml": b"a"}), "over http", {})
    assert result.revision == head(remote) and files(remote) == {"dev/a.yaml": b"a"}
    assert w.read("dev/a.yaml") == b"a"
    # Nothing secret is stored in the cache's config or scripts.
    for path in (tmp_path / "cache").rglob("*"):
        if path.is_file() and path.suffix in ("", ".sh") and path.stat().st_size < 100_000:
            assert PASSWORD.encode() not in path.read_bytes(), path


def test_https_wrong_password_is_a_clear_error_and_writes_nothing(tmp_path, http_remote):
    server, remote = http_remote
    seeded = writer(tmp_path, server.url("state.git"), cache="good", environ=env_creds(PASSWORD), secret=CREDS)
    seeded.apply(FileChanges(puts={"a.yaml": b"a"}), "seed", {})
    before = head(remote)
    wrong = "wrong-password-123"
    w = writer(tmp_path, server.url("state.git"), cache="bad", environ=env_creds(wrong), secret=CREDS)
    with pytest.raises(StateStoreError) as err:
        w.apply(FileChanges(puts={"b.yaml": b"b"}), "should not land", {})
    message = str(err.value)
    assert "authentication failed" in message and "secret default/git-creds" in message
    assert wrong not in message and PASSWORD not in message
    assert head(remote) == before and files(remote) == {"a.yaml": b"a"}
    ready = w.check_ready()
    assert (ready.ready, ready.reason) == (False, "ErrorInitialisingWriter")
    assert wrong not in ready.message and "authentication failed" in ready.message


def test_https_read_only_access_fails_the_permission_check(tmp_path, http_remote):
    server, remote = http_remote
    git(remote, "config", "http.receivepack", "false")
    w = writer(tmp_path, server.url("state.git"), environ=env_creds(PASSWORD), secret=CREDS)
    ready = w.check_ready()
    assert (ready.ready, ready.reason) == (False, "ErrorValidatingPermissions")
    assert "permission denied" in ready.message and PASSWORD not in ready.message


def test_https_missing_secret_says_what_to_create(tmp_path, http_remote):
    server, _remote = http_remote
    ready = writer(tmp_path, server.url("state.git"), secret=CREDS).check_ready()
    assert (ready.ready, ready.reason) == (False, "ErrorInitialisingWriter")
    assert "PROMISEBOT_SECRET_DEFAULT_GIT_CREDS_USERNAME" in ready.message
    with pytest.raises(StateStoreError, match="PROMISEBOT_SECRET_DEFAULT_GIT_CREDS_USERNAME"):
        writer(tmp_path, server.url("state.git"), secret=CREDS).apply(FileChanges(puts={"a": b"a"}), "x", {})
