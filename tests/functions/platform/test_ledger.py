"""The event ledger on the Firestore emulator: one claim per key, steps that run once and resume."""

import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
from google.cloud import firestore
from launchready.platform.errors import TransientError
from launchready.platform.ledger import Ledger, StepDeferred, StepInProgress, now

from tests.conftest import PROJECT


@pytest.fixture
def ledger(clean_firestore: str) -> Ledger:
    return Ledger(firestore.Client(project=PROJECT))


def key() -> str:
    return f"test:{uuid.uuid4().hex}"


class Calls:
    """A side effect that counts how often it really ran."""

    def __init__(self, result: object = "done", fail_times: int = 0) -> None:
        self.count = 0
        self.result = result
        self.fail_times = fail_times

    def __call__(self) -> object:
        self.count += 1
        if self.count <= self.fail_times:
            raise ConnectionError("provider timed out")
        return self.result


def test_a_key_is_claimed_once_and_keeps_its_first_fields(ledger: Ledger) -> None:
    event = key()

    assert ledger.claim(event, source="first") is True
    assert ledger.claim(event, source="second") is False
    record = ledger.get(event)
    assert record is not None and record["source"] == "first" and record["key"] == event
    assert ledger.get(key()) is None


def test_of_twenty_concurrent_claims_exactly_one_wins(ledger: Ledger) -> None:
    event = key()
    start = threading.Barrier(20)

    def claim(worker: int) -> bool:
        start.wait()
        return Ledger(firestore.Client(project=PROJECT)).claim(event, worker=worker)

    with ThreadPoolExecutor(max_workers=20) as pool:
        results = list(pool.map(claim, range(20)))

    assert results.count(True) == 1
    winner = results.index(True)
    assert (ledger.get(event) or {})["worker"] == winner


def test_a_done_step_returns_its_recorded_result_without_running_again(ledger: Ledger) -> None:
    event, action = key(), Calls(result={"ticket_id": 42})

    first = ledger.run_step(event, "create_ticket", action)
    again = ledger.run_step(event, "create_ticket", action)

    assert first == again == {"ticket_id": 42}
    assert action.count == 1
    assert (ledger.step_result(event, "create_ticket") or {})["result"] == {"ticket_id": 42}


def test_a_redelivery_after_a_crash_resumes_at_the_first_incomplete_step(ledger: Ledger) -> None:
    event = key()
    create_ticket, send_email = Calls(result=7), Calls(result="email-1", fail_times=1)

    def deliver() -> None:
        ledger.run_step(event, "create_ticket", create_ticket)
        ledger.run_step(event, "send_email", send_email)

    with pytest.raises(ConnectionError):
        deliver()  # the first delivery dies in the second step
    assert ledger.step_result(event, "send_email") is None
    deliver()  # Pub/Sub redelivers
    deliver()  # and once more, as at-least-once delivery may

    assert create_ticket.count == 1
    assert send_email.count == 2  # the failed attempt and the one that succeeded, never a third
    assert (ledger.step_result(event, "send_email") or {})["result"] == "email-1"


def test_a_step_held_by_a_concurrent_delivery_raises_step_in_progress(ledger: Ledger) -> None:
    event = key()
    started, release = threading.Event(), threading.Event()
    side_effects = []

    def slow_side_effect() -> str:
        side_effects.append("first")
        started.set()
        release.wait(timeout=30)
        return "first"

    with ThreadPoolExecutor(max_workers=1) as pool:
        first = pool.submit(ledger.run_step, event, "publish", slow_side_effect)
        assert started.wait(timeout=30)
        with pytest.raises(StepInProgress):
            ledger.run_step(event, "publish", lambda: side_effects.append("second"))
        release.set()
        assert first.result(timeout=30) == "first"

    assert side_effects == ["first"]
    assert (ledger.step_result(event, "publish") or {})["result"] == "first"
    # Transient, so a push worker answers 500 and Pub/Sub redelivers after backoff.
    assert issubclass(StepInProgress, TransientError)


