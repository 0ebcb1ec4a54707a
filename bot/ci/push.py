"""A push, beyond the job: its dry-run plan (`--mode plan`: what reconciling the pushed range
would change, nothing written, nothing posted) and, after a reconcile, where the objects the
push changed landed (read from bookkeeping, as the apply's comment says it)."""

from __future__ import annotations

from pathlib import Path

from bot.errors import PromisebotError
from bot.forges.base import Event
from bot.gitcmd import git_environment, rev_sha
from bot.jobs.landed import landed_between, landed_for_merge
from bot.jobs.repos import auth_environment
from bot.jobs.services import Services
from bot.reconcile.engine import ReconcileReport, reconcile
from bot.report.landed import Landed


def _known(path: Path, sha: str) -> str | None:
    """`sha` when it is a commit of the clone (not the zero SHA of a new branch, not lost to a
    force push), else None."""
    if not sha or set(sha) == {"0"}:
        return None
    return sha if rev_sha(path, sha) else None


def dry_run(event: Event, services: Services) -> ReconcileReport:
    """The plan of the push `event` (before..after; from what bookkeeping last reconciled when
    `before` is unknown): the pipelines run, nothing is written anywhere."""
    assert event.repo is not None
    forge = services.forge(event)
    credentials = forge.clone_credentials(event.repo)
    path = services.repos.sync(event.repo, credentials, [])
    runner = services.runner_factory()
    try:
        with git_environment(auth_environment(credentials)):
            return reconcile(path, runner=runner, from_rev=_known(path, event.before), to_rev=event.after,
                             dry_run=True)
    finally:
        close = getattr(runner, "close", None)
        if close:
            close()


def landed_for_push(path: Path, before: str, after: str) -> list[Landed]:
    """Where each object the commits before..after changed landed (`after` against its parent when
    `before` is unknown); empty when it cannot be read."""
    try:
        old = _known(path, before)
        return landed_for_merge(path, after) if old is None else landed_between(path, old, after)
    except PromisebotError:
        return []
