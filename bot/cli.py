"""The `promisebot` command line. Each command's work lives in bot/commands/<name>.py."""

from __future__ import annotations

import argparse
import importlib
import sys
from typing import NoReturn

from bot import __version__
from bot.errors import PromisebotError

EXIT_OK, EXIT_INVALID, EXIT_USAGE = 0, 1, 2


class UsageError(PromisebotError):
    def __init__(self, parser: argparse.ArgumentParser, message: str) -> None:
        super().__init__(message)
        self.parser = parser


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UsageError(self, message)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="promisebot",
        description="Git-native platform orchestrator: run Kratix Promises from a Git platform repo, "
        "with no platform cluster.",
    )
    parser.add_argument("--version", action="version", version=f"promisebot {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    p = sub.add_parser(
        "validate",
        help="check every Promise, Destination, State Store and Resource request in a platform repo",
        description="Validate a platform repo and report every problem (file:line, field, reason). "
        "Exit codes: 0 valid, 1 invalid, 2 usage error.",
    )
    p.add_argument("path", nargs="?", default=".", help="platform repo directory (default: .)")
    p.add_argument("--output", choices=["text", "json"], default="text", help="output format")

    p = sub.add_parser(
        "test",
        help="run one workflow of a Promise on a request locally and show what it produced",
        description="Run a Promise workflow through real pipeline containers and print exit codes, "
        "logs, outputs, merged status, workflow control and workload groups. Exit code 1 if a "
        "pipeline failed.",
    )
    p.add_argument("--promise", required=True, metavar="FILE", help="the Promise YAML file")
    p.add_argument("--request", metavar="FILE", help="the Resource request YAML file (resource workflows)")
    p.add_argument("--workflow", choices=["resource", "promise"], default="resource")
    p.add_argument("--action", choices=["configure", "delete"], default="configure")
    p.add_argument("--output", metavar="DIR", help="write each pipeline's input/output/metadata here")

    for name, helptext in (
        ("plan", "show what a reconcile would change in each state store, writing nothing"),
        ("reconcile", "run pipelines and write their outputs to the state stores"),
    ):
        exits = (" Exit codes: 0 no changes, 2 changes, 1 error (usage errors included)." if name == "plan"
                 else " Exit codes: 0 done, 1 error, 2 usage error.")
        p = sub.add_parser(name, help=helptext, description=helptext[0].upper() + helptext[1:] + "." + exits)
        p.add_argument("--platform", default=".", metavar="PATH", help="platform repo (default: .)")
        p.add_argument("--from", dest="from_rev", metavar="REV", help="platform commit already reconciled")
        p.add_argument("--to", dest="to_rev", metavar="REV", help="platform commit to reconcile (default HEAD)")
        p.add_argument("--all", action="store_true",
                       help="every object and every placement, as the periodic reconcile does (repairs drift)")
        p.add_argument("--output", choices=["text", "json"], default="text", help="output format")

    p = sub.add_parser(
        "status",
        help="show what happened to each object (from the bookkeeping branch)",
        description="Show the status of objects: KIND[/NAMESPACE]/NAME, or all when omitted.",
    )
    p.add_argument("object", nargs="?", metavar="KIND[/NAMESPACE]/NAME")
    p.add_argument("--platform", default=".", metavar="PATH", help="platform repo (default: .)")
    p.add_argument("--output", choices=["text", "json"], default="text", help="output format")

    p = sub.add_parser(
        "serve",
        help="receive GitHub/GitLab webhooks: plans on pull/merge requests, apply on merge (docs/bot.md)",
        description="The webhook server. Configuration from PROMISEBOT_* environment variables (docs/bot.md). "
                    "Without REDIS_URL it also runs the jobs itself. Exit codes: 1 invalid configuration.",
    )
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8080, help="port (default 8080)")

    p = sub.add_parser(
        "worker",
        help="run queued bot jobs from Redis (REDIS_URL)",
        description="Run queued jobs (rq) from REDIS_URL; start as many as wanted, on any machine.",
    )
    p.add_argument("--name", default=None, help="worker name (default: generated)")
    p.add_argument("--burst", action="store_true", help="exit once the queue is empty")
    p.add_argument("--metrics-port", type=int, default=None, metavar="PORT",
                   help="serve this worker's Prometheus metrics (its jobs included) on PORT")

    p = sub.add_parser(
        "ci",
        help="run the bot's job for this GitHub Actions / GitLab CI run's event, in the foreground (docs/ci.md)",
        description="Read the event from the CI environment and run the job the webhook would: a push "
                    "reconciles, a pull/merge request is planned and commented on, a comment runs its "
                    "ChatOps commands. Exit codes: 0 done, 1 failed, 2 the plan has changes "
                    "(--detailed-exitcode only) or a usage error.",
    )
    p.add_argument("--mode", choices=["auto", "plan", "reconcile"], default="auto",
                   help="auto (default): what the event asks; plan: plan a pull/merge request, or a push's "
                        "range writing nothing; reconcile: a push or a merge (a pull request is refused)")
    p.add_argument("--platform-path", metavar="PATH", default=None,
                   help="the job's checkout of the platform repo (default: .); a complete (not shallow) "
                        "checkout lends its Git objects, the rest is fetched from the forge")
    p.add_argument("--detailed-exitcode", action="store_true",
                   help="exit 2 when the plan has changes (0 when it has none, 1 when it failed)")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except UsageError as exc:
        exc.parser.print_usage(sys.stderr)
        print(f"{exc.parser.prog}: error: {exc}", file=sys.stderr)
        words = [a for a in (sys.argv[1:] if argv is None else argv) if not a.startswith("-")]
        # plan's exit 2 means "changes" (like terraform plan -detailed-exitcode): its usage errors are 1
        return EXIT_INVALID if words[:1] == ["plan"] else EXIT_USAGE
    if not args.command:
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    module = importlib.import_module(f"bot.commands.{args.command}")
    try:
        return int(module.run(args))
    except PromisebotError as exc:  # every error promisebot raises on purpose: reported, no traceback
        print(f"promisebot {args.command}: {exc}", file=sys.stderr)
        return EXIT_INVALID


if __name__ == "__main__":
    sys.exit(main())
