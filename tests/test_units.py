"""Durations as scenarios write them."""
import pytest

from simlab.units import format_duration, parse_duration


@pytest.mark.parametrize(
    "text, seconds",
    [
        ("250ms", 0.25),
        ("30s", 30.0),
        ("5m", 300.0),
        ("2h", 7200.0),
        ("1d", 86400.0),
        ("1m30s", 90.0),
        ("1h 30m", 5400.0),
        ("1.5h", 5400.0),
        ("2s500ms", 2.5),
        ("90", 90.0),
        ("0", 0.0),
        (90, 90.0),
        (2.5, 2.5),
        (0, 0.0),
    ],
)
def test_parses_units_and_plain_seconds(text, seconds):
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize(
    "value, message",
    [
        ("5 parsecs", "expected a duration such as 250ms, 30s, 5m, 2h, 1d or a number of seconds, found '5 parsecs'"),
        ("m", "expected a duration such as 250ms, 30s, 5m, 2h, 1d or a number of seconds, found 'm'"),
        ("", "expected a duration such as 250ms, 30s, 5m, 2h, 1d or a number of seconds, found ''"),
        ("5 minutes", "expected a duration such as 250ms, 30s, 5m, 2h, 1d or a number of seconds, found '5 minutes'"),
        ("-5s", "expected a duration such as 250ms, 30s, 5m, 2h, 1d or a number of seconds, found '-5s'"),
        (-5, "expected a non-negative duration, found -5"),
        ("-5", "expected a non-negative duration, found '-5'"),
        (True, "expected a duration such as 30s, 5m or a number of seconds, found True"),
        (None, "expected a duration such as 30s, 5m or a number of seconds, found None"),
        ([30], "expected a duration such as 30s, 5m or a number of seconds, found [30]"),
    ],
)
def test_rejects_what_is_not_a_duration(value, message):
    with pytest.raises(ValueError) as info:
        parse_duration(value)
    assert str(info.value) == message


@pytest.mark.parametrize("value", [float("inf"), float("nan"), "inf", "nan"])
def test_rejects_endless_and_undefined_durations(value):
    with pytest.raises(ValueError, match=r"^expected .*, found "):
        parse_duration(value)


@pytest.mark.parametrize(
    "seconds, text",
    [(None, "-"), (float("nan"), "-"), (0.25, "250ms"), (90, "90.0s"), (120, "2.0m"), (5400, "90.0m"), (7200, "2.0h")],
)
def test_formats_durations_for_tables(seconds, text):
    assert format_duration(seconds) == text
