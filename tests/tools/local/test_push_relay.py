"""The push relay's log line says what happened to each delivery (docs/local.md's terms), and when a
redelivery may go out."""

from __future__ import annotations

import time

import pytest

from tools.local.push_relay import DeliveryCounter, delivery_outcome


def test_a_2xx_answer_is_logged_as_acknowledged() -> None:
    severity, message = delivery_outcome(204, 1, 5, 10)

    assert severity == "INFO" and message.startswith("push acknowledged")


@pytest.mark.parametrize("status", [400, 429, 500, 503])
def test_an_error_answer_is_logged_as_a_failed_delivery_with_what_comes_next(status: int) -> None:
    severity, message = delivery_outcome(status, 2, 5, 10)

    assert severity == "WARNING"
    assert "delivered" not in message and "acknowledged" not in message
    assert f"the worker answered {status}" in message
    assert "attempt 2 of 5" in message and "redelivers after at least 10 s" in message


def test_the_last_failed_attempt_says_the_message_is_dead_lettered() -> None:
    _, message = delivery_outcome(500, 5, 5, 10)

    assert "last attempt (5 of 5)" in message and "dead-letter topic" in message


def test_an_unreachable_worker_is_named_as_such() -> None:
    _, message = delivery_outcome(502, 1, 5, 10)

    assert "the worker is unreachable" in message


def test_a_redelivery_waits_out_the_minimum_backoff_after_a_failure() -> None:
    counter = DeliveryCounter()
    assert counter.wait_before_retry("sub", "m1", 10) == 0.0  # a first delivery goes at once

    counter.failed("sub", "m1")
    time.sleep(0.2)

    assert 9.5 < counter.wait_before_retry("sub", "m1", 10) <= 9.8
    assert counter.wait_before_retry("sub", "other", 10) == 0.0
