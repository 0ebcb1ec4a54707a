"""Markdown that shows text verbatim, whatever it holds: code spans and fenced blocks whose
backtick runs are longer than any run inside (so user or pipeline text can never close them).
Pure; shared by the plan comment and the ChatOps replies."""

from __future__ import annotations

import re

_BACKTICKS = re.compile(r"`+")


def longest_backticks(text: str) -> int:
    return max((len(run) for run in _BACKTICKS.findall(text)), default=0)


def code_span(text: str, *, table: bool = False, empty: str = "") -> str:
    """`text` on one line as a code span (in a table cell, its pipes escaped); `empty` when
    there is nothing to show."""
    text = " ".join(str(text).split())
    if not text:
        return empty
    ticks = "`" * (longest_backticks(text) + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    if table:
        text = text.replace("|", "\\|")
    return f"{ticks}{pad}{text}{pad}{ticks}"


def fenced(text: str, info: str = "") -> str:
    """`text` as a fenced code block (info string `info`) that no line of it can close."""
    ticks = "`" * max(3, longest_backticks(text) + 1)
    return f"{ticks}{info}\n{text}\n{ticks}" if text else f"{ticks}{info}\n{ticks}"
