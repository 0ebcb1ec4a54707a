"""The ChatOps grammar: a pull/merge request comment body into the commands it gives.

A command is a line starting with `/promisebot` or `@<bot login>` (case-insensitive, followed by
whitespace or the end of the line), then a command name and its arguments::

    /promisebot plan App.example.promise.syntasso.io/default/my-app
    @promisebot apply

Several commands in one comment run in order (at most `MAX_COMMANDS`). What is not read:

- lines inside fenced code blocks (``` or ~~~, three or more; the block ends at a fence of the
  same character at least as long, or at the end of the comment);
- indented code (a line indented by 4 columns or more; up to 3 spaces are allowed before a
  command, as markdown allows);
- quoted lines (`>`), and HTML comment blocks (a line starting with `<!--`, to the line
  holding `-->`), which readers of the comment do not see.

A comment with no command gives an empty `Parsed` (ignored silently). A line addressed to the
bot that is not a valid command gives a `Problem`: an unknown command or a typo (with the
closest command as `suggestion`), `/promisebot` alone (suggesting `help`), the wrong number of
arguments, an argument that is not `KIND/NAMESPACE/NAME` (or `KIND/NAME` for a cluster-scoped
object), a line longer than `MAX_LINE_CHARS`, or more than `MAX_COMMANDS` commands. A problem's
`message` never contains the user's text (that is `text`, for the reply to quote safely).

Arguments are checked for syntax only (the caller checks them against the platform's objects);
what passes holds only letters, digits, `.`, `-` and `/`, and never reaches a shell anyway.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterator
from dataclasses import dataclass

from bot.errors import PromisebotError
from bot.model.objects import Ref

PREFIX = "/promisebot"
COMMANDS: tuple[str, ...] = ("plan", "apply", "status", "rerun", "ok-to-test", "unlock", "help")
MAX_COMMANDS = 10  # command lines read from one comment
MAX_LINE_CHARS = 1_000  # a longer command line is refused
MAX_QUOTE_CHARS = 100  # of the user's text kept in a Problem
REF_SYNTAX = "KIND/NAMESPACE/NAME"
# unknown: not a command; empty: the prefix alone; arity: wrong number of arguments; argument: a
# malformed argument; too-long: line over MAX_LINE_CHARS; too-many: commands over MAX_COMMANDS.
PROBLEM_KINDS: tuple[str, ...] = ("unknown", "empty", "arity", "argument", "too-long", "too-many")

USAGE: dict[str, str] = {
    "plan": "plan [KIND/NAMESPACE/NAME ...]",
    "apply": "apply",
    "status": "status [KIND/NAMESPACE/NAME]",
    "rerun": "rerun KIND/NAMESPACE/NAME",
    "ok-to-test": "ok-to-test",
    "unlock": "unlock",
    "help": "help",
}
SUMMARY: dict[str, str] = {
    "plan": "plan the change again: every object it touches, or only the objects named",
    "apply": "merge the change and apply its plan, once the apply requirements are met",
    "status": "what happened to the objects of the change, or to the object named",
    "rerun": "run the workflows of the object named again",
    "ok-to-test": "allow promisebot to plan the current head of a change from someone without write access",
    "unlock": "release the platform lock this change holds",
    "help": "the commands, and which of them you may run",
}

# (minimum, maximum) number of arguments; None: no maximum.
_ARITY: dict[str, tuple[int, int | None]] = {
    "plan": (0, None),
    "apply": (0, 0),
    "status": (0, 1),
    "rerun": (1, 1),
    "ok-to-test": (0, 0),
    "unlock": (0, 0),
    "help": (0, 0),
}

_FENCE_OPEN = re.compile(r"(`{3,}|~{3,})(.*)")
_FENCE_CLOSE = re.compile(r"(`{3,}|~{3,})[ \t]*")
_KIND = re.compile(r"[A-Za-z][A-Za-z0-9]{0,62}")
_DNS_LABEL = re.compile(r"[a-z0-9](?:[-a-z0-9]{0,61}[a-z0-9])?")
_MAX_SUBDOMAIN = 253
_MAX_LABEL = 63


@dataclass(frozen=True, slots=True)
class ObjectRef:
    """An object named in a command: `kind` is `Kind` or `Kind.group` (a Resource request's
    kind and API group), `namespace` is "" for a cluster-scoped object (`KIND/NAME`)."""

    kind: str
    namespace: str
    name: str

    def __str__(self) -> str:
        return f"{self.kind}/{self.namespace}/{self.name}" if self.namespace else f"{self.kind}/{self.name}"

    def as_ref(self) -> Ref:
        """The platform model's `Ref` of the same object."""
        return Ref(self.kind, self.name, self.namespace)


