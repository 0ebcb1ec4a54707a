"""GitStateStore with `authMethod: ssh` (contract §3.6: secret keys `sshPrivateKey`,
`knownHosts`) against a real OpenSSH server on 127.0.0.1 (tests/ssh_server.py)."""

from __future__ import annotations

import logging
import os
import subprocess
import tempfile
from pathlib import Path

import pytest
from ssh_server import SshServer, check_installed, keygen

from bot.model.objects import SecretRef, Source, StateStore
from bot.model.works import FileChanges
from bot.secrets import SecretResolver
from bot.statestores import StateStoreError, open_store
from bot.statestores.git import GitStateStoreWriter

SECRET = SecretRef("git-ssh", "flux")

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="sshd must run as root")


@pytest.fixture(scope="module")
def sshd(tmp_path_factory):
    check_installed()
    with SshServer(tmp_path_factory.mktemp("sshd")) as server:
        yield server


def bare_remote(path: Path) -> Path:
    subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(path)], check=True)
    return path


def remote_files(remote: Path) -> list[str]:
    out = subprocess.run(["git", "ls-tree", "-r", "--name-only", "main"], cwd=remote, capture_output=True,
                         text=True)
    return out.stdout.split()


def writer(tmp_path: Path, url: str, private_key: str, known_hosts: str) -> GitStateStoreWriter:
    secrets = tmp_path / "secrets"
    folder = secrets / SECRET.namespace / SECRET.name
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "sshPrivateKey").write_text(private_key)
    (folder / "knownHosts").write_text(known_hosts)
    store = StateStore(kind="GitStateStore", name="ssh-store", body={}, source=Source("stores.yaml"), path="",
                       spec={"url": url, "authMethod": "ssh", "branch": "main"}, secret_ref=SECRET)
    w = open_store(store, platform_root=tmp_path, secrets=SecretResolver(secrets, {}),
                   cache_dir=tmp_path / "cache")
    assert isinstance(w, GitStateStoreWriter)
    return w


def key_material(private_key: str) -> list[str]:
    """The key and each of its base64 lines: none may show anywhere."""
    return [private_key, *(line for line in private_key.splitlines() if len(line) > 20)]


def ssh_temp_dirs() -> set[str]:
    return {p.name for p in Path(tempfile.gettempdir()).glob("promisebot-ssh-*")}


def test_ssh_auth_lands_a_commit_and_the_key_stays_secret(tmp_path, sshd, caplog):
    caplog.set_level(logging.DEBUG)
    remote = bare_remote(tmp_path / "state.git")
    private_key = sshd.client_key.read_text()
    temp_before = ssh_temp_dirs()
    w = writer(tmp_path, sshd.url(remote), private_key, sshd.known_hosts())
    assert w.check_ready().ready
    result = w.apply(FileChanges(puts={"dev/a.yaml": b"a: 1\n"}), "over ssh", {"Promisebot-Event": "test"})
    assert result.revision and result.added == ["dev/a.yaml"]
    assert remote_files(remote) == ["dev/a.yaml"]
    assert w.read("dev/a.yaml") == b"a: 1\n" and w.list_files("dev") == ["dev/a.yaml"]
    again = writer(tmp_path, sshd.url(remote), private_key, sshd.known_hosts())  # the cache is reused
    assert again.apply(FileChanges(puts={"dev/b.yaml": b"b"}), "again", {}).revision
    assert remote_files(remote) == ["dev/a.yaml", "dev/b.yaml"]

    # The key never lands in the cache (config, hooks, logs, objects), the logs, or a leftover file.
    config = subprocess.run(["git", "config", "--list"], cwd=next((tmp_path / "cache" / "git").glob("*/")),
                            capture_output=True, text=True, check=True).stdout
    assert "ssh://root@127.0.0.1" in config
    cached = b"".join(p.read_bytes() for p in (tmp_path / "cache").rglob("*") if p.is_file())
    logs = caplog.text
    for secret in key_material(private_key):
        assert secret not in config and secret.encode() not in cached and secret not in logs
    assert ssh_temp_dirs() == temp_before


def test_wrong_known_hosts_is_a_host_key_error(tmp_path, sshd):
    remote = bare_remote(tmp_path / "state.git")
    other_host = keygen(tmp_path / "other_host", "other").with_suffix(".pub").read_text().split()
    wrong_entry = f"[127.0.0.1]:{sshd.port} {other_host[0]} {other_host[1]}\n"
    private_key = sshd.client_key.read_text()
    w = writer(tmp_path, sshd.url(remote), private_key, wrong_entry)
    with pytest.raises(StateStoreError) as err:
        w.apply(FileChanges(puts={"a.yaml": b"a"}), "must not land", {})
    message = str(err.value)
    assert message.startswith("host key verification failed")
    assert "knownHosts" in message and "secret flux/git-ssh" in message
    for material in [*key_material(private_key), other_host[1], sshd.known_hosts().split()[2]]:
        assert material not in message
    assert remote_files(remote) == []
    ready = w.check_ready()
    assert (ready.ready, ready.reason) == (False, "ErrorInitialisingWriter")
    assert ready.message.startswith("host key verification failed")


def test_wrong_private_key_is_an_auth_error(tmp_path, sshd):
    remote = bare_remote(tmp_path / "state.git")
    wrong_key = keygen(tmp_path / "stranger", "stranger").read_text()
    w = writer(tmp_path, sshd.url(remote), wrong_key, sshd.known_hosts())
    with pytest.raises(StateStoreError) as err:
        w.apply(FileChanges(puts={"a.yaml": b"a"}), "must not land", {})
    message = str(err.value)
    assert message.startswith("authentication failed")
    assert "sshPrivateKey" in message and "secret flux/git-ssh" in message
    for material in key_material(wrong_key):
        assert material not in message
    assert remote_files(remote) == []
