"""The pipeline's Kubernetes API sidecar: `python3 -m bot.kube.server --dir DIR [--listen HOST:PORT]`.

STDLIB ONLY: shipped into a sidecar container whose Python has no third-party packages, next to
`bot/kube/api.py` and `bot/kube/patch.py` (see `bot.kube.pki.payload_files`).

Reads DIR/run.json, DIR/token, DIR/tls.crt and DIR/tls.key; serves `bot.kube.api.KubeApi` over
HTTPS (TLS 1.2 or later) with `http.server.ThreadingHTTPServer` and HTTP/1.1 keep-alive. After
every successful status write it writes DIR/status.json (the object's status) atomically, a
temporary file then `os.replace`; once listening it writes DIR/ready. One line per request goes
to stderr: method, path, status code and size, never the token or the bodies.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import ssl
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from bot.kube.api import MAX_BODY_BYTES, ApiError, KubeApi

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 6443
_DRAIN_LIMIT = 4 * MAX_BODY_BYTES


def write_atomic(path: Path, data: bytes) -> None:
    """Write data to path through a temporary file in the same directory and os.replace."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "promisebot-kube"
    sys_version = ""
    timeout = 120

    @property
    def api(self) -> KubeApi:
        return self.server.api  # type: ignore[attr-defined]

    def _serve(self) -> None:
        url = urlsplit(self.path)
        query = dict(parse_qsl(url.query, keep_blank_values=True))
        length_header = self.headers.get("Content-Length") or "0"
        try:
            length = int(length_header)
        except ValueError:
            length = -1
        if self.headers.get("Transfer-Encoding") or length < 0 or length > MAX_BODY_BYTES:
            # Chunked or oversized bodies are refused and the connection closed after the answer;
            # a body up to a few times the limit is read and dropped first, so the client sees the answer.
            if MAX_BODY_BYTES < length <= _DRAIN_LIMIT:
                self._discard(length)
            error = ApiError(413, "the server has received a request that is too large") if length > MAX_BODY_BYTES \
                else ApiError(400, "the request needs a valid Content-Length (chunked bodies are not accepted)")
            self.close_connection = True
            self._send(error.code, {"Content-Type": "application/json"},
                       json.dumps(error.status(), separators=(",", ":")).encode() + b"\n", url.path)
            return
        body = self.rfile.read(length) if length else b""
        headers = {key: value for key, value in self.headers.items()}
        code, out_headers, payload = self.api.handle(self.command, url.path, query, headers, body)
        self._send(code, out_headers, payload, url.path)

    def _discard(self, length: int) -> None:
        while length > 0:
            chunk = self.rfile.read(min(length, 65536))
            if not chunk:
                return
            length -= len(chunk)

    def _send(self, code: int, headers: dict[str, str], payload: bytes, path: str) -> None:
        self.send_response_only(code)
        self.send_header("Date", self.date_time_string())
        for key, value in headers.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(payload)))
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)
        sys.stderr.write(f"{time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())} {self.command} {path} "
                         f"{code} {len(payload)}\n")

    do_GET = do_PUT = do_PATCH = do_POST = do_DELETE = do_HEAD = _serve

    def log_message(self, format: str, *args: Any) -> None:
        """Errors from http.server itself (bad request lines); the request line may hold no token."""
        sys.stderr.write(f"{self.address_string()} {format % args}\n")


class KubeServer(ThreadingHTTPServer):
    """A ThreadingHTTPServer holding the KubeApi; TLS is set up per accepted connection."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], api: KubeApi, context: ssl.SSLContext) -> None:
        self.api = api
        self.context = context
        super().__init__(address, _Handler)

    @property
    def address(self) -> tuple[str, int]:
        """The (host, port) listened on; the port is the real one when 0 was asked for."""
        host, port = self.socket.getsockname()[:2]
        return str(host), int(port)

    def get_request(self) -> tuple[Any, Any]:
        sock, addr = self.socket.accept()
        return self.context.wrap_socket(sock, server_side=True, do_handshake_on_connect=False), addr

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Client-side TLS failures and dropped connections are one log line, not a traceback."""
        exc = sys.exc_info()[1]
        sys.stderr.write(f"{client_address[0]} connection error: {type(exc).__name__}: {exc}\n")


def tls_context(cert: Path, key: Path) -> ssl.SSLContext:
    """A server context with TLS 1.2 or later."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(str(cert), str(key))
    return context


def serve(dir: Path, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT) -> tuple[KubeServer, threading.Thread]:
    """Start serving DIR's run in a background thread; port 0 picks a free port
    (`server.address`). Stop with `server.shutdown(); server.server_close()`."""
    dir = Path(dir)
    run = json.loads((dir / "run.json").read_text(encoding="utf-8"))
    token = (dir / "token").read_text(encoding="utf-8").strip()
    status_path = dir / "status.json"

    def on_status_write(status: dict[str, Any]) -> None:
        write_atomic(status_path, json.dumps(status, indent=2, sort_keys=True).encode("utf-8") + b"\n")

    api = KubeApi(run, token, on_status_write=on_status_write)
    server = KubeServer((host, port), api, tls_context(dir / "tls.crt", dir / "tls.key"))
    thread = threading.Thread(target=server.serve_forever, args=(0.1,), name="kube-api", daemon=True)
    thread.start()
    write_atomic(dir / "ready", f"{server.address[0]}:{server.address[1]}\n".encode())
    return server, thread


def _listen(value: str) -> tuple[str, int]:
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit():
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, got {value!r}")
    return host.strip("[]") or "0.0.0.0", int(port)


def main(argv: list[str] | None = None) -> int:
    """Serve until SIGTERM or SIGINT."""
    parser = argparse.ArgumentParser(prog="python3 -m bot.kube.server", description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--dir", required=True, type=Path, help="directory holding run.json, token, tls.crt, tls.key")
    parser.add_argument("--listen", type=_listen, default=(DEFAULT_HOST, DEFAULT_PORT), help="HOST:PORT")
    args = parser.parse_args(argv)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    server, thread = serve(args.dir, *args.listen)
    sys.stderr.write(f"promisebot kube API listening on {server.address[0]}:{server.address[1]}\n")
    while not stop.wait(1):
        pass
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)
    return 0


if __name__ == "__main__":
    sys.exit(main())
