"""`python -m tools up`: the whole stack on the emulators, supervised until Ctrl-C or SIGTERM.

Everything is derived from components/data/catalog.json (the file the Pulumi program reads): one
functions-framework process per function, the topics, dead-letter topics and push subscriptions, and
the Firestore trigger bridge. Servers start in parallel; each one's readiness is printed as it comes.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import json
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import Any

import requests

from components.catalog import Catalog, FunctionSpec
from tools.exit_codes import ExitCode
from tools.project_files import ROOT

from . import emulators, environment, ops_user, pubsub_wiring
from .emulators import ManagedProcess, StartupError
from .layout import Layout, busy_ports, function_url
from .lock import AlreadyRunning, StackLock

RULES_PATH = ROOT / "firestore.rules"
FUNCTIONS_SOURCE = ROOT / "functions_src"
EMULATOR_TIMEOUT = 90.0
FUNCTION_TIMEOUT = 60.0
SHUTDOWN_PORT_WAIT = 10.0
# While parts are still starting, a line every this many seconds names them.
STARTUP_PROGRESS_SECONDS = 5.0


class Console:
    """Step-by-step progress lines, safe to call from the start-up threads."""

    def __init__(self, started: float) -> None:
        self.started = started
        self._lock = threading.Lock()

    def step(self, mark: str, text: str) -> None:
        with self._lock:
            print(f"[{time.monotonic() - self.started:5.1f}s] {mark} {text}", flush=True)


class Stack:
    def __init__(self, catalog: Catalog, layout: Layout, caller_env: dict[str, str] | None = None) -> None:
        self.catalog = catalog
        self.layout = layout
        self.caller_env = dict(os.environ if caller_env is None else caller_env)
        self.started = time.monotonic()
        self.console = Console(self.started)
        self.lock = StackLock(layout.lock_path)
        self.processes: list[ManagedProcess] = []
        self._processes_lock = threading.Lock()
        self.stopping = threading.Event()
        self.webhook_secret = ""
        self.routes: list[pubsub_wiring.PushRoute] = []
        self.operator: dict[str, str] = {}

    # ---- start-up -----------------------------------------------------------------------------

    def _track(self, process: ManagedProcess) -> ManagedProcess:
        with self._processes_lock:
            self.processes.append(process)
        if self.stopping.is_set():
            raise StartupError("stopping")
        return process

    def _wait_http(
        self,
        process: ManagedProcess,
        url: str,
        timeout: float,
        accept: Callable[[int], bool] = lambda status: status == 200,
    ) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and not self.stopping.is_set():
            if not process.alive():
                raise StartupError(
                    f"{process.name} exited during start-up (log {process.log_path}):\n{process.log_tail()}"
                )
            try:
                if accept(requests.get(url, timeout=1).status_code):
                    return
            except requests.RequestException:
                pass
            time.sleep(0.1)
        if self.stopping.is_set():
            raise StartupError("stopping")
        raise StartupError(
            f"{process.name} was not ready at {url} after {timeout:.0f} s "
            f"(log {process.log_path}):\n{process.log_tail()}"
        )

    def _wait_log_line(self, process: ManagedProcess, text: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and not self.stopping.is_set():
            if not process.alive():
                raise StartupError(f"{process.name} exited during start-up:\n{process.log_tail()}")
            with contextlib.suppress(OSError):
                if text in process.log_path.read_text(errors="replace"):
                    return
            time.sleep(0.1)
        raise StartupError(
            f"{process.name} did not report '{text}' within {timeout:.0f} s:\n{process.log_tail()}"
        )

    def _ready(self, label: str, where: str, since: float) -> None:
        self.console.step("✓", f"{label:<28} {where}  ({time.monotonic() - since:.1f} s)")

    def _start_emulator(self, label: str, launch: Callable[[], ManagedProcess], port: int) -> ManagedProcess:
        since = time.monotonic()
        process = self._track(launch())
        self._wait_http(process, emulators.ready_url(port), EMULATOR_TIMEOUT)
        self._ready(label, self.layout.host(port), since)
        return process

    def _start_sandbox(self) -> str:
        since = time.monotonic()
        port = self.layout.sandbox_port
        process = self._track(
            emulators.start_process(
                "provider-sandbox",
                [sys.executable, "-m", "tools", "sandbox", "--port", str(port)],
                self.layout.logs_dir / "sandbox.log",
                # The pay page's button sends a signed checkout.session.completed to the local webhook.
                env={"PYTHONUNBUFFERED": "1", "SANDBOX_STRIPE_WEBHOOK_URL": self._webhook_url(),
                     "STRIPE_WEBHOOK_SECRET": self.webhook_secret},
            )
        )
        url = self.layout.url(port)
        self._wait_http(process, url + "/", EMULATOR_TIMEOUT)
        self._ready("provider sandbox", url + "/_sandbox/state", since)
        return url

    def _webhook_url(self) -> str:
        spec = next((s for s in self.catalog.functions if s.name == "stripe_webhook"), None)
        return function_url(self.layout, spec) if spec else ""

    def _start_function(self, spec: FunctionSpec, shared: dict[str, str], secrets: dict[str, str]) -> None:
        since = time.monotonic()
        port = self.layout.function_ports[spec.name]
        env = environment.function_environment(
            self.catalog, spec, self.layout, shared, secrets, self.caller_env
        )
        argv = [
            sys.executable,
            "-m",
            "functions_framework",
            "--target",
            spec.entry_point,
            "--source",
            str(FUNCTIONS_SOURCE / "main.py"),
            # Every entry point is an HTTP function: Firestore events arrive as CloudEvents over HTTP.
            "--signature-type",
            "http",
            "--port",
            str(port),
            "--host",
            "127.0.0.1",
        ]
        process = self._track(
            emulators.start_process(
                f"function {spec.name}",
                argv,
                self.layout.logs_dir / f"{spec.name}.log",
                env=env,
                cwd=FUNCTIONS_SOURCE,
                inherit_env=False,
            )
        )
        # Every entry point answers GET with its health.
        self._wait_http(process, self.layout.url(port) + "/", FUNCTION_TIMEOUT, lambda status: status == 200)
        self._ready(f"{spec.name} ({spec.trigger.type})", function_url(self.layout, spec), since)

    def _start_relay(self) -> None:
        since = time.monotonic()
        port = self.layout.push_relay_port
        routes = [
            f"{spec.name}={self.layout.url(self.layout.function_ports[spec.name])}/"
            for spec in self.catalog.by_trigger("pubsub")
        ]
        timeout = max(
            self.catalog.push_subscription.ack_deadline_seconds,
            *(spec.limits.timeout_seconds for spec in self.catalog.by_trigger("pubsub")),
        )
        argv = [
            sys.executable,
            "-m",
            "tools.local.push_relay",
            "--port",
            str(port),
            "--timeout",
            str(timeout),
            "--min-backoff",
            str(self.catalog.push_subscription.min_backoff_seconds),
            "--max-attempts",
            str(self.catalog.push_subscription.max_delivery_attempts),
        ]
        for route in routes:
            argv += ["--route", route]
        process = self._track(
            emulators.start_process(
                "push relay", argv, self.layout.logs_dir / "push-relay.log", env={"PYTHONUNBUFFERED": "1"}
            )
        )
        self._wait_http(process, self.layout.url(port) + "/", EMULATOR_TIMEOUT)
        self._ready("push relay", self.layout.url(port), since)

    def _wire_pubsub(self, pubsub_ready: concurrent.futures.Future[ManagedProcess]) -> None:
        pubsub_ready.result()
        since = time.monotonic()
        self.routes = pubsub_wiring.wire(
            self.catalog, self.layout.project_id, self.layout.url(self.layout.push_relay_port)
        )
        self._ready(
            f"{len(self.catalog.topics)} topics + DLQs, {len(self.routes)} push subs",
            ", ".join(route.subscription for route in self.routes),
            since,
        )

    def _start_bridge(self) -> None:
        """Launched with the emulators: it waits for Firestore itself, so its imports overlap their start.
        Events it sees before a function is ready are retried, like Eventarc's."""
        specs = self.catalog.by_trigger("firestore")
        if not specs:
            return
        since = time.monotonic()
        argv = [sys.executable, "-m", "tools.local.trigger_bridge"]
        for spec in specs:
            if spec.trigger.event not in ("created", "deleted"):
                raise StartupError(f"{spec.name}: the local bridge delivers 'created' and 'deleted' events")
            argv += [
                "--target",
                f"{spec.name}={spec.trigger.event}:{spec.trigger.document}="
                f"{self.layout.url(self.layout.function_ports[spec.name])}/",
            ]
        env = {
            "PYTHONUNBUFFERED": "1",
            "GOOGLE_CLOUD_PROJECT": self.layout.project_id,
            "FIRESTORE_EMULATOR_HOST": self.layout.host(self.layout.firestore_port),
        }
        process = self._track(
            emulators.start_process(
                "firestore trigger bridge", argv, self.layout.logs_dir / "trigger-bridge.log", env=env
            )
        )
        self._wait_log_line(process, "trigger bridge ready", EMULATOR_TIMEOUT)
        self._ready(
            "firestore trigger bridge", ", ".join(f"{s.trigger.document} -> {s.name}" for s in specs), since
        )

    def start(self) -> dict[str, Any]:
        """Start everything; on any failure stop what was started and raise StartupError."""
        # The lock first: a second `make up` should hear "already running", not "port in use".
        for note in self.lock.acquire():
            self.console.step("!", note)
        busy = busy_ports(self.layout)
        if busy:
            self.lock.release()
            listing = ", ".join(f"{port} ({name})" for name, port in busy.items())
            raise StartupError(
                f"port(s) already in use: {listing}. Another stack or program is listening; "
                "stop it or move this stack with LOCAL_PORT_BASE=<port> (or --port-base)."
            )
        layout = self.layout
        layout.logs_dir.mkdir(parents=True, exist_ok=True)
        self.webhook_secret = environment.webhook_secret(layout, self.caller_env)
        sandbox_url = layout.url(layout.sandbox_port)
        shared = environment.shared_environment(layout, sandbox_url, self.caller_env)
        secrets = environment.local_secrets(self.webhook_secret, self.caller_env)
        # This process talks to the emulators too (Pub/Sub wiring).
        os.environ["PUBSUB_EMULATOR_HOST"] = layout.host(layout.pubsub_port)
        os.environ["GOOGLE_CLOUD_PROJECT"] = layout.project_id
        self.console.step(
            "…",
            f"starting {len(self.catalog.functions)} functions, 3 emulators and the sandbox "
            f"(project {layout.project_id}, logs in {layout.logs_dir})",
        )
        rules = RULES_PATH if RULES_PATH.exists() else None
        pool = concurrent.futures.ThreadPoolExecutor(max_workers=len(self.catalog.functions) + 8)
        try:
            # The Auth emulator is the slowest to start (CPU-bound), so it is launched first.
            auth = pool.submit(
                self._start_emulator,
                "Auth emulator",
                lambda: emulators.launch_auth(
                    layout.auth_port, layout.auth_dir, layout.project_id, layout.logs_dir / "auth.log"
                ),
                layout.auth_port,
            )
            firestore = pool.submit(
                self._start_emulator,
                "Firestore emulator",
                lambda: emulators.launch_firestore(layout.firestore_port, layout.logs_dir, rules),
                layout.firestore_port,
            )
            pubsub = pool.submit(
                self._start_emulator,
                "Pub/Sub emulator",
                lambda: emulators.launch_pubsub(layout.pubsub_port, layout.logs_dir, layout.project_id),
                layout.pubsub_port,
            )
            sandbox = pool.submit(self._start_sandbox)
            functions = {
                spec.name: pool.submit(self._start_function, spec, shared, secrets)
                for spec in self.catalog.functions
            }
            relay = pool.submit(self._start_relay)
            wiring = pool.submit(self._wire_pubsub, pubsub)
            bridge = pool.submit(self._start_bridge)
            parts = {
                firestore: "Firestore emulator",
                pubsub: "Pub/Sub emulator",
                auth: "Auth emulator",
                sandbox: "provider sandbox",
                relay: "push relay",
                wiring: "Pub/Sub wiring",
                bridge: "trigger bridge",
                **{future: name for name, future in functions.items()},
            }
            pending = set(parts)
            while pending:
                done, pending = concurrent.futures.wait(
                    pending, timeout=STARTUP_PROGRESS_SECONDS, return_when=concurrent.futures.FIRST_EXCEPTION
                )
                for future in done:
                    future.result()  # the first failure stops the start-up
                if pending:  # every few seconds until all are up: what is still starting
                    self.console.step("…", "waiting for " + ", ".join(sorted(parts[f] for f in pending)))
        except BaseException:
            self.stopping.set()
            pool.shutdown(wait=True, cancel_futures=True)
            self.stop()
            raise
        pool.shutdown(wait=True)
        if "ops_console" in {spec.name for spec in self.catalog.functions}:
            try:
                self.operator = ops_user.local_operator(layout)
            except Exception as exc:
                self.stop()
                raise StartupError(f"could not create the local ops user: {exc}") from exc
            self.console.step("✓", f"ops user {self.operator['email']} (ops role) on the Auth emulator")
        for process in self.processes:
            self.lock.record_child(process.pgid)
        endpoints = self.endpoints(sandbox_url)
        _write_json(layout.endpoints_path, endpoints)
        return endpoints

    # ---- what the developer (and the tests) get ----------------------------------------------

    def endpoints(self, sandbox_url: str) -> dict[str, Any]:
        layout = self.layout
        functions = {}
        for spec in self.catalog.functions:
            functions[spec.name] = {
                "url": function_url(layout, spec),
                "trigger": spec.trigger.type,
                "log": str(layout.logs_dir / f"{spec.name}.log"),
            }
        return {
            "project_id": layout.project_id,
            "http_functions": {name: f["url"] for name, f in functions.items()},
            "functions": functions,
            "emulators": {
                "firestore": layout.host(layout.firestore_port),
                "pubsub": layout.host(layout.pubsub_port),
                "auth": layout.host(layout.auth_port),
            },
            "sandbox_url": sandbox_url,
            "sandbox": {
                "url": sandbox_url,
                "state": f"{sandbox_url}/_sandbox/state",
                "requests": f"{sandbox_url}/_sandbox/requests",
            },
            "stripe_webhook_url": functions["stripe_webhook"]["url"]
            if "stripe_webhook" in functions
            else None,
            "stripe_webhook_secret": self.webhook_secret,
            "push_relay": layout.url(layout.push_relay_port),
            "push_subscriptions": {route.function: route.subscription for route in self.routes},
            "dead_letter_subscriptions": {
                topic: pubsub_wiring.dead_letter_subscription(topic) for topic in self.catalog.topics
            },
            "ops_console": {
                "url": functions["ops_console"]["url"],
                "email": self.operator.get("email", ""),
                "password": self.operator.get("password", ""),
            }
            if "ops_console" in functions
            else None,
            "logs_dir": str(layout.logs_dir),
            "pid": os.getpid(),
            "ready_seconds": round(time.monotonic() - self.started, 1),
        }

    def print_status(self, endpoints: dict[str, Any]) -> None:
        print(render_status(endpoints), flush=True)

    # ---- supervision and shutdown -------------------------------------------------------------

    def supervise(self) -> ExitCode:
        """Block until asked to stop; report any child that dies meanwhile (then FAILED, else OK)."""
        reported: set[str] = set()
        exit_code = ExitCode.OK
        while not self.stopping.wait(0.5):
            for process in list(self.processes):
                if process.name not in reported and not process.alive():
                    reported.add(process.name)
                    exit_code = ExitCode.FAILED
                    tail = process.log_tail()
                    reason = emulators.exit_reason(process.popen.returncode, tail)
                    self.console.step(
                        "✗",
                        f"{process.name} {reason} (log {process.log_path})"
                        + (f"; last lines:\n{tail}" if tail.strip() else ""),
                    )
                    self.console.step("!", "the rest of the stack keeps running; Ctrl-C stops it")
        return exit_code

    def request_stop(self, signum: int, frame: FrameType | None) -> None:
        self.stopping.set()

    def stop(self) -> list[str]:
        """Stop every process group (in parallel), then check no port is still listening."""
        since = time.monotonic()
        with self._processes_lock:
            processes = list(self.processes)
        if processes:
            self.console.step("…", f"stopping {len(processes)} processes")
        with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, len(processes))) as pool:
            list(pool.map(lambda process: process.stop(), processes))
        self.layout.endpoints_path.unlink(missing_ok=True)
        self.lock.release()
        leftovers = _wait_ports_closed(self.layout, SHUTDOWN_PORT_WAIT)
        if leftovers:
            self.console.step(
                "✗",
                "still listening after shutdown: "
                + ", ".join(f"{port} ({name})" for name, port in leftovers.items()),
            )
        elif processes:
            self.console.step("✓", f"stopped; nothing left listening ({time.monotonic() - since:.1f} s)")
        return list(leftovers)


