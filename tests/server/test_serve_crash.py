"""The embedded default survives a crash: `promisebot serve` without Redis keeps its queue in
memory, so a SIGKILL loses the job it was running and those it had queued. Started again on the
same machine, its startup recovery (bot/jobs/recovery.py) re-plans the open pull request whose
plan was left `pending` and reconciles the default branch, whose merge was never applied. Real
`promisebot serve` processes, a real Docker pipeline, the GitHub stand-in over HTTP."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from bot_fixtures import REPO, PlatformRemote, add_platform_repo, github_pull_event, send_github
from forge_servers.github import GitHubServer
from reconcile_fixtures import git, promise
from worker_fixtures import (
    ServeProcess,
    containers_of,
    remove_leftovers_of,
    running_containers_of,
    volumes_of,
    wait_for,
)

from bot.forges.comment import MARKER

pytestmark = [pytest.mark.docker, pytest.mark.usefixtures("images")]


def test_the_embedded_default_loses_nothing_to_a_crash(tmp_path: Path) -> None:
    (tmp_path / "git").mkdir()
    platform = PlatformRemote(tmp_path / "git")
    platform.write("promises/redis.yaml", promise("redis", configure='sleep 4; echo "kind: Thing" > '
                                                                      "/kratix/output/thing.yaml"))
    platform.base = platform.commit("a slow pipeline")
    git(platform.work, "push", "-q", "origin", "main")
    machine = tmp_path / "machine"
    servers: list[ServeProcess] = []
    with GitHubServer() as github:
        add_platform_repo(github)
        head1 = platform.open_change(1, name="r1")
        github.add_pull(REPO, 1, head_sha=head1, base_sha=platform.base)
        head2 = platform.open_change(2, name="r2")
        github.add_pull(REPO, 2, head_sha=head2, base_sha=platform.base)
        merge2 = platform.merge(2)
        github.update_pull(REPO, 2, state="closed", merged=True, merge_commit_sha=merge2)
        store_commits = int(git(platform.state, "rev-list", "--count", "main"))

        def states(sha: str, context: str) -> list[str]:
            return [s["state"] for s in github.statuses(REPO, sha) if s["context"] == context]

        def comments(number: int) -> list[str]:
            return [c["body"] for c in github.comments(REPO, number) if c["body"].startswith(MARKER)]

        try:
            first = ServeProcess(github.api_url, machine, tmp_path / "serve.log")
            servers.append(first)
            for payload in (github_pull_event("opened", platform, 1, head1),
                            github_pull_event("closed", platform, 2, head2, merged=True, merge_sha=merge2)):
                answer = send_github(first.url, "pull_request", payload)
                assert answer.status_code == 202, answer.text
            wait_for(lambda: running_containers_of([first.proc.pid]), 60, "#1's plan pipeline to run")
            first.kill()
            crashed = time.monotonic()
            assert states(head1, "promisebot/plan") == ["pending"] and comments(1) == []
            assert states(merge2, "promisebot/apply") == [], "#2's apply was still queued, in memory"

            servers.append(ServeProcess(github.api_url, machine, tmp_path / "serve.log"))
            wait_for(lambda: states(head1, "promisebot/plan")[-1:] == ["success"]
                     and states(merge2, "promisebot/apply")[-1:] == ["success"], 120,
                     "recovery to plan #1 and apply main", interval=0.2)
            recovered_in = time.monotonic() - crashed
            assert not containers_of([first.proc.pid]) and not volumes_of([first.proc.pid]), \
                "the restarted server swept what the dead one's pipeline left on the engine"
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n{(tmp_path / 'serve.log').read_text()[-8000:]}") from None
        finally:
            for server in servers:
                server.stop()
            remove_leftovers_of([s.proc.pid for s in servers])
        (plan,) = comments(1)
        assert "r1" in plan and "thing.yaml" in plan
        files = platform.store_files()
        assert [p for p in files if "/r2/" in p] and not [p for p in files if "/r1/" in p], files
        assert int(git(platform.state, "rev-list", "--count", "main")) == store_commits + 1
        print(f"\nkill -> plan re-done and main applied by the restarted server: {recovered_in:.1f} s")