def test_of_twenty_concurrent_runs_of_a_step_one_runs_it_and_the_others_back_off(ledger: Ledger) -> None:
    event = key()
    start = threading.Barrier(20)
    action = Calls(result="once")

    def deliver(_: int) -> object:
        start.wait()
        try:
            return Ledger(firestore.Client(project=PROJECT)).run_step(event, "publish", action)
        except TransientError as exc:
            return type(exc).__name__

    with ThreadPoolExecutor(max_workers=20) as pool:
        outcomes = list(pool.map(deliver, range(20)))

    # At most one runs it. Losers saw the lease or, arriving after the winner finished, the recorded
    # result; on a slow emulator every transaction may lose to contention, and all back off.
    assert action.count <= 1
    assert set(outcomes) <= {"once", "StepInProgress"}, outcomes
    # Backing off is safe: the next delivery finds the result, or runs the step then, once.
    assert Ledger(firestore.Client(project=PROJECT)).run_step(event, "publish", action) == "once"
    assert action.count == 1


def test_an_expired_lease_of_a_crashed_delivery_is_taken_over(ledger: Ledger, clean_firestore: str) -> None:
    event = key()
    client = firestore.Client(project=PROJECT)
    # A delivery took the lease, then its instance was killed: the step stays "running" until the lease ends.
    client.collection("events").document(event).collection("steps").document("publish").set(
        {"state": "running", "lease_until": now() - timedelta(seconds=1), "attempts": 1})
    action = Calls(result="taken over")

    assert ledger.run_step(event, "publish", action) == "taken over"
    assert action.count == 1
    step = client.collection("events").document(event).collection("steps").document("publish").get().to_dict()
    assert step["state"] == "done" and step["attempts"] == 2


def test_a_running_step_within_its_lease_is_not_taken_over(ledger: Ledger) -> None:
    event = key()
    client = firestore.Client(project=PROJECT)
    client.collection("events").document(event).collection("steps").document("publish").set(
        {"state": "running", "lease_until": now() + timedelta(seconds=60), "attempts": 1})
    action = Calls()

    with pytest.raises(StepInProgress):
        ledger.run_step(event, "publish", action)
    assert action.count == 0


def test_update_merges_fields_into_the_claim(ledger: Ledger) -> None:
    event = key()
    ledger.claim(event, status="received", published=False)

    ledger.update(event, status="published", published=True)

    record = ledger.get(event) or {}
    assert record["status"] == "published" and record["published"] is True and record["key"] == event
    assert record["updated_at"] >= record["claimed_at"]


def test_resume_step_returns_a_done_step_without_running_it(ledger: Ledger) -> None:
    event, calls = key(), Calls(result="msg-1")
    ledger.claim(event)
    ledger.run_step(event, "publish", calls)
    claimed_at = now() - timedelta(hours=1)
    assert ledger.resume_step(event, "publish", calls, claimed_at=claimed_at,
                              in_flight=timedelta(seconds=60)) == ("msg-1", False)
    assert calls.count == 1


def test_resume_step_backs_off_while_the_claimant_may_still_run(ledger: Ledger) -> None:
    event, calls = key(), Calls()
    ledger.claim(event)
    for claimed_at in (now() - timedelta(seconds=10), None):
        with pytest.raises(StepInProgress):
            ledger.resume_step(event, "publish", calls, claimed_at=claimed_at,
                               in_flight=timedelta(seconds=60))
    assert calls.count == 0


def test_resume_step_finishes_what_a_dead_claimant_left(ledger: Ledger) -> None:
    event, calls = key(), Calls(result="msg-2")
    ledger.claim(event)
    claimed_at = now() - timedelta(seconds=61)
    assert ledger.resume_step(event, "publish", calls, claimed_at=claimed_at,
                              in_flight=timedelta(seconds=60)) == ("msg-2", True)
    assert calls.count == 1 and ledger.step_result(event, "publish") is not None


# --- a provider's wait, and the lookup that outlives its idempotency key ------------------------------

