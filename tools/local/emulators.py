"""Start and stop Google's Firestore and Pub/Sub emulators and the Firebase Auth emulator.

Every server runs in its own process group (gcloud leaves its Java child running if only the
wrapper is killed), bound to 127.0.0.1, with its output in a log file.
"""

import json
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import requests

from tools.project_files import ROOT

from .layout import port_in_use

FIREBASE_CLI = ROOT / "node_modules" / ".bin" / "firebase"
AUTH_EMULATOR_LAUNCHER = Path(__file__).resolve().parent / "auth_emulator.cjs"


class StartupError(RuntimeError):
    pass


@dataclass
class ManagedProcess:
    name: str
    popen: subprocess.Popen[bytes]
    log_path: Path

    @property
    def pgid(self) -> int:
        return self.popen.pid  # start_new_session makes the child its group leader

    def alive(self) -> bool:
        return self.popen.poll() is None

    def stop(self, timeout: float = 10.0) -> None:
        for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 5.0)):
            try:
                os.killpg(self.pgid, sig)
            except ProcessLookupError:
                return
            if _group_gone(self.pgid, wait):
                self.popen.poll()
                return

    def log_tail(self, lines: int = 15) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


def exit_reason(returncode: int | None, log_tail: str) -> str:
    """Why a server of the stack stopped, in words, for the supervisor's crash line.

    A server exits only when something stops it, so code 0 is not "fine": the gcloud emulator wrappers
    exit 0 when their Java process is killed (by the OOM killer, or by hand), functions-framework when
    it is sent SIGINT."""
    if returncode is None:
        return "is still running"
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = f"signal {-returncode}"
        reason = f"was killed by {name} from outside the stack"
    elif returncode == 0:
        reason = ("exited with code 0 without an error of its own: something outside the stack stopped it "
                  "or its child process (e.g. the emulator's Java process was killed, or ran out of memory)")
    else:
        reason = f"exited with code {returncode}"
    if not log_tail.strip():
        reason += "; its log is empty, so it wrote nothing about why"
    return reason


def _group_gone(pgid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return True
        try:  # reap the leader so it does not linger as a zombie that keeps the group "alive"
            os.waitpid(pgid, os.WNOHANG)
        except ChildProcessError:
            pass
        time.sleep(0.1)
    return False


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_process(
    name: str,
    argv: list[str],
    log_path: Path,
    *,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
    inherit_env: bool = True,
) -> ManagedProcess:
    """Start `argv` in a new session (its own process group). With inherit_env=False the child gets
    exactly `env`, e.g. a function that must see only the secrets granted to it."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    child_env = {**os.environ, **(env or {})} if inherit_env else dict(env or {})
    with open(log_path, "wb") as log_file:
        popen = subprocess.Popen(
            argv,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=child_env,
            cwd=cwd or ROOT,
            start_new_session=True,
        )
    return ManagedProcess(name, popen, log_path)


def wait_until_ready(process: ManagedProcess, url: str, timeout: float) -> None:
    """Poll `url` until it answers 200; fail early, with the log tail, if the process exits."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not process.alive():
            raise StartupError(f"{process.name} exited during start-up:\n{process.log_tail()}")
        try:
            if requests.get(url, timeout=1).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.2)
    process.stop()
    raise StartupError(f"{process.name} was not ready at {url} after {timeout:.0f} s:\n{process.log_tail()}")


def _require_free(name: str, port: int) -> None:
    if port_in_use(port):
        raise StartupError(f"port {port} for the {name} is already in use; choose another port")


