"""The webhook receiver. On the request path: the body's authenticity (before any parsing),
the event, the repository allowlist, de-duplication, one enqueue, `202`. No forge call, no
clone and no pipeline ever runs here.

    POST /webhooks/github   X-Hub-Signature-256 (HMAC-SHA256; SHA-1 alone is refused)
    POST /webhooks/gitlab   X-Gitlab-Token
    GET  /healthz           the process is alive
    GET  /readyz            Redis (when used), the Docker engine and the configured forges answer
    GET  /metrics           Prometheus text
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from typing import Any

from flask import Flask, Response, request
from werkzeug.exceptions import RequestEntityTooLarge

from bot.forges import events
from bot.forges.base import Event, event_to_json
from bot.jobs.backend import Backend
from bot.jobs.queue import JobQueue
from bot.server import metrics
from bot.server.config import BotConfig

MAX_BODY_BYTES = 25 * 1024 * 1024
log = logging.getLogger("promisebot.server")

Check = Callable[[], str | None]  # None when fine, else what is wrong


def _answer(code: int, forge: str, event: str, **body: Any) -> Response:
    metrics.WEBHOOKS.labels(forge=forge, event=event or "-", code=str(code)).inc()
    return Response(json.dumps(body), status=code, mimetype="application/json")


def create_app(config: BotConfig, backend: Backend, queue: JobQueue,
               readiness: dict[str, Check] | None = None) -> Flask:
    app = Flask("promisebot")
    app.config["MAX_CONTENT_LENGTH"] = MAX_BODY_BYTES
    checks = readiness or {}

    def accept(forge: str, event_name: str, delivery: str, parse: Callable[[], Event]) -> Response:
        try:
            event = parse()
        except events.EventError as exc:
            return _answer(400, forge, event_name, error=str(exc))
        if event.repo is not None and not config.allowed(event.repo.full_name):
            return _answer(403, forge, event_name,
                           error=f"repository {event.repo.full_name} is not in PROMISEBOT_REPO_ALLOWLIST")
        if event.kind == "ignored":
            return _answer(200, forge, event_name, ignored=event.reason)
        if not delivery:
            return _answer(400, forge, event_name, error="missing delivery id header")
        if not backend.memo.first_time(f"{forge}:{delivery}"):
            return _answer(200, forge, event_name, duplicate=True)
        if event.kind in ("change_opened", "change_updated") and event.repo is not None:
            backend.memo.set_latest(f"{forge}:{event.repo.full_name}:{event.number}", event.head_sha)
        try:
            queue.enqueue(event_to_json(event), job_id=f"{forge}-{delivery}", received_at=time.time())
        except Exception as exc:  # noqa: BLE001 - the forge redelivers: it must not be taken for a duplicate
            backend.memo.forget(f"{forge}:{delivery}")
            log.error(json.dumps({"delivery": delivery, "forge": forge, "error": f"enqueue failed: {type(exc).__name__}"}))
            return _answer(503, forge, event_name, error="the event could not be queued; redeliver it")
        log.info(json.dumps({"delivery": delivery, "forge": forge, "event": event.kind, "queued": True}))
        return _answer(202, forge, event_name, queued=event.kind)

    @app.post("/webhooks/github")
    def github() -> Response:
        body = _body()
        headers = dict(request.headers)
        event_name = events.header(headers, "X-GitHub-Event") or ""
        if not config.github:
            return _answer(404, "github", event_name, error="GitHub is not configured")
        refusal = events.verify_github(config.github_webhook_secrets, body, headers)
        if refusal:
            return _answer(401, "github", event_name, error=refusal)
        delivery = events.header(headers, "X-GitHub-Delivery") or ""
        payload = _json(body)
        if payload is None:
            return _answer(400, "github", event_name, error="the body is not a JSON object")
        return accept("github", event_name, delivery, lambda: events.parse_github(event_name, delivery, payload))

    @app.post("/webhooks/gitlab")
    def gitlab() -> Response:
        headers = dict(request.headers)
        event_name = events.header(headers, "X-Gitlab-Event") or ""
        if not config.gitlab:
            return _answer(404, "gitlab", event_name, error="GitLab is not configured")
        refusal = events.verify_gitlab(config.gitlab_webhook_secrets, headers)
        if refusal:
            return _answer(401, "gitlab", event_name, error=refusal)
        body = _body()
        delivery = events.header(headers, "X-Gitlab-Event-UUID") or ""
        payload = _json(body)
        if payload is None:
            return _answer(400, "gitlab", event_name, error="the body is not a JSON object")
        return accept("gitlab", event_name, delivery, lambda: events.parse_gitlab(event_name, delivery, payload))

    @app.errorhandler(413)
    def too_large(_exc: Exception) -> Response:
        forge = "github" if request.path.endswith("github") else "gitlab"
        return _answer(413, forge, "", error=f"body over {MAX_BODY_BYTES} bytes")

    @app.get("/healthz")
    def healthz() -> Response:
        return Response('{"ok": true}', mimetype="application/json")

    @app.get("/readyz")
    def readyz() -> Response:
        problems = {name: why for name, check in checks.items() if (why := _run_check(check))}
        return Response(json.dumps({"ready": not problems, "problems": problems}), status=503 if problems else 200,
                        mimetype="application/json")

    @app.get("/metrics")
    def prometheus() -> Response:
        return Response(metrics.exposition(queue.depth), mimetype="text/plain; version=0.0.4")

    return app


def _body() -> bytes:
    """The raw request body, at most MAX_BODY_BYTES; 413 beyond. A Content-Length over the cap
    is refused before reading (flask's MAX_CONTENT_LENGTH); a body without one (chunked) is read
    up to the cap, where werkzeug stops without an error: one more byte means it is over."""
    body = request.get_data(cache=False)
    if len(body) >= MAX_BODY_BYTES and request.content_length is None and request.environ["wsgi.input"].read(1):
        raise RequestEntityTooLarge()
    return body


def _run_check(check: Check) -> str | None:
    """A readiness check's problem; one that raises is a problem too (named, not a 500)."""
    try:
        return check()
    except Exception as exc:  # noqa: BLE001 - whatever broke, the answer is "not ready"
        return f"the check failed: {type(exc).__name__}"


def _json(body: bytes) -> dict[str, Any] | None:
    try:
        data = json.loads(body)
    except ValueError:
        return None
    return data if isinstance(data, dict) else None