def test_a_transient_error_with_retry_after_defers_the_step_until_then(ledger: Ledger) -> None:
    k = key()

    def rate_limited() -> str:
        raise TransientError("429", retry_after=30)

    with pytest.raises(TransientError):
        ledger.run_step(k, "send", rate_limited)
    calls = Calls()
    with pytest.raises(StepDeferred) as deferred:
        ledger.run_step(k, "send", calls)
    assert calls.count == 0 and 28 <= (deferred.value.retry_after or 0) <= 30
    ledger._step(k, "send").update({"not_before": now() - timedelta(seconds=1)})  # time passes
    assert ledger.run_step(k, "send", calls) == "done" and calls.count == 1


def test_a_failure_without_a_wait_clears_an_earlier_not_before(ledger: Ledger) -> None:
    k = key()
    ledger._step(k, "send").set({"state": "failed", "not_before": now() - timedelta(seconds=1)})
    with pytest.raises(ConnectionError):
        ledger.run_step(k, "send", Calls(fail_times=1))
    assert ledger._step(k, "send").get().to_dict()["not_before"] is None


def test_reconcile_runs_only_for_a_step_an_earlier_attempt_started(ledger: Ledger) -> None:
    k, looked_up = key(), []

    def lookup() -> str | None:
        looked_up.append(1)
        return "found"

    flaky = Calls(result="created", fail_times=1)
    with pytest.raises(ConnectionError):
        ledger.run_step(k, "create", flaky, reconcile=lookup)
    assert looked_up == []  # the first attempt has nothing to look up
    assert ledger.run_step(k, "create", flaky, reconcile=lookup) == "found"
    assert flaky.count == 1 and looked_up == [1]  # found by lookup: not created again
    assert ledger.step_result(k, "create") == {**ledger.step_result(k, "create"), "result": "found"}


def test_reconcile_finding_nothing_runs_the_action(ledger: Ledger) -> None:
    k = key()
    flaky = Calls(result="created", fail_times=1)
    with pytest.raises(ConnectionError):
        ledger.run_step(k, "create", flaky, reconcile=lambda: None)
    assert ledger.run_step(k, "create", flaky, reconcile=lambda: None) == "created"
    assert flaky.count == 2


def test_a_claim_with_a_lease_runs_its_step_and_records_the_outcome_on_the_event(ledger: Ledger) -> None:
    event = key()
    assert ledger.claim(event, lease_seconds=120, status="received") is True
    assert (ledger.get(event) or {})["lease_until"] > now()

    result = ledger.run_leased_step(event, "publish", Calls("message-1"),
                                    lambda message_id: {"status": "published", "message_id": message_id})

    assert result == "message-1"
    record = ledger.get(event) or {}
    assert record["status"] == "published" and record["message_id"] == "message-1"
    assert record["lease_until"] is None


def test_a_repeat_backs_off_while_the_claim_lease_lasts_even_past_in_flight(ledger: Ledger) -> None:
    event = key()
    ledger.claim(event, lease_seconds=120, claimed_at=now() - timedelta(minutes=5))
    claim = ledger.get(event) or {}
    side_effect = Calls()

    with pytest.raises(StepInProgress):
        ledger.resume_step(event, "publish", side_effect, claimed_at=claim["claimed_at"],
                           in_flight=timedelta(seconds=60), lease_until=claim["lease_until"])
    assert side_effect.count == 0


def test_a_failed_leased_step_ends_the_lease_so_a_later_repeat_resumes_it(ledger: Ledger) -> None:
    event = key()
    ledger.claim(event, lease_seconds=120, claimed_at=now() - timedelta(minutes=5))
    side_effect = Calls("message-2", fail_times=1)

    with pytest.raises(ConnectionError):
        ledger.run_leased_step(event, "publish", side_effect, lambda message_id: {"message_id": message_id})
    claim = ledger.get(event) or {}
    assert claim["lease_until"] is None and "message_id" not in claim

    result, ran_now = ledger.resume_step(event, "publish", side_effect, claimed_at=claim["claimed_at"],
                                         in_flight=timedelta(seconds=60), lease_until=claim["lease_until"])
    assert (result, ran_now, side_effect.count) == ("message-2", True, 2)
