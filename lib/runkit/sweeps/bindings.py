"""Gin bindings as text and as typed values: the one rule for `-b`, used by train, gridgen and collect.

The rule: `-b` is repeatable, and one `-b` argument may hold several bindings separated by `#`
(a `#` inside a quoted string is part of the string). A value is a Python/gin literal
(`1`, `0.1`, `'adam'`, `True`, `None`, `[1, 2]`); a string starting with `@` or `%` is a gin
reference or macro and is written without quotes.
"""
from __future__ import annotations

import ast
import re
from collections.abc import Iterable
from typing import Any

from runkit.errors import BadInput

KEY = re.compile(r"^(?:[A-Za-z_][\w.]*/)*[A-Za-z_][\w.]*\.[A-Za-z_]\w*$")


class BindingError(BadInput, ValueError):
    """A binding that cannot be read: the message says which and why."""


def split(arguments: Iterable[str]) -> list[str]:
    """Split `-b` arguments into single bindings on `#` outside quotes; blank pieces are dropped."""
    out = []
    for argument in arguments:
        piece: list[str] = []
        quote = None
        for ch in argument:
            if quote:
                quote = None if ch == quote else quote
            elif ch in "'\"":
                quote = ch
            elif ch == "#":
                out.append("".join(piece))
                piece = []
                continue
            piece.append(ch)
        out.append("".join(piece))
    return [b.strip() for b in out if b.strip()]


def parse(binding: str) -> tuple[str, Any]:
    """'a.b=1' -> ('a.b', 1). Raises BindingError for a missing '=', a bad key or a bad value."""
    key, eq, text = binding.partition("=")
    key, text = key.strip(), text.strip()
    if not eq or not text:
        raise BindingError(f"binding {binding!r} is not of the form name.param=value")
    check_key(key)
    return key, parse_value(text)


def parse_value(text: str) -> Any:
    """A gin literal as a Python value; references and macros stay as their text."""
    if text.startswith(("@", "%")):
        return text
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        raise BindingError(f"value {text!r} is not a literal (quote strings: '{text}')") from None


def check_key(key: str) -> str:
    if not KEY.match(key):
        raise BindingError(f"binding name {key!r} is not of the form function.param (or scope/function.param)")
    return key


def format_value(value: Any) -> str:
    """A Python value as gin literal text, the inverse of parse_value."""
    if isinstance(value, str) and value.startswith(("@", "%")):
        return value
    if isinstance(value, (bool, int, float, str, type(None))):
        return repr(value)
    if isinstance(value, (list, tuple)):
        inner = ", ".join(format_value(v) for v in value)
        return f"[{inner}]" if isinstance(value, list) else f"({inner}{',' if len(value) == 1 else ''})"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{format_value(k)}: {format_value(v)}" for k, v in value.items()) + "}"
    raise BindingError(f"value {value!r} of type {type(value).__name__} cannot be a gin binding")


def format(key: str, value: Any) -> str:
    """('a.b', 1) -> 'a.b=1'."""
    return f"{check_key(key)}={format_value(value)}"


def short_names(keys: Iterable[str]) -> dict[str, str]:
    """{binding name: its shortest unambiguous suffix}: 'optimizer.lr' -> 'lr' unless another key ends in 'lr'.

    Suffixes are taken by whole parts (split on '.' and '/'); a key that is itself a suffix of another keeps
    its full name. gridgen names runs and collect names columns with this one rule.
    """
    parts = {key: re.split(r"[./]", key) for key in keys}
    short = {}
    for key, mine in parts.items():
        for n in range(1, len(mine) + 1):
            if not any(other != key and theirs[-n:] == mine[-n:] for other, theirs in parts.items()):
                short[key] = _join_suffix(key, n)
                break
        else:
            short[key] = key
    return short


def _join_suffix(key: str, n: int) -> str:
    """The last n parts of key, with their original separators."""
    cut = [m.end() for m in re.finditer(r"[./]", key)]
    return key if n > len(cut) else key[cut[-n]:]
