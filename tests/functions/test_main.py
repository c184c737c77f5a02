"""main.py, the module Cloud Functions and the local runner load: every catalog entry point resolves to
its handler, and asking for one loads nothing of another handler (each in a fresh interpreter)."""

import ast
import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import main
import pytest

from components.archive import HANDLERS, import_closure
from components.catalog import load_catalog

SOURCE = Path(main.__file__).resolve().parent
CATALOG = load_catalog()
ENTRY_POINTS = sorted({spec.entry_point for spec in CATALOG.functions})
# The modules functions-framework itself loads (and with them anything a function may load anyway).
FRAMEWORK = "import functions_framework"


def test_main_resolves_entry_points_where_the_archive_looks_for_them() -> None:
    assert main.HANDLERS == HANDLERS


@pytest.mark.parametrize("entry_point", ENTRY_POINTS)
def test_every_catalog_entry_point_is_its_handlers_function(entry_point: str) -> None:
    function = getattr(main, entry_point)
    assert callable(function) and function.__module__.startswith(f"{HANDLERS}.{entry_point}")


@pytest.mark.parametrize("name", ["not_a_function", "_private", "__path__"])
def test_other_names_are_missing_attributes(name: str) -> None:
    assert not hasattr(main, name)


def _loaded_after(statements: list[str] | tuple[str, ...]) -> set[str]:
    """The modules a fresh interpreter has loaded after running `statements` with main.py's directory
    on its path."""
    script = "\n".join([*statements, "import sys, json", "print(json.dumps(sorted(sys.modules)))"])
    result = subprocess.run([sys.executable, "-c", script], cwd=SOURCE, capture_output=True, text=True,
                            env={"PYTHONPATH": str(SOURCE), "PATH": "/usr/bin:/bin"}, check=True)
    return set(json.loads(result.stdout))


def _is_module(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except ModuleNotFoundError:  # a parent is a module, not a package
        return False


def _packages(statements: tuple[str, ...]) -> set[str]:
    """The modules import statements name: `import a.b` -> a.b; `from a import b` -> a.b if that is a
    module, else a."""
    names: set[str] = set()
    for node in (ast.parse(statement).body[0] for statement in statements):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = str(node.module)
            names.update(f"{base}.{alias.name}" if _is_module(f"{base}.{alias.name}") else base
                         for alias in node.names)
    return names


def _within(module: str, packages: set[str]) -> bool:
    return any(module == package or module.startswith(f"{package}.") for package in packages)


CLOSURES = {entry_point: import_closure(SOURCE, f"{HANDLERS}.{entry_point}") for entry_point in ENTRY_POINTS}
PACKAGES = {entry_point: _packages(closure.third_party_imports) for entry_point, closure in CLOSURES.items()}


@pytest.mark.parametrize("entry_point", ENTRY_POINTS)
def test_one_entry_point_loads_only_its_own_closure(entry_point: str) -> None:
    closure = CLOSURES[entry_point]
    loaded = _loaded_after(["import main", f"main.{entry_point}"])
    # The floor: the framework and the packages of the function's own closure, imported as it imports
    # them (some load submodules only when their attributes are first used).
    floor = _loaded_after([FRAMEWORK, *closure.external_imports])

    own = set(closure.modules)
    # The closure also holds modules imported only inside functions, which load later, if ever.
    assert f"{HANDLERS}.{entry_point}" in loaded
    assert {name for name in loaded if name.startswith("launchready")} <= own
    beyond = {name for name in loaded - own - floor - {"main"} if not _within(name, PACKAGES[entry_point])}
    assert not beyond, f"loaded, but neither in the floor nor in a package the function imports: {beyond}"
    for other in ENTRY_POINTS:
        # A package only another function imports (and that the floor does not load anyway) stays out.
        theirs = {package for package in PACKAGES[other] - PACKAGES[entry_point] if package not in floor}
        assert not {name for name in loaded if _within(name, theirs)}, f"{other}'s packages loaded"
