"""The webhook receiver through the real flask app under a real HTTP server on loopback, fed
with the forges' published webhook examples: authenticity (HMAC-SHA256, SHA-1 alone, unsigned,
GitLab's token), the 25 MiB cap, replays, the allowlist, ignored events, /healthz, /readyz and
/metrics. The queue here only records what is enqueued, and both forges' stand-ins run, so every
test also checks that the acknowledgement made no forge call."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
import uuid
from collections.abc import Iterable
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from typing import Any

import pytest
import requests
from bot_fixtures import (
    REPO,
    SECRET,
    TOKEN,
    BotServer,
    PlatformRemote,
    add_platform_repo,
    github_payload,
    github_pull_event,
    gitlab_payload,
    send_github,
    send_gitlab,
    sign,
)
from fake_runner import FakeRunner
from forge_servers.github import GitHubServer
from forge_servers.gitlab import GitLabServer
from prometheus_client.parser import text_string_to_metric_families
from serving import serve

from bot.jobs.backend import make_backend
from bot.server.app import MAX_BODY_BYTES, create_app
from bot.server.config import BotConfig

PR = "pull_request"
MR_HOOK = "Merge Request Hook"


@dataclass
class RecordingQueue:
    """A queue that only records: nothing it is given ever runs."""

    jobs: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def enqueue(self, payload: dict[str, Any], job_id: str, received_at: float) -> None:
        with self.lock:
            self.jobs.append((job_id, payload))

    def depth(self) -> int:
        return len(self.jobs)


@dataclass
class Receiver:
    url: str
    queue: RecordingQueue
    github: GitHubServer
    gitlab: GitLabServer

    def forge_requests(self) -> int:
        return len(self.github.requests) + len(self.gitlab.requests)


@contextmanager
def receiver(readiness: dict[str, Any] | None = None, **settings: Any):
    with ExitStack() as stack:
        github = stack.enter_context(GitHubServer())
        gitlab = stack.enter_context(GitLabServer())
        github.add_token(TOKEN)
        config = BotConfig(**{"github_token": TOKEN, "github_api_url": github.api_url,
                              "github_webhook_secrets": (SECRET,), "gitlab_token": gitlab.token,
                              "gitlab_url": gitlab.url, "gitlab_webhook_secrets": (SECRET,), **settings})
        queue = RecordingQueue()
        url = stack.enter_context(serve(create_app(config, make_backend(None), queue, readiness)))
        rx = Receiver(url, queue, github, gitlab)
        yield rx
        assert rx.forge_requests() == 0, "the request path called a forge"


@pytest.fixture
def rx():
    with receiver() as r:
        yield r


def post_github(url: str, body: bytes | Iterable[bytes], event: str = PR, delivery: str | None = None,
                **headers: str) -> requests.Response:
    sent = {"X-GitHub-Event": event, "X-GitHub-Delivery": delivery or str(uuid.uuid4()),
            "Content-Type": "application/json", **headers}
    return requests.post(f"{url}/webhooks/github", data=body, headers=sent, timeout=60)


def opened() -> bytes:
    """GitHub's published pull_request `opened` example, unchanged."""
    return json.dumps(github_payload("pull_request.opened")).encode()


def webhooks_total(text: str | None = None) -> dict[tuple[str, str, str], float]:
    """promisebot_webhooks_total by (forge, event, code), from a /metrics answer (default: this
    process's registry, which every app in it shares)."""
    from bot.server import metrics

    out = {}
    for family in text_string_to_metric_families(text if text is not None else metrics.exposition().decode()):
        for sample in family.samples:
            if sample.name == "promisebot_webhooks_total":
                labels = sample.labels
                out[(labels["forge"], labels["event"], labels["code"])] = sample.value
    return out


# -- GitHub authenticity ---------------------------------------------------------------------


