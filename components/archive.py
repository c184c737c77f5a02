"""One deterministic source archive per function: `main.py`, `requirements.txt` and the function's import
closure inside `launchready` (every module its handler imports, transitively, imports inside functions
included), each package with its data files (the console's templates).

The same sources give the same bytes whatever zlib the machine has (sorted, uncompressed entries with
fixed timestamps and modes), and the object name carries the archive's hash: a change to a module
changes exactly the archives of the functions whose closure holds it. Standard library only.
"""

from __future__ import annotations

import ast
import fnmatch
import functools
import hashlib
import importlib.util
import re
import sys
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

PACKAGE = "launchready"
# main.py resolves `main.<entry_point>` to the function of that name in this package's module.
HANDLERS = f"{PACKAGE}.handlers"
ENTRY_FILES = ("main.py", "requirements.txt")
# Package data travels with its package; these never do.
JUNK_DIRS = frozenset({"__pycache__", ".pytest_cache", ".mypy_cache", ".ruff_cache", "tests", "test"})
JUNK_FILES = ("*.py", "*.pyc", "*.pyo", ".DS_Store", "*.swp", "*~", ".env", ".env.*", ".coverage")
# 1980-01-01 is the earliest timestamp the zip format can store.
FIXED_TIMESTAMP = (1980, 1, 1, 0, 0, 0)
FILE_MODE = 0o100644  # regular file, rw-r--r--


@dataclass(frozen=True)
class Closure:
    """What a handler needs: its `launchready` modules and their files (relative to the source
    directory), and the import statements of other packages (third-party and standard library alike,
    each as source text) that run when those modules are imported, not those inside functions or
    `if TYPE_CHECKING:` blocks."""

    modules: tuple[str, ...]
    files: tuple[str, ...]
    external_imports: tuple[str, ...]

    @property
    def third_party_imports(self) -> tuple[str, ...]:
        """The external import statements of packages outside the standard library."""
        return tuple(statement for statement in self.external_imports
                     if _top_level(statement) not in sys.stdlib_module_names)


@dataclass(frozen=True)
class SourceArchive:
    name: str  # the function's resource name, e.g. stripe-webhook
    path: Path
    sha256: str
    files: tuple[str, ...]

    @property
    def object_name(self) -> str:
        return f"{self.name}-{self.sha256[:16]}.zip"


def module_file(source_dir: Path, module: str) -> Path | None:
    """The file that defines `module` under source_dir (a package's __init__.py), or None."""
    base = source_dir.joinpath(*module.split("."))
    for candidate in (base / "__init__.py", base.with_suffix(".py")):
        if candidate.is_file():
            return candidate
    return None


def import_closure(source_dir: Path, module: str) -> Closure:
    """Every `launchready` module `module` needs (itself, its parent packages and all they import,
    transitively, imports inside functions included) and the external import statements that run when
    it is imported. Raises ModuleNotFoundError for a `launchready` module that does not exist."""
    source_dir = source_dir.resolve()
    files, _ = _traverse(source_dir, module, at_import_only=False)
    _, external = _traverse(source_dir, module, at_import_only=True)
    data = {data_file for path in files.values() if path.name == "__init__.py"
            for data_file in _package_data(path.parent)}
    relative = sorted(path.relative_to(source_dir).as_posix() for path in {*files.values(), *data})
    return Closure(tuple(sorted(files)), tuple(relative), tuple(sorted(external)))


def _traverse(source_dir: Path, module: str, *, at_import_only: bool) -> tuple[dict[str, Path], set[str]]:
    """The `launchready` modules reached from `module` (by path) and the external statements met, over
    every import or, with `at_import_only`, over those that run when a module is imported."""
    files: dict[str, Path] = {}
    external: set[str] = set()
    pending = [module]
    while pending:
        name = pending.pop()
        if name in files:
            continue
        path = module_file(source_dir, name)
        if path is None:
            raise ModuleNotFoundError(f"{name} is not under {source_dir}", name=name)
        files[name] = path
        if "." in name:
            pending.append(name.rpartition(".")[0])  # importing a module runs its parents first
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for imported, statement, maybe_module, at_import in _imports(path, package):
            if at_import_only and not at_import:
                continue
            if not (imported == PACKAGE or imported.startswith(f"{PACKAGE}.")):
                external.add(statement)
            elif not maybe_module or module_file(source_dir, imported):
                pending.append(imported)
    return files, external


