"""GitStateStore writer (contract §3.1, §3.6): one cached clone per store, one commit and one push
per change set, built in time proportional to the changed files.

How a write works, without a work tree or an index:
- the cache is a bare repository under `cache_dir` keyed by url+branch; before each write
  `git ls-remote` reads the remote branch and `git fetch` runs only if that commit is unknown;
- one `git fast-import` run writes the new blobs and the trees along the changed paths on top
  of the remote head; untouched subtrees are reused by id, so files already in the store cost
  nothing, and a delete prefix (`D <dir>` before the puts) empties its directory in one step;
- `git diff-tree` between the old and new root trees gives the added/modified/removed files;
  an unchanged root tree means no commit;
- one commit (author/committer from `gitAuthor`), one `git push <commit>:refs/heads/<branch>`.
  A rejected push (the branch moved) re-reads the remote and re-applies the same change set on
  top of it, with jittered exponential backoff, a bounded number of times. A remote rewritten
  under the bot needs nothing special: every write starts from the remote's current branch.

Reads and lists come from the cache at the synced commit, without the network: each directory
is listed once and blobs are read in batches (bot.statestores.git_tree), so N reads cost O(N).
Remotes and credentials: bot.statestores.git_auth (nothing secret in URLs or `.git/config`).
"""

from __future__ import annotations

import fcntl
import hashlib
import logging
import random
import re
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from git import Actor, Commit, Repo

from bot.gitcmd import EMPTY_TREE, GitError, ls_tree
from bot.model.objects import DEFAULT_GIT_AUTHOR, DEFAULT_GIT_BRANCH, StateStore
from bot.model.works import FileChanges
from bot.secrets import SecretResolver
from bot.statestores.base import (
    Change,
    FileDiff,
    NormalisedChanges,
    ReadyResult,
    StateStoreError,
    WriteResult,
    check_trailers,
    commit_message,
    normalise_path,
)
from bot.statestores.git_auth import BASIC_AUTH, GITHUB_APP_AUTH, SSH_AUTH, GitAuth, parse_remote
from bot.statestores.git_tree import CommitFiles, fast_import_commands, parse_raw_diff, split_changes

log = logging.getLogger(__name__)

BUILD_REF = "refs/promisebot/build"  # scratch ref fast-import writes to
_RETRYABLE_REMOTE_REJECTIONS = ("lock", "failed to update ref", "incorrect old value")


