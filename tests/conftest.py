"""Shared fixtures: Google's emulators, started once per test session on free loopback ports, and the
program evaluated offline under Pulumi mocks once per session for each stack."""

import os
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
# tests/policy runs in .venv-policy (pulumi-policy pins an older protobuf): `make test-policy`.
collect_ignore = ["policy"]
sys.path[:0] = [str(REPO / "functions_src"), str(REPO)]

PROJECT = "demo-launchready"
# Set before any client or settings() is created: the function code reads them once per process.
os.environ["GOOGLE_CLOUD_PROJECT"] = PROJECT
os.environ.setdefault("LAUNCHREADY_ENV", "test")

from components.catalog import Catalog, load_catalog  # noqa: E402
from components.function_env import FUNCTIONS, PUBLISHES, catalog_environment  # noqa: E402
from tools.local import emulators  # noqa: E402
from tools.local.environment import FAKE_SECRETS  # noqa: E402
from tools.offline.plan.evaluate import evaluate_stack  # noqa: E402
from tools.offline.plan.mocks import PlanMocks  # noqa: E402


@pytest.fixture(scope="session")
def emulator_logs() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="launchready-emulators-") as tmp:
        yield Path(tmp)


def _serve(process: emulators.ManagedProcess, env_var: str, host: str) -> Iterator[str]:
    previous = os.environ.get(env_var)
    os.environ[env_var] = host
    try:
        yield host
    finally:
        process.stop()
        if previous is None:
            os.environ.pop(env_var, None)
        else:
            os.environ[env_var] = previous


@pytest.fixture(scope="session")
def firestore_emulator(emulator_logs: Path) -> Iterator[str]:
    port = emulators.free_port()
    process = emulators.start_firestore(port, emulator_logs)
    yield from _serve(process, "FIRESTORE_EMULATOR_HOST", f"127.0.0.1:{port}")


@pytest.fixture(scope="session")
def pubsub_emulator(emulator_logs: Path) -> Iterator[str]:
    port = emulators.free_port()
    process = emulators.start_pubsub(port, emulator_logs, PROJECT)
    yield from _serve(process, "PUBSUB_EMULATOR_HOST", f"127.0.0.1:{port}")


@pytest.fixture(scope="session")
def auth_emulator(emulator_logs: Path) -> Iterator[str]:
    port = emulators.free_port()
    process = emulators.start_auth(port, emulator_logs / "auth", PROJECT)
    yield from _serve(process, "FIREBASE_AUTH_EMULATOR_HOST", f"127.0.0.1:{port}")


@pytest.fixture
def clean_firestore(firestore_emulator: str) -> str:
    emulators.clear_firestore(firestore_emulator, PROJECT)
    return firestore_emulator

@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO


def catalog_env(*functions: str) -> dict[str, str]:
    """The catalog environment the program gives `functions[0]`, for a test that runs it (and, in the
    same process, the others named): each variable as the first function has it, topics and function
    lists joined."""
    catalog = load_catalog()
    env: dict[str, str] = {}
    for name in functions:
        spec = catalog.function(name)
        # The program and the local runner give a function its catalog `env` on top (components/functions.py).
        for variable, value in {**catalog_environment(catalog, spec), **spec.env}.items():
            if variable in (PUBLISHES, FUNCTIONS) and variable in env:
                env[variable] = ",".join(dict.fromkeys([*env[variable].split(","), *value.split(",")]))
            else:
                env.setdefault(variable, value)
    return env


@pytest.fixture(autouse=True)
def runs_as(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """`@pytest.mark.runs_as("crm_worker", ...)`: the test runs the deployed code with the catalog
    settings the program gives that function (components/function_env.py); without the mark none are
    set, as for code that reads none."""
    marker = request.node.get_closest_marker("runs_as")
    for name, value in catalog_env(*marker.args).items() if marker else ():
        monkeypatch.setenv(name, value)
    for secret in catalog_secrets(*marker.args) if marker else ():
        # As the local runner does: the catalog's secrets in their test-mode formats (a webhook signing
        # secret is each test's own).
        if secret in FAKE_SECRETS and secret not in os.environ:
            monkeypatch.setenv(secret, FAKE_SECRETS[secret])


def catalog_secrets(*functions: str) -> list[str]:
    """The secrets the catalog grants the functions named, each once."""
    catalog = load_catalog()
    return sorted({secret for name in functions for secret in catalog.function(name).secrets})


@pytest.fixture(scope="session")
def catalog() -> Catalog:
    return load_catalog(REPO / "components" / "data" / "catalog.json")


def stack_values(stack: str) -> dict[str, Any]:
    """The `launchready:*` and `gcp:*` values of Pulumi.<stack>.yaml, as YAML gives them."""
    document = yaml.safe_load((REPO / f"Pulumi.{stack}.yaml").read_text(encoding="utf-8"))
    return {k: v for k, v in document["config"].items() if k.startswith(("launchready:", "gcp:"))}


@pytest.fixture(scope="session")
def staging() -> PlanMocks:
    """The whole program evaluated with Pulumi.staging.yaml."""
    return evaluate_stack("staging", REPO)


@pytest.fixture(scope="session")
def prod() -> PlanMocks:
    """The whole program evaluated with Pulumi.prod.yaml."""
    return evaluate_stack("prod", REPO)


@pytest.fixture(scope="session", params=["staging", "prod"])
def stack_plan(request: pytest.FixtureRequest) -> PlanMocks:
    return request.getfixturevalue(request.param)