def launch_firestore(port: int, log_dir: Path, rules: Path | None = None) -> ManagedProcess:
    """Start without waiting (the caller polls `ready_url(port)`), so several servers start in parallel."""
    _require_free("Firestore emulator", port)
    argv = ["gcloud", "emulators", "firestore", "start", f"--host-port=127.0.0.1:{port}"]
    if rules is not None:
        argv.append(f"--rules={rules}")
    # Its output goes through tools/local/emulator_log.py (one line per expected already-exists instead of a
    # stack trace). gcloud stays the leader of its own process group (it makes itself one otherwise, and
    # a group stop would miss it); the filter, in a session of its own, ends when the emulator's output does.
    log_path = log_dir / "firestore.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    read_end, write_end = os.pipe()
    try:
        with open(log_path, "wb") as log_file:
            subprocess.Popen(
                [sys.executable, "-u", "-m", "tools.local.emulator_log"],
                stdin=read_end,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                cwd=ROOT,
                start_new_session=True,
            )
        popen = subprocess.Popen(
            argv,
            stdout=write_end,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=ROOT,
            start_new_session=True,
        )
    finally:
        os.close(read_end)
        os.close(write_end)
    return ManagedProcess("firestore-emulator", popen, log_path)


def launch_pubsub(port: int, log_dir: Path, project: str) -> ManagedProcess:
    _require_free("Pub/Sub emulator", port)
    argv = [
        "gcloud",
        "beta",
        "emulators",
        "pubsub",
        "start",
        f"--host-port=127.0.0.1:{port}",
        f"--project={project}",
    ]
    return start_process("pubsub-emulator", argv, log_dir / "pubsub.log")


def launch_auth(port: int, workdir: Path, project: str, log_path: Path | None = None) -> ManagedProcess:
    """firebase-tools' Auth emulator; its hub and logging ports are picked free so that several
    instances (a running `make up` and the test suite) can coexist."""
    _require_free("Auth emulator", port)
    if not FIREBASE_CLI.exists():
        raise StartupError(f"{FIREBASE_CLI} is missing: run `npm ci` (make up does it)")
    workdir.mkdir(parents=True, exist_ok=True)
    config = {
        "emulators": {
            "auth": {"host": "127.0.0.1", "port": port},
            "hub": {"host": "127.0.0.1", "port": free_port()},
            "logging": {"host": "127.0.0.1", "port": free_port()},
            "ui": {"enabled": False},
            "singleProjectMode": True,
        }
    }
    (workdir / "firebase.json").write_text(json.dumps(config, indent=2))
    tmpdir = workdir / "tmp"
    tmpdir.mkdir(exist_ok=True)
    # The CLI through auth_emulator.cjs: the same emulator, with its request validators compiled on
    # first use rather than all at start (several times faster to become ready).
    argv = [
        "node",
        str(AUTH_EMULATOR_LAUNCHER),
        "emulators:start",
        "--only",
        "auth",
        "--project",
        project,
        "--config",
        str(workdir / "firebase.json"),
    ]
    return start_process(
        "auth-emulator",
        argv,
        log_path or workdir / "auth.log",
        cwd=workdir,
        env={
            "NO_UPDATE_NOTIFIER": "1",
            "FIREBASE_CLI_DISABLE_UPDATE_CHECK": "true",
            # firebase-tools writes a per-project hub locator into the temp dir; a private one keeps
            # two stacks of the same project (make up and the tests) from sharing it.
            "TMPDIR": str(tmpdir),
        },
    )


def ready_url(port: int) -> str:
    """All three emulators answer 200 on their root once they serve requests."""
    return f"http://127.0.0.1:{port}/"


def start_firestore(
    port: int, log_dir: Path, rules: Path | None = None, timeout: float = 60
) -> ManagedProcess:
    process = launch_firestore(port, log_dir, rules)
    wait_until_ready(process, ready_url(port), timeout)
    return process


def start_pubsub(port: int, log_dir: Path, project: str, timeout: float = 60) -> ManagedProcess:
    process = launch_pubsub(port, log_dir, project)
    wait_until_ready(process, ready_url(port), timeout)
    return process


def start_auth(port: int, workdir: Path, project: str, timeout: float = 90) -> ManagedProcess:
    process = launch_auth(port, workdir, project)
    wait_until_ready(process, ready_url(port), timeout)
    return process


def clear_firestore(host: str, project: str) -> None:
    requests.delete(
        f"http://{host}/emulator/v1/projects/{project}/databases/(default)/documents", timeout=10
    ).raise_for_status()


def clear_auth(host: str, project: str) -> None:
    requests.delete(f"http://{host}/emulator/v1/projects/{project}/accounts", timeout=10).raise_for_status()
