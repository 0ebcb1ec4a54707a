"""Who may run which ChatOps command, and what an apply requires: the `commands`,
`destinations`, `apply` and `plan` sections of `.promisebot.yaml` (read from the default branch,
never from the change being commented on).

Schema (every section and key optional; `apply` shows the defaults; `users`, `teams` and
`destinations` are empty and `plan.drafts` unset by default)::

    commands:                    # one entry per command: plan, apply, status, rerun, ok-to-test,
      apply:                     #   unlock, help; an entry replaces that command's default rule
        permission: write        # minimum repository role: none|read|triage|write|maintain|admin
        users: [alice]           # forge logins always allowed
        teams: [acme/platform]   # GitHub teams org/slug, GitLab groups full/path: members allowed
    destinations:
      production:                # a Destination's metadata.name
        owners: [alice, acme/sre]  # an apply touching it needs an approval from one of them
                                 #   (a login, or a team/group: an entry with a '/')
    apply:
      requirements: [approved, mergeable, undiverged, plan-succeeded]
      approvals: 1               # approvals from someone other than the author (`approved`)
      mergeMethod: merge         # merge|squash|rebase
    plan:
      drafts: true               # plan draft PRs/MRs too (unset: PROMISEBOT_PLAN_DRAFTS decides)

A rule allows a commenter whose role is at least `permission` (when set), or whose login is in
`users`, or who is a member of any of `teams`. An entry without `permission` allows only its
users and teams (`apply: {}` allows nobody). Defaults: `plan`, `status` and `help` for anyone
who may comment (`permission: none`); `apply`, `rerun`, `ok-to-test` and `unlock` need `write`.
Each Destination's owners apply whatever `apply.requirements` says; the author's own approval
never counts. GitLab access levels map onto the roles (`gitlab_role`): Guest read, Reporter triage,
Developer write, Maintainer maintain, Owner admin. Logins and team names compare
case-insensitively.

Unknown keys, unknown commands, wrong types, unknown roles, requirements or merge methods, a
negative `approvals` (or one set while `approved` is not required) are errors: `load_policy`
raises a `PolicyError` holding every problem, each with the file, line and field path
(`.promisebot.yaml:7 commands.apply.permission: 'writer' is not one of none, read, ...`).
The file is loaded by `bot.platform.yamlload` (size cap, nesting depth, alias bombs refused).
Other top-level keys belong to the settings (`bot.settings`) and are left to them.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass, field
from typing import Any

from bot.chatops.grammar import COMMANDS
from bot.errors import PromisebotError
from bot.model.objects import Problem
from bot.platform.yamlload import FieldPath, YamlDoc, format_path, load_yaml_bytes
from bot.settings import POLICY_SECTIONS

POLICY_FILE = ".promisebot.yaml"
POLICY_KEYS: tuple[str, ...] = POLICY_SECTIONS
MAX_POLICY_BYTES = 1 << 20
ROLES: tuple[str, ...] = ("none", "read", "triage", "write", "maintain", "admin")  # lowest first
REQUIREMENTS: tuple[str, ...] = ("approved", "mergeable", "undiverged", "plan-succeeded")
MERGE_METHODS: tuple[str, ...] = ("merge", "squash", "rebase")
DEFAULT_PERMISSIONS: dict[str, str] = {
    "plan": "none", "apply": "write", "status": "none", "rerun": "write",
    "ok-to-test": "write", "unlock": "write", "help": "none",
}

_RULE_KEYS = ("permission", "users", "teams")
_DESTINATION_KEYS = ("owners",)
_APPLY_KEYS = ("requirements", "approvals", "mergeMethod")
_PLAN_KEYS = ("drafts",)
_LOGIN = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9._-]{0,254})(?:\[bot\])?")
_TEAM = re.compile(r"[A-Za-z0-9_.-]{1,255}(?:/[A-Za-z0-9_.-]{1,255}){1,20}")
_DESTINATION = re.compile(r"[a-z0-9](?:[-a-z0-9.]{0,251}[a-z0-9])?")


@dataclass(frozen=True, slots=True)
class Rule:
    """Who may run `command`: a role of at least `permission` (None: no role suffices), one of
    `users`, or a member of one of `teams`."""

    command: str
    permission: str | None
    users: tuple[str, ...] = ()
    teams: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Decision:
    """Whether a commenter may run a command, and what the rule asks for, as a phrase for a
    reply ("write access to acme/platform, or membership of acme/sre"; "" when anyone may)."""

    allowed: bool
    needs: str


@dataclass(frozen=True, slots=True)
class ApplyPolicy:
    requirements: tuple[str, ...] = REQUIREMENTS
    approvals: int = 1
    merge_method: str = "merge"


@dataclass(frozen=True)
class Policy:
    """The ChatOps policy of a platform repo (defaults for what the file does not say)."""

    rules: dict[str, Rule] = field(default_factory=dict)  # command -> rule, set in the file
    destinations: dict[str, tuple[str, ...]] = field(default_factory=dict)  # Destination -> owners
    apply: ApplyPolicy = ApplyPolicy()
    plan_drafts: bool | None = None  # None: not set in the file

    def rule(self, command: str) -> Rule:
        """The rule of `command` (one of `COMMANDS`); raises ValueError for another name."""
        if command not in DEFAULT_PERMISSIONS:
            raise ValueError(f"unknown command {command!r} (known: {', '.join(COMMANDS)})")
        return self.rules.get(command) or Rule(command, DEFAULT_PERMISSIONS[command])

    def owners_for(self, destinations: Iterable[str]) -> dict[str, tuple[str, ...]]:
        """The owners of each of `destinations` that has some (the others are left out)."""
        return {d: self.destinations[d] for d in destinations if self.destinations.get(d)}


class PolicyError(PromisebotError, ValueError):
    """An invalid policy; `problems` holds every problem found, each with file, line and field."""

    def __init__(self, problems: Iterable[Problem]) -> None:
        self.problems = tuple(sorted(problems, key=lambda p: p.source.line))
        super().__init__("\n".join(describe(p) for p in self.problems))


def describe(problem: Problem) -> str:
    """`file:line field: message`, as the bot's comments show a problem."""
    where = f"{problem.source.file}:{problem.source.line}"
    return f"{where} {problem.field}: {problem.message}" if problem.field else f"{where}: {problem.message}"


