"""One truth on both stores: what a value may be, and the one form every backend holds.

A value that memory accepts and PostgreSQL refuses, or stores differently, is a record
lost at cutover, so the rules are decided once, here, in Python, before the trusted
write, and both stores receive the already-canonical value:
- text: no NUL (PostgreSQL refuses \\x00 in text and jsonb) and no lone surrogate
  (U+D800-U+DFFF cannot be encoded as UTF-8, so neither the journal nor PostgreSQL can
  hold it);
- JSON documents (metadata, context): at most MAX_JSON_DEPTH levels; no NaN or
  Infinity (jsonb has neither, and JSON has no literal for them); numbers in the form
  jsonb gives back (jsonb keeps numbers as `numeric`, so 1e20 returns as the integer
  100000000000000000000 and -0.0 as 0.0); object keys in jsonb's order (shorter keys
  first, then by their UTF-8 bytes);
- money: numeric(18, 2), so at most 16 digits before the point and 2 after, held
  with exactly two places and never as negative zero; a sum (an asset's total_cost)
  must fit the same column;
- keys compared without case use `fold` (Unicode case folding), and search matches on
  `search_fold`; both are computed here and stored beside the value, so PostgreSQL's
  unique index and trigram index use the very key memory computed.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from decimal import Decimal
from typing import Any

MAX_JSON_DEPTH = 32
CENT = Decimal("0.01")
MONEY_DIGITS = 18
MONEY_PLACES = 2
MONEY_MAX = Decimal("9999999999999999.99")
TOTAL_OVERFLOW = (
    f"would raise the asset's total_cost above {MONEY_MAX}, the largest amount that can be stored"
)


def fold(text: str) -> str:
    """The case-insensitive key of `text` (str.casefold: 'ΑΣ', 'ας' and 'ασ' agree)."""
    return text.casefold()


def key_text(text: str) -> str:
    """A project key part as every store keeps it: Python's strip() and lower(), so the
    body, the path and both stores agree on what is whitespace and what is case."""
    return text.strip().lower()


def project_key(max_length: int) -> Callable[[str], str]:
    """A validator giving the stored key part of `text`, refused when it is empty after
    stripping or longer than `max_length`."""

    def check(text: str) -> str:
        key = key_text(text)
        if not key:
            raise ValueError("must not be empty or only whitespace")
        if len(key) > max_length:
            raise ValueError(f"must be at most {max_length} characters once lowercased")
        return key

    return check


def search_fold(text: str | None) -> str | None:
    """The form search matches on (the contract's lowercase keys): computed here for
    memory's index and stored in PostgreSQL's description_lower, never by SQL lower(),
    whose case rules are the server's, not Python's."""
    return None if text is None else text.lower()


def unstorable(text: str) -> str | None:
    """Why `text` cannot be stored on every backend, or None when it can."""
    if "\x00" in text:
        return "contains a NUL character (\\x00), which cannot be stored"
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            return "contains a lone surrogate (U+D800-U+DFFF), which is not valid Unicode text"
    return None


def check_text(text: str, where: str) -> str:
    reason = unstorable(text)
    if reason is not None:
        raise ValueError(f"{where} {reason}")
    return text


def jsonb_key_order(key: str) -> tuple[int, bytes]:
    raw = key.encode("utf-8")
    return (len(raw), raw)


def canonical_number(value: float) -> float | int:
    """`value` as jsonb returns it: jsonb prints numeric in positional notation, which
    reads back as an int when the float was integral in exponent form (1e20), and as
    the same float otherwise; numeric has no negative zero."""
    if not math.isfinite(value):
        raise ValueError("is not a finite number (NaN and Infinity cannot be stored)")
    if value == 0:
        return 0.0
    text = repr(value)
    if "e" in text and value == math.floor(value):
        return int(Decimal(text))
    return value


def canonical_json(value: Any, where: str, depth: int = 0) -> Any:
    """A JSON document in the one form every backend stores and returns, or a
    ValueError naming where in it the first unstorable value is."""
    if isinstance(value, str):
        return check_text(value, where)
    if isinstance(value, bool) or value is None or isinstance(value, int):
        return value
    if isinstance(value, float):
        try:
            return canonical_number(value)
        except ValueError as e:
            raise ValueError(f"{where} {e}") from None
    if depth >= MAX_JSON_DEPTH:
        raise ValueError(f"{where} is nested deeper than {MAX_JSON_DEPTH} levels")
    if isinstance(value, dict):
        for key in value:
            check_text(key, f"{where} key {key[:50]!r}")
        return {
            key: canonical_json(value[key], f"{where}.{key[:50]}", depth + 1)
            for key in sorted(value, key=jsonb_key_order)
        }
    if isinstance(value, list | tuple):
        return [canonical_json(item, f"{where}[{i}]", depth + 1) for i, item in enumerate(value)]
    raise ValueError(f"{where} holds a {type(value).__name__}, which is not JSON")


def canonical_money(value: Decimal) -> Decimal:
    """Exactly two places, never negative zero (numeric(18, 2) has none)."""
    value = value.quantize(CENT)
    return value + 0 if value.is_zero() else value
