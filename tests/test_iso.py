"""ISO-8601 reading that behaves the same on Python 3.10 and later."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from helicone_users._iso import parse_iso8601

UTC = timezone.utc


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2024-05-01T12:34:56.000Z", datetime(2024, 5, 1, 12, 34, 56, tzinfo=UTC)),
        ("2024-05-01T12:34:56.5Z", datetime(2024, 5, 1, 12, 34, 56, 500000, tzinfo=UTC)),
        ("2024-05-01T12:34:56.1234567z", datetime(2024, 5, 1, 12, 34, 56, 123456, tzinfo=UTC)),
        ("2024-05-01 12:34:56,25+00:00", datetime(2024, 5, 1, 12, 34, 56, 250000, tzinfo=UTC)),
        ("2024-05-01T12:34", datetime(2024, 5, 1, 12, 34)),
        ("2024-05-01", datetime(2024, 5, 1)),
        ("2024-05-01Z", datetime(2024, 5, 1, tzinfo=UTC)),
        (
            "2024-05-01T12:00:00-0530",
            datetime(2024, 5, 1, 12, tzinfo=timezone(-timedelta(hours=5, minutes=30))),
        ),
        ("2024-05-01T12:00:00+02", datetime(2024, 5, 1, 12, tzinfo=timezone(timedelta(hours=2)))),
        ("  2024-05-01T00:00:00Z  ", datetime(2024, 5, 1, tzinfo=UTC)),
    ],
)
def test_every_common_iso_form_reads_the_same_moment(text: str, expected: datetime) -> None:
    parsed = parse_iso8601(text)
    assert parsed == expected
    assert (parsed.tzinfo is None) == (expected.tzinfo is None)


@pytest.mark.parametrize(
    "text",
    ["yesterday", "2024-13-01T00:00:00Z", "2024-02-30", "2024-05-01T25:00:00Z", "1714567890", ""],
)
def test_anything_else_is_a_value_error(text: str) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - the message varies by Python version
        parse_iso8601(text)