def is_team(entry: str) -> bool:
    """Whether an entry of `teams` or `owners` names a team or group (org/slug, group/path)."""
    return "/" in entry


def role_rank(role: str) -> int:
    """The position of `role` in `ROLES`; raises ValueError for an unknown role."""
    try:
        return ROLES.index(role)
    except ValueError:
        raise ValueError(f"unknown role {role!r} (known: {', '.join(ROLES)})") from None


def gitlab_role(access_level: int) -> str:
    """The role of a GitLab access level: Guest (10) read, Reporter (20) triage, Developer (30)
    write, Maintainer (40) maintain, Owner (50) admin; below Guest, none."""
    for level, role in ((50, "admin"), (40, "maintain"), (30, "write"), (20, "triage"), (10, "read")):
        if access_level >= level:
            return role
    return "none"


def authorize(rule: Rule, login: str, role: str, teams_of_user: Collection[str],
              repo: str | None = None) -> Decision:
    """May `login`, with repository `role` (one of ROLES) and member of `teams_of_user`, run the
    command of `rule`? `repo` (owner/name) names the repository in `Decision.needs`."""
    rank = role_rank(role)
    user = login.casefold()
    teams = {t.casefold() for t in teams_of_user}
    allowed = ((rule.permission is not None and rank >= role_rank(rule.permission))
               or user in {u.casefold() for u in rule.users}
               or any(t.casefold() in teams for t in rule.teams))
    return Decision(allowed, needs(rule, repo))


def needs(rule: Rule, repo: str | None = None) -> str:
    """What `rule` asks for, as a phrase ("" when anyone who may comment is allowed)."""
    if rule.permission == "none":
        return ""
    parts = []
    if rule.permission is not None:
        parts.append(f"{rule.permission} access to {repo or 'this repository'}")
    if rule.users:
        parts.append("being " + _one_of(rule.users))
    if rule.teams:
        parts.append("membership of " + _one_of(rule.teams))
    return ", or ".join(parts) or f"nothing anyone can have ({POLICY_FILE} allows no one to run it)"


def _one_of(names: tuple[str, ...]) -> str:
    return names[0] if len(names) == 1 else "one of " + ", ".join(names)


def load_policy(text: str | None, path: str = POLICY_FILE) -> Policy:
    """The policy in `text` (the content of `.promisebot.yaml` on the default branch; None when
    there is no such file: the defaults). Raises PolicyError with every problem."""
    if text is None:
        return Policy()
    loaded = load_yaml_bytes(text.encode("utf-8", "surrogatepass"), path, MAX_POLICY_BYTES)
    problems = list(loaded.problems)
    for extra in loaded.docs[1:]:
        problems.append(Problem(extra.source, "", f"document {extra.index + 1}: only one YAML document "
                                "is allowed in this file"))
    if not loaded.docs or problems:
        if problems:
            raise PolicyError(problems)
        return Policy()
    checker = _Checker(loaded.docs[0])
    policy = checker.policy()
    if checker.problems:
        raise PolicyError(checker.problems)
    return policy


