"""The one set of TOML table checkers (greenwave.toml_checks) says what is wrong and where."""

from __future__ import annotations

import math
from collections.abc import Callable

import pytest

from greenwave.errors import ScenarioError
from greenwave.toml_checks import check_keys, integer, number, string, string_list


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: check_keys({"a": 1, "b": 2}, {"a": "int"}, "f.toml", "demand."),
         "f.toml: unknown key 'demand.b'; valid keys in demand: a (int)"),
        (lambda: check_keys({"x": 1, "y": 2}, {"a": "int"}, "f.toml"),
         "f.toml: unknown keys 'x', 'y'; valid keys: a (int)"),
        (lambda: check_keys([1], {"a": "int"}, "f.toml: [communication]"), "f.toml: [communication]: must be a table"),
        (lambda: number({}, "d_s", "f.toml", label="'d_s'"), "f.toml: missing required key 'd_s'"),
        (lambda: number({"d_s": True}, "d_s", "f.toml"), "f.toml: d_s must be a number, got True"),
        (lambda: number({"d_s": math.nan}, "d_s", "f.toml"), "f.toml: d_s must be a finite number, got nan"),
        (lambda: number({"d_s": 0}, "d_s", "f.toml", "p.", positive=True), "f.toml: p.d_s must be > 0, got 0"),
        (lambda: number({"d_s": 0}, "d_s", "f.toml", lo=0, lo_open=True), "f.toml: d_s must be > 0, got 0"),
        (lambda: number({"d_s": -1}, "d_s", "f.toml", lo=0), "f.toml: d_s must be ≥ 0, got -1"),
        (lambda: number({"d_s": 2}, "d_s", "f.toml", hi=1), "f.toml: d_s must be ≤ 1, got 2"),
        (lambda: integer({"n": 1.5}, "n", "f.toml"), "f.toml: n must be an integer, got 1.5"),
        (lambda: integer({"n": 0}, "n", "f.toml", lo=1), "f.toml: n must be ≥ 1, got 0"),
        (lambda: string({"s": 1}, "s", "f.toml", default=""), "f.toml: s must be a string, got 1"),
        (lambda: string_list({"s": ["a", 1]}, "s", "f.toml", default=[]), "f.toml: s must be a list of strings"),
    ],
)
def test_each_checker_names_the_file_the_key_and_what_was_expected(call: Callable[[], object], message: str) -> None:
    with pytest.raises(ScenarioError) as err:
        call()
    assert str(err.value).startswith(message)


def test_checkers_return_the_values_or_their_defaults() -> None:
    assert check_keys({"a": 1}, {"a": "int"}, "f") == {"a": 1}
    assert number({"x": 3}, "x", "f") == 3.0 and isinstance(number({"x": 3}, "x", "f"), float)
    assert number({}, "x", "f", default=None) is None
    assert number({}, "x", "f", default=2.5) == 2.5
    assert integer({"n": 4}, "n", "f", lo=1) == 4
    assert string({}, "s", "f", default="d") == "d"
    assert string_list({"s": ["a"]}, "s", "f", default=[]) == ["a"]
