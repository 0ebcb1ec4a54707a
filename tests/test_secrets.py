"""Secret lookup (contract §3.6, §3.7 secret keys): secrets directory first, then the environment."""

from __future__ import annotations

import pytest

from bot.model.objects import SecretRef
from bot.secrets import Secret, SecretNotFoundError, SecretResolver, env_var_name, redact

REF = SecretRef(name="git-creds", namespace="team-a")


def test_reads_the_mounted_secret_file(tmp_path):
    key_dir = tmp_path / "team-a" / "git-creds"
    key_dir.mkdir(parents=True)
    (key_dir / "password").write_text("s3cret\n")
    (key_dir / "sshPrivateKey").write_text("-----BEGIN KEY-----\nabc\n-----END KEY-----\n")
    resolver = SecretResolver(tmp_path, {})
    assert resolver.get(REF, "password") == "s3cret"  # a single line loses its newline
    assert resolver.get(REF, "sshPrivateKey") == "-----BEGIN KEY-----\nabc\n-----END KEY-----\n"


def test_file_wins_over_environment(tmp_path):
    key_dir = tmp_path / "team-a" / "git-creds"
    key_dir.mkdir(parents=True)
    (key_dir / "username").write_text("from-file")
    resolver = SecretResolver(tmp_path, {"PROMISEBOT_SECRET_TEAM_A_GIT_CREDS_USERNAME": "from-env"})
    assert resolver.get(REF, "username") == "from-file"


def test_environment_naming_rule():
    assert env_var_name(REF, "sshPrivateKey") == "PROMISEBOT_SECRET_TEAM_A_GIT_CREDS_SSHPRIVATEKEY"
    assert env_var_name(SecretRef("s3.creds"), "accessKeyID") == "PROMISEBOT_SECRET_DEFAULT_S3_CREDS_ACCESSKEYID"
    resolver = SecretResolver(None, {"PROMISEBOT_SECRET_TEAM_A_GIT_CREDS_PASSWORD": "tok"})
    assert resolver.get(REF, "password") == "tok"


def test_missing_secret_says_what_to_create(tmp_path):
    with pytest.raises(SecretNotFoundError) as err:
        SecretResolver(tmp_path, {}).get(REF, "password")
    message = str(err.value)
    assert str(tmp_path / "team-a" / "git-creds" / "password") in message
    assert "PROMISEBOT_SECRET_TEAM_A_GIT_CREDS_PASSWORD" in message

    with pytest.raises(SecretNotFoundError, match="environment variable PROMISEBOT_SECRET_TEAM_A_GIT_CREDS_USERNAME"):
        SecretResolver(None, {}).get(REF, "username")


@pytest.mark.parametrize("ref,key", [(SecretRef("..", "x"), "k"), (SecretRef("a/b"), "k"), (REF, "../etc")])
def test_path_like_names_are_refused(tmp_path, ref, key):
    with pytest.raises(ValueError, match="invalid secret"):
        SecretResolver(tmp_path, {}).get(ref, key)


def test_secret_never_shows_its_value():
    secret = Secret("hunter2")
    assert "hunter2" not in repr(secret) and "hunter2" not in str(secret) and "hunter2" not in f"{secret}"
    assert "hunter2" not in repr([secret]) and secret.reveal() == "hunter2"


def test_redact_replaces_every_value():
    text = "push https://bot:hunter2@x failed; token hunter2 and abc"
    assert redact(text, [Secret("hunter2"), "abc", ""]) == "push https://bot:***@x failed; token *** and ***"
