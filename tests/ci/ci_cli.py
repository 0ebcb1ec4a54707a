"""`promisebot ci` as a CI job runs it, for the tests (tests/ci/): a process of its own, with only
the environment the test gives it, but the pipelines run by tests/fake_runner.py instead of
Docker:

    python tests/ci/ci_cli.py [--failing PROMISE]... ci [--mode ...] [--platform-path ...] ...

runs `promisebot ci ...` (`bot.cli.main`) with `bot.commands.ci.run` given a FakeRunner factory
(`--failing`: the Promises whose pipelines exit 1). Needs tests/ on PYTHONPATH.
"""

from __future__ import annotations

import argparse
import functools
import sys

from fake_runner import FakeRunner

from bot import cli
from bot.commands import ci


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="ci_cli.py")
    parser.add_argument("--failing", action="append", default=[])
    options, args = parser.parse_known_args(argv)

    def runner() -> FakeRunner:
        fake = FakeRunner()
        fake.failing.update(options.failing)
        return fake

    ci.run = functools.partial(ci.run, runner_factory=runner, retry_waits=(0.1,))  # type: ignore[assignment]
    return cli.main(args)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