def _imports(path: Path, package: str) -> tuple[tuple[str, str, bool, bool], ...]:
    """(module name, statement, whether the name may be something else than a module, whether it runs
    when the module is imported) for every import in the file, at any depth: `from a import b` imports
    a, and b if that is a module."""
    return _parsed_imports(path.read_bytes(), str(path), package)


@functools.lru_cache(maxsize=4096)
def _parsed_imports(source: bytes, filename: str, package: str) -> tuple[tuple[str, str, bool, bool], ...]:
    """`_imports` of one file's bytes; every archive of a program run shares the parse of each module."""
    found: list[tuple[str, str, bool, bool]] = []
    for node, at_import in _import_nodes(ast.parse(source, filename=filename), True):
        if isinstance(node, ast.Import):
            found += [(alias.name, ast.unparse(ast.Import(names=[alias])), False, at_import)
                      for alias in node.names]
        elif node.module != "__future__":  # a compiler directive, not a module
            base = importlib.util.resolve_name("." * node.level + (node.module or ""), package) \
                if node.level else str(node.module)
            statement = ast.unparse(ast.ImportFrom(module=base, names=node.names, level=0))
            found.append((base, statement, False, at_import))
            found += [(f"{base}.{alias.name}", statement, True, at_import)
                      for alias in node.names if alias.name != "*"]
    return tuple(found)


def _import_nodes(node: ast.AST, at_import: bool) -> Iterator[tuple[ast.Import | ast.ImportFrom, bool]]:
    """The import statements under `node`, each with whether it runs at import time (not inside a
    function, nor in the body of `if TYPE_CHECKING:`)."""
    if isinstance(node, (ast.Import, ast.ImportFrom)):
        yield node, at_import
        return
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
        at_import = False
    if isinstance(node, ast.If) and _is_type_checking(node.test):
        for statement in node.body:
            yield from _import_nodes(statement, False)
        for statement in node.orelse:
            yield from _import_nodes(statement, at_import)
        return
    for child in ast.iter_child_nodes(node):
        yield from _import_nodes(child, at_import)


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _package_data(package_dir: Path) -> list[Path]:
    """Non-Python files of the package, in it or in its subdirectories that are not packages."""
    found = []
    for path in package_dir.rglob("*"):
        parts = path.relative_to(package_dir).parts
        inside_subpackage = any((package_dir.joinpath(*parts[:depth]) / "__init__.py").is_file()
                                for depth in range(1, len(parts)))
        if (path.is_file() and not path.is_symlink() and not inside_subpackage
                and not JUNK_DIRS.intersection(parts[:-1])
                and not any(fnmatch.fnmatch(path.name, pattern) for pattern in JUNK_FILES)):
            found.append(path)
    return found


def _top_level(statement: str) -> str:
    return re.split(r"[\s.]", statement.split(maxsplit=1)[1], maxsplit=1)[0]


def build_archive(source_dir: Path, output_dir: Path, *, name: str, entry_point: str) -> SourceArchive:
    """Write `<name>-<hash>.zip` with the function's files into output_dir (replacing that function's
    earlier archives there) and describe it."""
    source_dir = source_dir.resolve()
    closure = import_closure(source_dir, f"{HANDLERS}.{entry_point}")
    files = sorted({*ENTRY_FILES, *closure.files})
    missing = [file for file in ENTRY_FILES if not (source_dir / file).is_file()]
    if missing:
        raise FileNotFoundError(f"{source_dir} has no {', '.join(missing)}")
    output_dir.mkdir(parents=True, exist_ok=True)
    partial = output_dir / f"{name}.zip.partial"
    with zipfile.ZipFile(partial, "w") as bundle:
        for relative in files:
            info = zipfile.ZipInfo(relative, date_time=FIXED_TIMESTAMP)
            info.external_attr = FILE_MODE << 16
            info.create_system = 3  # Unix, so the mode above is honoured
            info.compress_type = zipfile.ZIP_STORED  # no zlib: the bytes cannot depend on its version
            bundle.writestr(info, (source_dir / relative).read_bytes())
    sha256 = hashlib.sha256(partial.read_bytes()).hexdigest()
    archive = SourceArchive(name=name, path=output_dir / f"{name}-{sha256[:16]}.zip", sha256=sha256,
                            files=tuple(files))
    # Rename last so a half-written archive is never picked up under the final name.
    partial.replace(archive.path)
    # This function's archives of earlier sources are never read again.
    own = re.compile(rf"^{re.escape(name)}-[0-9a-f]{{16}}\.zip$")
    for stale in output_dir.iterdir():
        if stale != archive.path and own.match(stale.name):
            stale.unlink()
    return archive
