"""The promisebot CLI for the crash-safety tests (tests/reconcile/test_reconcile_crash.py):

    python tests/crash_cli.py [--crash-at CHECKPOINT] [--fake-runner] reconcile --platform PATH ...

runs `promisebot reconcile --platform PATH ...` (`bot.cli.main`). `--crash-at` installs a run hook
(bot.reconcile.engine `RunHooks`) that ends the process with status 137 at that checkpoint
(`after-pipelines` or `after-store-write`), at once and without any cleanup, as if it were
killed there: the product code only calls the hook, the kill lives here. `--fake-runner` runs
the pipelines with tests/fake_runner.py instead of Docker.
"""

from __future__ import annotations

import argparse
import functools
import os
import sys

from fake_runner import FakeRunner

from bot import cli
from bot.commands import reconcile as reconcile_command
from bot.reconcile import engine

KILLED = 137  # 128 + SIGKILL: what a shell reports for a killed process


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="crash_cli.py")
    parser.add_argument("--crash-at", choices=[engine.AFTER_PIPELINES, engine.AFTER_STORE_WRITE])
    parser.add_argument("--fake-runner", action="store_true")
    options, args = parser.parse_known_args(argv)

    def crash(checkpoint: str) -> None:
        if checkpoint == options.crash_at:
            os._exit(KILLED)

    hooks = engine.RunHooks(checkpoint=crash)
    reconcile_command.reconcile = functools.partial(engine.reconcile, hooks=hooks)  # type: ignore[assignment]
    if options.fake_runner:
        reconcile_command.DockerRunner = FakeRunner  # type: ignore[assignment,misc]
    return cli.main(args)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
