"""The one redaction rule: what is replaced by `***` before any text is recorded or printed.

`redact(text, values)` replaces, in this order:

1. every *known* secret value: the `values` given, and every value registered with
   `register_secret` (the SecretResolver registers each value it resolves from a `secretRef`;
   the Docker runner passes the values of each container's secret-looking `env` entries,
   see `secret_env_values`). Longer values first, so a value containing another goes whole;
2. credentials recognisable by their shape, in any text: GitHub tokens (`ghp_`, `gho_`,
   `ghu_`, `ghs_`, `ghr_`, `github_pat_`), GitLab tokens (`glpat-` and the other `gl*-`
   prefixes), Slack tokens (`xox?-`), AWS access key ids (`AKIA`/`ASIA`...), JSON Web Tokens,
   PEM private key blocks (also a block cut off at either end), `Authorization: Bearer|Basic|
   Token ...` and `Bearer ...`, the password of URL userinfo (`https://user:***@host`), and the
   value of `NAME=value` / `NAME: value` assignments whose NAME ends in a secret word
   (`GITHUB_TOKEN=...`, `password: ...`).

Values given to `redact` are replaced whatever their length. Registered values and secret-looking
`env` values shorter than `MIN_SECRET_LENGTH` are not (a one-letter value would blank out every
occurrence of that letter), nor are the words of `_NOT_SECRET` (`true`, `none`, ...) that a
variable such as `AUTH_ENABLED` may hold.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable
from typing import Any, Protocol

REDACTED = "***"
MIN_SECRET_LENGTH = 4
# Lines of a multi-line secret (an SSH key) at least this long are secrets of their own.
MIN_SECRET_LINE_LENGTH = 16

# A variable whose name contains one of these words holds a secret.
SECRET_NAME = re.compile(
    r"TOKEN|SECRET|PASSWORD|PASSWD|PASSPHRASE|PASSCODE|KEY|CREDENTIAL|CRED|AUTH(?!OR)|PRIVATE|COOKIE|"
    r"SIGNATURE|SALT|PIN\b|_PW\b|^PW_|_PWD\b|DSN|CONNECTION_?STRING",
    re.IGNORECASE,
)
_NOT_SECRET = frozenset({"true", "false", "yes", "no", "on", "off", "none", "null", "nil", "enabled", "disabled",
                         "required", "optional", "basic", "bearer", "token", "oauth", "oauth2"})


class _Revealable(Protocol):
    def reveal(self) -> str: ...


_PEM_BEGIN = re.compile(r"-----BEGIN [A-Z0-9 ]{0,40}PRIVATE KEY( BLOCK)?-----")
_PEM_END = re.compile(r"-----END [A-Z0-9 ]{0,40}PRIVATE KEY( BLOCK)?-----")
# A line inside a PEM block: base64, an encryption header, or empty.
_PEM_LINE = re.compile(r"[A-Za-z0-9+/=]{8,}|(?:Proc-Type|DEK-Info|Comment): .*|")

# Every quantifier is bounded or anchored on a literal, so each pattern runs in linear time
# on megabytes of logs.
_SHAPES: list[tuple[re.Pattern[str], str]] = [
    # Authorization headers and bearer tokens.
    (re.compile(r"(?i)(\bauthorization[\"']?[ \t]*[:=][ \t]*[\"']?(?:bearer|basic|token|bot|digest|negotiate)[ \t]+)"
                r"[^\s\"',;]+"), r"\1" + REDACTED),
    (re.compile(r"(?i)(\bbearer[ \t]+)(?!\*\*\*)[A-Za-z0-9\-._~+/]{8,}=*"), r"\1" + REDACTED),
    # URL userinfo password: scheme://user:password@host
    (re.compile(r"(://[^/\s:@\"'<>]{0,256}:)[^/\s@\"'<>]{1,256}@"),
     r"\1" + REDACTED + "@"),
    # Well-known token shapes.
    (re.compile(r"\bgithub_pat_[A-Za-z0-9_]{20,}"), REDACTED),
    (re.compile(r"\bgh[pousr]_[A-Za-z0-9]{20,}"), REDACTED),
    (re.compile(r"\bgl(?:pat|dt|rt|cbt|ptt|ft|imt|agent|oas|soat|ffct)-[A-Za-z0-9_\-]{20,}"), REDACTED),
    (re.compile(r"\bxox[abposre]-[A-Za-z0-9\-]{10,}"), REDACTED),
    (re.compile(r"\b(?:AKIA|ASIA|AGPA|AIDA|AROA|ANPA|ANVA|AIPA)[A-Z0-9]{16}\b"), REDACTED),
    (re.compile(r"\beyJ[A-Za-z0-9_\-]{8,}\.eyJ[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,}"), REDACTED),
    # NAME=value / NAME: value where NAME ends in a secret word (GITHUB_TOKEN=..., password: ...).
    (re.compile(r"(?i)((?:token|secret|password|passwd|passphrase|api[_\-]?key|access[_\-]?key|private[_\-]?key|"
                r"credentials?)[\"']?[ \t]*[=:][ \t]*[\"']?)"
                r"(?!\*\*\*)([^\s\"',;]{4,})"), r"\1" + REDACTED),
]

_lock = threading.Lock()
_registered: set[str] = set()


def register_secret(value: str | _Revealable) -> None:
    """Remember a secret value (and each long line of a multi-line one) for every later
    `redact`, process-wide. The SecretResolver calls this for every value it resolves."""
    found = {v for v in _known([value]) if _worth(v)}
    if found:
        with _lock:
            _registered.update(found)


def secret_env_values(env: Iterable[Any]) -> list[str]:
    """The values of the entries of a container `env` whose names look secret (`SECRET_NAME`),
    leaving out values too short or too plain to be secrets (`true`, `none`): `env` holds
    `{name, value}` mappings (a Kubernetes container spec), `(name, value)` pairs or `NAME=value`
    strings."""
    values = []
    for item in env:
        if isinstance(item, dict):
            name, value = item.get("name"), item.get("value")
        elif isinstance(item, str):
            name, _, value = item.partition("=")
        elif isinstance(item, (tuple, list)) and len(item) == 2:
            name, value = item
        else:
            continue
        if isinstance(name, str) and value is not None and SECRET_NAME.search(name):
            text = "true" if value is True else "false" if value is False else str(value)
            if _worth(text.strip()):
                values.append(text)
    return values


def redact(text: str, values: Iterable[str | _Revealable] = ()) -> str:
    """`text` with every known secret value and every recognisable credential replaced by `***`
    (module docstring). `values` are secrets whatever their length. Idempotent; linear time."""
    if not text:
        return text
    if "PRIVATE KEY" in text:  # whole key blocks first: a known key line inside one must not split it
        text = _redact_pem(text)
    with _lock:
        known = set(_registered)
    known |= _known(values)
    for value in sorted(known, key=len, reverse=True):
        if value in text:
            text = text.replace(value, REDACTED)
    for pattern, replacement in _SHAPES:
        text = pattern.sub(replacement, text)
    return text


def _known(values: Iterable[str | _Revealable]) -> set[str]:
    """Non-empty values, their stripped forms, and the long lines of multi-line ones."""
    out = set()
    for value in values:
        plain = value if isinstance(value, str) else value.reveal()
        for v in (plain, plain.strip()):
            if v:
                out.add(v)
        if "\n" in plain:
            out.update(line.strip() for line in plain.splitlines() if len(line.strip()) >= MIN_SECRET_LINE_LENGTH)
    return out


def _worth(value: str) -> bool:
    return len(value) >= MIN_SECRET_LENGTH and value.lower() not in _NOT_SECRET


def _redact_pem(text: str) -> str:
    """Private key blocks: BEGIN line to END line; a block cut off before its END line (the
    BEGIN line and the key lines after it); a block cut off before its BEGIN line (a log tail
    starting inside the key: the key lines before the END line)."""
    markers = sorted([(m.start(), m.end(), True) for m in _PEM_BEGIN.finditer(text)]
                     + [(m.start(), m.end(), False) for m in _PEM_END.finditer(text)])
    spans = []
    for i, (start, end, begin) in enumerate(markers):
        if begin and i + 1 < len(markers) and not markers[i + 1][2]:
            spans.append((start, markers[i + 1][1]))  # a whole block
        elif begin:
            end = _line_end(text, end)
            while end < len(text):
                following = _line_end(text, end + 1)
                if not _PEM_LINE.fullmatch(text[end + 1:following].strip()):
                    break
                end = following
            spans.append((start, end))
        elif i == 0 or not markers[i - 1][2]:  # an END without its BEGIN
            start = text.rfind("\n", 0, start) + 1
            while start > 0:
                previous = text.rfind("\n", 0, start - 1) + 1
                if not _PEM_LINE.fullmatch(text[previous:start - 1].strip()):
                    break
                start = previous
            spans.append((start, end))
    out, position = [], 0
    for start, end in spans:  # in order; a span may overlap the one before
        if end <= position:
            continue
        if start >= position:
            out += [text[position:start], REDACTED]
        position = end
    out.append(text[position:])
    return "".join(out)


def _line_end(text: str, start: int) -> int:
    end = text.find("\n", start)
    return len(text) if end < 0 else end