@dataclass(frozen=True, slots=True)
class Command:
    """One valid command; `line` is its 1-based line in the comment."""

    name: str
    args: tuple[ObjectRef, ...]
    line: int


@dataclass(frozen=True, slots=True)
class Problem:
    """A line addressed to the bot that is not a valid command.

    `text` is the user's text concerned (the line, or the one bad argument), cut to
    `MAX_QUOTE_CHARS`; `message` says what is wrong without quoting the user; `suggestion` is
    the command whose usage the reply should show: the closest command to an unknown one (None
    when nothing is close), `help` for `/promisebot` alone, the command itself for bad arguments.
    `kind` says which rule the line broke (`PROBLEM_KINDS`).
    """

    line: int
    text: str
    message: str
    suggestion: str | None = None
    kind: str = "unknown"  # one of PROBLEM_KINDS


@dataclass(frozen=True, slots=True)
class Parsed:
    """The commands of a comment, in order, and the problems of the lines that were not."""

    commands: tuple[Command, ...] = ()
    problems: tuple[Problem, ...] = ()

    @property
    def empty(self) -> bool:
        """No line of the comment is addressed to the bot: the comment is ignored silently."""
        return not self.commands and not self.problems


class RefError(PromisebotError, ValueError):
    """An argument that is not a valid object reference; the message does not quote it."""


def parse(body: str, bot_login: str | None = None) -> Parsed:
    """The commands of comment `body`; `bot_login` (the bot's forge login, with or without `@`;
    a GitHub App's `name[bot]` also answers to `@name`) enables the `@login` form."""
    prefixes = _prefixes(bot_login)
    commands: list[Command] = []
    problems: list[Problem] = []
    seen = 0
    for number, line in _readable_lines(body):
        words = line.split()
        if not words or words[0].casefold() not in prefixes:
            continue
        seen += 1
        if seen > MAX_COMMANDS:
            message = (f"too many commands in one comment: at most {MAX_COMMANDS} are read; this line "
                       "and the ones after it were not")
            problems.append(Problem(number, _quote(line), message, kind="too-many"))
            break
        if len(line) > MAX_LINE_CHARS:
            message = f"line too long: a command line has at most {MAX_LINE_CHARS} characters"
            problems.append(Problem(number, _quote(line), message, kind="too-long"))
            continue
        command, found = _command(number, line.strip(), words[1:])
        if command is not None:
            commands.append(command)
        problems.extend(found)
    return Parsed(tuple(commands), tuple(problems))


def parse_object_ref(text: str) -> ObjectRef:
    """`KIND/NAMESPACE/NAME` or `KIND/NAME` into an ObjectRef. Raises RefError."""
    parts = text.split("/")
    if len(parts) not in (2, 3):
        raise RefError(f"expected {REF_SYNTAX} (or KIND/NAME for a cluster-scoped object)")
    kind, name = parts[0], parts[-1]
    namespace = parts[1] if len(parts) == 3 else ""
    if message := kind_error(kind):
        raise RefError(message)
    if len(parts) == 3 and (message := _label_error("the namespace", namespace)):
        raise RefError(message)
    if message := _subdomain_error("the name", name):
        raise RefError(message)
    return ObjectRef(kind, namespace, name)


def kind_error(kind: str) -> str | None:
    """Why `kind` is not `Kind` or `Kind.group`, or None."""
    plain, dot, group = kind.partition(".")
    if not _KIND.fullmatch(plain):
        return ("the kind must be a Kubernetes kind (a letter, then letters and digits, at most 63), "
                "optionally followed by .GROUP")
    if dot and _subdomain_error("", group):
        return "the kind's API group must be a DNS subdomain (lowercase letters, digits, '-' and '.')"
    return None


