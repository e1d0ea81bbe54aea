from __future__ import annotations

import pytest

from kalshi import errors
from kalshi.errors import (
    WS_ERROR_CODES,
    KalshiAPIError,
    KalshiBadRequestError,
    KalshiCommandError,
    KalshiConflictError,
    KalshiError,
    KalshiForbiddenError,
    KalshiNotFoundError,
    KalshiRateLimitError,
    KalshiServerError,
    KalshiSubscriptionError,
    KalshiUnauthorizedError,
    api_error_for_status,
)


def test_every_spec_code_is_named() -> None:
    assert sorted(WS_ERROR_CODES) == list(range(1, 29))
    for code, info in WS_ERROR_CODES.items():
        assert info.code == code
        assert info.name


def test_retired_and_terminal_codes_match_the_spec() -> None:
    assert {c for c, i in WS_ERROR_CODES.items() if i.retired} == {6, 16, 17}
    assert {c for c, i in WS_ERROR_CODES.items() if i.terminal_for_subscription} == {10, 25}


def test_command_error_carries_code_and_advice() -> None:
    err = KalshiCommandError(26, "too many markets", sid=4, cmd_id=9)
    assert isinstance(err, KalshiSubscriptionError)
    assert err.code == 26 and err.sid == 4 and err.cmd_id == 9
    assert "26" in str(err) and "split the markets" in str(err)
    assert not err.terminal
    assert KalshiCommandError(25, "overflow").terminal
    assert KalshiCommandError(27, "slow down").retryable
    assert not KalshiCommandError(99, "new code").retryable


@pytest.mark.parametrize(
    ("status", "cls"),
    [
        (400, KalshiBadRequestError),
        (401, KalshiUnauthorizedError),
        (403, KalshiForbiddenError),
        (404, KalshiNotFoundError),
        (409, KalshiConflictError),
        (429, KalshiRateLimitError),
        (500, KalshiServerError),
        (503, KalshiServerError),
        (418, KalshiAPIError),
    ],
)
def test_status_maps_to_class(status: int, cls: type[KalshiAPIError]) -> None:
    err = api_error_for_status(status, "some_code", "message text", retry_after=2.0)
    assert type(err) is cls
    assert err.status == status and err.code == "some_code" and err.message == "message text"
    assert isinstance(err, KalshiError)
    if isinstance(err, KalshiRateLimitError):
        assert err.retry_after == 2.0


def test_tree_is_drawn_in_docstring() -> None:
    doc = errors.__doc__ or ""
    for name in errors.__all__:
        obj = getattr(errors, name)
        if isinstance(obj, type) and issubclass(obj, KalshiError):
            assert name in doc, f"{name} missing from the error tree drawing"
