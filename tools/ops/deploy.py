"""`make deploy|preview`: a stack deployed in the first-deploy phases of components/phases.py.

Idempotent: a re-run continues from the phase the stack output `deployPhase` records (only this driver's
own `up` changes it); every gate on the outside is read live on each run, never from a stack output.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from components.phases import PHASE_NAMES, PHASE_VARIABLE, phase_index
from components.stack_config import StackConfig, StackConfigError, parse_stack_config
from tools.exit_codes import ExitCode
from tools.project_files import ROOT, read_stack

from .hosting_api import CustomDomainState, read_custom_domain
from .preflight.google_reads import CannotCheck

# A new project's service agents (Eventarc, Pub/Sub) receive their roles minutes after their API is on;
# until then creating the Firestore trigger fails with the API's own advice: "Permission denied while using
# the Eventarc Service Agent. If you recently started to use Eventarc, it may take a few minutes before all
# necessary permissions are propagated to the Service Agent." (hashicorp/terraform-provider-google#14584,
# #25294: first apply on a fresh project). So a phase right after the foundation is retried after a wait.
PROPAGATION_RETRIES = 3
PROPAGATION_WAIT_SECONDS = 120

Runner = Callable[[Sequence[str], dict[str, str]], "subprocess.CompletedProcess[str]"]
# The live custom domain of a stack's API host (tools/ops/hosting_api.py); raises CannotCheck.
CustomDomainReader = Callable[[StackConfig], CustomDomainState]


def read_api_domain(config: StackConfig) -> CustomDomainState:
    return read_custom_domain(config.project_id, config.site_id, config.api_host)


def run_preflight(stack: str, root: Path) -> ExitCode:
    from .preflight.check import run

    return run(stack, root)


def run_command(argv: Sequence[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Run a command; its output passes through, except what the driver reads (`stack output`, `check`)."""
    capture = "output" in argv or "check" in argv
    return subprocess.run(list(argv), env=env, text=True, capture_output=capture, check=False)


def missing_secrets(check_output: str) -> list[str]:
    """Names `secrets_cli check` lists as MISSING (its report: `  NAME  MISSING (why)`)."""
    names = []
    for line in check_output.splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[1] == "MISSING" and line.startswith("  "):
            names.append(parts[0])
    return names


