"""`make preview|deploy STACK=`: run `pulumi preview --diff` / `pulumi up` once what they need is in place.

    python -m tools.ops.pulumi_cli preview --stack staging
    python -m tools.ops.pulumi_cli deploy --stack prod

Before handing over to the Pulumi CLI it checks, in order, and stops with one line saying what to do:
the CLI is installed, it is logged in to a state backend (`pulumi whoami`), the stack exists in that
backend (`pulumi stack select`), and Google Application Default Credentials are usable (the gcp
provider authenticates with them). Exit codes: 0 Pulumi succeeded, 3 something is missing (the line
says what), otherwise Pulumi's own exit code.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from collections.abc import Sequence

from .failures import EXIT_ENVIRONMENT, explain

COMMANDS = {"preview": ["preview", "--diff"], "deploy": ["up"]}
INSTALL_URL = "https://www.pulumi.com/docs/install/"


class NotReady(Exception):
    """Something the Pulumi CLI needs is missing; the message says what to do."""


def _run(pulumi: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([pulumi, *args, "--non-interactive"], capture_output=True, text=True, check=False)


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1].removeprefix("error: ") if lines else "no output"


def check_ready(stack: str) -> str:
    """The path of the Pulumi CLI once everything is in place; raises NotReady otherwise."""
    pulumi = shutil.which("pulumi")
    if not pulumi:
        raise NotReady(f"the Pulumi CLI is not installed: see {INSTALL_URL}, then `pulumi login`")
    whoami = _run(pulumi, "whoami")
    if whoami.returncode != 0:
        raise NotReady(
            "the Pulumi CLI is not logged in to a state backend: run `pulumi login` (Pulumi Cloud) or "
            f"`pulumi login gs://<state-bucket>` ({_last_line(whoami.stderr or whoami.stdout)})"
        )
    selected = _run(pulumi, "stack", "select", stack)
    if selected.returncode != 0:
        raise NotReady(
            f"stack '{stack}' does not exist in this backend: create it with `pulumi stack init {stack}` "
            f"(see README, step 2) ({_last_line(selected.stderr or selected.stdout)})"
        )
    import google.auth

    try:
        google.auth.default()
    except Exception as exc:
        line = explain(exc, project=None, needs="")
        if line is None:
            raise
        raise NotReady(line) from exc
    return pulumi


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.ops.pulumi_cli", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=sorted(COMMANDS))
    parser.add_argument("--stack", required=True, help="Pulumi stack, e.g. staging or prod")
    args = parser.parse_args(argv)
    try:
        pulumi = check_ready(args.stack)
    except NotReady as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_ENVIRONMENT
    command = [pulumi, *COMMANDS[args.command], "--stack", args.stack]
    os.execv(pulumi, command)
    return 0  # not reached: execv replaces this process


if __name__ == "__main__":
    sys.exit(main())