class GitStateStoreWriter:
    """A GitStateStore (contract §3.6). See the module docstring for how writes work."""

    def __init__(
        self,
        store: StateStore,
        *,
        platform_root: Path,
        secrets: SecretResolver,
        cache_dir: Path,
        max_attempts: int = 5,
        backoff_seconds: float = 0.2,
    ) -> None:
        spec = store.spec
        self.store = store
        self.remote = parse_remote(str(spec.get("url") or ""), platform_root)
        self.branch = str(spec.get("branch") or DEFAULT_GIT_BRANCH)
        if self.branch.startswith(("-", "refs/")) or not re.match(r"^[A-Za-z0-9._/-]+$", self.branch):
            raise ValueError(f"invalid GitStateStore branch {self.branch!r}")
        self.auth_method = str(spec.get("authMethod") or BASIC_AUTH)
        if self.auth_method not in (BASIC_AUTH, SSH_AUTH, GITHUB_APP_AUTH):
            raise ValueError(
                f"GitStateStore authMethod {self.auth_method!r} is not supported (use basicAuth, ssh or githubApp)"
            )
        if self.auth_method == GITHUB_APP_AUTH and self.remote.transport != "http":
            raise ValueError("GitStateStore authMethod githubApp needs an https url")
        if self.remote.transport == "ssh" and self.auth_method != SSH_AUTH:
            raise ValueError("GitStateStore with an ssh url needs authMethod: ssh")
        if self.remote.transport == "http" and self.auth_method == SSH_AUTH:
            raise ValueError("GitStateStore authMethod ssh needs an ssh url (ssh://... or user@host:path)")
        author = spec.get("gitAuthor") or {}
        self.author = Actor(str(author.get("name") or DEFAULT_GIT_AUTHOR), str(author.get("email") or ""))
        self._max_attempts = max(1, max_attempts)
        self._backoff = backoff_seconds
        self._tracking = f"refs/remotes/origin/{self.branch}"
        key = hashlib.sha256(f"{self.remote.url}\0{self.branch}".encode()).hexdigest()[:24]
        self._root = Path(cache_dir) / "git"
        self._path = self._root / key
        self._synced: str | None = None
        self._has_synced = False
        self._files: CommitFiles | None = None
        self._auth = GitAuth(store, self.remote, self.auth_method, secrets, self._root)

    def __repr__(self) -> str:
        return f"GitStateStoreWriter({self.store.name!r}, url={self.remote.url!r}, branch={self.branch!r})"

    # -- public interface ---------------------------------------------------------------

    def read(self, path: str) -> bytes | None:
        """Read from the cache, without the network once synced: each directory is listed once
        and blobs are read in batches (bot.statestores.git_tree), so N reads cost O(N)."""
        path = normalise_path(path)
        files = self._snapshot()
        if files is None:
            return None
        with self._locked():
            try:
                return files.read(path)
            except GitError as exc:
                raise StateStoreError(f"{self}: cannot read {path} from the cache: {exc}") from None

    def list_files(self, prefix: str) -> list[str]:
        prefix = normalise_path(prefix, directory=True)
        files = self._snapshot()
        if files is None:
            return []
        with self._locked():
            try:
                entries = ls_tree(self._path, files.commit, [prefix + "/"] if prefix else None)
            except GitError as exc:
                raise StateStoreError(f"{self}: cannot list {prefix or 'the store'} in the cache: {exc}") from None
        return sorted(e.path for e in entries)

    def apply(self, changes: FileChanges, message: str, trailers: dict[str, str]) -> WriteResult:
        """One commit and one push for the whole change set (contract §3.6, batched)."""
        norm = NormalisedChanges.of(changes)
        check_trailers(trailers)
        with self._session() as (repo, env):
            commands = fast_import_commands(norm)
            # Optimistic: build on the remote head as last seen (no round trip first); the push's
            # lease fails if the branch has moved, been reset or deleted since, and then we sync.
            head, known = self._last_seen(repo)
            synced = False  # confirmed against the remote during this call
            if not known:
                head, synced = self._sync(repo, env), True
            for attempt in range(1, self._max_attempts + 1):
                old_tree, new_tree, diff = self._build(repo, head, commands)
                if new_tree == old_tree:
                    if not synced:  # "nothing to do" only counts against the real remote head
                        head, synced = self._sync(repo, env), True
                        old_tree, new_tree, diff = self._build(repo, head, commands)
                    if new_tree == old_tree:
                        log.info("%s: nothing to commit", self)
                        return WriteResult(None)
                added, modified, removed = split_changes(diff)
                text = commit_message(message, trailers, len(added), len(modified), len(removed))
                parents = [repo.commit(head)] if head else []
                commit = Commit.create_from_tree(
                    repo, new_tree, text, parent_commits=parents, author=self.author, committer=self.author
                )
                if self._push(repo, env, commit.hexsha, expect=head):
                    self._run(repo, ["update-ref", self._tracking, commit.hexsha], env={}, what="record push")
                    self._exec(repo, ["gc", "--auto", "--quiet"], {}, network=False)
                    self._synced, self._has_synced = commit.hexsha, True
                    log.info("%s: pushed %s (%s)", self, commit.hexsha[:12], text.splitlines()[0])
                    return WriteResult(commit.hexsha, added, modified, removed)
                if attempt < self._max_attempts:
                    if synced:  # a stale optimistic base is no contention: retry at once
                        delay = self._backoff * 2 ** (attempt - 1) * random.uniform(0.5, 1.5)
                        log.warning("%s: push rejected (attempt %d), retrying in %.2fs", self, attempt, delay)
                        time.sleep(delay)
                    head, synced = self._sync(repo, env), True
        raise StateStoreError(
            f"{self}: push rejected {self._max_attempts} times because the branch kept moving; "
            "the change set was not written"
        )

    def diff(self, changes: FileChanges) -> list[FileDiff]:
        norm = NormalisedChanges.of(changes)
        with self._session() as (repo, env):
            head = self._sync(repo, env)
            _old, _new, diff = self._build(repo, head, fast_import_commands(norm))

            def blob(sha: str | None) -> bytes | None:
                return repo.odb.stream(bytes.fromhex(sha)).read() if sha else None

            return [FileDiff(c.path, c.action, blob(c.old), blob(c.new)) for c in diff]

    def check_ready(self) -> ReadyResult:
        """Fetch works and a dry-run push is accepted (contract §3.6 readiness)."""
        try:
            with self._session() as (repo, env):
                head = self._sync(repo, env)
                try:
                    source = head or Commit.create_from_tree(
                        repo, EMPTY_TREE, "promisebot permission check", parent_commits=[],
                        author=self.author, committer=self.author,
                    ).hexsha
                    self._run(
                        repo,
                        ["push", "--dry-run", "--porcelain", "origin", f"{source}:refs/heads/{self.branch}"],
                        env=env, what="check write permission on", network=True,
                    )
                except StateStoreError as exc:
                    return ReadyResult.permission_failed(str(exc))
        except (StateStoreError, ValueError, OSError) as exc:
            return ReadyResult.init_failed(str(exc))
        return ReadyResult.ok()

    # -- the cached repository ----------------------------------------------------------

    @contextmanager
    def _locked(self) -> Iterator[None]:
        """The cache locked for this process and others."""
        self._root.mkdir(parents=True, exist_ok=True)
        with open(self._path.with_suffix(".lock"), "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            yield

    @contextmanager
    def _session(self) -> Iterator[tuple[Repo, dict[str, str]]]:
        """The cached bare repository, locked, and the env of git commands that use the network."""
        with self._locked():
            repo = self._open_repo()
            try:
                with self._auth.env() as env:
                    yield repo, env
            finally:
                repo.close()

    def _open_repo(self) -> Repo:
        if (self._path / "HEAD").is_file():
            return Repo(self._path)
        tmp = Path(tempfile.mkdtemp(prefix=".init-", dir=self._root))
        repo = Repo.init(tmp, bare=True)
        with repo.config_writer() as cfg:
            cfg.set_value('remote "origin"', "url", self.remote.url)
            cfg.set_value('remote "origin"', "fetch", f"+refs/heads/{self.branch}:{self._tracking}")
            cfg.set_value("gc", "autoDetach", "false")
        repo.close()
        tmp.rename(self._path)
        return Repo(self._path)

    def _exec(
        self, repo: Repo, args: list[str], env: dict[str, str], network: bool, stdin: bytes | None = None
    ) -> tuple[int, str, str]:
        """`git <args>` in the cache: (status, stdout, stderr). Network commands use no helper."""
        cmd = ["git", "--literal-pathspecs"] + (["-c", "credential.helper="] if network else []) + args
        with tempfile.TemporaryFile() as data:
            if stdin is not None:
                data.write(stdin)
                data.seek(0)
            return repo.git.execute(
                cmd, env=env, istream=data if stdin is not None else None, with_extended_output=True,
                with_exceptions=False, strip_newline_in_stdout=False,
            )

    def _run(
        self, repo: Repo, args: list[str], *, env: dict[str, str], what: str, network: bool = False,
        stdin: bytes | None = None,
    ) -> str:
        """`git <args>`'s stdout; StateStoreError (secrets redacted) if it fails."""
        status, out, err = self._exec(repo, args, env, network, stdin)
        if status != 0:
            raise StateStoreError(self._auth.describe_failure(f"{what} {self.remote.url} (branch {self.branch})", err))
        return out

    def _snapshot(self) -> CommitFiles | None:
        """The files of the remote head as this writer first saw it, or as its last apply left
        it (reads and lists see one snapshot); None when the branch does not exist."""
        if not self._has_synced:
            with self._session() as (repo, env):
                self._sync(repo, env)
        if self._synced is None:
            return None
        if self._files is None or self._files.commit != self._synced:
            self._files = CommitFiles(self._path, self._synced)
        return self._files

    def _sync(self, repo: Repo, env: dict[str, str]) -> str | None:
        """Bring the remote branch into the cache; its commit id, or None if it does not exist."""
        out = self._run(
            repo, ["ls-remote", "origin", f"refs/heads/{self.branch}"], env=env, what="read", network=True
        )
        head = out.split()[0] if out.strip() else None
        if head is None:
            self._exec(repo, ["update-ref", "-d", self._tracking], {}, network=False)
        elif self._has_commit(repo, head):
            self._run(repo, ["update-ref", self._tracking, head], env={}, what="reset to")
        else:
            self._run(
                repo, ["fetch", "--no-tags", "origin", f"+refs/heads/{self.branch}:{self._tracking}"],
                env=env, what="fetch", network=True,
            )
            head = self._run(repo, ["rev-parse", self._tracking], env={}, what="fetch").strip()
        self._synced, self._has_synced = head, True
        return head

    def _last_seen(self, repo: Repo) -> tuple[str | None, bool]:
        """(the remote head this writer or an earlier process last saw — None: no branch —,
        whether one was seen at all); kept in the cache's tracking ref, which every sync, fetch
        and push updates."""
        if self._has_synced:
            return self._synced, True
        status, out, _err = self._exec(repo, ["rev-parse", "--verify", "-q", self._tracking], {}, network=False)
        return (out.strip(), True) if status == 0 and out.strip() else (None, False)

    def _has_commit(self, repo: Repo, sha: str) -> bool:
        return self._exec(repo, ["cat-file", "-e", f"{sha}^{{commit}}"], {}, network=False)[0] == 0

    def _push(self, repo: Repo, env: dict[str, str], commit: str, expect: str | None) -> bool:
        """Push `commit` (a child of `expect`) to the branch, only if the branch is still at
        `expect` (absent when None): a lease, checked against the push's own ref advertisement,
        so no extra round trip. False if rejected because the branch is elsewhere."""
        ref = f"refs/heads/{self.branch}"
        status, out, err = self._exec(
            repo, ["push", "--porcelain", f"--force-with-lease={ref}:{expect or ''}", "origin", f"{commit}:{ref}"],
            env, network=True,
        )
        for line in out.splitlines():
            if line.startswith("!\t"):
                outcome = line.split("\t", 2)[-1].lower()
                if "[rejected]" in outcome or (
                    "[remote rejected]" in outcome and any(s in outcome for s in _RETRYABLE_REMOTE_REJECTIONS)
                ):
                    return False
                said = self._auth.remote_says(err)
                raise StateStoreError(f"push to {self.remote.url} (branch {self.branch}) refused: {outcome}"
                                      + (f"; the server said: {said}" if said else ""))
        if status != 0:
            raise StateStoreError(self._auth.describe_failure(f"push to {self.remote.url} (branch {self.branch})", err))
        return True

    # -- building the new tree ----------------------------------------------------------

    def _build(self, repo: Repo, head: str | None, commands: bytes) -> tuple[str, str, list[Change[str]]]:
        """(old root tree, new root tree, files changed) for the change set applied on `head`.

        `git fast-import` loads only the trees along the changed paths, so the cost follows
        the change set, not the files already in the store.
        """
        start = f"from {head}\n" if head else "deleteall\n"
        stream = f"commit {BUILD_REF}\ncommitter promisebot <> 0 +0000\ndata 0\n{start}".encode()
        self._run(repo, ["fast-import", "--quiet", "--force", "--done"], env={}, what="build a commit for",
                  stdin=stream + commands + b"done\n")
        revs = [f"{BUILD_REF}^{{tree}}"] + ([f"{head}^{{tree}}"] if head else [])
        new_tree, old_tree = (self._run(repo, ["rev-parse", *revs], env={}, what="build").split() + [EMPTY_TREE])[:2]
        if new_tree == old_tree:
            return old_tree, new_tree, []
        out = self._run(
            repo, ["diff-tree", "-r", "-z", "--no-renames", old_tree, new_tree], env={}, what="compare trees of"
        )
        return old_tree, new_tree, parse_raw_diff(out)
