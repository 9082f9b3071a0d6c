"""The exception tree: public names, honest builtins, no secrets."""

from __future__ import annotations

import helicone_users
from helicone_users import (
    APIConnectionError,
    APITimeoutError,
    FilterError,
    HeliconeError,
    InvalidRequestError,
    RateLimitError,
    UnprocessableEntityError,
)


def test_filter_error_is_a_value_error_and_a_helicone_error() -> None:
    err = FilterError("bad", field="latency")
    assert isinstance(err, ValueError)
    assert isinstance(err, InvalidRequestError)
    assert isinstance(err, HeliconeError)
    assert err.field == "latency"


def test_timeout_error_is_a_builtin_timeout_and_a_connection_error() -> None:
    err = APITimeoutError("slow", method="POST", path="/v1/user/query")
    assert isinstance(err, TimeoutError)
    assert isinstance(err, APIConnectionError)


def test_public_errors_report_the_public_module() -> None:
    assert RateLimitError.__module__ == "helicone_users"
    assert repr(RateLimitError).startswith("<class 'helicone_users.RateLimitError'")


def test_unprocessable_entity_exposes_the_servers_details() -> None:
    body = {"message": "Validation Failed", "details": {"requestBody.limit": {"message": "x"}}}
    err = UnprocessableEntityError("422", status=422, body=body)
    assert err.details == {"requestBody.limit": {"message": "x"}}


def test_rate_limit_error_carries_retry_after() -> None:
    err = RateLimitError("slow down", status=429, retry_after=2.5)
    assert err.retry_after == 2.5
    assert err.status == 429


def test_version_is_read_from_installed_metadata() -> None:
    assert helicone_users.__version__ == "0.1.0"
