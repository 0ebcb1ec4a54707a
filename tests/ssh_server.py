"""A real OpenSSH server for tests: `sshd` in the foreground on 127.0.0.1, with its own
temporary config, host key and authorized client key; public-key logins only.

It must run as root (sshd's privilege separation), logs in as root, and serves Git over SSH
through the machine's `git-upload-pack` / `git-receive-pack`, so a bare repository at an
absolute path is reachable as `ssh://root@127.0.0.1:<port>/<path>`.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path
from types import TracebackType

SSHD = "/usr/sbin/sshd"


def check_installed() -> None:
    """Fail loudly when OpenSSH is missing: scripts/setup.sh installs it."""
    if not Path(SSHD).is_file() or shutil.which("ssh") is None or shutil.which("ssh-keygen") is None:
        raise RuntimeError("openssh-server and openssh-client are not installed (run scripts/setup.sh)")


def keygen(path: Path, comment: str) -> Path:
    """A fresh ed25519 key pair: `path` (private) and `path.pub`."""
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", str(path)],
                   check=True, capture_output=True)
    return path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class SshServer:
    """sshd on 127.0.0.1:`port` accepting only `client_key` (generated here) for root."""

    def __init__(self, root: Path) -> None:
        self.dir = root
        root.mkdir(parents=True, exist_ok=True)
        self.host_key = keygen(root / "host_ed25519", "test-host")
        self.client_key = keygen(root / "client_ed25519", "test-client")
        (root / "authorized_keys").write_bytes(self.client_key.with_suffix(".pub").read_bytes())
        self.port = _free_port()
        self.log = root / "sshd.log"
        self._proc: subprocess.Popen[bytes] | None = None

    def known_hosts(self) -> str:
        """A known_hosts line for this server's host key."""
        key_type, key = self.host_key.with_suffix(".pub").read_text().split()[:2]
        return f"[127.0.0.1]:{self.port} {key_type} {key}\n"

    def url(self, repo: Path) -> str:
        return f"ssh://root@127.0.0.1:{self.port}{repo.resolve()}"

    def __enter__(self) -> SshServer:
        config = self.dir / "sshd_config"
        config.write_text("\n".join([
            f"Port {self.port}",
            "ListenAddress 127.0.0.1",
            f"HostKey {self.host_key}",
            f"AuthorizedKeysFile {self.dir / 'authorized_keys'}",
            f"PidFile {self.dir / 'sshd.pid'}",
            "PasswordAuthentication no",
            "KbdInteractiveAuthentication no",
            "UsePAM no",
            "PermitRootLogin prohibit-password",
            "StrictModes no",
            "",
        ]))
        Path("/run/sshd").mkdir(parents=True, exist_ok=True)  # sshd's privilege separation dir
        with open(self.log, "wb") as log:
            self._proc = subprocess.Popen([SSHD, "-D", "-e", "-f", str(config)], stdout=log, stderr=log)
        self._wait_listening()
        return self

    def _wait_listening(self) -> None:
        """Until sshd greets on its port (it fails fast on a bad config or a taken port)."""
        assert self._proc is not None
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and self._proc.poll() is None:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=5) as conn:
                    if conn.recv(8).startswith(b"SSH-"):
                        return
            except OSError:
                time.sleep(0.05)
        self.__exit__(None, None, None)
        raise RuntimeError(f"sshd did not start: {self.log.read_text(errors='replace')}")

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self._proc is not None:
            self._proc.terminate()
            self._proc.wait(timeout=30)
            self._proc = None
