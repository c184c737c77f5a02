"""`python -m tools <command>`: every command of the repository, one Typer app; the make targets call it.

Each command maps its options onto one function of the module that does the work and exits with that
function's ExitCode (tools/exit_codes.py). Modules are imported inside the commands, so `--help` and the
commands of `make up` load nothing they do not use.
"""

from __future__ import annotations

import sys

import typer

from tools.cli import bench, local, offline, ops
from tools.exit_codes import ExitCode

app = typer.Typer(
    name="python -m tools",
    help="Launch Ready's commands: the local stack, the offline checks, the deploy and operations tools.",
    epilog="Exit codes (docs/cli.md): " + "; ".join(f"{c.value} {c.name.lower()}" for c in ExitCode) + ".",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)
for group in (local.app, offline.app, ops.app):
    app.add_typer(group)
app.add_typer(bench.app, name="bench")


def main(argv: list[str] | None = None) -> int:
    """Run the app on `argv` (default: the process's arguments) and return its exit code instead of
    exiting. Usage errors are USAGE (2, as Click reports them) and Ctrl-C INTERRUPTED (130)."""
    try:
        app(args=argv, prog_name="python -m tools")
    except SystemExit as end:
        if isinstance(end.code, str):  # SystemExit("message"): Python would print it and exit 1
            print(end.code, file=sys.stderr)
            return ExitCode.FAILED
        return int(end.code or 0)
    return ExitCode.OK
