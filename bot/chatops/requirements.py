"""Whether a change may be applied now: pure evaluation of the apply requirements of the policy
(`apply.requirements`, `apply.approvals`, `destinations.*.owners` in `.promisebot.yaml`)
against facts the caller gathered from the forge and from the saved plan.

Requirements (`bot.chatops.policy.REQUIREMENTS`):

- `approved`: at least `approvals` approvals from people other than the change's author;
- `mergeable`: the forge says the change can be merged (None: the forge is still computing it);
- `undiverged`: the base branch has not moved since the plan (else: re-plan);
- `plan-succeeded`: the plan of the current head succeeded (a plan of an older head is stale);

and, whatever `requirements` lists, `owners`: each Destination the plan touches that has owners
needs an approval from one of them (an owner is a login, or a team/group whose member approved),
from someone other than the author.

`unmet` lists every requirement not met, at once, so one reply can name them all.
`stale_plan` says whether the saved plan no longer matches the change, so the caller can
re-plan before anything else.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field

from bot.chatops.policy import REQUIREMENTS, Policy, is_team

OWNERS = "owners"  # the requirement name of a Destination's owners' approval
SHORT_SHA = 12


@dataclass(frozen=True)
class ApplyFacts:
    """What the forge and the saved plan say about a change when `apply` is asked for.

    `approvers`: logins whose approval of the change currently stands. `approver_teams`: the
    teams/groups (org/slug, group/path) each approver belongs to, at least those named as
    owners. `plan_*`: the saved plan (None: no plan); `plan_state` is its `promisebot/plan`
    status (success, failure, error, pending). `destinations`: the Destinations it touches.
    """

    author: str
    head_sha: str
    current_base_sha: str
    approvers: tuple[str, ...] = ()
    mergeable: bool | None = None
    mergeable_reason: str = ""
    plan_head_sha: str | None = None
    plan_base_sha: str | None = None
    plan_state: str | None = None
    destinations: tuple[str, ...] = ()
    approver_teams: Mapping[str, Collection[str]] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Unmet:
    """A requirement not met, and why (plain text, no markdown); `destination` for `owners`."""

    requirement: str
    reason: str
    destination: str | None = None


def check_apply(policy: Policy, facts: ApplyFacts) -> list[Unmet]:
    """`unmet` with the policy's apply requirements and the owners of the Destinations touched."""
    return unmet(facts, policy.apply.requirements, policy.apply.approvals, policy.owners_for(facts.destinations))


def unmet(facts: ApplyFacts, requirements: Collection[str], approvals: int = 1,
          owners: Mapping[str, Sequence[str]] | None = None) -> list[Unmet]:
    """Every requirement of `requirements` (names of REQUIREMENTS) that `facts` do not meet, in
    the order of REQUIREMENTS, then each Destination of `owners` (Destination -> owners)
    lacking an owner's approval, in the order of `owners`. Empty: the change may be applied."""
    unknown = [r for r in requirements if r not in REQUIREMENTS]
    if unknown:
        raise ValueError(f"unknown requirements {unknown} (known: {', '.join(REQUIREMENTS)})")
    found: list[Unmet] = []
    for name in REQUIREMENTS:
        if name in requirements:
            reason = _CHECKS[name](facts, approvals)
            if reason:
                found.append(Unmet(name, reason))
    for destination, names in (owners or {}).items():
        if names and not owner_approved(facts, names):
            found.append(Unmet(OWNERS, f"Destination {destination} needs an approval from "
                               f"{_one_of(names)} (not the author)", destination))
    return found


def stale_plan(facts: ApplyFacts) -> str | None:
    """Why the saved plan does not describe the change as it is now (no plan, the head or the
    base moved), or None when it does."""
    if facts.plan_head_sha is None or facts.plan_base_sha is None:
        return f"there is no plan of the head {_short(facts.head_sha)} yet"
    if facts.plan_head_sha != facts.head_sha:
        return (f"the plan is of an older head ({_short(facts.plan_head_sha)}; the head is now "
                f"{_short(facts.head_sha)})")
    if facts.plan_base_sha != facts.current_base_sha:
        return (f"the base branch moved since the plan ({_short(facts.plan_base_sha)} -> "
                f"{_short(facts.current_base_sha)})")
    return None


def approvals_by_others(facts: ApplyFacts) -> tuple[str, ...]:
    """The approvers other than the author, each once (logins compare case-insensitively)."""
    author = facts.author.casefold()
    seen: dict[str, str] = {}
    for login in facts.approvers:
        if login.casefold() != author:
            seen.setdefault(login.casefold(), login)
    return tuple(seen.values())


def owner_approved(facts: ApplyFacts, owners: Sequence[str]) -> bool:
    """Whether someone other than the author approved who is one of `owners` (logins) or a
    member of one of them (teams: entries with a '/')."""
    users = {o.casefold() for o in owners if not is_team(o)}
    teams = {o.casefold() for o in owners if is_team(o)}
    memberships = {login.casefold(): {t.casefold() for t in groups} for login, groups in facts.approver_teams.items()}
    return any(login.casefold() in users or memberships.get(login.casefold(), set()) & teams
               for login in approvals_by_others(facts))


def _approved(facts: ApplyFacts, approvals: int) -> str | None:
    have = len(approvals_by_others(facts))
    if have >= approvals:
        return None
    return (f"needs {approvals} approval{'s' * (approvals != 1)} from someone other than the author, "
            f"has {have}")


def _mergeable(facts: ApplyFacts, approvals: int) -> str | None:
    if facts.mergeable is None:
        return "the forge is still computing mergeability, try again"
    if not facts.mergeable:
        why = f": {facts.mergeable_reason}" if facts.mergeable_reason else ""
        return f"the forge says the change cannot be merged{why}"
    return None


def _undiverged(facts: ApplyFacts, approvals: int) -> str | None:
    if facts.plan_base_sha is None:
        return "there is no plan yet; plan first (/promisebot plan)"
    if facts.plan_base_sha != facts.current_base_sha:
        return (f"the base branch moved since the plan ({_short(facts.plan_base_sha)} -> "
                f"{_short(facts.current_base_sha)}); re-plan needed (/promisebot plan)")
    return None


def _plan_succeeded(facts: ApplyFacts, approvals: int) -> str | None:
    head = _short(facts.head_sha)
    if facts.plan_head_sha is None or facts.plan_state is None:
        return f"there is no plan of the head {head} yet; plan first (/promisebot plan)"
    if facts.plan_head_sha != facts.head_sha:
        return (f"the plan is stale: it is of an older head ({_short(facts.plan_head_sha)}; the head is now "
                f"{head}); re-plan needed (/promisebot plan)")
    if facts.plan_state == "success":
        return None
    if facts.plan_state == "pending":
        return f"the plan of {head} is still running"
    if facts.plan_state == "failure":
        return f"the plan of {head} failed; fix the change, then plan again"
    return f"the plan of {head} did not succeed ({facts.plan_state})"


_CHECKS = {
    "approved": _approved,
    "mergeable": _mergeable,
    "undiverged": _undiverged,
    "plan-succeeded": _plan_succeeded,
}


def _short(sha: str) -> str:
    return sha[:SHORT_SHA]


def _one_of(names: Sequence[str]) -> str:
    return names[0] if len(names) == 1 else "one of " + ", ".join(names)
