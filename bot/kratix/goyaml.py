"""YAML as gopkg.in/yaml.v2 writes it, byte for byte for Kubernetes-style documents.

Kratix writes the static `spec.dependencies` file (contract §4.1 step 6, `Dependencies.Marshal`)
and the none-mode `.kratix` state files (§3.2) with yaml.v2's encoder. PyYAML's emitter is a
port of the same libyaml emitter, so layout, line folding and block scalars agree; what
differs is decided here as yaml.v2 decides it:

* a string is double-quoted when yaml.v2 would read it back as something else (its YAML 1.1
  resolver: `y`/`n`/`on`/`off`, `1e3`, `0o17`, timestamps, base-60 numbers, ...); otherwise
  it is plain, or single-quoted when plain is not allowed (`'a: b'`); strings with a newline
  are literal blocks;
* mapping keys are sorted with yaml.v2's natural order (`file2` before `file10`, punctuation
  before letters); that order is not transitive for digit runs with leading zeros (`a01b`,
  `a1b`, `a10`), where Go's sort algorithm decides and this module may differ;
* numbers are as Kratix holds them after the API server's JSON round trip: an integral float
  is an int, other floats use Go's shortest `%g` (`1e-05`, `1.2345675e+06`).

Checked against yaml.v2 v2.4.0's output (tests/test_goyaml.py).
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Iterable
from datetime import date
from decimal import Decimal
from typing import Any

import yaml
from yaml.emitter import Emitter
from yaml.nodes import MappingNode, ScalarNode, SequenceNode
from yaml.representer import SafeRepresenter
from yaml.resolver import BaseResolver
from yaml.serializer import Serializer

_TAG = "tag:yaml.org,2002:"
_STR, _NULL, _BOOL, _INT, _FLOAT = (_TAG + t for t in ("str", "null", "bool", "int", "float"))
_MAP = {
    **dict.fromkeys(("y", "Y", "yes", "Yes", "YES", "true", "True", "TRUE", "on", "On", "ON"), _BOOL),
    **dict.fromkeys(("n", "N", "no", "No", "NO", "false", "False", "FALSE", "off", "Off", "OFF"), _BOOL),
    **dict.fromkeys(("", "~", "null", "Null", "NULL"), _NULL),
    **dict.fromkeys((".nan", ".NaN", ".NAN", ".inf", ".Inf", ".INF", "+.inf", "+.Inf", "+.INF",
                     "-.inf", "-.Inf", "-.INF"), _FLOAT),
}  # also "<<" in yaml.v2, unreachable there: "<" has no resolve hint
_HINTS = {**dict.fromkeys("+-", "S"), **dict.fromkeys("0123456789", "D"), **dict.fromkeys("yYnNtTfFoO~", "M"),
          ".": "."}
_YAML_STYLE_FLOAT = re.compile(r"[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?")
_DOT_FLOAT = re.compile(r"\.[0-9]+([eE][-+]?[0-9]+)?")
_BASE60_FLOAT = re.compile(r"[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+(?:\.[0-9_]*)?")
_GO_INT = re.compile(r"([-+]?)(0[xX][0-9a-fA-F]+|0[oO][0-7]+|0[bB][01]+|0[0-7]*|[1-9][0-9]*)")
_TIMESTAMP = re.compile(
    r"(\d{4})-(\d{1,2})-(\d{1,2})"
    r"(?:(?:[Tt](\d{1,2}):(\d{1,2}):(\d{1,2})(?:\.\d+)?(?:Z|[-+]\d{2}:\d{2}))"
    r"|(?: (\d{1,2}):(\d{1,2}):(\d{1,2})(?:\.\d+)?))?"
)


def dump_v2(documents: Iterable[Any]) -> bytes:
    """The documents as consecutive YAML documents, as successive yaml.v2 `Encoder.Encode`
    calls write them (the encoder is never closed, so no trailing "...")."""
    text = yaml.dump_all(list(documents), Dumper=_Dumper, default_flow_style=False, allow_unicode=True,
                         sort_keys=False, width=80)
    return text.removesuffix("...\n").encode()


def plain_tag(text: str) -> str:
    """The tag yaml.v2's `resolve("", text)` gives an unquoted scalar (str if nothing else)."""
    hint = _HINTS.get(text[0], "") if text else "N"
    if not hint:
        return _STR
    if text in _MAP:
        return _MAP[text]
    if hint == "." and _DOT_FLOAT.fullmatch(text):
        return _FLOAT
    if hint in "DS":
        if hint == "D" and _is_timestamp(text):
            return _TAG + "timestamp"
        plain = text.replace("_", "")
        if _is_go_int(plain):
            return _INT
        if _YAML_STYLE_FLOAT.fullmatch(plain) and not math.isinf(float(plain)):
            return _FLOAT
    return _STR


