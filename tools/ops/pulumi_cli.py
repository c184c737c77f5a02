"""Whether the Pulumi CLI can run for a stack: installed, logged in, the stack exists, Google credentials.

Checked in that order before `preview` and `deploy` hand over to Pulumi; the first thing missing is one
line saying what to do (exit ENVIRONMENT), never a Pulumi error halfway through.
"""

from __future__ import annotations

import shutil
import subprocess
import sys

from tools.exit_codes import ExitCode

from .failures import explain

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


def ready(stack: str) -> ExitCode:
    """OK when `pulumi preview`/`up` can run for `stack`; otherwise ENVIRONMENT, the one line printed."""
    try:
        check_ready(stack)
    except NotReady as exc:
        print(f"error: {exc}", file=sys.stderr)
        return ExitCode.ENVIRONMENT
    return ExitCode.OK
