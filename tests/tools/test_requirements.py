"""The dependency layout: requirements/local.lock is all `make up` needs, dev.lock adds the checks on top.

`make up` installs only local.lock, so a module of the function code, the local stack or the provider
sandbox importing a package that only dev.lock brings would fail on a fresh clone, not here (the test
virtualenv has both). These tests catch that statically.
"""

from __future__ import annotations

import ast
import re
import sys
from importlib.metadata import packages_distributions
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
REQUIREMENTS = ROOT / "requirements"
# Code that runs under `make up` (tools/bench's start-up benchmarks run the stack too): the command line's
# shared modules and its local commands, the journey `make demo` runs, and the readers of the repository's
# files.
LOCAL_CODE = (
    "functions_src",
    "tools/local",
    "tools/sandbox",
    "tools/bench",
    "tools/journey",
    "tools/cli/__init__.py",
    "tools/cli/common.py",
    "tools/cli/local.py",
    "tools/exit_codes.py",
    "tools/project_files.py",
    "components/catalog.py",
    "components/function_env.py",
    "components/archive.py",
)
# Imported under `make up` too, but what they import inside functions runs only in the dev environment
# (the other commands; the program's engine config in stack_config), so their module level is checked.
IMPORTED_MODULES = (
    "tools/cli/offline.py",
    "tools/cli/ops.py",
    "tools/cli/bench.py",
    "components/stack_config.py",
)
FIRST_PARTY = {"components", "tools", "launchready", "main", "functions_src"}


def _pins(lock: Path) -> dict[str, str]:
    pins = {}
    for line in lock.read_text().splitlines():
        match = re.match(r"^([A-Za-z0-9._-]+)==(\S+)", line)
        if match:
            pins[_normal(match.group(1))] = match.group(2)
    return pins


def _normal(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _imported_top_levels(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def _local_code_files() -> list[Path]:
    files = []
    for entry in LOCAL_CODE:
        path = ROOT / entry
        files.extend(sorted(path.rglob("*.py")) if path.is_dir() else [path])
    return files


def test_local_lock_pins_the_same_versions_as_dev_lock() -> None:
    local, dev = _pins(REQUIREMENTS / "local.lock"), _pins(REQUIREMENTS / "dev.lock")
    assert local, "local.lock has no pins"
    different = {
        name: (version, dev.get(name)) for name, version in local.items() if dev.get(name) != version
    }
    assert not different, f"local.lock and dev.lock disagree (name: (local, dev)): {different}"
    assert set(dev) > set(local)


def test_local_lock_holds_the_deployed_function_pins() -> None:
    local = _pins(REQUIREMENTS / "local.lock")
    functions = _pins(ROOT / "functions_src" / "requirements.txt")
    assert {name: local.get(name) for name in functions} == functions


def test_local_lock_leaves_out_the_pulumi_sdks_and_check_tools() -> None:
    local = _pins(REQUIREMENTS / "local.lock")
    assert not {"pulumi", "pulumi-gcp", "pulumi-cloudflare", "pytest", "ruff"} & set(local)


@pytest.mark.parametrize("lock", ["local", "dev"])
def test_each_lock_records_the_command_that_produced_it(lock: str) -> None:
    header = (REQUIREMENTS / f"{lock}.lock").read_text().splitlines()[:3]
    command = f"uv pip compile requirements/{lock}.in -o requirements/{lock}.lock --python-version 3.11"
    assert any(line.strip("# ") == command for line in header), header


def test_code_run_by_make_up_imports_only_what_local_lock_installs() -> None:
    provided = packages_distributions()
    local = _pins(REQUIREMENTS / "local.lock")
    missing: dict[str, set[str]] = {}
    for path in _local_code_files():
        for name in _imported_top_levels(path) - FIRST_PARTY - set(sys.stdlib_module_names):
            distributions = {_normal(dist) for dist in provided.get(name, [])}
            if not distributions & set(local):
                missing.setdefault(name, set()).add(str(path.relative_to(ROOT)))
    assert not missing, f"imported under `make up` but not in requirements/local.lock: {missing}"


def test_modules_imported_under_make_up_load_with_local_lock_alone() -> None:
    """`python -m tools up` imports every command module to build the app: their module-level imports must
    load with local.lock alone."""
    provided = packages_distributions()
    local = _pins(REQUIREMENTS / "local.lock")
    for entry in IMPORTED_MODULES:
        tree = ast.parse((ROOT / entry).read_text(), filename=entry)
        names = {
            alias.name.split(".")[0]
            for node in tree.body
            if isinstance(node, ast.Import)
            for alias in node.names
        }
        names |= {
            node.module.split(".")[0]
            for node in tree.body
            if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module
        }
        for name in names - FIRST_PARTY - set(sys.stdlib_module_names):
            assert {_normal(d) for d in provided.get(name, [])} & set(local), (
                f"{entry} imports {name} at import time"
            )
