"""Startup recovery: the work of events this process never received, or received and lost.

A webhook delivered while the bot was down is not sent again by itself, and the embedded
default's queue lives in memory: a crash drops what was queued. So on start (`promisebot serve`,
both modes, and the WSGI app) `recover` walks every repository the bot has seen (the repository
cache, `RepoCache.known()`) and enqueues, as events of kind "recovery-..." deliveries:

- a plan (`change_opened`) of each open, non-draft (unless PROMISEBOT_PLAN_DRAFTS) PR/MR into
  the default branch whose head has no `promisebot/plan` status. In the embedded default a
  `pending` one counts as none too: the queue that held its job died with the last process.
  With Redis a pending plan is a job still queued or running, and is left to it;
- a reconcile (`push`, after = the branch's head now) of the default branch, unless its head
  already carries a successful `promisebot/apply` (a reconcile of it completed; a repeated one
  would be a no-op anyway, by the engine's bookkeeping).

It runs in a background thread (`start_recovery`): the server answers at once. Each enqueue is
recorded in the backend's memo first, so with Redis several web processes starting together
(gunicorn workers) enqueue each piece of work once. A repository that cannot be read (forge
down, access revoked, no longer on the allowlist, its forge no longer configured) is skipped
with a line saying why; its next event brings it back.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time

from bot.errors import PromisebotError
from bot.forges.base import Change, Event, Forge, Repo, event_to_json
from bot.gitcmd import GitError, git, git_environment
from bot.jobs.queue import JobQueue
from bot.jobs.repos import _last_line, auth_environment
from bot.jobs.services import Services
from bot.jobs.steps import APPLY_CONTEXT, PLAN_CONTEXT, change_key
from bot.redact import redact

log = logging.getLogger("promisebot.recovery")


def recover(services: Services, queue: JobQueue, *, replan_pending: bool | None = None) -> list[str]:
    """Enqueue the plans and reconciles described above; one line per repository and per
    decision, for the log. `replan_pending` (default: True in the embedded default, False with
    Redis) also re-plans heads whose plan status is still `pending`."""
    if replan_pending is None:
        replan_pending = services.backend.redis is None
    return _Recovery(services, queue, replan_pending).run()


def start_recovery(services: Services, queue: JobQueue) -> threading.Thread:
    """`recover` in a daemon thread, its lines logged; returns the thread (tests join it)."""

    def run() -> None:
        started = time.monotonic()
        try:
            lines = recover(services, queue)
        except Exception:  # noqa: BLE001 - recovery never takes the server down
            log.exception("startup recovery failed")
            return
        for line in lines:
            log.info("recovery: %s", line)
        log.info("recovery: done in %.1f s", time.monotonic() - started)

    thread = threading.Thread(target=run, name="promisebot-recovery", daemon=True)
    thread.start()
    return thread


class _Recovery:
    def __init__(self, services: Services, queue: JobQueue, replan_pending: bool) -> None:
        self.services, self.queue, self.replan_pending = services, queue, replan_pending
        self.config = services.config

    def run(self) -> list[str]:
        lines: list[str] = []
        for known in self.services.repos.known():
            try:
                lines += self.repository(known)
            except PromisebotError as exc:  # ForgeError, GitError, ConfigError: this repository only
                lines.append(f"{known.forge}:{known.full_name}: skipped: {redact(str(exc), self.config.secrets())}")
        return lines

    def repository(self, known: Repo) -> list[str]:
        where = f"{known.forge}:{known.full_name}"
        if not (self.config.github if known.forge == "github" else self.config.gitlab):
            return [f"{where}: skipped: {known.forge} is not configured"]
        if not self.config.allowed(known.full_name):
            return [f"{where}: skipped: not in PROMISEBOT_REPO_ALLOWLIST"]
        forge, installation_id = self.forge(known)
        now = forge.repository(known.full_name)
        # The clone URL stays the one the webhooks gave (the cache's origin); the rest is current.
        repo = Repo(forge=known.forge, full_name=now.full_name, clone_url=known.clone_url or now.clone_url,
                    default_branch=now.default_branch, project_id=now.project_id)
        lines = [self.change(forge, repo, change, installation_id) for change in forge.open_changes(repo)]
        lines.append(self.branch(forge, repo, installation_id))
        return lines

    def forge(self, repo: Repo) -> tuple[Forge, int | None]:
        """The client the jobs of this repository use, and (a GitHub App) the installation its
        events name: looked up with the App's JWT, since no webhook names it this time."""
        installation_id = None
        if repo.forge == "github" and (app := self.services.github().app) is not None:
            installation_id = app.installation_for(repo.full_name)
        probe = Event(forge=repo.forge, kind="ignored", delivery="recovery", repo=repo,
                      installation_id=installation_id)
        return self.services.forge(probe), installation_id

    def change(self, forge: Forge, repo: Repo, change: Change, installation_id: int | None) -> str:
        what = f"{repo.forge}:{repo.full_name}#{change.number} at {change.head_sha[:12]}"
        if change.base_ref != repo.default_branch:
            return f"{what}: left alone: it targets {change.base_ref}, not {repo.default_branch}"
        if change.draft and not self.config.plan_drafts:
            return f"{what}: left alone: a draft"
        state = forge.statuses(repo, change.head_sha).get(PLAN_CONTEXT)
        if state is not None and not (state == "pending" and self.replan_pending):
            return f"{what}: left alone: {PLAN_CONTEXT} is {state}"
        delivery = self.first_time(repo, f"plan:{change.number}:{change.head_sha}")
        if delivery is None:
            return f"{what}: left alone: recovery queued its plan already"
        event = Event(forge=repo.forge, kind="change_opened", delivery=delivery, repo=repo, number=change.number,
                      head_sha=change.head_sha, base_ref=change.base_ref, base_sha=change.base_sha,
                      draft=change.draft, author=change.author, url=change.url, installation_id=installation_id)
        # As the webhook does, before the job can start: this head is the newest, so a queued
        # plan of an older one is superseded.
        self.services.backend.memo.set_latest(change_key(event), change.head_sha)
        self.enqueue(event)
        return f"{what}: queued a plan ({PLAN_CONTEXT} was {state or 'not set'})"

    def branch(self, forge: Forge, repo: Repo, installation_id: int | None) -> str:
        what = f"{repo.forge}:{repo.full_name} {repo.default_branch}"
        head = self.branch_head(forge, repo)
        if head is None:
            return f"{what}: left alone: the branch does not exist"
        what += f" at {head[:12]}"
        state = forge.statuses(repo, head).get(APPLY_CONTEXT)
        if state == "success":
            return f"{what}: left alone: {APPLY_CONTEXT} is success"
        delivery = self.first_time(repo, f"reconcile:{head}")
        if delivery is None:
            return f"{what}: left alone: recovery queued its reconcile already"
        self.enqueue(Event(forge=repo.forge, kind="push", delivery=delivery, repo=repo,
                           ref=f"refs/heads/{repo.default_branch}", after=head, installation_id=installation_id))
        return f"{what}: queued a reconcile ({APPLY_CONTEXT} was {state or 'not set'})"

    def branch_head(self, forge: Forge, repo: Repo) -> str | None:
        """The default branch's head on the forge now (`git ls-remote` with the clone's credentials)."""
        cwd = self.services.repos.path(repo).parent
        cwd.mkdir(parents=True, exist_ok=True)
        ref = f"refs/heads/{repo.default_branch}"
        try:
            with git_environment(auth_environment(forge.clone_credentials(repo))):
                out = git(cwd, "ls-remote", "--", repo.clone_url, ref)
        except GitError as exc:
            raise GitError(f"could not read the head of {repo.default_branch}: {_last_line(exc)}") from None
        for line in out.decode().splitlines():
            sha, _, name = line.partition("\t")
            if name.strip() == ref:
                return sha.strip()
        return None

    def first_time(self, repo: Repo, what: str) -> str | None:
        """The delivery id of this piece of recovery work, or None when recovery queued it
        already (this process; with Redis, any process within the memo's TTL)."""
        key = f"{repo.forge}:recovery:{repo.full_name}:{what}"
        if not self.services.backend.memo.first_time(key):
            return None
        return f"recovery-{hashlib.sha256(key.encode()).hexdigest()[:32]}"

    def enqueue(self, event: Event) -> None:
        self.queue.enqueue(event_to_json(event), job_id=f"{event.forge}-{event.delivery}", received_at=time.time())
