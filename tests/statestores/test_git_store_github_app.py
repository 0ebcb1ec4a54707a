"""Kratix's `authMethod: githubApp` for GitStateStores: the secret's appID, installationID and
privateKey give an installation token (the bot's own GitHub App machinery), which pushes over
HTTP as `x-access-token`. Real git over a real smart-HTTP server; the token from the GitHub
stand-in through PyGithub."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from forge_servers.github import GitHubServer
from git_http import GitHttpServer
from test_git_store import bare_remote, files, writer

from bot.model.objects import SecretRef
from bot.model.works import FileChanges
from bot.statestores.base import StateStoreError
from bot.statestores.git_auth import GITHUB_API_URL_ENV

APP_ID, INSTALLATION = "4242", 77
CREDS = SecretRef("github-app", "default")


@pytest.fixture
def app_key():
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                                serialization.NoEncryption()).decode()
    public = key.public_key().public_bytes(serialization.Encoding.PEM,
                                           serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    return private, public


def secrets_env(private_key: str, installation: int = INSTALLATION) -> dict[str, str]:
    prefix = "PROMISEBOT_SECRET_DEFAULT_GITHUB_APP_"
    return {f"{prefix}APPID": APP_ID, f"{prefix}INSTALLATIONID": str(installation), f"{prefix}PRIVATEKEY": private_key}


def test_a_github_app_installation_token_pushes(tmp_path, app_key, monkeypatch):
    private, public = app_key
    with GitHubServer() as github:
        github.add_repo("acme/state")
        github.add_app(APP_ID, public)
        github.add_installation(APP_ID, INSTALLATION, ["acme/state"])
        issued = github._installation_tokens  # tokens the stand-in issued
        root = tmp_path / "served"
        remote = bare_remote(root / "state.git")
        with GitHttpServer(root, "", "", authorize=lambda u, p: u == "x-access-token" and p in issued) as git_server:
            monkeypatch.setenv(GITHUB_API_URL_ENV, github.api_url)
            w = writer(tmp_path, git_server.url("state.git"), environ=secrets_env(private), secret=CREDS,
                       authMethod="githubApp")
            result = w.apply(FileChanges(puts={"dev/a.yaml": b"a"}), "through an App", {})
            assert result.revision and files(remote) == {"dev/a.yaml": b"a"}
            w.apply(FileChanges(puts={"dev/b.yaml": b"b"}), "again", {})
            token_calls = [c for c in github.calls("POST") if c.path.endswith("/access_tokens")]
            assert len(token_calls) == 1, "the installation token is cached between writes"


def test_an_unknown_installation_is_a_clear_error_without_the_key(tmp_path, app_key, monkeypatch):
    private, public = app_key
    with GitHubServer() as github:
        github.add_app(APP_ID, public)
        monkeypatch.setenv(GITHUB_API_URL_ENV, github.api_url)
        root = tmp_path / "served"
        bare_remote(root / "state.git")
        with GitHttpServer(root, "x", "y") as git_server:
            w = writer(tmp_path, git_server.url("state.git"), environ=secrets_env(private, installation=999),
                       secret=CREDS, authMethod="githubApp")
            with pytest.raises(StateStoreError) as err:
                w.apply(FileChanges(puts={"a": b"a"}), "x", {})
    message = str(err.value)
    assert "GitHub App 4242, installation 999" in message
    assert "PRIVATE KEY" not in message and private.splitlines()[1] not in message
