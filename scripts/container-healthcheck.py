"""The promisebot image's HEALTHCHECK (Dockerfile). One image runs several roles, so what
"healthy" means follows what the container runs (its main process's arguments):

    gunicorn ...              GET http://127.0.0.1:PORT/healthz answers 200 (PORT from --bind/-b
                              or GUNICORN_CMD_ARGS; gunicorn's default 8000)
    promisebot serve          the same, PORT from --port (default 8080), on --host if specific
    promisebot worker         its Redis (REDIS_URL or REDIS_URL_FILE) answers PING, and with
                              --metrics-port P, http://127.0.0.1:P/metrics answers too
    anything else             healthy while it runs (a one-off CLI command)

PROMISEBOT_HEALTHCHECK_URL, when set, replaces all of this with one GET of that URL. Exit 0
healthy, 1 unhealthy (the reason on stdout, which `docker inspect` shows). Standard library
only, but for the worker's Redis check (the redis package of the image's virtualenv).
"""

from __future__ import annotations

import os
import shlex
import sys
import urllib.request
from pathlib import Path

ANY_ADDRESS = ("", "0.0.0.0", "::", "[::]", "*")


def main_process() -> list[str]:
    """The arguments of the lowest-numbered gunicorn or promisebot process (PID 1, or the child
    of an init such as `docker run --init`); [] when there is none."""
    pids = sorted(int(p.name) for p in Path("/proc").iterdir() if p.name.isdigit())
    for pid in pids:
        if pid == os.getpid():
            continue
        try:
            argv = [a.decode(errors="replace") for a in Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[:-1]]
        except OSError:
            continue
        names = [os.path.basename(a) for a in argv[:2]]
        if "gunicorn" in names or "promisebot" in names:
            start = names.index("gunicorn" if "gunicorn" in names else "promisebot")
            return argv[start:]
    return []


def option(argv: list[str], *names: str) -> str | None:
    """The value of the first of `names` in argv (`--name value`, `--name=value`, `-b value`)."""
    for i, arg in enumerate(argv):
        for name in names:
            if arg == name and i + 1 < len(argv):
                return argv[i + 1]
            if name.startswith("--") and arg.startswith(name + "="):
                return arg.split("=", 1)[1]
    return None


def local_host(host: str) -> str:
    host = host.strip("[]") if host not in ANY_ADDRESS else "127.0.0.1"
    return f"[{host}]" if ":" in host else host


def gunicorn_url(argv: list[str]) -> str | None:
    bind = option(argv, "--bind", "-b") or option(shlex.split(os.environ.get("GUNICORN_CMD_ARGS", "")),
                                                      "--bind", "-b") or "127.0.0.1:8000"
    if bind.startswith(("unix:", "fd://")):
        return None  # no TCP port to ask: alive is all we can tell
    host, _, port = bind.rpartition(":")
    return f"http://{local_host(host)}:{port or 8000}/healthz"


def get(url: str) -> None:
    with urllib.request.urlopen(url, timeout=4) as answer:  # noqa: S310 - a local URL
        if answer.status != 200:
            raise OSError(f"{url} answered {answer.status}")


def redis_url() -> str | None:
    path = os.environ.get("REDIS_URL_FILE")
    if path:
        return Path(path).read_text().strip()
    return os.environ.get("REDIS_URL")


def check() -> str:
    """What was checked; raises when unhealthy."""
    url = os.environ.get("PROMISEBOT_HEALTHCHECK_URL")
    if url:
        get(url)
        return f"{url} answers"
    argv = main_process()
    if not argv:
        raise RuntimeError("no gunicorn or promisebot process runs")
    if argv[0].endswith("gunicorn"):
        url = gunicorn_url(argv)
        if url:
            get(url)
        return f"gunicorn: {url or 'alive'}"
    command = argv[1] if len(argv) > 1 else ""
    if command == "serve":
        host = local_host(option(argv, "--host") or "127.0.0.1")
        url = f"http://{host}:{option(argv, '--port') or 8080}/healthz"
        get(url)
        return f"serve: {url} answers"
    if command == "worker":
        address = redis_url()
        if not address:
            raise RuntimeError("worker: REDIS_URL is not set")
        import redis

        redis.Redis.from_url(address, socket_timeout=4, socket_connect_timeout=4).ping()
        metrics = option(argv, "--metrics-port")
        if metrics:
            get(f"http://127.0.0.1:{metrics}/metrics")
        return "worker: Redis answers" + (f", metrics on :{metrics} answer" if metrics else "")
    return f"{command or 'promisebot'}: running"


if __name__ == "__main__":
    try:
        print(check())
    except Exception as exc:  # noqa: BLE001 - any failure is "unhealthy", said in one line
        print(f"unhealthy: {type(exc).__name__}: {exc}")
        sys.exit(1)