def test_a_correctly_signed_delivery_is_queued_once(rx):
    body = opened()
    answer = post_github(rx.url, body, delivery="d-1", **{"X-Hub-Signature-256": sign(body)})
    assert answer.status_code == 202 and answer.json() == {"queued": "change_opened"}
    ((job_id, payload),) = rx.queue.jobs
    assert job_id == "github-d-1"
    assert payload["kind"] == "change_opened" and payload["number"] == 2 and payload["delivery"] == "d-1"
    assert payload["repo"]["full_name"] == "Codertocat/Hello-World"


def test_a_secret_of_a_rotation_is_accepted():
    with receiver(github_webhook_secrets=("old-secret", SECRET)) as r:
        body = opened()
        assert post_github(r.url, body, **{"X-Hub-Signature-256": sign(body)}).status_code == 202
        assert post_github(r.url, body, **{"X-Hub-Signature-256": sign(body, "old-secret")}).status_code == 202
        assert post_github(r.url, body, **{"X-Hub-Signature-256": sign(body, "neither")}).status_code == 401
        assert len(r.queue.jobs) == 2


@pytest.mark.parametrize("headers", [
    pytest.param({"X-Hub-Signature-256": sign(b"another body")}, id="signature-of-another-body"),
    pytest.param({"X-Hub-Signature-256": sign(opened(), "wrong-secret")}, id="wrong-secret"),
    pytest.param({"X-Hub-Signature-256": "sha256=" + "z" * 64}, id="not-hex"),
    pytest.param({"X-Hub-Signature-256": hmac.new(SECRET.encode(), opened(), hashlib.sha256).hexdigest()},
                 id="no-prefix"),
    pytest.param({"X-Hub-Signature": "sha1=" + hmac.new(SECRET.encode(), opened(), hashlib.sha1).hexdigest()},
                 id="sha1-only"),
    pytest.param({}, id="unsigned"),
])
def test_a_delivery_not_signed_with_sha256_is_refused(rx, headers):
    before = webhooks_total().get(("github", PR, "401"), 0)
    answer = post_github(rx.url, opened(), **headers)
    assert answer.status_code == 401
    assert rx.queue.jobs == []
    for value in headers.values():
        assert value.split("=")[-1] not in answer.text, "the received signature is echoed"
    assert "X-Hub-Signature-256" in answer.json()["error"]
    assert webhooks_total()[("github", PR, "401")] == before + 1


def test_sha1_alone_is_refused_even_when_it_is_right(rx):
    body = opened()
    sha1 = "sha1=" + hmac.new(SECRET.encode(), body, hashlib.sha1).hexdigest()
    answer = post_github(rx.url, body, **{"X-Hub-Signature": sha1})
    assert answer.status_code == 401 and "SHA-1" in answer.json()["error"]
    # Both headers, as GitHub sends them: the SHA-256 one decides.
    answer = post_github(rx.url, body, **{"X-Hub-Signature": sha1, "X-Hub-Signature-256": sign(body)})
    assert answer.status_code == 202
    assert len(rx.queue.jobs) == 1


def test_a_signed_body_that_is_not_a_json_object_is_refused(rx):
    for body in (b"[1, 2]", b"{not json"):
        assert post_github(rx.url, body, **{"X-Hub-Signature-256": sign(body)}).status_code == 400
    assert rx.queue.jobs == []


# -- size ------------------------------------------------------------------------------------


def oversize() -> bytes:
    payload = github_payload("pull_request.opened")
    payload["padding"] = "x" * (MAX_BODY_BYTES + 1)
    return json.dumps(payload).encode()


def test_a_body_over_25_mib_gets_413(rx):
    body = oversize()
    assert len(body) > MAX_BODY_BYTES
    before = webhooks_total()
    answer = post_github(rx.url, body, **{"X-Hub-Signature-256": sign(body)})
    assert answer.status_code == 413
    answer = requests.post(f"{rx.url}/webhooks/gitlab", data=body, timeout=60, headers={
        "X-Gitlab-Event": MR_HOOK, "X-Gitlab-Token": SECRET, "X-Gitlab-Event-UUID": str(uuid.uuid4())})
    assert answer.status_code == 413
    assert rx.queue.jobs == []
    after = webhooks_total()
    assert after[("github", "-", "413")] == before.get(("github", "-", "413"), 0) + 1
    assert after[("gitlab", "-", "413")] == before.get(("gitlab", "-", "413"), 0) + 1


