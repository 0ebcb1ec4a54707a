"""A real Git smart-HTTP server for tests: `git http-backend` behind basic auth on 127.0.0.1.

Plain http on loopback stands in for https (the Git store accepts http:// URLs for this).
Every request, read or write, needs the right username and password.
"""

from __future__ import annotations

import base64
import os
import subprocess
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from urllib.parse import urlsplit


def _http_backend() -> str:
    exec_path = subprocess.run(["git", "--exec-path"], capture_output=True, text=True, check=True).stdout.strip()
    return os.path.join(exec_path, "git-http-backend")


class GitHttpServer:
    """Serves the bare repositories under `root` at http://127.0.0.1:<port>/<name>.git."""

    def __init__(self, root: Path, username: str, password: str,
                 authorize: Callable[[str, str], bool] | None = None) -> None:
        """`authorize(username, password)`, when given, decides instead of the fixed pair (for
        credentials issued while the test runs, such as GitHub App installation tokens)."""
        self.root, self.username, self.password = root, username, password
        self.authorize = authorize
        self.denied = 0  # requests refused for missing or wrong credentials
        backend, server = _http_backend(), self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - keep test output quiet
                pass

            def do_GET(self) -> None:
                self._serve()

            def do_POST(self) -> None:
                self._serve()

            def _body(self) -> bytes:
                if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                    chunks = []
                    while True:
                        size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                        if size == 0:
                            self.rfile.readline()
                            return b"".join(chunks)
                        chunks.append(self.rfile.read(size))
                        self.rfile.readline()
                return self.rfile.read(int(self.headers.get("Content-Length") or 0))

            def _serve(self) -> None:
                if not server.accepts(self.headers.get("Authorization") or ""):
                    server.denied += 1
                    self.send_response(401)
                    self.send_header("WWW-Authenticate", 'Basic realm="git"')
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                url = urlsplit(self.path)
                env = {
                    "PATH": os.environ.get("PATH", ""),
                    "GIT_PROJECT_ROOT": str(server.root),
                    "GIT_HTTP_EXPORT_ALL": "1",
                    "REQUEST_METHOD": self.command,
                    "PATH_INFO": url.path,
                    "QUERY_STRING": url.query,
                    "CONTENT_TYPE": self.headers.get("Content-Type", ""),
                    "REMOTE_USER": server.user_of(self.headers.get("Authorization") or ""),
                    "REMOTE_ADDR": "127.0.0.1",
                    "GIT_PROTOCOL": self.headers.get("Git-Protocol", ""),
                    "HTTP_CONTENT_ENCODING": self.headers.get("Content-Encoding", ""),
                }
                body = self._body() if self.command == "POST" else b""
                env["CONTENT_LENGTH"] = str(len(body))
                out = subprocess.run([backend], input=body, env=env, capture_output=True, check=False).stdout
                head, _, payload = out.partition(b"\r\n\r\n")
                headers = [line.split(":", 1) for line in head.decode("latin-1").split("\r\n") if ":" in line]
                status = next((int(v.split()[0]) for k, v in headers if k.lower() == "status"), 200)
                self.send_response(status)
                for key, value in headers:
                    if key.lower() != "status":
                        self.send_header(key, value.strip())
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    def user_of(self, header: str) -> str:
        try:
            return base64.b64decode(header[6:]).decode().partition(":")[0] or self.username
        except ValueError:
            return self.username

    def accepts(self, header: str) -> bool:
        if not header.startswith("Basic "):
            return False
        try:
            username, _, password = base64.b64decode(header[6:]).decode().partition(":")
        except ValueError:
            return False
        if self.authorize is not None:
            return self.authorize(username, password)
        return (username, password) == (self.username, self.password)

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self._httpd.server_address[1]}/{name}"

    def __enter__(self) -> GitHttpServer:
        self._thread.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join()
