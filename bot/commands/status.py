"""`promisebot status [KIND[/NAMESPACE]/NAME] [--platform PATH] [--output json]`: what
happened to each object, read from the bookkeeping branch (docs/reconciler.md) — the same
answer on a laptop, in CI or on the server.

Exit codes: 0 shown, 1 the named object is unknown or the platform repo is unreadable.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from rich.console import Console
from rich.table import Table

from bot.commands import platform_repo
from bot.kratix.conditions import READY, RECONCILED, find_condition
from bot.model.objects import Ref
from bot.model.records import ObjectRecord
from bot.platform.loader import FileError, GitTreeSource, read_settings
from bot.settings import SETTINGS_FILE, load_settings
from bot.state.bookkeeping import Bookkeeping, BookkeepingError

EXIT_OK, EXIT_ERROR = 0, 1


def parse_ref(text: str) -> tuple[str, str | None, str]:
    """KIND/NAME or KIND/NAMESPACE/NAME; KIND matches a request's Kind or Kind.group."""
    parts = text.split("/")
    if len(parts) == 2:
        return parts[0], None, parts[1]
    if len(parts) == 3:
        return parts[0], parts[1], parts[2]
    raise ValueError(f"expected KIND/NAME or KIND/NAMESPACE/NAME, got {text!r}")


def _matches(ref: Ref, kind: str, namespace: str | None, name: str) -> bool:
    kinds = {ref.kind.lower(), ref.kind.split(".", 1)[0].lower()}
    return kind.lower() in kinds and ref.name == name and (namespace is None or ref.namespace == namespace)


def record_json(rec: ObjectRecord) -> dict[str, Any]:
    return {
        "kind": rec.ref.kind, "namespace": rec.ref.namespace, "name": rec.ref.name,
        "status": rec.status, "lastRun": rec.last_run,
        "placements": [p.to_json() for p in rec.placements],
        "failureLogs": rec.logs,
        "suspended": rec.resume,
    }


def _summary(rec: ObjectRecord) -> tuple[str, str, str, str]:
    status = rec.status
    reconciled = find_condition(status, RECONCILED)
    ready = find_condition(status, READY)
    state = (reconciled or ready or {}).get("message", "")
    message = str(status.get("message", ""))
    total, ok = status.get("workflows"), status.get("workflowsSucceeded")
    workflows = f"{ok}/{total}" if total is not None else ""
    placements = ", ".join(sorted({f"{p.destination}@{'pending' if p.pending else (p.commit or '-')[:7]}"
                                   for p in rec.placements}))
    return message, state, workflows, placements


def run(args: argparse.Namespace) -> int:
    repo = platform_repo(args.platform, "status")
    if repo is None:
        return EXIT_ERROR
    try:
        settings, _ = read_settings(GitTreeSource(repo, "HEAD", frozenset({SETTINGS_FILE})))
    except FileError:
        settings = load_settings()
    try:
        bk = Bookkeeping.open(repo, settings.state_branch)
    except BookkeepingError as exc:
        print(f"promisebot status: {exc}", file=sys.stderr)
        return EXIT_ERROR
    refs = bk.refs()
    if args.object:
        try:
            kind, namespace, name = parse_ref(args.object)
        except ValueError as exc:
            print(f"promisebot status: {exc}", file=sys.stderr)
            return EXIT_ERROR
        refs = [r for r in refs if _matches(r, kind, namespace, name)]
        if not refs:
            print(f"promisebot status: no status recorded for {args.object}", file=sys.stderr)
            return EXIT_ERROR
    records = [r for r in bk.get_many(refs).values()]
    pending = bk.pending_writes()
    if args.output == "json":
        print(json.dumps({"revision": bk.meta.get("revision"), "objects": [record_json(r) for r in records],
                          "pendingWrites": [{"store": p.store_key, "error": p.error, "since": p.since,
                                             "attempts": p.attempts} for p in pending],
                          "invalid": bk.meta.get("invalid") or []}, indent=2))
        return EXIT_OK
    table = Table(title=f"promisebot status (platform {str(bk.meta.get('revision') or '-')[:12]})")
    for column in ("KIND", "NAMESPACE", "NAME", "MESSAGE", "STATUS", "WORKFLOWS", "PLACEMENTS", "LAST RUN"):
        table.add_column(column)
    for rec in records:
        message, state, workflows, placements = _summary(rec)
        table.add_row(rec.ref.kind, rec.ref.namespace, rec.ref.name, message, state, workflows, placements,
                      rec.last_run or "")
    Console(width=200 if not sys.stdout.isatty() else None).print(table)
    for problem in bk.meta.get("invalid") or []:
        field = f" {problem['field']}:" if problem.get("field") else ""
        print(f"invalid, not acted on: {problem['file']}:{problem['line']}:{field} {problem['message']}")
    for p in pending:
        print(f"pending write to {p.store_key} since {p.since} ({p.attempts} attempt{'s' * (p.attempts != 1)}, "
              f"retried by the next reconcile): {p.error}")
    for rec in records:
        if args.object and rec.logs:
            for entry in rec.logs:
                why = entry.get("reason") or (f"exited with code {entry['exitCode']}" if entry.get("exitCode") else "failed")
                print(f"\n--- logs of {entry.get('pipeline')}/{entry.get('container')} ({why}) ---\n{entry.get('log', '')}")
    return EXIT_OK