def test_a_streamed_body_over_25_mib_gets_413(rx):
    """Without Content-Length (chunked), the cap holds too: the body is not cut at 25 MiB and
    then judged (a bad signature, bad JSON) as if it were whole."""
    body = oversize()

    def chunks():
        for start in range(0, len(body), 1 << 20):
            yield body[start:start + (1 << 20)]

    answer = post_github(rx.url, chunks(), **{"X-Hub-Signature-256": sign(body)})
    assert answer.status_code == 413, answer.text
    answer = requests.post(f"{rx.url}/webhooks/gitlab", data=chunks(), timeout=60, headers={
        "X-Gitlab-Event": MR_HOOK, "X-Gitlab-Token": SECRET, "X-Gitlab-Event-UUID": str(uuid.uuid4())})
    assert answer.status_code == 413, answer.text
    assert rx.queue.jobs == []


def test_a_streamed_body_under_the_cap_is_accepted(rx):
    body = opened()
    answer = post_github(rx.url, iter([body[:100], body[100:]]),
                         **{"X-Hub-Signature-256": sign(body)})
    assert answer.status_code == 202, answer.text
    assert len(rx.queue.jobs) == 1


# -- replays, allowlist, ignored events --------------------------------------------------------


def test_a_replayed_delivery_is_acknowledged_and_processed_once(rx):
    body = opened()
    headers = {"X-Hub-Signature-256": sign(body)}
    first = post_github(rx.url, body, delivery="same", **headers)
    again = post_github(rx.url, body, delivery="same", **headers)
    assert (first.status_code, again.status_code) == (202, 200) and again.json() == {"duplicate": True}
    assert [job_id for job_id, _ in rx.queue.jobs] == ["github-same"]

    mr = gitlab_payload("merge_request")
    answers = [send_gitlab(rx.url, MR_HOOK, mr, delivery="uuid-1").status_code for _ in range(3)]
    assert answers == [202, 200, 200]
    # the same id on the other forge is another delivery
    assert send_github(rx.url, PR, github_payload("pull_request.opened"), delivery="uuid-1").status_code == 202
    assert [job_id for job_id, _ in rx.queue.jobs] == ["github-same", "gitlab-uuid-1", "github-uuid-1"]


