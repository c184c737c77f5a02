"""Deterministic archive of functions_src for Cloud Functions.

The same source always yields the same bytes (sorted entries, fixed timestamps and permissions, local
junk left out), and the object name carries a hash of the archived content. A code change therefore
uploads a new object and redeploys every function; anything outside functions_src changes nothing.
"""

from __future__ import annotations

import fnmatch
import hashlib
import zipfile
from dataclasses import dataclass
from pathlib import Path

# Directories that never belong in the deployed source: caches, virtualenvs, tests, build output.
EXCLUDED_DIRS = frozenset(
    {
        "__pycache__",
        ".pytest_cache",
        ".mypy_cache",
        ".ruff_cache",
        ".venv",
        "venv",
        "node_modules",
        ".git",
        ".idea",
        ".vscode",
        ".local",
        "build",
        "dist",
        "tests",
        "test",
    }
)
EXCLUDED_FILE_PATTERNS = (
    "*.pyc",
    "*.pyo",
    ".DS_Store",
    "*.swp",
    "*~",
    ".env",
    ".env.*",
    ".coverage",
    "*.egg-info",
    "test_*.py",
    "*_test.py",
)
# 1980-01-01 is the earliest timestamp the zip format can store.
FIXED_TIMESTAMP = (1980, 1, 1, 0, 0, 0)
FILE_MODE = 0o100644  # regular file, rw-r--r--


@dataclass(frozen=True)
class SourceArchive:
    path: Path
    sha256: str
    files: tuple[str, ...]

    @property
    def object_name(self) -> str:
        return f"functions-{self.sha256[:16]}.zip"


def _included(relative: Path) -> bool:
    if any(part in EXCLUDED_DIRS or part.endswith(".egg-info") for part in relative.parts[:-1]):
        return False
    return not any(fnmatch.fnmatch(relative.name, pattern) for pattern in EXCLUDED_FILE_PATTERNS)


def source_files(source_dir: Path) -> list[Path]:
    """Files to archive, relative to source_dir, in a stable order (POSIX path order)."""
    files = [
        path.relative_to(source_dir)
        for path in source_dir.rglob("*")
        if path.is_file() and not path.is_symlink() and _included(path.relative_to(source_dir))
    ]
    return sorted(files, key=lambda relative: relative.as_posix())


def content_hash(source_dir: Path, files: list[Path]) -> str:
    """SHA-256 over each file's path and bytes; independent of zip and zlib versions."""
    digest = hashlib.sha256()
    for relative in files:
        data = (source_dir / relative).read_bytes()
        digest.update(relative.as_posix().encode() + b"\0" + str(len(data)).encode() + b"\0")
        digest.update(data)
    return digest.hexdigest()


def build_archive(source_dir: Path, output_dir: Path) -> SourceArchive:
    """Write `functions-<hash>.zip` of source_dir into output_dir and describe it."""
    source_dir = source_dir.resolve()
    files = source_files(source_dir)
    if not files:
        raise FileNotFoundError(f"{source_dir} has no files to deploy")
    sha256 = content_hash(source_dir, files)
    archive = SourceArchive(
        path=output_dir / f"functions-{sha256[:16]}.zip",
        sha256=sha256,
        files=tuple(f.as_posix() for f in files),
    )
    output_dir.mkdir(parents=True, exist_ok=True)
    partial = archive.path.with_suffix(".zip.partial")
    with zipfile.ZipFile(partial, "w") as bundle:
        for relative in files:
            info = zipfile.ZipInfo(relative.as_posix(), date_time=FIXED_TIMESTAMP)
            info.external_attr = FILE_MODE << 16
            info.create_system = 3  # Unix, so the mode above is honoured
            info.compress_type = zipfile.ZIP_DEFLATED
            bundle.writestr(info, (source_dir / relative).read_bytes(), compresslevel=9)
    # Rename last so a half-written archive is never picked up under the final name.
    partial.replace(archive.path)
    # Archives of earlier source versions are never read again; keep build/ to the current one.
    for stale in output_dir.glob("functions-*.zip"):
        if stale != archive.path:
            stale.unlink()
    return archive
