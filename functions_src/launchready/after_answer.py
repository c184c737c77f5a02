"""Writes an HTTP answer does not wait for, run in order on one background thread per process.

`web.endpoint` collects what its handler hands to `defer(action)` and queues it when the handler
returns; outside an endpoint `defer` runs the action at once. Only writes whose delay or loss costs a
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
https://cloud.google.com/run/docs/container-contract).
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
EXIT_DRAIN_SECONDS = 5.0

_collected: contextvars.ContextVar[list[Action] | None] = contextvars.ContextVar("after_answer", default=None)
_queue: queue.Queue[tuple[contextvars.Context, list[Action]] | threading.Event] = queue.Queue()
_worker_pid: int | None = None
_start_lock = threading.Lock()


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
    (however it ends: work deferred before a failure still runs)."""
    collected: list[Action] = []
    token = _collected.set(collected)
    try:
        yield
    finally:
        _collected.reset(token)
        if collected:
            _ensure_worker()
            _queue.put((contextvars.copy_context(), collected))


def drain(timeout: float = 10.0) -> bool:
    """Wait until everything queued so far has run; False if `timeout` seconds passed first."""
    if _worker_pid != os.getpid():
        return True  # nothing was queued in this process
    done = threading.Event()
    _queue.put(done)
    return done.wait(timeout)


def _ensure_worker() -> None:
    # Started on first use and again after a fork: a thread does not survive into a forked child.
    global _worker_pid
    with _start_lock:
        if _worker_pid != os.getpid():
            threading.Thread(target=_work, name="after-answer", daemon=True).start()
            _worker_pid = os.getpid()


def _work() -> None:
    while True:
        item = _queue.get()
        if isinstance(item, threading.Event):
            item.set()
            continue
        context, actions = item
        context.run(_run_all, actions)


def _run_all(actions: list[Action]) -> None:
    for action in actions:
        try:
            action()
        except Exception as exc:  # the answer is gone; the failure must still be seen
            log.error("a write after the answer failed", error=repr(exc))


atexit.register(drain, EXIT_DRAIN_SECONDS)
