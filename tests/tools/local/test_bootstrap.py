"""tools/local/bootstrap.sh says once what it installed and nothing when all is in place. Exercised with
`--venv DIR LOCK` (the same install path `make up` and `make test` take) on a lock whose one package
is already in every virtualenv, so nothing is downloaded."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]


def bootstrap(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(REPO / "tools/local/bootstrap.sh"), *args],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


@pytest.fixture(scope="module")
def venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One virtualenv for the module: creating one is the slow part."""
    return tmp_path_factory.mktemp("bootstrap") / ".venv-tool"


def test_an_install_is_announced_once_then_nothing_is_said(tmp_path: Path, venv: Path) -> None:
    lock = tmp_path / "tool.lock"
    lock.write_text("# a lock file\npip\n")

    first = bootstrap("--venv", str(venv), str(lock))
    again = bootstrap("--venv", str(venv), str(lock))

    assert first.returncode == 0, first.stderr
    assert (
        first.stdout.splitlines()[0] == f"… installing {venv} from {lock} (first run or a lock file changed)"
    )
    assert first.stdout.splitlines()[-1].startswith(f"✓ installed {venv} from {lock} (")
    assert (again.returncode, again.stdout, again.stderr) == (0, "", "")

    lock.write_text("# a lock file, changed\npip\n")
    changed = bootstrap("--venv", str(venv), str(lock))
    assert changed.stdout.startswith("… installing")


def test_a_failed_install_shows_the_end_of_its_log(tmp_path: Path, venv: Path) -> None:
    lock = tmp_path / "broken.lock"
    lock.write_text("this is not a requirement ===\n")

    result = bootstrap("--venv", str(venv), str(lock))

    assert result.returncode == 1
    assert result.stderr.startswith(f"✗ {venv} ({lock}) failed; last lines of ")


def test_a_missing_lock_file_is_one_line(tmp_path: Path) -> None:
    result = bootstrap("--venv", str(tmp_path / ".venv-x"), str(tmp_path / "missing.lock"))

    assert (result.returncode, result.stderr) == (
        1,
        f"✗ lock file {tmp_path / 'missing.lock'} does not exist\n",
    )
