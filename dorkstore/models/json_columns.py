"""Reading JSON columns, which another client (the sqlite3 shell, say) may fill with anything.

A row whose JSON text cannot be decoded must not break a listing of every
other row: its record carries what can be kept, and a WARNING on the
``dorkstore`` logger names the table, the row's id and the column, as
``dorkstore doctor`` does.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

from dorkstore.records import InvalidJSON

__all__ = ["decode_json", "decode_text_array", "strict_json"]

logger: logging.Logger = logging.getLogger("dorkstore")


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


# What json.loads accepts but RFC 8259 does not: NaN, Infinity and -Infinity.
_STRICT = json.JSONDecoder(parse_constant=_refuse_constant)


def strict_json(value: object) -> Any:
    """Return the decoded JSON text `value`; raise ValueError if it is not strict JSON.

    Not strict JSON: anything that is not a str, NaN and Infinity, and what
    Python's decoder refuses (nesting past its recursion limit, integers of
    more than 4,300 digits) although RFC 8259 allows it.
    """
    if not isinstance(value, str):
        raise ValueError(f"a {type(value).__name__} is not JSON text")
    try:
        return _STRICT.decode(value)
    except RecursionError as exc:
        raise ValueError("JSON nested too deeply to decode") from exc


# The decoder's scanner reads one JSON value from a position; `JSONDecoder.decode`
# adds two whitespace regex matches and a method call around it, which is most of
# the cost of decoding a small payload. Text as json.dumps writes it has no
# whitespace around the value, so `decode_json` tries the scanner alone first.
_scan_once: Callable[[str, int], tuple[Any, int]] = _STRICT.scan_once  # type: ignore[attr-defined]


def decode_json(value: object, table: str, row_id: object, column: str) -> Any:
    """Return a nullable JSON column's value decoded, or its text as `InvalidJSON`."""
    if value is None:
        return None
    if type(value) is str:
        try:
            decoded, end = _scan_once(value, 0)
        except (StopIteration, ValueError, RecursionError):
            pass  # not strict JSON, or whitespace first: the full decoder says which
        else:
            if end == len(value):
                return decoded
    try:
        return strict_json(value)
    except ValueError as exc:
        logger.warning(
            "%s %s %s is not JSON (%s); the record carries the stored text",
            table, row_id, column, exc,
        )  # fmt: skip
    if isinstance(value, bytes):  # a BLOB
        return InvalidJSON(value.decode("utf-8", "replace"))
    return InvalidJSON(str(value))


def decode_text_array(value: object, table: str, row_id: object, column: str) -> tuple[str, ...]:
    """Return the strings of a JSON array of strings; of anything else, the strings it holds.

    Text that is not strict JSON, or JSON that is not an array, gives ``()``;
    an array with other items gives its strings alone.
    """
    if value == "[]":
        return ()
    try:
        decoded = strict_json(value)
    except ValueError as exc:
        decoded, problem = None, f"is not JSON ({exc})"
    else:
        if isinstance(decoded, list) and all(isinstance(item, str) for item in decoded):
            return tuple(decoded)
        problem = "is not a JSON array of strings"
    kept = (
        tuple(item for item in decoded if isinstance(item, str))
        if isinstance(decoded, list)
        else ()
    )
    logger.warning(
        "%s %s %s %s; the record keeps the strings it holds (%d)",
        table, row_id, column, problem, len(kept),
    )  # fmt: skip
    return kept
