"""The pipeline's Kubernetes API sidecar: `stdio_main`, started by `bot/kube/bootstrap.py`.

STDLIB ONLY: its code travels to a sidecar container whose Python has no third-party packages
(`bot.kube.pki.sidecar_code`), next to `bot/kube/api.py` and `bot/kube/patch.py`.

It gets the run (run.json's content, the token, the TLS certificate and key) on stdin, serves
`bot.kube.api.KubeApi` over HTTPS (TLS 1.2 or later) with `http.server.ThreadingHTTPServer` and
HTTP/1.1 keep-alive, and answers the runner's `sync` with the status written through the API.
Nothing of the run touches its filesystem but the key, for the instant `ssl` needs it as a file.
One line per request goes to stderr: method, path, status code and size, never the token or the
bodies.
"""

from __future__ import annotations

import json
import ssl
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, BinaryIO
from urllib.parse import parse_qsl, urlsplit

from bot.kube.api import MAX_BODY_BYTES, ApiError, KubeApi

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 6443
_DRAIN_LIMIT = 4 * MAX_BODY_BYTES


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


def tls_context(cert_pem: bytes, key_pem: bytes) -> ssl.SSLContext:
    """A server context with TLS 1.2 or later. `load_cert_chain` reads files: the key is
    written to a private temporary file, loaded, and removed at once."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    with tempfile.TemporaryDirectory(prefix="promisebot-kube-") as tmp:
        cert, key = Path(tmp) / "tls.crt", Path(tmp) / "tls.key"
        cert.write_bytes(cert_pem)
        key.touch(mode=0o600)
        key.write_bytes(key_pem)
        context.load_cert_chain(str(cert), str(key))
    return context


def serve(run: dict[str, Any], token: str, cert_pem: bytes, key_pem: bytes, host: str = DEFAULT_HOST,
          port: int = DEFAULT_PORT) -> tuple[KubeServer, threading.Thread]:
    """Start serving the run in a background thread; port 0 picks a free port
    (`server.address`). Stop with `server.shutdown(); server.server_close()`."""
    server = KubeServer((host, port), KubeApi(run, token), tls_context(cert_pem, key_pem))
    thread = threading.Thread(target=server.serve_forever, args=(0.1,), name="kube-api", daemon=True)
    thread.start()
    return server, thread


def _reply(out: BinaryIO, message: dict[str, Any]) -> None:
    out.write(json.dumps(message, separators=(",", ":"), sort_keys=True).encode("utf-8") + b"\n")
    out.flush()


def stdio_main(inp: BinaryIO, out: BinaryIO, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT) -> int:
    """The runner's protocol, one JSON object per line each way (the runner side is
    `runners/sidecar.py`); stdout carries nothing else, request logs go to stderr:

    * `{"run": RUN, "token": T, "cert": PEM, "key": PEM}` (once): serve the run on host:port
      (or the message's `"listen": "HOST:PORT"`, port 0 for any free one), answer
      `{"ready": "HOST:PORT"}`, or `{"error": "..."}` and exit 1;
    * `{"sync": true}`: answer `{"status": STATUS}`, the object's status as last written through
      the API (null when never written); every write acknowledged to a client is in it;
    * end of stdin (the runner closed it, or went away): stop, exit 0.
    """
    server: KubeServer | None = None
    try:
        for line in inp:
            message = json.loads(line)
            if server is None and "run" in message:
                try:
                    listen_host, _, listen_port = str(message.get("listen") or f"{host}:{port}").rpartition(":")
                    server, _ = serve(message["run"], str(message["token"]), message["cert"].encode("ascii"),
                                      message["key"].encode("ascii"), listen_host, int(listen_port))
                except (OSError, ValueError, KeyError, TypeError, ssl.SSLError) as exc:
                    _reply(out, {"error": f"{type(exc).__name__}: {exc}"})
                    return 1
                _reply(out, {"ready": f"{server.address[0]}:{server.address[1]}"})
            elif server is not None and message.get("sync"):
                _reply(out, {"status": server.api.status()})
            else:
                _reply(out, {"error": f"unexpected message with keys {sorted(message)}"})
    finally:
        if server is not None:
            server.shutdown()
            server.server_close()
    return 0
