"""The one base of every error promisebot raises on purpose.

Each concept has its own subclass next to the code that raises it (`FileError` and
`YamlLoadError` for platform files, `SettingError`, `StatusError`, `RunnerUnavailable`,
`StateStoreError`, `BookkeepingError`, `ReconcileError`, `GitError`, ...), and each message
says what went wrong and what to do about it. Front ends (the CLI, and later the server, the
workers and CI modes) catch `PromisebotError` and report it; anything else is a bug and keeps
its traceback. Subclasses that callers also treat as a built-in kind (a `ValueError` for a bad
value, a `LookupError` for a missing secret) keep that base too.
"""

from __future__ import annotations


class PromisebotError(Exception):
    """An error promisebot reports to its user rather than crashes on."""
