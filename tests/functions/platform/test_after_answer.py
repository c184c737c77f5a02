"""after_answer: deferred writes run in order after the endpoint returns, failures are logged, and
outside an endpoint a deferred action runs at once."""

import json
import os
import sys
import threading
from pathlib import Path

import flask
import pytest
from google.cloud import firestore
from google.cloud.firestore_v1.base_query import FieldFilter
from launchready.platform import after_answer, log
from launchready.platform.web import endpoint, json_response
from launchready.records import runs

from tests.functions.helpers import held_writers


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


def test_past_max_queued_a_request_writes_before_answering(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(after_answer, "MAX_QUEUED", after_answer.WRITERS)  # the held writers fill it
    monkeypatch.setattr(after_answer._writers, "last_warning", 0.0)  # pyright: ignore[reportPrivateUsage]
    ran: list[str] = []
    with held_writers():
        with after_answer.collecting():
            after_answer.defer(lambda: ran.append("written"))
        assert ran == ["written"]  # before the block ended: the queue was full
    assert after_answer.drain()
    assert "writes after answers are backed up" in capsys.readouterr().out


def test_writes_still_waiting_at_exit_are_counted_in_an_error(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(after_answer, "EXIT_DRAIN_SECONDS", 0.2)
    with held_writers():
        with after_answer.collecting():
            after_answer.defer(lambda: None)
        after_answer._drain_at_exit()  # pyright: ignore[reportPrivateUsage]
    assert after_answer.drain()
    [line] = [json.loads(text) for text in capsys.readouterr().out.splitlines() if "exited" in text]
    assert line["severity"] == "ERROR" and line["requests"] == after_answer.WRITERS + 1


def test_a_forked_child_does_not_repeat_the_parents_pending_writes() -> None:
    with held_writers():
        pid = os.fork()
        if pid == 0:  # the child: its own empty queue, and its own writers on first use
            ran: list[int] = []
            with after_answer.collecting():
                after_answer.defer(lambda: ran.append(1))
            os._exit(0 if after_answer.drain(5) and ran == [1] else 1)
        _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert after_answer.drain()


def test_a_write_that_raises_systemexit_is_logged_and_the_writers_live_on(
        capsys: pytest.CaptureFixture[str]) -> None:
    ran: list[int] = []
    for _ in range(after_answer.WRITERS):
        with after_answer.collecting():
            after_answer.defer(lambda: sys.exit(3))
    with after_answer.collecting():
        after_answer.defer(lambda: ran.append(1))
    assert after_answer.drain(5)
    assert ran == [1]
    assert capsys.readouterr().out.count("stopped its request's writes") == after_answer.WRITERS


def test_backpressure_warns_once_per_interval_with_a_count(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(after_answer, "MAX_QUEUED", after_answer.WRITERS)
    monkeypatch.setattr(after_answer._writers, "last_warning", 0.0)  # pyright: ignore[reportPrivateUsage]
    with held_writers():
        for _ in range(5):
            with after_answer.collecting():
                after_answer.defer(lambda: None)
    assert after_answer.drain()
    warnings = [json.loads(text) for text in capsys.readouterr().out.splitlines() if "backed up" in text]
    assert [w["requests"] for w in warnings] == [1]  # one per BACKPRESSURE_LOG_SECONDS, not one per request


def test_drain_from_a_write_after_the_answer_refuses_instead_of_waiting_for_itself() -> None:
    outcome: list[str] = []

    def drains() -> None:
        try:
            after_answer.drain(5)
        except RuntimeError as error:
            outcome.append(str(error))

    with after_answer.collecting():
        after_answer.defer(drains)
    assert after_answer.drain(5)
    assert outcome == ["drain() from a write after the answer would wait for itself"]


def test_a_fork_inside_a_collecting_block_leaves_the_writes_to_the_parent(tmp_path: Path) -> None:
    marks = tmp_path / "marks"

    def mark() -> None:
        with marks.open("a") as file:
            file.write(f"{os.getpid()}\n")

    with after_answer.collecting():
        after_answer.defer(mark)
        pid = os.fork()
    if pid == 0:  # the child left the block too, and must not make the parent's write
        os._exit(0 if after_answer.drain(5) else 1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert after_answer.drain(5)
    assert marks.read_text().split() == [str(os.getpid())]