class Deployer:
    def __init__(
        self,
        stack: str,
        interactive: bool,
        runner: Runner = run_command,
        root: Path = ROOT,
        sleep: Callable[[float], None] = time.sleep,
        custom_domain: CustomDomainReader = read_api_domain,
    ) -> None:
        self.stack = stack
        self.interactive = interactive
        self.runner = runner
        self.root = root
        self.sleep = sleep
        self.custom_domain = custom_domain

    def pulumi(self, *args: str, phase: str | None = None) -> subprocess.CompletedProcess[str]:
        argv = ["pulumi", *args, "--stack", self.stack]
        if not self.interactive and args[0] in ("up", "refresh"):
            argv += ["--yes", "--non-interactive"]
        env = dict(os.environ)
        if phase is not None:
            env[PHASE_VARIABLE] = phase
        return self.runner(argv, env)

    def outputs(self) -> dict[str, Any]:
        """The stack's outputs; empty for a stack never deployed."""
        result = self.pulumi("stack", "output", "--json")
        if result.returncode != 0 or not (result.stdout or "").strip():
            return {}
        try:
            value = json.loads(result.stdout)
        except json.JSONDecodeError:
            return {}
        return value if isinstance(value, dict) else {}

    def up(self, phase: str) -> bool:
        print(f"==> phase {phase_index(phase) + 1}/{len(PHASE_NAMES)}: {phase}", flush=True)
        return self.pulumi("up", phase=phase).returncode == 0

    def secrets_ready(self) -> bool:
        """Every secret has a value: missing ones are added from the environment or, on a terminal only,
        from a hidden prompt. Secrets that already have a version are left alone (no new versions)."""
        cli = [sys.executable, "-m", "tools", "secrets"]
        env = dict(os.environ)
        check = self.runner([*cli, "check", "--stack", self.stack], env)
        if check.returncode == 0:
            return True
        added = False
        for name in missing_secrets(check.stdout or ""):
            if env.get(name, "").strip() or self.interactive:
                self.runner([*cli, "add", "--stack", self.stack, "--only", name], env)
                added = True
        if not added:
            print(check.stdout or "", end="")
            return False
        final = self.runner([*cli, "check", "--stack", self.stack], env)
        print(final.stdout or "", end="")
        return final.returncode == 0

    def up_after_propagation(self, phase: str, fresh: bool) -> bool:
        """`up` of a phase right after the foundation was created in this run: retried after a wait, since
        a new project's service agents need minutes before triggers on them can be created. A re-run of
        `pulumi up` only does what the failed one left undone."""
        attempts = PROPAGATION_RETRIES if fresh else 1
        for attempt in range(1, attempts + 1):
            if self.up(phase):
                return True
            if attempt < attempts:
                print(
                    f"phase {phase} failed right after the project's foundation; service agents may still be "
                    f"receiving their roles: retrying in {PROPAGATION_WAIT_SECONDS} s "
                    f"({attempt}/{attempts - 1})",
                    flush=True,
                )
                self.sleep(PROPAGATION_WAIT_SECONDS)
        return False

    def next_phase(self) -> str:
        """The phase the next deploy runs: the one after the recorded `deployPhase` (first: foundation)."""
        reached = str(self.outputs().get("deployPhase", ""))
        if reached not in PHASE_NAMES:
            return PHASE_NAMES[0]
        return PHASE_NAMES[min(phase_index(reached) + 1, len(PHASE_NAMES) - 1)]

    def preview(self) -> ExitCode:
        """`pulumi preview --diff` of what the next deploy changes (imports included in adopt mode)."""
        phase = self.next_phase()
        print(f"==> preview of phase {phase}", flush=True)
        succeeded = self.pulumi("preview", "--diff", phase=phase).returncode == 0
        return ExitCode.OK if succeeded else ExitCode.FAILED

    def certificate_gate(self, config: StackConfig) -> ExitCode | None:
        """None when the API host's certificate serves, read from the Hosting API now; otherwise WAITING
        (not issued yet) or ENVIRONMENT (the API cannot be read), with the line that says why."""
        try:
            domain = self.custom_domain(config)
        except CannotCheck as exc:
            print(f"error: {exc}", file=sys.stderr)
            return ExitCode.ENVIRONMENT
        if domain.certificate_serving:
            return None
        state = domain.certificate_state or ("not issued" if domain.exists else "no custom domain yet")
        host, ownership = domain.host_state or "?", domain.ownership_state or "?"
        print(
            f"waiting: Hosting's certificate for {config.api_host} is {state} (host {host}, ownership "
            f"{ownership}); the uptime alerts wait for it. Re-run make deploy "
            "once it is active (usually within an hour of the DNS record).",
            file=sys.stderr,
        )
        return ExitCode.WAITING

    def deploy(self, config: StackConfig) -> ExitCode:
        reached = str(self.outputs().get("deployPhase", ""))
        if reached == "complete":
            print(f"{self.stack} is fully deployed: one update of everything", flush=True)
            return ExitCode.OK if self.up("complete") else ExitCode.FAILED
        start = phase_index(reached) if reached in PHASE_NAMES else 0
        if start == 0 and not self.up("foundation"):
            return ExitCode.FAILED
        if not self.secrets_ready():
            print(
                "waiting: secrets without a value (above). Set them as environment variables of the same "
                f"name (CI secret store) or run `make secrets STACK={self.stack}`, then re-run make deploy.",
                file=sys.stderr,
            )
            return ExitCode.WAITING
        if not self.up_after_propagation("functions", fresh=start == 0):
            return ExitCode.FAILED
        gate = self.certificate_gate(config)
        if gate is not None:
            return gate
        return ExitCode.OK if self.up("complete") else ExitCode.FAILED


def preflight_passed(
    stack: str, root: Path, preflight: Callable[[str, Path], ExitCode] | None
) -> ExitCode | None:
    """None when the preflight found no problem (checks it could not make are printed, not fatal);
    otherwise its exit code, after saying that nothing was changed."""
    checked = (preflight or run_preflight)(stack, root)
    if checked in (ExitCode.OK, ExitCode.NOT_ALL_CHECKED):
        return None
    print("stopped by the preflight before any change: fix the problems above", file=sys.stderr)
    return checked


def run(
    stack: str,
    *,
    preview: bool = False,
    runner: Runner = run_command,
    root: Path = ROOT,
    sleep: Callable[[float], None] = time.sleep,
    custom_domain: CustomDomainReader = read_api_domain,
    preflight: Callable[[str, Path], ExitCode] | None = None,
) -> ExitCode:
    """Deploy the next phases of `stack` (or with `preview`, show the next phase's diff): OK, FAILED when
    Pulumi fails, USAGE for a bad or unfinished stack file, WAITING when a phase waits on the outside,
    ENVIRONMENT when a gate's API cannot be read. The preflight runs first (tools/ops/preflight): a problem
    stops here, before anything is created; checks it could not make are printed and do not stop it."""
    try:
        stack_file = read_stack(stack, root)
        config = parse_stack_config(stack_file.config, stack)
    except StackConfigError as error:
        print(f"error: {error}", file=sys.stderr)
        return ExitCode.USAGE
    interactive = sys.stdin.isatty() and sys.stdout.isatty()
    deployer = Deployer(stack, interactive, runner, root, sleep, custom_domain)
    if preview:
        for warning in stack_file.warnings():
            print(warning, file=sys.stderr)
        return preflight_passed(stack, root, preflight) or deployer.preview()
    if stack_file.placeholders:
        for warning in stack_file.warnings():
            print(warning.replace("warning:", "error:", 1), file=sys.stderr)
        print(f"refusing to deploy {stack}: replace the example values above first", file=sys.stderr)
        return ExitCode.USAGE
    return preflight_passed(stack, root, preflight) or deployer.deploy(config)
