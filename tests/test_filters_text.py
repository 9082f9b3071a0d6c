"""The filter text form (str / parse) and the Python form (repr)."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

import pytest

from helicone_users import ALL, F, FilterError, U
from helicone_users.filters import Filter, parse

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=timezone.utc)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('model contains "gpt" and latency > 500', F.model.contains("gpt") & (F.latency > 500)),
        ('properties.environment = "prod"', F.properties["environment"] == "prod"),
        ('properties."my key" != "x"', F.properties["my key"] != "x"),
        ("scores.accuracy = 3", F.scores["accuracy"] == 3),
        ("scores.accuracy != 3", F.scores["accuracy"] != 3),
        ("user.cost > 5", U.cost > 5),
        ('user.user_id == "alice"', U.user_id == "alice"),
        ("threat = true", F.threat.is_true()),
        ("cached != true", F.cached.is_false()),
        ("helicone-score-feedback = false", F.helicone_score_feedback.is_false()),
        ("helicone_score_feedback = TRUE", F.helicone_score_feedback.is_true()),
        ("request_created_at >= 2024-05-01T12:00:00Z", F.request_created_at >= T0),
        ('request_created_at < "2024-05-01T14:00:00+02:00"', F.request_created_at < T0),
        ("user.first_active <= 2024-05-01T12:00:00.000Z", U.first_active <= T0),
        ("latency <= -1.5e2", F.latency <= -150.0),
        (
            'model like "gpt-4%" or model ilike "CLAUDE%"',
            F.model.like("gpt-4%") | F.model.ilike("CLAUDE%"),
        ),
        ('model not contains "mini"', F.model.not_contains("mini")),
        (r'request_body contains "say \"hi\"\n\u00e9"', F.request_body.contains('say "hi"\né')),
        ("all", ALL),
        ("all and latency > 1", F.latency > 1),
        ("latency > 1 or all", ALL),
        ("not latency > 1", F.latency <= 1),
        ('not (latency > 1 and model = "x")', (F.latency <= 1) | (F.model != "x")),
        (
            'latency > 1 AND (model = "a" OR model = "b") and status != 200',
            (F.latency > 1) & ((F.model == "a") | (F.model == "b")) & (F.status != 200),
        ),
        (
            'latency > 1 or model = "a" and status = 2',
            (F.latency > 1) | ((F.model == "a") & (F.status == 2)),
        ),
        ("latency>1 and status<2", (F.latency > 1) & (F.status < 2)),
    ],
)
def test_parse_reads_the_text_form(text: str, expected: Filter) -> None:
    assert parse(text) == expected


def test_str_is_readable_and_parses_back() -> None:
    node = ((F.model.contains("gpt") & (F.latency > 500)) | (F.properties["env"] == "prod")) & (
        U.cost >= 1.5
    )
    text = str(node)
    assert text == (
        '((model contains "gpt" and latency > 500) or properties.env = "prod") and user.cost >= 1.5'
    )
    assert parse(text) == node


def test_str_quotes_map_keys_that_are_not_plain_names() -> None:
    node = F.properties["a.b c"] == 'say "x"'
    assert str(node) == 'properties."a.b c" = "say \\"x\\""'
    assert parse(str(node)) == node


def test_str_writes_timestamps_in_utc_iso_form() -> None:
    assert str(F.request_created_at > T0) == "request_created_at > 2024-05-01T12:00:00Z"
    assert str(ALL) == "all"


def test_repr_is_python_dsl() -> None:
    node = (F.latency > 500) & ((F.model == "x") | F.threat.is_true()) & (U.cost <= 2)
    text = repr(node)
    assert text == (
        "F.latency.gt(500) & (F.model.equals('x') | F.threat.is_true()) & U.cost.lte(2)"
    )
    assert eval(text, {"F": F, "U": U, "ALL": ALL}) == node
    assert repr(ALL) == "ALL"
    assert repr(F.properties["env"]) == "F.properties['env']"
    assert repr(F.helicone_score_feedback) == "F.helicone_score_feedback"


def _error(text: str) -> str:
    with pytest.raises(FilterError) as info:
        parse(text)
    return str(info.value)


def test_parse_errors_show_the_column_and_a_caret() -> None:
    message = _error('model contains "gpt" and latency >')
    assert "latency is a number field: expected a number, found the end of the text" in message
    assert "column 35" in message
    lines = message.splitlines()
    assert lines[-2] == '  model contains "gpt" and latency >'
    assert lines[-1] == "  " + " " * 34 + "^"


@pytest.mark.parametrize(
    ("text", "fragment", "column"),
    [
        ('modle = "x"', "unknown field 'modle'; did you mean model", 1),
        ("user.cst > 5", "unknown user field 'cst'; did you mean cost", 1),
        ('latency > "fast"', "expected a number", 11),
        ("model > 3", "model is a text field; its operators are", 7),
        ("request_created_at > 2024-05-01T12:00:00", "no UTC offset", 22),
        ('"abc', "unterminated string", 1),
        ("latency > 1 $", "unexpected '$'", 13),
        ("(latency > 1", "expected ')'", 13),
        ("latency > 1 latency", "expected 'and', 'or' or the end", 13),
        ("latency 5", "expected an operator", 9),
        ('model not like "x"', "expected 'contains' after 'not'", 11),
        ("threat = yes", "expected true or false", 10),
        ("scores.a = 1.5", "scores.a needs an integer", 12),
        ("scores.a > 1", "scores.a is a score", 10),
        ("latency > 1e400", "infinity", 11),
        ('search_properties.k = "v"', "property-search queries", 1),
        ("latency > 1 or user.cost > 2", "filters nothing", 1),
        ('not model like "a%"', "has no complement", 1),
        ("", "expected a filter", 1),
        ('model = "\\q"', "bad string escape", 10),
        ("properties = 1", "expected '.' and a properties key", 12),
    ],
)
def test_parse_errors_name_the_problem_and_the_column(
    text: str, fragment: str, column: int
) -> None:
    message = _error(text)
    assert fragment in message
    assert f"column {column}:" in message


def test_parse_errors_in_multi_line_text_name_the_line() -> None:
    message = _error('model = "x"\nand latency >> 5')
    assert "line 2, column 14" in message
    assert message.splitlines()[-2] == "  and latency >> 5"


def test_parse_refuses_non_strings() -> None:
    bad: Any = 42
    with pytest.raises(FilterError, match="takes a string"):
        parse(bad)


def test_parse_handles_long_flat_chains() -> None:
    node = parse(" and ".join(f"latency != {i}" for i in range(5000)))
    assert str(node).count(" and ") == 4999


def test_parse_refuses_absurd_nesting_with_a_filter_error() -> None:
    with pytest.raises(FilterError, match="nested too deeply"):
        parse("(" * 5000 + "latency > 1" + ")" * 5000)
