"""What every command of `python -m tools` shares: the options spelled once, ending with an ExitCode,
continuing in another virtualenv.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path
from typing import Annotated, NoReturn

import typer

from tools.exit_codes import ExitCode
from tools.project_files import ROOT

Stack = Annotated[str, typer.Option("--stack", help="stack name: reads Pulumi.<stack>.yaml")]
StateDir = Annotated[
    Path | None, typer.Option(help="runtime directory of the local stack (env LOCAL_STATE_DIR; .local)")
]
Endpoints = Annotated[Path, typer.Option(help="endpoints.json of a running `make up`")]
DEFAULT_ENDPOINTS = ROOT / ".local" / "endpoints.json"


def done(code: int) -> NoReturn:
    """End the command with `code` (an ExitCode; other values pass through, e.g. Pulumi's own)."""
    raise typer.Exit(int(code))


def in_venv(venv: str, module: str, argv: list[str]) -> None:
    """Continue this command in `venv` (re-executing `python -m tools argv` there) unless `module` can be
    imported here already. The other virtualenvs exist because their pins conflict with .venv's."""
    if importlib.util.find_spec(module) is not None:
        return
    python = ROOT / venv / "bin" / "python"
    if not python.is_file():
        print(f"error: {venv} is missing: run `make setup-policy` first", file=sys.stderr)
        done(ExitCode.ENVIRONMENT)
    sys.stdout.flush()
    os.execv(python, [str(python), "-m", "tools", *argv])
