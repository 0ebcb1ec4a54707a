"""The steps every job shares: fetch the platform repository into the worker's cache, write the
bot's comment (in parts, edited in place), set a commit status, post a reply, report an error.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

from bot.forges import comment as comments
from bot.forges.base import Comment, Event, Forge, ForgeError, Repo
from bot.jobs.repos import RepoError
from bot.jobs.services import Services
from bot.redact import redact
from bot.server.metrics import JOB_SECONDS

log = logging.getLogger("promisebot.jobs")

PLAN_CONTEXT, APPLY_CONTEXT = comments.PLAN_CONTEXT, comments.APPLY_CONTEXT
OK_TO_TEST_CONTEXT = "promisebot/ok-to-test"


def change_key(event: Event) -> str:
    assert event.repo is not None
    return f"{event.forge}:{event.repo.full_name}:{event.number}"


def repo_key(repo: Repo) -> str:
    return f"{repo.forge}:{repo.full_name}"


def secrets(services: Services) -> list[str]:
    return services.config.secrets()


def sync(event: Event, repo: Repo, forge: Forge, services: Services, refs: list[str]) -> Path:
    """The repository in this worker's cache, fetched (`refs`: more refspecs to fetch). A Git
    network error is transient: a retryable ForgeError, so the queue retries the job."""
    started = time.monotonic()
    try:
        path = services.repos.sync(repo, forge.clone_credentials(repo), refs)
    except RepoError as exc:
        raise ForgeError(str(exc), retryable=True) from None
    JOB_SECONDS.labels(kind=event.kind, stage="fetch").observe(time.monotonic() - started)
    return path


def set_status(forge: Forge, repo: Repo, sha: str, context: str, state: Any, description: str,
               ref: str = "") -> None:
    forge.set_status(repo, sha, context, state, description[:comments.DESCRIPTION_LIMIT], ref=ref)


def upsert_comment(forge: Forge, repo: Repo, number: int, body: str,
                   existing: dict[int, Comment] | None = None) -> None:
    """One comment (in parts when over the forge's limit), found again by its marker and
    edited only where its text changed; parts no longer needed are emptied. `existing`: the
    bot's parts (`comments.find_parts`) when the caller listed them already."""
    parts = comments.split(body, forge.comment_limit())
    if existing is None:
        existing = comments.find_parts(forge.comments(repo, number))
    for index, text in enumerate(parts, start=1):
        old = existing.get(index)
        if old is None:
            forge.create_comment(repo, number, text)
        elif old.body != text:
            forge.edit_comment(repo, number, old.id, text)
    for index, old in existing.items():
        if index > len(parts):
            unused = comments.render_unused_part(index)
            if old.body != unused:
                forge.edit_comment(repo, number, old.id, unused)


def reply(forge: Forge, repo: Repo, number: int, body: str, services: Services) -> None:
    """A new comment answering a command (redacted; cut to the forge's limit)."""
    text = redact(body, secrets(services))
    limit = forge.comment_limit()
    if len(text) > limit:
        text = text[:limit - 60].rstrip() + "\n\n_(cut: the reply was longer than the forge allows)_\n"
    forge.create_comment(repo, number, text)


def report_error(event: Event, repo: Repo, forge: Forge, services: Services, context: str, sha: str,
                 message: str) -> str:
    text = redact(message, secrets(services))
    log.error(json.dumps({"event": event.kind, "error": text}))
    if sha:
        ref = forge.head_ref(event.number) if context == PLAN_CONTEXT else ""
        set_status(forge, repo, sha, context, "error", f"promisebot could not finish: {text}", ref)
    upsert_comment(forge, repo, event.number, comments.render_error(text, secrets=secrets(services)))
    return f"error: {text}"
