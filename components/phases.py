"""First-deploy phases: what each phase of a new environment's deploy registers and what must hold
before it.

Each phase registers everything of the phases before it, so a re-run never deletes what an earlier one
created. `LAUNCHREADY_DEPLOY_PHASE` selects the phase (default `complete`); `tools/ops/deploy.py` drives
them. Why a first deploy needs phases: docs/architecture.md, "First deploy and adoption".
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from components.stack_config import StackConfig

PHASE_VARIABLE = "LAUNCHREADY_DEPLOY_PHASE"
CERTIFICATE_ACTIVE = "CERT_ACTIVE"


@dataclass(frozen=True)
class Phase:
    name: str
    registers: str
    # What must hold before this phase runs, and how the deploy driver checks it.
    gate: str
    # Where the driver reads the gate's state: a source that changes when the outside does (the stack file,
    # a live API read on every run), never a stack output only `pulumi refresh` would update.
    gate_source: str


PHASES = (
    Phase(
        "foundation",
        "project and APIs, Firebase, Firestore with rules and indexes, sign-in, service accounts (including "
        "the Eventarc service agent), empty secrets, the Hosting site and custom domain (its certificate "
        "starts now), the API DNS record unproxied, log-based metrics, notification channel, log retention",
        "stack config valid, none of the template's example values left",
        "the stack file Pulumi.<stack>.yaml (components/stack_config.py)",
    ),
    Phase(
        "functions",
        "functions, Pub/Sub topics and subscriptions, Firestore trigger, scheduler job, Hosting routes, "
        "uptime checks and every alert policy but the uptime alerts",
        "every secret has an enabled version (`make secrets-check`); values come from the "
        "environment in CI, from a hidden prompt on a terminal",
        "Secret Manager API projects.secrets.versions.list, read on every run (tools/ops/secrets_cli.py)",
    ),
    Phase(
        "complete",
        "the uptime and certificate-expiry alert policies (an uptime check fails until the API host has "
        "its certificate)",
        f"the Hosting custom domain's certificate serves ({CERTIFICATE_ACTIVE} or CERT_EXPIRING_SOON)",
        "Firebase Hosting API projects.sites.customDomains.get, cert.state, read on every run "
        "(tools/ops/hosting_api.py)",
    ),
)
PHASE_NAMES = tuple(phase.name for phase in PHASES)


def phase_index(name: str) -> int:
    """Position of a phase; ValueError naming the accepted phases for anything else."""
    if name not in PHASE_NAMES:
        raise ValueError(f"unknown deploy phase {name!r}: expected one of {', '.join(PHASE_NAMES)}")
    return PHASE_NAMES.index(name)


def current_phase(environ: os._Environ[str] | dict[str, str] | None = None) -> str:
    """The phase the program registers: LAUNCHREADY_DEPLOY_PHASE, `complete` when unset."""
    value = (environ if environ is not None else os.environ).get(PHASE_VARIABLE, "") or "complete"
    phase_index(value)
    return value


def reaches(current: str, phase: str) -> bool:
    """True when the `current` phase registers what `phase` adds."""
    return phase_index(current) >= phase_index(phase)


def describe(config: StackConfig) -> list[str]:
    """The phases of a first deploy of this stack, one numbered entry each (for `make plan`)."""
    lines = [
        f"first deploy of {config.stack} ({config.environment}) runs in {len(PHASES)} phases (make deploy):"
    ]
    for number, phase in enumerate(PHASES, start=1):
        lines.append(f"  {number}. {phase.name}: {phase.registers}")
        lines.append(f"     before it: {phase.gate} (read from: {phase.gate_source})")
    if not config.create_project:
        lines.append(
            "  adopt mode (createProject false): the project's existing Firebase, (default) database, "
            + (
                "cloud.firestore release and Identity Platform config"
                if config.identity_platform
                else "and cloud.firestore release (Identity Platform left alone: identityPlatform false)"
            )
            + " are imported in phase 1, not created"
        )
    return lines


def print_phases(config: StackConfig) -> None:
    print("\n" + "\n".join(describe(config)))