def _is_go_int(text: str) -> bool:
    """strconv.ParseInt(text, 0, 64) or ParseUint(text, 0, 64) succeeds."""
    m = _GO_INT.fullmatch(text)
    if not m:
        return False
    sign, digits = m.groups()
    base = {"x": 16, "o": 8, "b": 2}.get(digits[1:2].lower(), 8) if len(digits) > 1 and digits[0] == "0" else 10
    value = int(digits[2:] if base != 10 and digits[1:2].isalpha() else digits, base)
    if sign == "-":
        return value <= 1 << 63
    return value < 1 << 64 if not sign else value < 1 << 63


def _is_timestamp(text: str) -> bool:
    m = _TIMESTAMP.fullmatch(text)
    if not m:
        return False
    year, month, day = (int(g) for g in m.groups()[:3])
    clock = [int(g) for g in m.groups()[3:] if g is not None]
    try:
        date(year, month, day)
    except ValueError:
        return False
    return not clock or (clock[0] < 24 and clock[1] < 60 and clock[2] < 60)


def go_float(value: float) -> str:
    """strconv.FormatFloat(value, 'g', -1, 64) with yaml.v2's spellings of infinities and NaN."""
    if math.isnan(value):
        return ".nan"
    if math.isinf(value):
        return ".inf" if value > 0 else "-.inf"
    sign = "-" if math.copysign(1.0, value) < 0 else ""
    digits_tuple, exponent = Decimal(repr(abs(value))).normalize().as_tuple()[1:]
    digits = "".join(map(str, digits_tuple)).lstrip("0") or "0"
    point = len(digits) + int(exponent)  # position of the decimal point in `digits`
    if digits == "0":
        return sign + "0"
    if point - 1 < -4 or point - 1 >= 6:
        mantissa = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
        exp = point - 1
        return f"{sign}{mantissa}e{'-' if exp < 0 else '+'}{abs(exp):02d}"
    if point <= 0:
        return f"{sign}0.{'0' * -point}{digits}"
    if point >= len(digits):
        return sign + digits + "0" * (point - len(digits))
    return f"{sign}{digits[:point]}.{digits[point:]}"


def _key_less(a: str, b: str) -> bool:
    """yaml.v2's ordering of string mapping keys (keyList.Less): letters compare as runes,
    anything else sorts before a letter, and runs of digits compare as numbers."""
    for i in range(min(len(a), len(b))):
        if a[i] == b[i]:
            continue
        a_letter, b_letter = a[i].isalpha(), b[i].isalpha()
        if a_letter and b_letter:
            return a[i] < b[i]
        if a_letter or b_letter:
            return b_letter
        an = bn = 0
        if a[i] == "0" or b[i] == "0":
            j = i - 1
            while j >= 0 and a[j].isdecimal():
                if a[j] != "0":
                    an = bn = 1
                    break
                j -= 1
        ai = i
        while ai < len(a) and a[ai].isdecimal():
            an, ai = an * 10 + ord(a[ai]) - 48, ai + 1
        bi = i
        while bi < len(b) and b[bi].isdecimal():
            bn, bi = bn * 10 + ord(b[bi]) - 48, bi + 1
        if an != bn:
            return an < bn
        if ai != bi:
            return ai < bi
        return a[i] < b[i]
    return len(a) < len(b)


def _key_text(key: Any) -> str:
    """Mapping keys as the JSON round trip leaves them: strings."""
    if isinstance(key, bool):
        return "true" if key else "false"
    return "null" if key is None else str(key)


class _Representer(SafeRepresenter):
    def represent_str(self, data: str) -> ScalarNode:
        style = "|" if "\n" in data else ('"' if plain_tag(data) != _STR or _BASE60_FLOAT.fullmatch(data) else None)
        return self.represent_scalar(_STR, data, style=style)

    def represent_float(self, data: float) -> ScalarNode:
        if data.is_integer() and abs(data) < 2**63:
            return self.represent_int(int(data))
        return self.represent_scalar(_FLOAT, go_float(data))

    def represent_go_dict(self, data: dict[Any, Any]) -> MappingNode:
        """A dict with its keys as text in yaml.v2's order. (Not an override of
        SafeRepresenter.represent_dict, which takes any mapping or pair list; this one is
        registered for dict only.)"""
        items = sorted(((_key_text(k), v) for k, v in data.items()),
                       key=functools.cmp_to_key(_compare_entries))
        return self.represent_mapping(_TAG + "map", items)


