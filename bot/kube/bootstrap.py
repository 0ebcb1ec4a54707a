"""The sidecar's first program: `python3 -c "$(this file)"` (STDLIB ONLY; runs under a bare Python).

The runner sends the API's code as the first line of stdin, one JSON object mapping paths
(`bot/kube/server.py`, ...) to their source (`bot.kube.pki.sidecar_code`). This program imports
those modules from memory, so the sidecar's image needs nothing but `python3` and nothing is
copied into its filesystem, then hands stdin and stdout to `bot.kube.server.stdio_main`, which
waits for the run's configuration. A sidecar started ahead of need (the runner's warm pool) has
its code loaded and waits there.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import importlib.util
import json
import sys
import types
from collections.abc import Sequence


class _Sources(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Finds and loads modules from {path: source}; tracebacks name the path."""

    def __init__(self, sources: dict[str, str]) -> None:
        self.sources = sources

    def find_spec(self, name: str, path: Sequence[str] | None = None,
                  target: types.ModuleType | None = None) -> importlib.machinery.ModuleSpec | None:
        base = name.replace(".", "/")
        for key, package in ((base + "/__init__.py", True), (base + ".py", False)):
            if key in self.sources:
                return importlib.util.spec_from_loader(name, self, origin=key, is_package=package)
        return None

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> None:
        return None

    def exec_module(self, module: types.ModuleType) -> None:
        origin = str(module.__spec__.origin if module.__spec__ else '')
        exec(compile(self.sources[origin], origin, "exec"), module.__dict__)


def main() -> int:
    line = sys.stdin.buffer.readline()
    if not line:
        return 0  # the runner went away before sending the code
    sys.meta_path.insert(0, _Sources(json.loads(line)))
    from bot.kube.server import stdio_main

    return stdio_main(sys.stdin.buffer, sys.stdout.buffer)


if __name__ == "__main__":
    sys.exit(main())
