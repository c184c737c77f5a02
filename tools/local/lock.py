"""One running stack per state directory: `.local/up.lock` holds the supervisor's pid and the process
groups it started, so a second `make up` explains itself and a supervisor that was killed outright
(SIGKILL, a closed terminal) does not leave orphans holding the ports for the next run."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import time
from pathlib import Path
from typing import Any

# How the supervisor is started (`make up`): its command line identifies it in /proc.
UP_ARGS = ("tools", "up")


class AlreadyRunning(RuntimeError):
    pass


def pid_alive(pid: int) -> bool:
    """Whether a process with this pid exists (one of another user's counts too)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def is_supervisor(pid: int) -> bool:
    """Whether `pid` is a live `python -m tools up` (the process that holds the lock)."""
    return pid_alive(pid) and f" -m {' '.join(UP_ARGS)}" in cmdline(pid)


def read(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


class StackLock:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.children: dict[int, str] = {}  # pgid -> command line, to recognise them later

    def acquire(self) -> list[str]:
        """Take the lock; returns notes about what was cleaned up from a run that died."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        notes: list[str] = []
        for _ in range(2):
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                notes += self._clear_stale()
                continue
            with os.fdopen(fd, "w") as handle:
                json.dump(self._content(), handle)
            return notes
        raise AlreadyRunning(f"could not take {self.path}")

    def _clear_stale(self) -> list[str]:
        previous = read(self.path) or {}
        pid = int(previous.get("pid") or 0)
        if pid and is_supervisor(pid):
            raise AlreadyRunning(
                f"the local stack is already running (pid {pid}, state in {self.path.parent}); "
                f"stop it with Ctrl-C in its terminal or `kill -TERM {pid}`, "
                "or start another one beside it with LOCAL_PORT_BASE=<port> and LOCAL_STATE_DIR=<dir>"
            )
        notes = [f"removed the lock of a stack that is no longer running (pid {pid})"]
        for pgid_text, command in (previous.get("children") or {}).items():
            pgid = int(pgid_text)
            # Only a group whose leader still runs the recorded command is ours; pids get reused.
            if pid_alive(pgid) and cmdline(pgid) == command:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(pgid, signal.SIGTERM)
                notes.append(f"stopped a leftover process group {pgid}: {command[:80]}")
        if len(notes) > 1:
            time.sleep(2)  # let them release their ports
        self.path.unlink(missing_ok=True)
        return notes

    def record_child(self, pgid: int) -> None:
        self.children[pgid] = cmdline(pgid)
        self._write()

    def release(self) -> None:
        current = read(self.path)
        if current and current.get("pid") == os.getpid():
            self.path.unlink(missing_ok=True)

    def _content(self) -> dict[str, Any]:
        return {"pid": os.getpid(), "started_at": time.time(), "children": self.children}

    def _write(self) -> None:
        temporary = self.path.with_suffix(".tmp")
        temporary.write_text(json.dumps(self._content()))
        temporary.replace(self.path)
