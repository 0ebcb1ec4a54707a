"""`promisebot validate [PATH] [--output json]`: every problem of a platform repo, at once
(its objects, its settings, and the ChatOps policy in its settings file).

Exit codes: 0 valid (warnings allowed), 1 invalid, 2 usage error (PATH missing or not a
directory).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from bot.chatops.policy import PolicyError, load_policy
from bot.model.objects import Platform, Problem
from bot.platform.loader import DirSource, load_platform
from bot.platform.validate.platform import validate_platform
from bot.settings import SETTINGS_FILE

EXIT_OK, EXIT_INVALID, EXIT_USAGE = 0, 1, 2


def run(args: argparse.Namespace) -> int:
    path = Path(args.path)
    if not path.is_dir():
        what = "does not exist" if not path.exists() else "is not a directory"
        print(f"promisebot validate: {path} {what}", file=sys.stderr)
        return EXIT_USAGE
    platform = load_platform(DirSource(path))
    problems = validate_platform(platform) + policy_problems(path)
    valid = not any(p.severity == "error" for p in problems)
    if args.output == "json":
        print(json.dumps({"valid": valid, "problems": [p.as_dict() for p in problems],
                          "objects": summary(platform)}, indent=2))
    else:
        print(render_text(problems, platform, valid))
    return EXIT_OK if valid else EXIT_INVALID


def policy_problems(path: Path) -> list[Problem]:
    """The ChatOps policy sections of the settings file (docs/chatops.md), checked as the bot
    checks them, so a bad policy is caught before it reaches the default branch."""
    settings = path / SETTINGS_FILE
    if not settings.is_file():
        return []
    try:
        load_policy(settings.read_text(encoding="utf-8", errors="replace"))
    except PolicyError as exc:
        return list(exc.problems)
    return []


def summary(platform: Platform) -> dict[str, Any]:
    """What was found: names per kind, requests per Promise, ignored documents."""
    requests: dict[str, list[str]] = {name: [] for name in sorted(platform.promises)}
    for request in sorted(platform.requests.values(), key=lambda r: r.ref):
        requests.setdefault(request.promise, []).append(f"{request.namespace}/{request.name}")
    return {
        "promises": sorted(platform.promises),
        "destinations": sorted(platform.destinations),
        "stateStores": [str(ref) for ref in sorted(platform.state_stores)],
        "requests": requests,
        "ignored": [str(source) for source in platform.ignored],
    }


def render_text(problems: list[Problem], platform: Platform, valid: bool) -> str:
    lines = [f"{p.severity}: {p}" if p.severity != "error" else str(p) for p in problems]
    found = summary(platform)
    if lines:
        lines.append("")
    lines.append(f"Promises: {len(found['promises'])}" + _names(found["promises"]))
    lines.append(f"Destinations: {len(found['destinations'])}" + _names(found["destinations"]))
    lines.append(f"State Stores: {len(found['stateStores'])}" + _names(found["stateStores"]))
    total = sum(len(v) for v in found["requests"].values())
    lines.append(f"Resource requests: {total}")
    for promise, names in found["requests"].items():
        if names:
            lines.append(f"  {promise}: {len(names)}" + _names(names))
    lines.append(f"Ignored documents: {len(found['ignored'])}" + _names(found["ignored"]))
    errors = sum(p.severity == "error" for p in problems)
    warnings = len(problems) - errors
    verdict = "valid" if valid else "invalid"
    lines.append(f"{verdict}: {errors} error(s), {warnings} warning(s)")
    return "\n".join(lines)


def _names(names: list[str]) -> str:
    return f" ({', '.join(names)})" if names else ""
