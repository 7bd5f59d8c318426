"""Checks applied to every argument at the repository edge.

Each returns the value as it will be stored, or raises ValidationError naming
the argument. They exist so that bad input never reaches the database driver,
whose errors are neither typed for callers nor always clear.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Collection, Iterable, Mapping
from typing import Any, TypeVar

from dorkstore.errors import ValidationError

__all__ = [
    "INT64_MAX",
    "Checker",
    "boolean",
    "canonical_path",
    "choice",
    "fields",
    "integer",
    "json_text",
    "optional_path_text",
    "optional_text",
    "path_text",
    "text",
    "text_tuple",
]

INT64_MAX = 2**63 - 1

_Choice = TypeVar("_Choice", bound=str)


def text(value: object, name: str, *, empty: bool = False) -> str:
    """Return `value` if it is a str SQLite can store faithfully (no NUL, valid UTF-8)."""
    if not isinstance(value, str):
        raise ValidationError(f"{name} must be a str, got {type(value).__name__}")
    if not empty and not value:
        raise ValidationError(f"{name} must not be empty")
    if "\x00" in value:
        raise ValidationError(f"{name} must not contain NUL characters")
    if not value.isascii():  # ASCII cannot hold a surrogate; skip the encoding check
        try:
            value.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise ValidationError(f"{name} contains a lone surrogate ({exc.reason})") from exc
    return value


def optional_text(value: object, name: str) -> str | None:
    """Return None or a valid, possibly empty, str."""
    return None if value is None else text(value, name, empty=True)


def integer(
    value: object, name: str, *, minimum: int = -INT64_MAX - 1, maximum: int = INT64_MAX
) -> int:
    """Return `value` if it is an int (not a bool) from `minimum` to `maximum` (64-bit)."""
    if not isinstance(value, int) or isinstance(value, bool):
        raise ValidationError(f"{name} must be an int, got {type(value).__name__}")
    if value < minimum:
        raise ValidationError(f"{name} must be at least {minimum}, got {value}")
    if value > maximum:
        raise ValidationError(f"{name} must be at most {maximum}, got {value}")
    return value


def choice(value: object, name: str, allowed: Collection[_Choice]) -> _Choice:
    """Return the member of `allowed` that `value` equals (typed as `allowed`'s members)."""
    if isinstance(value, str):
        for option in allowed:
            if option == value:
                return option
    raise ValidationError(f"{name} must be one of {', '.join(allowed)}; got {value!r}")


def json_text(value: object, name: str) -> str | None:
    """Encode a JSON-serialisable value (None stays NULL) as ASCII JSON text."""
    if value is None:
        return None
    try:
        # ensure_ascii escapes lone surrogates, so any Python str round-trips.
        return json.dumps(value, allow_nan=False, separators=(",", ":"))
    except (TypeError, ValueError, RecursionError) as exc:
        raise ValidationError(f"{name} must be JSON-serialisable: {exc}") from exc


def text_tuple(values: object, name: str) -> tuple[str, ...]:
    """Return an iterable of strs (not a str itself) as a tuple."""
    if isinstance(values, str | bytes) or not isinstance(values, Iterable):
        raise ValidationError(f"{name} must be an iterable of str, got {type(values).__name__}")
    items: list[Any] = list(values)
    return tuple(text(item, f"{name} item") for item in items)


def path_text(value: object, name: str) -> str:
    """Return a str or os.PathLike[str] as a str SQLite can store, unchanged otherwise."""
    if not isinstance(value, str | os.PathLike):
        raise ValidationError(f"{name} must be a str or os.PathLike, got {type(value).__name__}")
    try:
        raw = os.fspath(value)
    except TypeError as exc:  # __fspath__ returned something that is not a path
        raise ValidationError(f"{name}: {exc}") from exc
    if not isinstance(raw, str):
        raise ValidationError(f"{name} must be a str path, got {type(raw).__name__}")
    return text(raw, name)


def optional_path_text(value: object, name: str) -> str | None:
    """Return None, or a path as `path_text` does."""
    return None if value is None else path_text(value, name)


def canonical_path(value: object, name: str) -> str:
    """Resolve symlinks and ``..`` (`os.path.realpath`), so one place has one spelling."""
    raw = path_text(value, name)
    try:
        return text(os.path.realpath(raw), name)
    except (OSError, ValueError) as exc:
        raise ValidationError(f"{name}: cannot resolve {raw!r}: {exc}") from exc


#: Checks a value for one field and returns it as stored.
Checker = Callable[[Any], Any]


def fields(
    changes: Mapping[str, Any], checkers: Mapping[str, Checker], what: str
) -> dict[str, Any]:
    """Check each field in `changes` with its checker; return the stored values by name.

    Raises ValidationError naming every field `what` does not have or may not change.
    """
    unknown = sorted(set(changes) - set(checkers))
    if unknown:
        raise ValidationError(
            f"cannot update {', '.join(unknown)}: {what} have {', '.join(checkers)}"
        )
    return {name: checkers[name](value) for name, value in changes.items()}


def boolean(value: object, name: str) -> bool:
    """Return `value` if it is a bool (not an int standing in for one)."""
    if not isinstance(value, bool):
        raise ValidationError(f"{name} must be a bool, got {type(value).__name__}")
    return value
