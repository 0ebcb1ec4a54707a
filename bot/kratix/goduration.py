"""Go's `time.ParseDuration` and `time.Duration.String`, exactly.

Kratix parses `retryAfter` in workflow-control.yaml (contract §1.5c) and Promise
`reconciliationInterval` (§1.1) with Go's parser, and prints durations with Go's formatting;
promisebot accepts and reports the same strings. Durations are whole nanoseconds (int).
"""

from __future__ import annotations

from bot.errors import PromisebotError

MAX_NANOS = (1 << 63) - 1
_UNITS = {
    "ns": 1,
    "us": 1_000,
    "\u00b5s": 1_000,  # U+00B5 micro sign
    "\u03bcs": 1_000,  # U+03BC Greek mu
    "ms": 1_000_000,
    "s": 1_000_000_000,
    "m": 60 * 1_000_000_000,
    "h": 3600 * 1_000_000_000,
}


class DurationError(PromisebotError, ValueError):
    """Not a Go duration; the message is Go's (`time: invalid duration "x"`)."""


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def parse_nanos(text: str) -> int:
    """`time.ParseDuration(text)` in nanoseconds: `[-+]?([0-9]*(\\.[0-9]*)?[a-z]+)+`, "0" alone
    needs no unit, units ns us µs μs ms s m h, at most 2^63-1 ns."""
    orig, rest, negative = text, text, False
    if rest[:1] in ("-", "+"):
        negative, rest = rest[0] == "-", rest[1:]
    if rest == "0":
        return 0
    if rest == "":
        raise DurationError(f"time: invalid duration {_quote(orig)}")
    total = 0
    while rest:
        if not (rest[0] == "." or rest[0].isascii() and rest[0].isdigit()):
            raise DurationError(f"time: invalid duration {_quote(orig)}")
        i = _digits_end(rest, 0)
        whole, rest = rest[:i], rest[i:]
        fraction = ""
        if rest[:1] == ".":
            j = _digits_end(rest, 1)
            fraction, rest = rest[1:j], rest[j:]
        if not whole and not fraction:  # "." or ".s": no digits at all
            raise DurationError(f"time: invalid duration {_quote(orig)}")
        j = 0
        while j < len(rest) and rest[j] != "." and not (rest[j].isascii() and rest[j].isdigit()):
            j += 1
        unit, rest = rest[:j], rest[j:]
        if not unit:
            raise DurationError(f"time: missing unit in duration {_quote(orig)}")
        if unit not in _UNITS:
            raise DurationError(f"time: unknown unit {_quote(unit)} in duration {_quote(orig)}")
        scale = _UNITS[unit]
        value = int(whole or "0") * scale
        if fraction:
            value += int(int(fraction) * (scale / 10 ** len(fraction)))  # Go's float arithmetic
        total += value
        if value > MAX_NANOS or total > MAX_NANOS:
            raise DurationError(f"time: invalid duration {_quote(orig)}")
    return -total if negative else total


def parse_seconds(text: str) -> float:
    """`time.ParseDuration(text)` in seconds."""
    return parse_nanos(text) / 1e9


def format_nanos(nanos: int) -> str:
    """`time.Duration(nanos).String()`: "1h30m0s", "500ms", "1µs", "0s"."""
    if nanos == 0:
        return "0s"
    sign, n = ("-", -nanos) if nanos < 0 else ("", nanos)
    if n < 1_000_000_000:
        for unit, size in (("ms", 1_000_000), ("\u00b5s", 1_000), ("ns", 1)):
            if n >= size:
                return sign + _decimal(n, size) + unit
    seconds = _decimal(n % 60_000_000_000, 1_000_000_000) + "s"
    minutes, hours = n // 60_000_000_000 % 60, n // 3_600_000_000_000
    if hours:
        return f"{sign}{hours}h{minutes}m{seconds}"
    if minutes:
        return f"{sign}{minutes}m{seconds}"
    return sign + seconds


def _decimal(n: int, size: int) -> str:
    whole, fraction = divmod(n, size)
    digits = str(fraction).rjust(len(str(size)) - 1, "0").rstrip("0")
    return f"{whole}.{digits}" if digits else str(whole)


def _digits_end(text: str, start: int) -> int:
    i = start
    while i < len(text) and text[i].isascii() and text[i].isdigit():
        i += 1
    return i
