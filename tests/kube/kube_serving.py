"""bot.kube.server serving `make_run()` on a free loopback port, for the in-process tests."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from kube_run_data import make_run

from bot.kube.pki import RunCredentials
from bot.kube.server import KubeServer, serve


@contextmanager
def served_run(directory: Path) -> Iterator[tuple[str, RunCredentials, KubeServer]]:
    """(its https URL, the run's credentials, the server); the run's CA is written to
    directory/ca.crt for the clients."""
    creds = RunCredentials.new()
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "ca.crt").write_bytes(creds.ca_pem)
    server, thread = serve(make_run(), creds.token, creds.cert_pem, creds.key_pem, "127.0.0.1", 0)
    try:
        yield f"https://127.0.0.1:{server.address[1]}", creds, server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
