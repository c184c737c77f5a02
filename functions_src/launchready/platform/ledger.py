"""The event ledger: exactly-once side effects on at-least-once delivery.

`events/{key}` is claimed once with Firestore `create`; each side effect is a step in
`events/{key}/steps/{step}`, run under a lease and recorded done with its result, so a redelivery skips
done steps and resumes at the first incomplete one (docs/architecture.md, "Exactly-once side effects").
"""

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar, cast

from google.api_core.exceptions import Aborted, AlreadyExists
from google.cloud import firestore

from launchready.platform import log
from launchready.platform.clients import db
from launchready.platform.errors import TransientError
from launchready.records import journal

EVENTS = "events"
STEPS = "steps"
DEFAULT_LEASE_SECONDS = 120

T = TypeVar("T")


class StepInProgress(TransientError):
    """Another delivery holds the step's lease; Pub/Sub will redeliver after backoff."""


class StepDeferred(TransientError):
    """The provider asked not to be called before the step's `not_before`; Pub/Sub will redeliver."""


def doc_id(key: str) -> str:
    # Firestore ids may not contain "/"; keys are built from provider ids, which never do.
    return key.replace("/", "_")


def _run_now(write: Callable[[], object]) -> None:
    write()


def now() -> datetime:
    return datetime.now(UTC)


def published_record(message_id: str) -> dict[str, Any]:
    """The fields that mark an event's publish step done on its ledger entry (the claim's lease ended)."""
    return {"status": "published", "published": True, "message_id": message_id, "lease_until": None}