def test_concurrent_replays_are_queued_once(rx):
    body = opened()
    headers = {"X-Hub-Signature-256": sign(body)}
    codes: list[int] = []
    threads = [threading.Thread(target=lambda: codes.append(post_github(rx.url, body, delivery="race",
                                                                        **headers).status_code))
               for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(codes) == [200] * 7 + [202]
    assert len(rx.queue.jobs) == 1


def test_a_repository_outside_the_allowlist_gets_403_and_no_work():
    with receiver(repo_allowlist=("acme/*", "other/platform")) as r:
        body = opened()  # Codertocat/Hello-World
        answer = post_github(r.url, body, delivery="d-1", **{"X-Hub-Signature-256": sign(body)})
        assert answer.status_code == 403 and "Codertocat/Hello-World" in answer.json()["error"]
        assert send_gitlab(r.url, MR_HOOK, gitlab_payload("merge_request")).status_code == 403  # gitlabhq/...
        assert r.queue.jobs == []
        allowed = github_payload("pull_request.opened")
        allowed["repository"]["full_name"] = REPO
        assert send_github(r.url, PR, allowed, delivery="d-1").status_code == 202
        # a refused delivery was not remembered: once allowed, the same id is processed
        assert len(r.queue.jobs) == 1


def test_ping_is_answered_and_ignored(rx):
    ping = json.dumps(github_payload("ping")).encode()
    answer = post_github(rx.url, ping, event="ping", **{"X-Hub-Signature-256": sign(ping)})
    assert answer.status_code == 200 and "ping" in answer.json()["ignored"]
    assert rx.queue.jobs == []


def test_events_not_acted_on_are_ignored(rx):
    draft = json.dumps(github_payload("pull_request.converted_to_draft")).encode()
    answer = post_github(rx.url, draft, **{"X-Hub-Signature-256": sign(draft)})
    assert answer.status_code == 200 and "converted_to_draft" in answer.json()["ignored"]
    tag = send_gitlab(rx.url, "Tag Push Hook", gitlab_payload("tag_push"))
    assert tag.status_code == 200 and "tag" in tag.json()["ignored"]
    assert rx.queue.jobs == []


def test_a_delivery_without_its_id_is_refused(rx):
    body = opened()
    answer = requests.post(f"{rx.url}/webhooks/github", data=body, timeout=30, headers={
        "X-GitHub-Event": PR, "X-Hub-Signature-256": sign(body)})
    assert answer.status_code == 400 and "delivery" in answer.json()["error"]
    assert rx.queue.jobs == []


# -- GitLab authenticity ---------------------------------------------------------------------


def test_gitlab_token(rx):
    mr = gitlab_payload("merge_request")
    for token in ("wrong", SECRET + " ", SECRET[:-1], None):
        answer = send_gitlab(rx.url, MR_HOOK, mr, token=token)
        assert answer.status_code == 401, token
        assert "X-Gitlab-Token" in answer.json()["error"]
        if token:
            assert token not in answer.text
    assert rx.queue.jobs == []
    answer = send_gitlab(rx.url, MR_HOOK, mr, delivery="uuid-2")
    assert answer.status_code == 202 and answer.json() == {"queued": "change_opened"}
    ((job_id, payload),) = rx.queue.jobs
    assert job_id == "gitlab-uuid-2" and payload["repo"]["full_name"] == "gitlabhq/gitlab-test"


def test_a_forge_that_is_not_configured_gets_404():
    with receiver(gitlab_token=None) as r:
        assert send_gitlab(r.url, MR_HOOK, gitlab_payload("merge_request")).status_code == 404
        assert r.queue.jobs == []


# -- health, readiness, metrics --------------------------------------------------------------


def test_healthz(rx):
    answer = requests.get(f"{rx.url}/healthz", timeout=10)
    assert answer.status_code == 200 and answer.json() == {"ok": True}


def test_readyz_names_what_is_down():
    state = {"docker": "the Docker engine does not answer: DockerException", "redis": None}
    checks = {name: (lambda name=name: state[name]) for name in state}
    with receiver(readiness=checks) as r:
        answer = requests.get(f"{r.url}/readyz", timeout=10)
        assert answer.status_code == 503
        assert answer.json() == {"ready": False, "problems": {"docker": state["docker"]}}
        state["docker"] = None
        answer = requests.get(f"{r.url}/readyz", timeout=10)
        assert answer.status_code == 200 and answer.json() == {"ready": True, "problems": {}}


def test_readyz_answers_503_when_a_check_itself_fails():
    def broken() -> str | None:
        raise ValueError("unknown url type: 'gitlab.example.com/api/v4/version'")

    with receiver(readiness={"gitlab": broken, "docker": lambda: None}) as r:
        answer = requests.get(f"{r.url}/readyz", timeout=10)
        assert answer.status_code == 503
        problems = answer.json()["problems"]
        assert list(problems) == ["gitlab"] and "ValueError" in problems["gitlab"]


def test_readyz_with_no_checks_is_ready(rx):
    assert requests.get(f"{rx.url}/readyz", timeout=10).status_code == 200


def test_metrics_count_deliveries_by_forge_event_and_code(rx):
    before = webhooks_total(requests.get(f"{rx.url}/metrics", timeout=10).text)
    body = opened()
    post_github(rx.url, body, delivery="m-1", **{"X-Hub-Signature-256": sign(body)})
    post_github(rx.url, body, delivery="m-1", **{"X-Hub-Signature-256": sign(body)})
    post_github(rx.url, body, **{"X-Hub-Signature-256": sign(body, "wrong")})
    send_gitlab(rx.url, MR_HOOK, gitlab_payload("merge_request"))
    answer = requests.get(f"{rx.url}/metrics", timeout=10)
    assert answer.status_code == 200 and answer.headers["Content-Type"].startswith("text/plain")
    assert 'promisebot_webhooks_total{code="202",event="pull_request",forge="github"}' in answer.text
    after = webhooks_total(answer.text)

    def delta(key: tuple[str, str, str]) -> float:
        return after.get(key, 0) - before.get(key, 0)

    assert delta(("github", PR, "202")) == 1
    assert delta(("github", PR, "200")) == 1  # the replay
    assert delta(("github", PR, "401")) == 1
    assert delta(("gitlab", MR_HOOK, "202")) == 1
    assert "promisebot_queue_depth 2.0" in answer.text


# -- with the real job queue -----------------------------------------------------------------


def test_the_acknowledgement_comes_before_any_forge_call(tmp_path):
    """The embedded default's queue, its jobs held: the 202 comes back with no request made to
    the forge; the forge hears from promisebot only once the job runs."""
    platform = PlatformRemote(tmp_path)
    gate = threading.Event()
    with GitHubServer() as github:
        add_platform_repo(github)
        head = platform.open_change(1)
        github.add_pull(REPO, 1, head_sha=head, base_sha=platform.base)
        config = BotConfig(github_token=TOKEN, github_api_url=github.api_url, github_webhook_secrets=(SECRET,),
                           data_dir=tmp_path / "data")
        bot = BotServer(config, FakeRunner(), gate=gate)
        try:
            started = time.monotonic()
            answer = send_github(bot.url, PR, github_pull_event("opened", platform, 1, head))
            assert answer.status_code == 202 and time.monotonic() - started < 2
            time.sleep(0.2)
            assert github.requests == [], "the request path called the forge"
            gate.set()
            bot.queue.join()
            assert github.calls("POST", r"/repos/acme/platform/statuses/\w+")
        finally:
            bot.close()


class FailingQueue(RecordingQueue):
    """A queue whose first enqueue fails (Redis went away between the dedupe and the enqueue)."""

    def enqueue(self, payload: dict[str, Any], job_id: str, received_at: float) -> None:
        if not getattr(self, "failed", False):
            self.failed = True
            raise ConnectionError("Redis went away")
        super().enqueue(payload, job_id, received_at)


def test_a_delivery_whose_enqueue_failed_is_processed_when_redelivered():
    queue = FailingQueue()
    config = BotConfig(github_token=TOKEN, github_webhook_secrets=(SECRET,))
    with serve(create_app(config, make_backend(None), queue)) as url:
        body = opened()
        first = post_github(url, body, delivery="lost?", **{"X-Hub-Signature-256": sign(body)})
        assert first.status_code >= 500
        again = post_github(url, body, delivery="lost?", **{"X-Hub-Signature-256": sign(body)})
        assert again.status_code == 202, again.text
        assert len(queue.jobs) == 1


def test_the_docker_engine_is_checked_where_the_jobs_run(tmp_path):
    from bot.jobs.services import Services
    from bot.server.readiness import checks

    embedded = Services.from_config(BotConfig(github_token="t", github_webhook_secrets=("s",), data_dir=tmp_path))
    assert set(checks(embedded)) == {"docker", "github"}, "the embedded default runs pipelines itself"
    web = Services.from_config(BotConfig(github_token="t", github_webhook_secrets=("s",), data_dir=tmp_path,
                                         redis_url="redis://127.0.0.1:1/0"))
    assert set(checks(web)) == {"redis", "github"}, "the Redis setup's web process only enqueues"
