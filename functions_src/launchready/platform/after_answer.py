"""Writes an HTTP answer does not wait for, run after it on WRITERS background threads per process.

Only writes whose delay or loss costs a statistic or an already-handled repeat may be deferred, never
one the answer promises (docs/architecture.md, "Writes after the answer").
"""

from __future__ import annotations

import atexit
import contextlib
import contextvars
import os
import queue
import threading
import time
from collections.abc import Callable, Iterator

from launchready.platform import log

Action = Callable[[], object]
# Writer threads per process: the writes are network round trips, so a few in parallel keep up with a
# burst of concurrent requests (the catalog allows up to 40 per instance) without growing a backlog.
WRITERS = 4
# Past this many requests' writes waiting, a request makes its own before answering (backpressure), so
# the backlog, and what an instance removed mid-burst would lose, stays bounded.
MAX_QUEUED = 200
EXIT_DRAIN_SECONDS = 5.0
# Under sustained backpressure, one warning per this many seconds, with how many requests it covers.
BACKPRESSURE_LOG_SECONDS = 10.0

_collected: contextvars.ContextVar[list[Action] | None] = contextvars.ContextVar("after_answer", default=None)


class _Writers:
    """The queue, its writer threads and the count of requests whose writes are not done yet."""

    def __init__(self) -> None:
        self.queue: queue.SimpleQueue[tuple[contextvars.Context, list[Action]]] = queue.SimpleQueue()
        self.pending = 0
        self.idle = threading.Condition()
        self.started = False
        self.threads: set[threading.Thread] = set()
        self.inline = 0  # requests that wrote before answering since the last warning
        self.last_warning = 0.0

    def submit(self, context: contextvars.Context, actions: list[Action]) -> bool:
        """Queue one request's writes; False when MAX_QUEUED are waiting already (nothing queued)."""
        with self.idle:
            if self.pending >= MAX_QUEUED:
                return False
            self.pending += 1
            if not self.started:
                for index in range(WRITERS):
                    thread = threading.Thread(target=self._work, name=f"after-answer-{index}", daemon=True)
                    self.threads.add(thread)
                    thread.start()
                self.started = True
        self.queue.put((context, actions))
        return True

    def _work(self) -> None:
        while True:
            context, actions = self.queue.get()
            try:
                context.run(_run_all, actions)
            except BaseException as exc:  # e.g. SystemExit from a write: seen, and this writer lives on
                log.error("a write after the answer stopped its request's writes", error=repr(exc))
            finally:
                with self.idle:
                    self.pending -= 1
                    self.idle.notify_all()

    def backed_up(self) -> None:
        """Count a request that wrote before answering; warn at most every BACKPRESSURE_LOG_SECONDS."""
        with self.idle:
            self.inline += 1
            now = time.monotonic()
            if now - self.last_warning < BACKPRESSURE_LOG_SECONDS:
                return
            requests, self.inline, self.last_warning = self.inline, 0, now
        log.warning("writes after answers are backed up; requests write before answering",
                    queued=MAX_QUEUED, requests=requests)

    def drain(self, timeout: float) -> int:
        """Wait until no write is pending, for up to `timeout` seconds; returns how many requests' writes
        still are. Raises RuntimeError from a writer thread (it would wait for itself)."""
        if threading.current_thread() in self.threads:
            raise RuntimeError("drain() from a write after the answer would wait for itself")
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
    pid = os.getpid()
    try:
        yield
    finally:
        _collected.reset(token)
        if os.getpid() != pid:
            collected.clear()  # forked inside the block: the parent makes these writes, not the child too
        if collected and not _writers.submit(contextvars.copy_context(), collected):
            _writers.backed_up()
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
