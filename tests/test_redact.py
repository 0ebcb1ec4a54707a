"""The one redaction rule (bot/redact.py): known secret values and credential shapes."""

import time

import pytest

from bot.model.objects import SecretRef
from bot.redact import redact, register_secret, secret_env_values
from bot.secrets import Secret, SecretResolver

GHP = "ghp_" + "a1B2c3D4e5" * 4  # 44 characters, like a real classic token


@pytest.mark.parametrize("text, expected", [
    (f"token {GHP} ok", "token *** ok"),
    ("gho_abcdefghijklmnopqrstuvwxyz0123456789 / ghs_abcdefghijklmnopqrstuvwxyz0123456789", "*** / ***"),
    ("github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyz", "***"),
    ("GitLab glpat-abcdefghij1234567890xx.", "GitLab ***."),
    ("aws AKIAIOSFODNN7EXAMPLE id", "aws *** id"),
    ("curl -H 'Authorization: Bearer abc.def.ghi' x", "curl -H 'Authorization: Bearer ***' x"),
    ("authorization: basic dXNlcjpwYXNz", "authorization: basic ***"),
    ("sending Bearer eyJhbGciOiJIUzI1NiJ9xyz", "sending Bearer ***"),
    ("git clone https://bot:s3cr3t-pass@github.com/x.git", "git clone https://bot:***@github.com/x.git"),
    ("GITHUB_TOKEN=abcd1234efgh and password: hunter22", "GITHUB_TOKEN=*** and password: ***"),
    ("aws_secret_access_key = wJalrXUtnFEMI/K7MDENG", "aws_secret_access_key = ***"),
    ("jwt eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U", "jwt ***"),
])
def test_credential_shapes_are_redacted_in_any_text(text, expected):
    assert redact(text) == expected
    assert redact(expected) == expected  # idempotent


@pytest.mark.parametrize("text", [
    "kind: Secret", "secretName: my-secret", "https://github.com/org/repo", "user@example.com",
    "a token expired", "replicas: 3", "ghp_short",
])
def test_ordinary_text_is_left_alone(text):
    assert redact(text) == text


PEM = ("-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQ\n"
       "AAAAAAABAAAAMwAAAAtzc2gtZWQyNTUxOQ\n-----END OPENSSH PRIVATE KEY-----\n")


def test_private_key_blocks_whole_or_cut_off():
    assert redact("before\n" + PEM + "after\n") == "before\n***\nafter\n"
    assert redact("a -----BEGIN RSA PRIVATE KEY----- b -----END RSA PRIVATE KEY----- c") == "a *** c"
    cut_end = "before\n" + PEM[:70]  # the log stops inside the key
    assert "b3Blbn" not in redact(cut_end) and redact(cut_end).startswith("before\n***")
    cut_start = "log line\n" + PEM[45:] + "after\n"  # a log tail starting inside the key
    assert redact(cut_start) == "log line\n***\nafter\n"


def test_given_values_registered_values_and_resolved_secrets(tmp_path):
    assert redact("x hunter2 y abc", [Secret("hunter2"), "abc", ""]) == "x *** y ***"
    register_secret("registered-value-123")
    assert redact("see registered-value-123!") == "see ***!"
    resolver = SecretResolver(None, {"PROMISEBOT_SECRET_DEFAULT_CREDS_PASSWORD": "from-a-secret-ref"})
    resolver.get(SecretRef("creds"), "password")
    assert redact("the container printed from-a-secret-ref") == "the container printed ***"
    key_dir = tmp_path / "default" / "ssh"
    key_dir.mkdir(parents=True)
    (key_dir / "key").write_text("line-one-of-a-long-key-0123456789\nline-two-of-a-long-key-0123456789\n")
    SecretResolver(tmp_path, {}).get(SecretRef("ssh"), "key")
    assert redact("partial: line-two-of-a-long-key-0123456789") == "partial: ***"


def test_short_registered_values_are_not_blanked_everywhere():
    register_secret("ab")
    register_secret("true")
    assert redact("a b ab true") == "a b ab true"


def test_secret_env_values_by_name():
    env = [{"name": "GITHUB_TOKEN", "value": "tok-123456"}, {"name": "DB_PASSWORD", "value": "pw12"},
           {"name": "API_KEY", "value": "key-value"}, {"name": "AUTH_ENABLED", "value": True},
           {"name": "GIT_AUTHOR_NAME", "value": "promisebot"}, {"name": "REGION", "value": "eu-west-1"},
           {"name": "PRIVATE_REGISTRY_PASSWD"}, "MY_SECRET=s3cr3t-x", ("SSH_PRIVATE_KEY", "-----BEGIN..."), 42]
    assert secret_env_values(env) == ["tok-123456", "pw12", "key-value", "s3cr3t-x", "-----BEGIN..."]


def test_linear_time_on_hostile_logs():
    hostile = ("a." * 500_000 + "\n" + "abcdefghij\n" * 100_000 + "-----END RSA PRIVATE KEY-----\n" * 1000
               + "-----BEGIN RSA PRIVATE KEY-----\n" * 1000 + "token:" * 100_000 + "://:" * 100_000)
    started = time.monotonic()
    redact(hostile)
    assert time.monotonic() - started < 10  # ~0.4 s here