class Ledger:
    def __init__(self, client: firestore.Client | None = None) -> None:
        self._db = client or db()

    def _event(self, key: str) -> firestore.DocumentReference:
        return self._db.collection(EVENTS).document(doc_id(key))

    def _step(self, key: str, step: str) -> firestore.DocumentReference:
        return self._event(key).collection(STEPS).document(step)

    def claim(self, key: str, *, lease_seconds: int | None = None, **fields: Any) -> bool:
        """True for the first claim of `key`; False if it was already claimed (a duplicate).

        With `lease_seconds`, the claim itself is a lease on the event's work until then: the claimer
        runs its step with `run_leased_step` (no lease transaction of its own), and `resume_step` backs
        off while the lease lasts, as `run_step` does for a step's lease."""
        claimed_at = now()
        record = {"key": key, "claimed_at": claimed_at, **fields}
        if lease_seconds is not None:
            record["lease_until"] = claimed_at + timedelta(seconds=lease_seconds)
        try:
            self._event(key).create(record)
        except AlreadyExists:
            return False
        return True

    def get(self, key: str) -> dict[str, Any] | None:
        snapshot = self._event(key).get()
        return snapshot.to_dict() if snapshot.exists else None

    def update(self, key: str, **fields: Any) -> None:
        self._event(key).set({**fields, "updated_at": now()}, merge=True)

    def step_result(self, key: str, step: str) -> dict[str, Any] | None:
        snapshot = self._step(key, step).get()
        data = snapshot.to_dict() if snapshot.exists else None
        return data if data and data.get("state") == "done" else None

    def run_step(self, key: str, step: str, action: Callable[[], T], *,
                 lease_seconds: int = DEFAULT_LEASE_SECONDS,
                 reconcile: Callable[[], T | None] | None = None) -> T:
        """Run `action` once for (key, step) and return its result; a completed step returns the
        recorded result without running again. The result must be storable in Firestore.

        `reconcile` is the second guard for effects whose provider key expires: when an earlier attempt
        started this step without recording it done, `reconcile()` looks the effect up by our own id
        first, and a non-None answer is recorded as the result instead of running `action` again.

        Raises StepInProgress (another delivery holds the lease), StepDeferred (the provider's
        not-before has not passed) or whatever `action` / `reconcile` raise."""
        done, earlier_attempts = self._acquire(key, step, lease_seconds)
        if done is not None:
            log.info("step already done", step=step, ledger_key=key)
            self._note_duplicate(key, step, done)
            return cast(T, done.get("result"))
        journal.record(key, step, journal.RUNNING, attempts=earlier_attempts + 1)
        try:
            found = reconcile() if earlier_attempts and reconcile is not None else None
            if found is not None:
                log.warning("an earlier attempt's effect was found by lookup; not repeating it", step=step,
                            ledger_key=key, earlier_attempts=earlier_attempts)
            result = found if found is not None else action()
        except BaseException as exc:
            failure = self._failed(exc)
            self._step(key, step).set(failure, merge=True)
            journal.record(key, step, journal.FAILED, error=str(exc), at=failure["failed_at"])
            raise
        done_at = now()
        self._step(key, step).set({"state": "done", "result": result, "done_at": done_at, "lease_until": None,
                                   "updated_at": done_at}, merge=True)
        journal.record(key, step, journal.DONE, result=result, at=done_at)
        return result

    def run_leased_step(self, key: str, step: str, action: Callable[[], T],
                        record: Callable[[T], dict[str, Any]], *,
                        write_outcome: Callable[[Callable[[], object]], None] | None = None) -> T:
        """Run `step` under the lease this caller took with `claim(key, lease_seconds=...)`, then end
        the lease and merge `record(result)` into the event in one single-document commit. The event
        is where the outcome lives (e.g. `published: True, message_id`): a repeat reads it there
        before it would look for a steps/ document, so none is written on success. On failure the
        step is recorded failed and the lease ended, so a retry may resume. For steps that need no
        `reconcile` lookup: a claimer that dies mid-step leaves no attempt on a steps/ document.

        `write_outcome` runs the success commit (default: now); the webhook passes
        `after_answer.defer`, for an outcome whose late or lost write only delays the lease's end."""
        started_at = now()
        try:
            result = action()
        except BaseException as exc:
            failure = self._failed(exc)
            batch = self._db.batch()
            batch.set(self._step(key, step), {**failure, "attempts": 1, "step": step}, merge=True)
            batch.update(self._event(key), {"lease_until": None, "updated_at": failure["failed_at"]})
            batch.commit()
            journal.record(key, step, journal.FAILED, error=str(exc), at=failure["failed_at"])
            raise
        done_at = now()
        batch = self._db.batch()
        batch.update(self._event(key), {**record(result), "lease_until": None, "updated_at": done_at})
        # The console's journal rides in the same commit: one round trip for the outcome.
        journal.add(batch, key, step, journal.RUNNING, attempts=1, at=started_at)
        journal.add(batch, key, step, journal.DONE, result=result, at=done_at)
        (write_outcome or _run_now)(batch.commit)
        return result

    def _note_duplicate(self, key: str, step: str, done: dict[str, Any]) -> None:
        """Count a repeat that found the step done (shown as skipped-duplicate in the ops console), in the
        journey of the attempt that did the work (a duplicate delivery may carry a new correlation id)."""
        self._step(key, step).set({"duplicates_skipped": firestore.Increment(1), "last_duplicate_at": now()},
                                  merge=True)
        journal.record(key, step, journal.DUPLICATE, correlation_id=done.get("correlation_id"))

    def resume_step(self, key: str, step: str, action: Callable[[], T], *, claimed_at: datetime | None,
                    in_flight: timedelta, lease_until: datetime | None = None) -> tuple[T, bool]:
        """Finish `step` for a repeat of work whose claim an earlier attempt made at `claimed_at`
        (with a lease until `lease_until`, if it took one with its claim).

        Returns (result, ran_now): the recorded result if the step is done; StepInProgress while the
        earlier attempt may still be running (claimed less than `in_flight` ago, or its lease lasts),
        so the repeat backs off instead of contending; past that the earlier attempt died, and the
        step runs now."""
        done = self.step_result(key, step)
        if done is not None:
            self._note_duplicate(key, step, done)
            return cast(T, done.get("result")), False
        current = now()
        if claimed_at is None or current - claimed_at < in_flight or (lease_until and lease_until > current):
            raise StepInProgress(f"{key} is being handled by another attempt")
        log.warning("earlier attempt died before finishing, resuming", step=step, ledger_key=key)
        return self.run_step(key, step, action), True

    @staticmethod
    def _failed(exc: BaseException) -> dict[str, Any]:
        """A failed step's record; `not_before` when the provider asked us to wait (Retry-After)."""
        failed_at = now()
        failure: dict[str, Any] = {"state": "failed", "lease_until": None, "last_error": str(exc)[:500],
                                   "failed_at": failed_at, "updated_at": failed_at, "not_before": None}
        wait = exc.retry_after if isinstance(exc, TransientError) else None
        if wait:
            failure["not_before"] = failed_at + timedelta(seconds=wait)
        return failure

    def _acquire(self, key: str, step: str, lease_seconds: int) -> tuple[dict[str, Any] | None, int]:
        """(the done step's data or None, how many attempts started this step before this one)."""
        ref = self._step(key, step)
        transaction = self._db.transaction()

        @firestore.transactional
        def acquire(tx: firestore.Transaction) -> tuple[dict[str, Any] | None, int]:
            snapshot = ref.get(transaction=tx)
            data = (snapshot.to_dict() or {}) if snapshot.exists else {}
            attempts = int(data.get("attempts", 0))
            if data.get("state") == "done":
                return data, attempts
            lease_until = data.get("lease_until")
            if data.get("state") == "running" and lease_until and lease_until > now():
                raise StepInProgress(f"step {step} of {key} is running elsewhere")
            not_before = data.get("not_before")
            if not_before and not_before > now():
                wait = (not_before - now()).total_seconds()
                raise StepDeferred(f"step {step} of {key}: the provider asked to wait until {not_before}",
                                   retry_after=wait)
            started_at = now()
            tx.set(ref, {"state": "running", "lease_until": started_at + timedelta(seconds=lease_seconds),
                         "attempts": attempts + 1, "step": step, "event_key": key,
                         "started_at": started_at, "updated_at": started_at,
                         "correlation_id": log.current_correlation_id()}, merge=True)
            return None, attempts

        try:
            return acquire(transaction)
        except Aborted as exc:
            raise StepInProgress(f"step {step} of {key} is contended") from exc
        except ValueError as exc:
            # The client gives up on a contended transaction with a ValueError wrapping Aborted;
            # the lease is someone else's, so back off like any busy step.
            if isinstance(exc.__cause__, Aborted):
                raise StepInProgress(f"step {step} of {key} is contended") from exc
            raise
