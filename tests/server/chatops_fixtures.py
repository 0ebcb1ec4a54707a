"""ChatOps test helpers: comment payloads taken from the forges' published examples (GitHub's
issue_comment.created, GitLab's note on a merge request), pointed at this repository and
change, and a small driver for a GitHub bot world."""

from __future__ import annotations

from typing import Any

from bot_fixtures import REPO, PlatformRemote, github_payload, github_pull_event, gitlab_payload, send_github
from forge_servers.github import GitHubServer

from bot.chatops.replies import REPLY_MARKER
from bot.forges.comment import MARKER

REDIS_KIND = "Redis.test.promisebot.io"


def github_comment_event(platform: PlatformRemote, number: int, body: str, *, user: str = "alice",
                         user_type: str = "User", comment_id: int = 9000) -> dict[str, Any]:
    """GitHub's published issue_comment example, as a comment on pull request `number`
    (GitHub sends a pull request's comments as issue comments whose issue has `pull_request`)."""
    payload = github_payload("issue_comment.created")
    repo = payload["repository"]
    repo.update(full_name=REPO, name="platform", clone_url=str(platform.remote), default_branch="main")
    repo["owner"]["login"] = "acme"
    issue = payload["issue"]
    issue["number"] = number
    issue["pull_request"] = {"url": f"https://api.github.com/repos/{REPO}/pulls/{number}",
                             "html_url": f"https://github.com/{REPO}/pull/{number}"}
    payload["comment"].update(id=comment_id, body=body)
    payload["comment"]["user"].update(login=user, type=user_type)
    return payload


def gitlab_note_event(platform: PlatformRemote, project_id: int, iid: int, head: str, body: str, *,
                      user: str = "dev", note_id: int = 9100) -> dict[str, Any]:
    """GitLab's published Note Hook example on a merge request, pointed at this project and MR."""
    from bot_fixtures import _gitlab_project

    payload = gitlab_payload("note.merge_request")
    _gitlab_project(payload["project"], platform, project_id)
    payload["project_id"] = project_id
    payload["user"]["username"] = user
    attrs = payload["object_attributes"]
    attrs.update(id=note_id, note=body, action="create", system=False, project_id=project_id)
    mr = payload["merge_request"]
    mr.update(iid=iid, target_branch="main", source_project_id=project_id, target_project_id=project_id,
              url=f"http://gitlab.example/{REPO}/-/merge_requests/{iid}")
    mr["last_commit"]["id"] = head
    return payload


class GitHubChat:
    """Drives a GitHub bot world: opens pull requests, comments, reads what the bot said."""

    def __init__(self, platform: PlatformRemote, github: GitHubServer, bot: Any) -> None:
        self.platform, self.github, self.bot = platform, github, bot

    def open(self, number: int, name: str, *, user: str = "alice", head_repo: str | None = "",
             spec: dict[str, Any] | None = None, head: str | None = None) -> str:
        head = head or self.platform.open_change(number, name=name, spec=spec)
        self.github.add_pull(REPO, number, head_sha=head, base_sha=self.platform.base, user=user,
                             head_repo=head_repo)
        self.send_pull("opened", number, head)
        return head

    def send_pull(self, action: str, number: int, head: str, **kwargs: Any) -> None:
        answer = send_github(self.bot.url, "pull_request", github_pull_event(action, self.platform, number, head,
                                                                             **kwargs))
        assert answer.status_code == 202, answer.text
        self.bot.queue.join()

    def say(self, number: int, body: str, *, user: str = "alice", user_type: str = "User",
            wait: bool = True) -> int:
        comment_id = self.github.add_comment(REPO, number, body, user=user)
        event = github_comment_event(self.platform, number, body, user=user, user_type=user_type,
                                     comment_id=comment_id)
        answer = send_github(self.bot.url, "issue_comment", event)
        assert answer.status_code == 202, answer.text
        if wait:
            self.bot.queue.join()
        return comment_id

    def replies(self, number: int) -> list[str]:
        return [c["body"] for c in self.github.comments(REPO, number) if c["body"].startswith(REPLY_MARKER)]

    def plan(self, number: int) -> str:
        (body,) = [c["body"] for c in self.github.comments(REPO, number) if c["body"].startswith(MARKER)]
        return body

    def statuses(self, sha: str, context: str) -> list[str]:
        return [s["state"] for s in self.github.statuses(REPO, sha) if s["context"] == context]

    def merges(self) -> list[Any]:
        return self.github.calls("PUT", r"/repos/[^/]+/[^/]+/pulls/\d+/merge")
