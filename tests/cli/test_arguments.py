"""Parsing the client commands' values: parameters, labels, durations."""

from __future__ import annotations

import click
import pytest

from taskgate.cli.arguments import parse_duration, parse_labels, parse_params


def test_values_are_json_when_they_parse_else_text() -> None:
    params = parse_params(
        [
            "vmid=100",
            "ratio=0.5",
            "flag=true",
            "off=false",
            "none=null",
            'tags=["a", "b"]',
            'spec={"x": 1}',
            "storage=local",
            "path=/var/lib/vz",
            "zero=007",
            "empty=",
            'quoted="100"',
            "eq=a=b",
        ]
    )
    assert params == {
        "vmid": 100,
        "ratio": 0.5,
        "flag": True,
        "off": False,
        "none": None,
        "tags": ["a", "b"],
        "spec": {"x": 1},
        "storage": "local",
        "path": "/var/lib/vz",
        "zero": "007",
        "empty": "",
        "quoted": "100",
        "eq": "a=b",
    }


def test_colon_equals_demands_json() -> None:
    assert parse_params(['note:="007"', "n:=5"]) == {"note": "007", "n": 5}
    with pytest.raises(click.BadParameter, match="needs JSON"):
        parse_params(["note:=007x"])


@pytest.mark.parametrize(
    ("items", "message"),
    [
        (["vmid"], "is not key=value"),
        (["=5"], "is not a parameter name"),
        (["a b=5"], "is not a parameter name"),
        (["vmid=1", "vmid=2"], "given twice"),
    ],
)
def test_bad_params_are_usage_errors(items: list[str], message: str) -> None:
    with pytest.raises(click.BadParameter, match=message):
        parse_params(items)


def test_labels() -> None:
    assert parse_labels(["env=prod", "team=a=b", "empty="]) == {
        "env": "prod",
        "team": "a=b",
        "empty": "",
    }
    for bad in ("env", "=x"):
        with pytest.raises(click.BadParameter, match="not key=value"):
            parse_labels([bad])


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("90", 90.0),
        ("1.5", 1.5),
        ("250ms", 0.25),
        ("30s", 30.0),
        ("5m", 300.0),
        ("2h", 7200.0),
        ("1d", 86400.0),
        (" 3 s ", 3.0),
    ],
)
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text, option="--delay") == seconds


@pytest.mark.parametrize("text", ["", "-5", "5x", "m", "1e999", "soon"])
def test_bad_durations(text: str) -> None:
    with pytest.raises(click.BadParameter):
        parse_duration(text, option="--delay")