def _compare_entries(x: tuple[str, Any], y: tuple[str, Any]) -> int:
    """Three-way comparison of (key, value) entries by yaml.v2's key order."""
    return -1 if _key_less(x[0], y[0]) else (1 if _key_less(y[0], x[0]) else 0)


_Representer.add_representer(str, _Representer.represent_str)
_Representer.add_representer(float, _Representer.represent_float)
_Representer.add_representer(dict, _Representer.represent_go_dict)


class _Resolver(BaseResolver):
    """Implicit tags as yaml.v2 resolves plain scalars, so PyYAML's emitter quotes exactly the
    strings yaml.v2 quotes."""

    def resolve(self, kind: type, value: Any, implicit: tuple[bool, bool]) -> str:
        if kind is ScalarNode:
            return plain_tag(value) if implicit[0] else _STR
        return self.DEFAULT_SEQUENCE_TAG if kind is SequenceNode else self.DEFAULT_MAPPING_TAG


_ESCAPES = {"\0": "0", "\x07": "a", "\b": "b", "\t": "t", "\n": "n", "\x0b": "v", "\x0c": "f", "\r": "r",
            "\x1b": "e", '"': '"', "\\": "\\", "\x85": "N", "\u2028": "L", "\u2029": "P"}


def _printable(ch: str) -> bool:
    """yaml.v2's is_printable (no characters beyond U+FFFF, no NEL), minus line breaks and the BOM."""
    return ("\x20" <= ch <= "\x7e" or "\xa0" <= ch <= "\ud7ff" or "\ue000" <= ch <= "\ufffd") and \
        ch not in "\ufeff\u2028\u2029"


class _GoEmitter(Emitter):
    def analyze_scalar(self, scalar: str) -> Any:
        """As PyYAML, but characters yaml.v2 cannot print (beyond U+FFFF, NEL) force double quotes."""
        analysis = super().analyze_scalar(scalar)
        if any(ch >= "\U00010000" or ch == "\x85" for ch in scalar):
            analysis.allow_flow_plain = analysis.allow_block_plain = False
            analysis.allow_single_quoted = analysis.allow_block = False
        return analysis

    def write_double_quoted(self, text: str, split: bool = True) -> None:
        """yaml.v2's double-quoted scalar: a long line is broken at the first space past the
        width (the space becomes the line break), escapes as libyaml writes them."""
        self.write_indicator('"', True)
        spaces = False
        for i, ch in enumerate(text):
            if ch == " ":
                if split and not spaces and self.column > self.best_width and 0 < i < len(text) - 1:
                    self.write_indent()
                    data = "\\" if text[i + 1] == " " else ""
                else:
                    data = " "
                spaces = True
            else:
                if ch in ('"', "\\") or not _printable(ch):
                    code = ord(ch)
                    data = "\\" + _ESCAPES.get(ch, f"x{code:02X}" if code <= 0xFF else
                                               f"u{code:04X}" if code <= 0xFFFF else f"U{code:08X}")
                else:
                    data = ch
                spaces = False
            self.column += len(data)
            self.stream.write(data)
            self.whitespace = self.indention = False
        self.write_indicator('"', False)


class _Dumper(_GoEmitter, Serializer, _Representer, _Resolver):
    def __init__(self, stream: Any, **kwargs: Any) -> None:
        _GoEmitter.__init__(self, stream, canonical=kwargs.get("canonical"), indent=kwargs.get("indent"),
                         width=kwargs.get("width"), allow_unicode=kwargs.get("allow_unicode"),
                         line_break=kwargs.get("line_break"))
        Serializer.__init__(self, encoding=kwargs.get("encoding"), explicit_start=kwargs.get("explicit_start"),
                            explicit_end=kwargs.get("explicit_end"), version=kwargs.get("version"),
                            tags=kwargs.get("tags"))
        _Representer.__init__(self, default_style=kwargs.get("default_style"),
                              # The stub types this `bool`, but PyYAML takes None too (yaml.dump's own
                              # `default_flow_style: bool | None` is passed straight through to here).
                              default_flow_style=kwargs.get("default_flow_style"),  # type: ignore[arg-type]
                              sort_keys=kwargs.get("sort_keys", False))
        _Resolver.__init__(self)
