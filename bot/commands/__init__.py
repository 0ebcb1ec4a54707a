"""One module per CLI command; each exposes run(args) -> exit code."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def platform_repo(path: str, command: str) -> Path | None:
    """The platform repo at `path`, or None after telling the user why it cannot be one.

    promisebot reads the platform from Git commits, so the path must be a Git work tree."""
    repo = Path(path)
    if not repo.is_dir():
        print(f"promisebot {command}: --platform {path}: no such directory", file=sys.stderr)
        return None
    inside = subprocess.run(["git", "-C", str(repo), "rev-parse", "--is-inside-work-tree"],
                            capture_output=True, text=True, check=False)
    if inside.stdout.strip() != "true":
        print(f"promisebot {command}: --platform {path}: not a Git repository (promisebot reads the platform "
              "from Git commits: `git init` it and commit the YAML)", file=sys.stderr)
        return None
    return repo