def _wait_ports_closed(layout: Layout, timeout: float) -> dict[str, int]:
    deadline = time.monotonic() + timeout
    while True:
        busy = busy_ports(layout)
        if not busy or time.monotonic() > deadline:
            return busy
        time.sleep(0.2)


def _write_json(path: Path, value: dict[str, Any]) -> None:
    temporary = path.with_suffix(".tmp")
    temporary.write_text(json.dumps(value, indent=2) + "\n")
    temporary.replace(path)  # readers never see a half-written file


def render_status(endpoints: dict[str, Any]) -> str:
    rows = [("function", "trigger", "URL")]
    for name, info in endpoints["functions"].items():
        rows.append((name, info["trigger"], info["url"]))
    width = [max(len(row[i]) for row in rows) for i in range(3)]
    lines = [
        "",
        f"Launch Ready local stack is up (project {endpoints['project_id']}, "
        f"ready in {endpoints['ready_seconds']} s)",
        "",
    ]
    for index, row in enumerate(rows):
        lines.append("  " + "  ".join(cell.ljust(width[i]) for i, cell in enumerate(row)).rstrip())
        if index == 0:
            lines.append("  " + "  ".join("-" * w for w in width))
    emulators_ = endpoints["emulators"]
    lines += [
        "",
        f"  Firestore emulator   {emulators_['firestore']}   (FIRESTORE_EMULATOR_HOST)",
        f"  Pub/Sub emulator     {emulators_['pubsub']}   (PUBSUB_EMULATOR_HOST)",
        f"  Auth emulator        {emulators_['auth']}   (FIREBASE_AUTH_EMULATOR_HOST)",
        f"  Provider sandbox     {endpoints['sandbox']['state']}  ·  {endpoints['sandbox']['requests']}",
        f"  Stripe webhook       {endpoints['stripe_webhook_url']}",
        f"  Webhook secret       {endpoints['stripe_webhook_secret']}",
        f"  Logs                 {endpoints['logs_dir']}",
    ]
    console = endpoints.get("ops_console")
    if console:
        lines += [
            f"  Ops console          {console['url']}",
            f"  Ops sign-in          {console['email']} / {console['password']}"
            "  (or any user given the role with `make grant-ops EMAIL=...`)",
        ]
    lines += [
        "",
        "  Try `make demo` in another terminal. Ctrl-C stops everything.",
        "",
    ]
    return "\n".join(lines)


def run_up(stack: Stack) -> ExitCode:
    signal.signal(signal.SIGTERM, stack.request_stop)
    signal.signal(signal.SIGINT, stack.request_stop)
    try:
        endpoints = stack.start()
    except AlreadyRunning as exc:
        print(f"✗ {exc}", file=sys.stderr, flush=True)
        return ExitCode.USAGE
    except StartupError as exc:
        if str(exc) == "stopping":
            return ExitCode.INTERRUPTED
        print(f"\n✗ start-up failed: {exc}", file=sys.stderr, flush=True)
        return ExitCode.FAILED
    stack.console.step("✓", f"ready; endpoints in {stack.layout.endpoints_path}")
    stack.print_status(endpoints)
    exit_code = stack.supervise()
    leftovers = stack.stop()
    return ExitCode.FAILED if leftovers else exit_code