class _Checker:
    """Reads the policy sections of one document, collecting every problem."""

    def __init__(self, doc: YamlDoc) -> None:
        self.doc = doc
        self.problems: list[Problem] = []

    def error(self, path: FieldPath, message: str) -> None:
        self.problems.append(Problem(self.doc.source_at(path), format_path(path), message))

    def policy(self) -> Policy:
        data: dict[str, Any] = self.doc.data
        commands = self.mapping(("commands",), data.get("commands"))
        rules: dict[str, Rule] = {}
        for name, value in commands.items():
            if name not in DEFAULT_PERMISSIONS:
                self.error(("commands", name), f"unknown command (known: {', '.join(COMMANDS)})")
            else:
                rules[name] = self.rule(name, value)
        destinations: dict[str, tuple[str, ...]] = {}
        for name, value in self.mapping(("destinations",), data.get("destinations")).items():
            owners = self.destination(name, value)
            if owners is not None:
                destinations[name] = owners
        return Policy(rules, destinations, self.apply_policy(), self.plan_drafts())

    def rule(self, command: str, value: Any) -> Rule:
        path: FieldPath = ("commands", command)
        entry = self.mapping(path, value, _RULE_KEYS, null_ok=False)
        permission = entry.get("permission")
        if permission is not None and permission not in ROLES:
            self.error((*path, "permission"), f"{_show(permission)} is not one of {', '.join(ROLES)}")
            permission = None
        users = self.names((*path, "users"), entry.get("users"), _valid_login, "a forge login")
        teams = self.names((*path, "teams"), entry.get("teams"), _valid_team,
                           "a team (GitHub org/team-slug, GitLab group/subgroup)")
        return Rule(command, permission, users, teams)

    def destination(self, name: str, value: Any) -> tuple[str, ...] | None:
        path: FieldPath = ("destinations", name)
        if len(name) > 253 or not _DESTINATION.fullmatch(name):
            self.error(path, "not a Destination name (a DNS subdomain: lowercase letters, digits, '-' and '.')")
        entry = self.mapping(path, value, _DESTINATION_KEYS, null_ok=False)
        if isinstance(value, dict) and "owners" not in value:
            self.error((*path, "owners"), "required: the logins and teams one of whom must approve an apply "
                       "touching this Destination")
        return self.names((*path, "owners"), entry.get("owners"), lambda s: _valid_login(s) or _valid_team(s),
                          "a forge login or a team (org/team-slug, group/subgroup)")

    def apply_policy(self) -> ApplyPolicy:
        path: FieldPath = ("apply",)
        data = self.mapping(path, self.doc.data.get("apply"), _APPLY_KEYS)
        default = ApplyPolicy()
        requirements = default.requirements
        if "requirements" in data:
            found = self.names((*path, "requirements"), data["requirements"], REQUIREMENTS.__contains__,
                               "one of " + ", ".join(REQUIREMENTS))
            requirements = tuple(r for r in REQUIREMENTS if r in found)
        approvals = default.approvals
        if "approvals" in data:
            value = data["approvals"]
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                self.error((*path, "approvals"), f"must be a whole number, 0 or more, not {_show(value)}")
            elif "approved" not in requirements:
                self.error((*path, "approvals"), "has no effect unless apply.requirements includes approved")
            else:
                approvals = value
        method = default.merge_method
        if "mergeMethod" in data:
            value = data["mergeMethod"]
            if value in MERGE_METHODS:
                method = value
            else:
                self.error((*path, "mergeMethod"), f"{_show(value)} is not one of {', '.join(MERGE_METHODS)}")
        return ApplyPolicy(requirements, approvals, method)

    def plan_drafts(self) -> bool | None:
        data = self.mapping(("plan",), self.doc.data.get("plan"), _PLAN_KEYS)
        value = data.get("drafts")
        if value is None or isinstance(value, bool):
            return value
        self.error(("plan", "drafts"), f"must be true or false, not {_show(value)}")
        return None

    def mapping(self, path: FieldPath, value: Any, known: tuple[str, ...] = (),
                null_ok: bool = True) -> dict[str, Any]:
        """`value` when it is a mapping (its unknown keys reported when `known` is given), else {}."""
        if value is None and null_ok:
            return {}
        if not isinstance(value, dict):
            self.error(path, f"must be a mapping, not {_show(value)}")
            return {}
        for key in value:
            if known and key not in known:
                self.error((*path, key), f"unknown key (known: {', '.join(known)})")
        return value

    def names(self, path: FieldPath, value: Any, valid: Callable[[str], bool], what: str) -> tuple[str, ...]:
        """The strings of list `value` that `valid` accepts; the others reported."""
        if value is None:
            return ()
        if not isinstance(value, list):
            self.error(path, f"must be a list, not {_show(value)}")
            return ()
        out: list[str] = []
        for index, item in enumerate(value):
            if isinstance(item, str) and valid(item):
                if item not in out:
                    out.append(item)
            else:
                self.error((*path, index), f"{_show(item)} is not {what}")
        return tuple(out)


def _valid_login(text: str) -> bool:
    return bool(_LOGIN.fullmatch(text))


def _valid_team(text: str) -> bool:
    return bool(_TEAM.fullmatch(text))


def _show(value: Any) -> str:
    """A value as the error message shows it."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return repr(value) if isinstance(value, str) else str(value)
