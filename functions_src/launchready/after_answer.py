"""Writes an HTTP answer does not wait for, run after it on a few background threads per process.

`web.endpoint` collects what its handler hands to `defer(action)` and queues it when the handler
returns (one request's writes run in order; requests' writes run in parallel on WRITERS threads);
outside an endpoint `defer` runs the action at once. Only writes whose delay or loss costs a
statistic or a repeat that is already handled may be deferred, never one the answer promises:

- the webhook's record that it published an event (the billing worker records the same on delivery,
  and a later duplicate delivery would at worst publish again, which downstream dedups by event_id);
- the console's run statistics of a handled request (`runs.record_run`, best effort by design).

Cloud Run functions bill CPU per request by default, and Google advises against background work under
that setting: after the answer the instance's CPU is "disabled or severely limited", and suspended work
resumes with the instance's next request (https://cloud.google.com/run/docs/tips/general, "Background
activity"). So a deferred write may land minutes late, or never if the instance is removed first; that
is why only the writes above may be deferred. At interpreter exit the queue is drained for up to
EXIT_DRAIN_SECONDS (Cloud Run sends SIGTERM 10 s before it stops an instance:
https://cloud.google.com/run/docs/container-contract), and writes still waiting then are logged as an
ERROR with their count.
"""

from __future__ import annotations

import atexit
import contextlib
import contextvars
import os
import queue
import threading
from collections.abc import Callable, Iterator

from . import log

Action = Callable[[], object]
# Writer threads per process: the writes are network round trips, so a few in parallel keep up with a
# burst of concurrent requests (the catalog allows up to 40 per instance) without growing a backlog.
WRITERS = 4
# Past this many requests' writes waiting, a request makes its own before answering (backpressure), so
# the backlog, and what an instance removed mid-burst would lose, stays bounded.
MAX_QUEUED = 200
EXIT_DRAIN_SECONDS = 5.0

_collected: contextvars.ContextVar[list[Action] | None] = contextvars.ContextVar("after_answer", default=None)


class _Writers:
    """The queue, its writer threads and the count of requests whose writes are not done yet."""

    def __init__(self) -> None:
        self.queue: queue.SimpleQueue[tuple[contextvars.Context, list[Action]]] = queue.SimpleQueue()
        self.pending = 0
        self.idle = threading.Condition()
        self.started = False

    def submit(self, context: contextvars.Context, actions: list[Action]) -> bool:
        """Queue one request's writes; False when MAX_QUEUED are waiting already (nothing queued)."""
        with self.idle:
            if self.pending >= MAX_QUEUED:
                return False
            self.pending += 1
            if not self.started:
                for index in range(WRITERS):
                    threading.Thread(target=self._work, name=f"after-answer-{index}", daemon=True).start()
                self.started = True
        self.queue.put((context, actions))
        return True

    def _work(self) -> None:
        while True:
            context, actions = self.queue.get()
            try:
                context.run(_run_all, actions)
            finally:
                with self.idle:
                    self.pending -= 1
                    self.idle.notify_all()

    def drain(self, timeout: float) -> int:
        """Wait until no write is pending, for up to `timeout` seconds; returns how many still are."""
        with self.idle:
            self.idle.wait_for(lambda: self.pending == 0, timeout)
            return self.pending


_writers = _Writers()


def defer(action: Action) -> None:
    """Run `action` after the current endpoint's answer, or now when no endpoint is answering."""
    collected = _collected.get()
    if collected is None:
        action()
    else:
        collected.append(action)


@contextlib.contextmanager
def collecting() -> Iterator[None]:
    """Collect the block's deferred actions and queue them, with the block's log context, when it ends
    (however it ends: work deferred before a failure still runs). With MAX_QUEUED requests' writes
    waiting already, they run at once instead, before the answer."""
    collected: list[Action] = []
    token = _collected.set(collected)
    try:
        yield
    finally:
        _collected.reset(token)
        if collected and not _writers.submit(contextvars.copy_context(), collected):
            log.warning("writes after answers are backed up; this request writes before answering",
                        queued=MAX_QUEUED)
            _run_all(collected)


def drain(timeout: float = 10.0) -> bool:
    """Wait until every queued write has run; False if `timeout` seconds passed first."""
    return _writers.drain(timeout) == 0


def _run_all(actions: list[Action]) -> None:
    for action in actions:
        try:
            action()
        except Exception as exc:  # the answer is gone; the failure must still be seen
            log.error("a write after the answer failed", error=repr(exc))


def _reset_in_child() -> None:
    # A forked child has none of the parent's threads: it starts its own, and does not repeat the
    # parent's pending writes.
    global _writers
    _writers = _Writers()


def _drain_at_exit() -> None:
    left = _writers.drain(EXIT_DRAIN_SECONDS)
    if left:
        log.error("writes after answers were not made before the process exited", requests=left,
                  waited_s=EXIT_DRAIN_SECONDS)


os.register_at_fork(after_in_child=_reset_in_child)
atexit.register(_drain_at_exit)
