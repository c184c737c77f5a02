"""The functions archive is byte-for-byte reproducible and its name changes with the code only."""

from __future__ import annotations

import os
import shutil
import zipfile
from pathlib import Path

import pytest

from components.archive import build_archive

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A copy of the parts of the repository the archive could be affected by."""
    copy = tmp_path / "repo"
    shutil.copytree(
        ROOT / "functions_src", copy / "functions_src", ignore=shutil.ignore_patterns("__pycache__")
    )
    shutil.copy(ROOT / "firestore.rules", copy / "firestore.rules")
    shutil.copy(ROOT / "Pulumi.staging.yaml", copy / "Pulumi.staging.yaml")
    return copy


def archive_name(repo: Path, out: Path) -> str:
    return build_archive(repo / "functions_src", out).object_name


def test_name_carries_the_content_hash(repo: Path, tmp_path: Path) -> None:
    archive = build_archive(repo / "functions_src", tmp_path / "out")
    assert archive.object_name == f"functions-{archive.sha256[:16]}.zip"
    assert archive.path.name == archive.object_name and archive.path.is_file()


def test_same_source_gives_identical_bytes(repo: Path, tmp_path: Path) -> None:
    first = build_archive(repo / "functions_src", tmp_path / "a")
    # Touch every file: timestamps must not leak into the archive.
    for path in (repo / "functions_src").rglob("*"):
        if path.is_file():
            os.utime(path, (1_900_000_000, 1_900_000_000))
    second = build_archive(repo / "functions_src", tmp_path / "b")
    assert first.path.read_bytes() == second.path.read_bytes()


def test_a_code_change_changes_the_name(repo: Path, tmp_path: Path) -> None:
    before = archive_name(repo, tmp_path / "a")
    with open(repo / "functions_src" / "main.py", "a", encoding="utf-8") as handle:
        handle.write("\n# changed\n")
    assert archive_name(repo, tmp_path / "b") != before


def test_only_the_current_archive_is_kept(repo: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    before = archive_name(repo, out)
    with open(repo / "functions_src" / "main.py", "a", encoding="utf-8") as handle:
        handle.write("\n# changed\n")
    after = archive_name(repo, out)
    assert sorted(p.name for p in out.iterdir()) == [after] and after != before


def test_changes_outside_functions_src_and_local_junk_do_not(repo: Path, tmp_path: Path) -> None:
    before = archive_name(repo, tmp_path / "a")
    (repo / "firestore.rules").write_text("rules_version = '2';\n", encoding="utf-8")
    (repo / "Pulumi.staging.yaml").write_text("config: {}\n", encoding="utf-8")
    source = repo / "functions_src"
    (source / "__pycache__").mkdir(exist_ok=True)
    (source / "__pycache__" / "main.cpython-311.pyc").write_bytes(b"\x00bytecode")
    (source / "launchready" / "stale.pyc").write_bytes(b"\x00bytecode")
    (source / "tests").mkdir()
    (source / "tests" / "test_main.py").write_text("def test(): pass\n", encoding="utf-8")
    (source / ".DS_Store").write_bytes(b"junk")
    (source / ".env").write_text("STRIPE_API_KEY=sk_test_local\n", encoding="utf-8")
    (source / ".venv" / "bin").mkdir(parents=True)
    (source / ".venv" / "bin" / "python").write_text("#!/bin/sh\n", encoding="utf-8")
    assert archive_name(repo, tmp_path / "b") == before


def test_entries_are_sorted_with_fixed_metadata(repo: Path, tmp_path: Path) -> None:
    archive = build_archive(repo / "functions_src", tmp_path / "out")
    with zipfile.ZipFile(archive.path) as bundle:
        infos = bundle.infolist()
        names = [info.filename for info in infos]
        assert names == sorted(names)
        assert "main.py" in names and "requirements.txt" in names
        assert "catalog.json" not in names  # deploy-time data stays out of the deployed source
        assert all(info.date_time == (1980, 1, 1, 0, 0, 0) for info in infos)
        assert all(info.external_attr >> 16 == 0o100644 for info in infos)
        assert bundle.read("main.py") == (repo / "functions_src" / "main.py").read_bytes()
