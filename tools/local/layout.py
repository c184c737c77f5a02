"""Where the local stack lives: its ports and its state directory, from flags and environment.

Ports are laid out from one base so a whole second stack (the e2e tests, a colleague's branch) can run
beside the first by moving a single number. Individual ports can still be pinned.
"""

from __future__ import annotations

import itertools
import os
import random
import socket
from dataclasses import dataclass, field
from pathlib import Path

from components.catalog import Catalog, FunctionSpec
from tools.project_files import ROOT

DEFAULT_STATE_DIR = ROOT / ".local"
DEFAULT_PORT_BASE = 8600
DEFAULT_PROJECT = "demo-launchready"  # "demo-" projects never reach real Google services
HOST = "127.0.0.1"

# Offsets from the port base. Functions follow, in catalog order, from FUNCTIONS_OFFSET.
FIRESTORE_OFFSET = 0
PUBSUB_OFFSET = 1
AUTH_OFFSET = 2
SANDBOX_OFFSET = 3
PUSH_RELAY_OFFSET = 4
FUNCTIONS_OFFSET = 10


@dataclass(frozen=True)
class Layout:
    project_id: str
    state_dir: Path
    firestore_port: int
    pubsub_port: int
    auth_port: int
    sandbox_port: int
    push_relay_port: int
    function_ports: dict[str, int] = field(default_factory=dict)

    @property
    def logs_dir(self) -> Path:
        return self.state_dir / "logs"

    @property
    def endpoints_path(self) -> Path:
        return self.state_dir / "endpoints.json"

    @property
    def lock_path(self) -> Path:
        return self.state_dir / "up.lock"

    @property
    def webhook_secret_path(self) -> Path:
        return self.state_dir / "stripe_webhook_secret"

    @property
    def auth_dir(self) -> Path:
        return self.state_dir / "auth"

    def host(self, port: int) -> str:
        return f"{HOST}:{port}"

    def url(self, port: int) -> str:
        return f"http://{HOST}:{port}"

    def named_ports(self) -> dict[str, int]:
        """Every port this stack binds, by what binds it (for the in-use check and the shutdown check)."""
        ports = {
            "Firestore emulator": self.firestore_port,
            "Pub/Sub emulator": self.pubsub_port,
            "Auth emulator": self.auth_port,
            "provider sandbox": self.sandbox_port,
            "push relay": self.push_relay_port,
        }
        ports.update({f"function {name}": port for name, port in self.function_ports.items()})
        return ports


def _env_int(name: str) -> int | None:
    value = os.environ.get(name, "").strip()
    if not value:
        return None
    try:
        return int(value)
    except ValueError:
        raise SystemExit(f"{name}={value!r} is not a port number") from None


def build_layout(
    catalog: Catalog,
    *,
    port_base: int | None = None,
    state_dir: Path | None = None,
    project_id: str | None = None,
    firestore_port: int | None = None,
    pubsub_port: int | None = None,
    auth_port: int | None = None,
    sandbox_port: int | None = None,
) -> Layout:
    """Flags win over environment variables, which win over the defaults."""
    base = port_base or _env_int("LOCAL_PORT_BASE") or DEFAULT_PORT_BASE
    return Layout(
        project_id=project_id or os.environ.get("LOCAL_PROJECT_ID") or DEFAULT_PROJECT,
        state_dir=(state_dir or Path(os.environ.get("LOCAL_STATE_DIR") or DEFAULT_STATE_DIR)).resolve(),
        firestore_port=firestore_port or _env_int("LOCAL_FIRESTORE_PORT") or base + FIRESTORE_OFFSET,
        pubsub_port=pubsub_port or _env_int("LOCAL_PUBSUB_PORT") or base + PUBSUB_OFFSET,
        auth_port=auth_port or _env_int("LOCAL_AUTH_PORT") or base + AUTH_OFFSET,
        sandbox_port=sandbox_port or _env_int("LOCAL_SANDBOX_PORT") or base + SANDBOX_OFFSET,
        push_relay_port=base + PUSH_RELAY_OFFSET,
        function_ports={
            spec.name: base + FUNCTIONS_OFFSET + index for index, spec in enumerate(catalog.functions)
        },
    )


def port_in_use(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((HOST, port)) == 0


def busy_ports(layout: Layout) -> dict[str, int]:
    return {name: port for name, port in layout.named_ports().items() if port_in_use(port)}


def free_port_base(functions: int, *, start: int = 20000, stop: int = 32000) -> int:
    """A base whose whole block of ports is free right now (for tests that run beside `make up`).
    The search starts at a random block so concurrent test runs rarely pick the same one. It stays
    below Linux's ephemeral range (32768+), where outgoing connections could take a port between
    this check and the server binding it."""
    size = FUNCTIONS_OFFSET + functions
    first = start + random.randrange((stop - start - size) // size) * size
    for base in itertools.chain(range(first, stop - size, size), range(start, first, size)):
        if all(_bindable(port) for port in range(base, base + size)):
            return base
    raise RuntimeError(f"no block of {size} free ports between {start} and {stop}")


def _bindable(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind((HOST, port))
        except OSError:
            return False
        return True


def function_url(layout: Layout, spec: FunctionSpec) -> str:
    """The function's base URL plus its public path: functions-framework serves every path, so the
    URL that works locally is the one the app and Stripe use in the cloud."""
    return layout.url(layout.function_ports[spec.name]) + (spec.trigger.base_path or "/")