def closest_command(word: str) -> str | None:
    """The command `word` most likely meant, or None."""
    found = difflib.get_close_matches(word.casefold(), COMMANDS, n=1, cutoff=0.6)
    return found[0] if found else None


def _command(number: int, line: str, words: list[str]) -> tuple[Command | None, list[Problem]]:
    if not words:
        return None, [Problem(number, _quote(line), "no command given", "help", "empty")]
    name = words[0].casefold()
    if name not in COMMANDS:
        return None, [Problem(number, _quote(line), "unknown command", closest_command(name), "unknown")]
    args = words[1:]
    low, high = _ARITY[name]
    if not low <= len(args) <= (len(args) if high is None else high):
        return None, [Problem(number, _quote(line), _arity_message(name), name, "arity")]
    refs: list[ObjectRef] = []
    problems: list[Problem] = []
    for arg in args:
        try:
            refs.append(parse_object_ref(arg))
        except RefError as exc:
            problems.append(Problem(number, _quote(arg), f"bad argument of {name}: {exc}", name,
                                    "argument"))
    if problems:
        return None, problems
    return Command(name, tuple(refs), number), []


def _arity_message(name: str) -> str:
    low, high = _ARITY[name]
    if high == 0:
        return f"{name} takes no arguments"
    if low == high:
        return f"{name} takes exactly one {REF_SYNTAX}"
    return f"{name} takes at most one {REF_SYNTAX}"


def _prefixes(bot_login: str | None) -> frozenset[str]:
    found = {PREFIX}
    login = (bot_login or "").strip().lstrip("@").casefold()
    if login:
        found.add(f"@{login}")
        if login.endswith("[bot]"):  # a GitHub App: mentioned without its suffix
            found.add(f"@{login.removesuffix('[bot]')}")
    return frozenset(found)


def _quote(text: str) -> str:
    text = text.strip()
    return text if len(text) <= MAX_QUOTE_CHARS else text[:MAX_QUOTE_CHARS] + "…"


def _readable_lines(body: str) -> Iterator[tuple[int, str]]:
    """(1-based number, text) of each line a reader sees as text: not code, quote or HTML comment."""
    fence: str | None = None  # the open fence's characters
    in_comment = False
    for number, raw in enumerate(body.replace("\r\n", "\n").replace("\r", "\n").split("\n"), start=1):
        indent = _indent(raw)
        text = raw.lstrip(" \t")
        if fence is not None:
            close = _FENCE_CLOSE.fullmatch(text) if indent < 4 else None
            if close and close.group(1)[0] == fence[0] and len(close.group(1)) >= len(fence):
                fence = None
            continue
        if in_comment:
            in_comment = "-->" not in raw
            continue
        if indent >= 4 or text.startswith(">"):
            continue
        opening = _FENCE_OPEN.fullmatch(text)
        if opening and not (opening.group(1)[0] == "`" and "`" in opening.group(2)):
            fence = opening.group(1)
            continue
        if text.startswith("<!--"):
            in_comment = "-->" not in text[4:]
            continue
        yield number, text


def _indent(line: str) -> int:
    """Columns of leading whitespace (a tab advances to the next multiple of 4)."""
    column = 0
    for char in line:
        if char == " ":
            column += 1
        elif char == "\t":
            column += 4 - column % 4
        else:
            break
    return column


def _label_error(what: str, value: str) -> str | None:
    if len(value) > _MAX_LABEL or not _DNS_LABEL.fullmatch(value):
        return (f"{what} must be a DNS label: lowercase letters, digits and '-', starting and ending "
                f"with a letter or digit, at most {_MAX_LABEL} characters")
    return None


def _subdomain_error(what: str, value: str) -> str | None:
    if len(value) > _MAX_SUBDOMAIN or not all(_DNS_LABEL.fullmatch(part) for part in value.split(".")):
        return (f"{what} must be a DNS subdomain: lowercase letters, digits, '-' and '.', each "
                f"dot-separated part starting and ending with a letter or digit, at most {_MAX_SUBDOMAIN} "
                "characters")
    return None
