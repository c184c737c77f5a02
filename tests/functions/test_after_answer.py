"""after_answer: deferred writes run in order after the endpoint returns, failures are logged, and
outside an endpoint a deferred action runs at once."""

import json
import threading

import flask
import pytest
from google.cloud import firestore
from google.cloud.firestore_v1.base_query import FieldFilter
from launchready import after_answer, log, runs
from launchready.web import endpoint, json_response


def test_outside_an_endpoint_a_deferred_action_runs_at_once() -> None:
    ran: list[str] = []
    after_answer.defer(lambda: ran.append("now"))
    assert ran == ["now"]


def test_deferred_actions_run_in_order_after_the_block_with_its_log_context(
        capsys: pytest.CaptureFixture[str]) -> None:
    gate, ran = threading.Event(), []
    with log.bound(correlation_id="corr-after-answer"), after_answer.collecting():
        after_answer.defer(gate.wait)
        after_answer.defer(lambda: ran.append(1))
        after_answer.defer(lambda: log.info("deferred line"))
        after_answer.defer(lambda: ran.append(2))
        assert ran == []
    assert ran == []  # queued behind the gate, not run by the block itself
    gate.set()
    assert after_answer.drain()
    assert ran == [1, 2]
    [line] = [json.loads(text) for text in capsys.readouterr().out.splitlines() if "deferred line" in text]
    assert line["correlation_id"] == "corr-after-answer"


def test_a_failing_deferred_write_is_logged_as_an_error_and_the_rest_still_run(
        capsys: pytest.CaptureFixture[str]) -> None:
    ran: list[str] = []

    def broken() -> None:
        raise RuntimeError("firestore unavailable")

    @endpoint("after_answer_probe")
    def probe(request: flask.Request) -> flask.Response:
        after_answer.defer(broken)
        after_answer.defer(lambda: ran.append("second"))
        return json_response({"ok": True})

    with flask.Flask(__name__).test_request_context("/", method="POST"):
        assert probe(flask.request).status_code == 200
    assert after_answer.drain()
    assert ran == ["second"]
    errors = [json.loads(text) for text in capsys.readouterr().out.splitlines() if '"ERROR"' in text]
    assert [(e["message"], e["function"]) for e in errors] == [
        ("a write after the answer failed", "after_answer_probe")]
    assert "firestore unavailable" in errors[0]["error"]


def test_a_handled_request_is_counted_in_the_run_statistics_after_its_answer(db: firestore.Client) -> None:
    gate = threading.Event()

    @endpoint("after_answer_counted")
    def counted(request: flask.Request) -> flask.Response:
        after_answer.defer(gate.wait)  # holds the queue: the statistic is written behind it
        return json_response({"ok": True})

    with flask.Flask(__name__).test_request_context("/", method="POST"):
        assert counted(flask.request).status_code == 200
    named = FieldFilter("function", "==", "after_answer_counted")
    stats = db.collection(runs.FUNCTION_STATS).where(filter=named)
    assert list(stats.stream()) == []
    gate.set()
    assert after_answer.drain()
    assert sum((doc.to_dict() or {}).get(runs.OK, 0) for doc in stats.stream()) == 1
