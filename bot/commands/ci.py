"""`promisebot ci [--mode auto|plan|reconcile] [--platform-path PATH] [--detailed-exitcode]`: the
job the webhook path would run for this CI run's event, in the foreground (docs/ci.md).

The event comes from the CI environment (bot/ci/env.py: GitHub Actions' event file, GitLab CI's
variables); the job is `bot.jobs.handlers.handle`, with services built from the environment
(bot/ci/services.py: the CI's token, no webhook secret, no Redis, the Docker engine). A push
reconciles, a pull/merge request is planned and commented on, a comment runs its ChatOps
commands; `--mode plan` on a push plans the pushed range and writes nothing (bot/ci/mode.py).
Transient forge failures are retried a few times, as the queue would.

Afterwards: the outcome (bot/ci/outcome.py) on stdout, as a job summary appended to
`$GITHUB_STEP_SUMMARY` and as step outputs appended to `$GITHUB_OUTPUT` (bot/ci/summary.py).

Exit codes: 0 done; 1 failed (a pipeline failed, something is invalid, a store could not be
written, the status is failure or error, the job could not finish, a variable is missing or
the mode does not fit the event); 2 the plan has changes, with --detailed-exitcode only; usage
errors as every command (2).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
import shutil
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path

from bot.ci import env as cienv
from bot.ci.mode import decide
from bot.ci.outcome import EXIT_FAILED, Outcome, exit_code, job_outcome, title_of
from bot.ci.services import CiServices, borrow_objects, build_services, ci_config, data_dir
from bot.ci.summary import render_outputs, render_summary, render_text
from bot.errors import PromisebotError
from bot.forges.base import Event, ForgeError
from runners.base import Runner

RETRY_WAITS = (5.0, 15.0, 45.0)  # after a transient forge failure (or the forge's Retry-After, at most 120 s)
log = logging.getLogger("promisebot.ci")


def read_event(environ: Mapping[str, str]) -> Event:
    """The event of this CI run (GitHub Actions: the file GITHUB_EVENT_PATH names)."""
    if cienv.forge_of(environ) == "gitlab":
        return cienv.gitlab_event(environ)
    path = cienv.required(environ, "GITHUB_EVENT_PATH")
    try:
        payload = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise cienv.CiEnvError(f"GITHUB_EVENT_PATH: cannot read {path}: {exc.strerror}") from None
    except ValueError as exc:
        raise cienv.CiEnvError(f"GITHUB_EVENT_PATH: {path} is not JSON: {exc}") from None
    return cienv.github_event(environ, payload)


def run(args: argparse.Namespace, environ: Mapping[str, str] | None = None,
        runner_factory: Callable[[], Runner] | None = None, retry_waits: tuple[float, ...] = RETRY_WAITS) -> int:
    """The command. `environ`: the CI environment (default: this process's); `runner_factory`:
    the pipeline runner (default: the Docker engine's)."""
    env = os.environ if environ is None else environ
    try:
        event = read_event(env)
        checkout = _checkout(args.platform_path)
    except PromisebotError as exc:
        print(f"promisebot ci: {exc}", file=sys.stderr)
        return EXIT_FAILED
    decision = decide(event, args.mode)
    if decision.action == "refused":
        print(f"promisebot ci: {decision.why}", file=sys.stderr)
        return EXIT_FAILED
    if decision.action == "nothing":
        _report(Outcome(title="nothing to do", result=f"ignored: {decision.why}"), env)
        return 0
    assert event.repo is not None
    try:
        config = ci_config(env, event.forge, Path())
    except PromisebotError as exc:
        print(f"promisebot ci: {exc}", file=sys.stderr)
        return EXIT_FAILED
    if not config.allowed(event.repo.full_name):
        print(f"promisebot ci: repository {event.repo.full_name} is not in PROMISEBOT_REPO_ALLOWLIST", file=sys.stderr)
        return EXIT_FAILED
    directory, temporary = data_dir(env)
    try:
        services = build_services(dataclasses.replace(config, data_dir=directory), runner_factory)
        _logging(services)
        if temporary and checkout is not None:  # a clone that outlives the job never borrows
            log.info("the platform clone: %s", borrow_objects(services.repos.path(event.repo), checkout))
        try:
            if decision.action == "dry-run":
                outcome = _dry_run(event, services)
            else:
                outcome = _job(event, services, retry_waits)
        except PromisebotError as exc:
            outcome = Outcome(title=title_of(event), result=f"could not finish: {exc}{_hint(event, exc)}",
                              failed=True)
    finally:
        if temporary:
            shutil.rmtree(directory, ignore_errors=True)
    _report(outcome, env)
    return exit_code(outcome, args.detailed_exitcode)


def _checkout(platform_path: str | None) -> Path | None:
    """The job's checkout of the platform repo (`--platform-path`, default the current directory)."""
    if platform_path is None:
        return Path.cwd()
    path = Path(platform_path)
    if not path.is_dir():
        raise cienv.CiEnvError(f"--platform-path {platform_path}: no such directory")
    return path.resolve()


def _logging(services: CiServices) -> None:
    """JSON log lines on stderr, secrets redacted, unless the embedding program logs already."""
    if not logging.getLogger().handlers:
        from bot.server.logs import setup_logging

        setup_logging(services.config.secrets())


def _job(event: Event, services: CiServices, waits: tuple[float, ...]) -> Outcome:
    """The webhook path's job for `event`; transient forge failures retried after `waits`."""
    from bot.jobs.handlers import handle
    from bot.server.logs import delivery_context

    assert event.repo is not None
    for wait in (*waits, None):
        try:
            with delivery_context(event.delivery):
                result = handle(event, services)
            break
        except ForgeError as exc:
            if not exc.retryable or wait is None:
                raise
            delay = min(120.0, exc.retry_after if exc.retry_after is not None else wait)
            print(f"promisebot ci: {exc}; trying again in {delay:.0f} s", file=sys.stderr)
            time.sleep(delay)
    return _outcome(event, result, services)


def _outcome(event: Event, result: str, services: CiServices) -> Outcome:
    from bot.ci.journal import CommentWrite
    from bot.ci.outcome import plan_comment
    from bot.ci.push import landed_for_push
    from bot.forges import comment as comments

    assert event.repo is not None
    journal, forge = services.journal, services.forge(event)
    existing = None
    if event.kind in ("change_opened", "change_updated", "comment") and journal.last_status(comments.PLAN_CONTEXT) \
            and plan_comment(journal, event.number) is None:  # planned, and the comment's text did not change
        part = comments.find_parts(forge.comments(event.repo, event.number)).get(1)
        existing = CommentWrite(event.number, part.id, part.body) if part else None
    change_url = ""
    if not event.url and event.number and (journal.comments or existing):
        change_url = forge.fetch_change(event.repo, event.number).url
    details = ""
    if event.kind == "push" and journal.statuses:
        rows = landed_for_push(services.repos.path(event.repo), event.before, event.after)
        details = "\n".join(comments.render_landed(rows))
    return job_outcome(event, result, journal, comment=existing, change_url=change_url, details=details)


def _dry_run(event: Event, services: CiServices) -> Outcome:
    from bot.ci.push import dry_run
    from bot.commands.plan import render
    from bot.forges import comment as comments
    from bot.redact import redact
    from bot.report.outcomes import needs_attention

    assert event.repo is not None
    report = dry_run(event, services)
    secrets = services.config.secrets()
    _state, description = comments.status_for(report, secrets=secrets)
    text = redact(render(report), secrets)
    print(text)
    return Outcome(title=f"plan of the push to {event.repo.default_branch} at `{event.after[:12]}` (nothing written)",
                   result=f"planned {event.after[:12]}: {description}", has_changes=report.changed, plan=True,
                   failed=needs_attention(report), details=f"```text\n{text}\n```")


def _hint(event: Event, exc: PromisebotError) -> str:
    """What to check when the forge refused the token (403)."""
    if not isinstance(exc, ForgeError) or exc.status != 403:
        return ""
    fork = "; GitHub gives a pull request from a fork a read-only GITHUB_TOKEN" if event.forge == "github" else ""
    return f" (the token lacks a permission: docs/ci.md lists what the job needs{fork})"


def _report(outcome: Outcome, environ: Mapping[str, str]) -> None:
    """The outcome on stdout, in the job summary and the step outputs (GitHub Actions)."""
    print(render_text(outcome))
    run_url = cienv.github_run_url(environ) or cienv.gitlab_run_url(environ)
    for name, text in (("GITHUB_STEP_SUMMARY", render_summary(outcome, run_url=run_url)),
                       ("GITHUB_OUTPUT", render_outputs(outcome))):
        target = environ.get(name, "").strip()
        if not target:
            continue
        try:
            with open(target, "a", encoding="utf-8") as handle:
                handle.write(text)
        except OSError as exc:
            print(f"promisebot ci: {name}: cannot write {target}: {exc.strerror}", file=sys.stderr)
