"""ferrotick._validate: the argument checks behind the package's ConfigErrors."""

from __future__ import annotations

import math

import pytest

from ferrotick import ConfigError
from ferrotick._validate import boolean, integer, is_integer, is_number, number, seconds


@pytest.mark.parametrize("v", [True, False, "1", None, math.nan, math.inf, -math.inf, 1j])
def test_a_bool_or_a_non_finite_value_is_not_a_number(v):
    assert not is_number(v)
    with pytest.raises(ConfigError, match=r"^x: expected a finite number, got "):
        number("x", v)


def test_numbers_and_their_bounds():
    assert is_number(0) and is_number(-2.5) and is_number(10**20)
    assert is_number(1, min=1) and not is_number(0.5, min=1)
    assert is_number(0.1, gt=0) and not is_number(0, gt=0)
    assert is_number(1, max=1) and not is_number(1.5, max=1)
    assert number("x", 3) == 3.0 and type(number("x", 3)) is float
    assert number("x", None, allow_none=True) is None


@pytest.mark.parametrize(
    ("kwargs", "bad", "message"),
    [
        ({}, -1, "t: expected seconds >= 0, got -1"),
        ({"positive": True}, 0, "t: expected seconds > 0, got 0"),
        ({"max": 1}, 1.5, "t: expected seconds in [0, 1], got 1.5"),
        ({}, True, "t: expected seconds >= 0, got True"),
        ({}, None, "t: expected seconds >= 0, got None"),
        (
            {"allow_none": True, "expected": "None or seconds >= 0"},
            "5",
            "t: expected None or seconds >= 0, got '5'",
        ),
    ],
)
def test_seconds_messages(kwargs, bad, message):
    with pytest.raises(ConfigError) as ei:
        seconds("t", bad, **kwargs)
    assert str(ei.value) == message


def test_seconds_values():
    assert seconds("t", 0) == 0.0 and type(seconds("t", 2)) is float
    assert seconds("t", None, allow_none=True) is None
    assert seconds("t", 1, max=1) == 1.0


@pytest.mark.parametrize(
    ("kwargs", "bad", "message"),
    [
        ({"min": 1}, 0, "n: expected an integer >= 1, got 0"),
        ({"min": 0, "max": 59}, 60, "n: expected an integer 0-59, got 60"),
        ({"max": 9}, 10, "n: expected an integer <= 9, got 10"),
        ({}, 1.0, "n: expected an integer, got 1.0"),
        ({"min": 1}, True, "n: expected an integer >= 1, got True"),
        (
            {"expected": "an int of EVENT_* bits"},
            "1",
            "n: expected an int of EVENT_* bits, got '1'",
        ),
    ],
)
def test_integer_messages(kwargs, bad, message):
    with pytest.raises(ConfigError) as ei:
        integer("n", bad, **kwargs)
    assert str(ei.value) == message


def test_integer_values():
    assert integer("n", 5, min=1) == 5
    assert integer("n", None, allow_none=True) is None
    assert is_integer(6, min=0, max=6) and not is_integer(7, min=0, max=6)
    assert not is_integer(False) and not is_integer(2.0)


def test_boolean():
    assert boolean("b", True) is True and boolean("b", False) is False
    for bad in (1, 0, "yes", None):
        with pytest.raises(ConfigError, match=r"^b: expected True or False, got "):
            boolean("b", bad)
