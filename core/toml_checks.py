"""The one set of checkers for tables read from TOML (scenario files, ``[parking]``, ``[communication]``).

Every message names where the table came from (``where``: the file and table), the key as the
user wrote it (``ctx`` + key, e.g. ``demand.entry_vph``; or ``label``) and what was expected,
and every failure is a :class:`~greenwave.errors.ScenarioError`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, Final, overload

from greenwave.errors import ScenarioError

__all__ = ["check_keys", "integer", "number", "string", "string_list"]


class _Required:
    """The default of a key that must be given."""


_REQUIRED: Final = _Required()


def check_keys(data: Any, allowed: Mapping[str, str], where: str, ctx: str = "") -> Mapping[str, Any]:
    """``data`` as a table whose keys are all in ``allowed`` (key → what it takes, listed in the message).

    ``ctx`` is the dotted prefix of the table's keys (``"demand."``), empty at the top level.
    """
    if not isinstance(data, Mapping):
        raise ScenarioError(f"{where}: {ctx.rstrip('.') + ' ' if ctx else ''}must be a table")
    unknown = [k for k in data if k not in allowed]
    if unknown:
        valid = ", ".join(f"{k} ({t})" for k, t in allowed.items())
        raise ScenarioError(
            f"{where}: unknown key{'s' if len(unknown) > 1 else ''} "
            f"{', '.join(repr(ctx + k) for k in unknown)}; valid keys{' in ' + ctx.rstrip('.') if ctx else ''}: {valid}"
        )
    return data


@overload
def number(
    data: Mapping[str, Any], key: str, where: str, ctx: str = "", *, default: float, label: str | None = None,
    positive: bool = False, lo: float | None = None, lo_open: bool = False, hi: float | None = None,
) -> float: ...


@overload
def number(
    data: Mapping[str, Any], key: str, where: str, ctx: str = "", *, default: None, label: str | None = None,
    positive: bool = False, lo: float | None = None, lo_open: bool = False, hi: float | None = None,
) -> float | None: ...


@overload
def number(
    data: Mapping[str, Any], key: str, where: str, ctx: str = "", *, label: str | None = None,
    positive: bool = False, lo: float | None = None, lo_open: bool = False, hi: float | None = None,
) -> float: ...


def number(
    data: Mapping[str, Any],
    key: str,
    where: str,
    ctx: str = "",
    *,
    default: float | None | _Required = _REQUIRED,
    label: str | None = None,
    positive: bool = False,
    lo: float | None = None,
    lo_open: bool = False,
    hi: float | None = None,
) -> float | None:
    """The finite number at ``key`` as a float; ``default`` when the key is missing (an error
    without one). ``positive``: > 0; ``lo``/``hi``: bounds (``lo_open``: strictly above ``lo``)."""
    name = f"{ctx}{key}" if label is None else label
    if key not in data:
        if isinstance(default, _Required):
            raise ScenarioError(f"{where}: missing required key {name}")
        return default
    v = data[key]
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise ScenarioError(f"{where}: {name} must be a number, got {v!r}")
    if not math.isfinite(v):
        raise ScenarioError(f"{where}: {name} must be a finite number, got {v!r}")
    if positive and v <= 0:
        raise ScenarioError(f"{where}: {name} must be > 0, got {v!r}")
    if lo is not None and (v <= lo if lo_open else v < lo):
        raise ScenarioError(f"{where}: {name} must be {'>' if lo_open else '≥'} {lo:g}, got {v!r}")
    if hi is not None and v > hi:
        raise ScenarioError(f"{where}: {name} must be ≤ {hi:g}, got {v!r}")
    return float(v)


def integer(data: Mapping[str, Any], key: str, where: str, ctx: str = "", *, lo: int | None = None) -> int:
    """The integer at ``key`` (not a bool, not a float), at least ``lo``; the key must be there."""
    v = data[key]
    if isinstance(v, bool) or not isinstance(v, int):
        raise ScenarioError(f"{where}: {ctx}{key} must be an integer, got {v!r}")
    if lo is not None and v < lo:
        raise ScenarioError(f"{where}: {ctx}{key} must be ≥ {lo}, got {v!r}")
    return int(v)


def string(data: Mapping[str, Any], key: str, where: str, ctx: str = "", *, default: str) -> str:
    """The string at ``key``, ``default`` when missing."""
    v = data.get(key, default)
    if not isinstance(v, str):
        raise ScenarioError(f"{where}: {ctx}{key} must be a string, got {v!r}")
    return v


def string_list(data: Mapping[str, Any], key: str, where: str, ctx: str = "", *, default: list[str]) -> list[str]:
    """The list of strings at ``key``, ``default`` when missing."""
    v = data.get(key, default)
    if not isinstance(v, list) or not all(isinstance(s, str) for s in v):
        raise ScenarioError(f"{where}: {ctx}{key} must be a list of strings, got {v!r}")
    return v
