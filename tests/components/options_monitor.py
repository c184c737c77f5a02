"""Evaluate the program under mocks and keep each resource's options as the engine receives them.

The mock monitor's RegisterResource request carries the options (deleteBeforeReplace, importId,
ignoreChanges, provider, dependencies); these tests read them there, as the engine would.
"""

from __future__ import annotations

import os
import runpy
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
from pulumi.runtime.config import set_all_config

from components.phases import PHASE_VARIABLE
from tools.offline.plan.evaluate import PROJECT_NAME
from tools.offline.plan.mocks import PlanMocks, PlanMonitor, run_under_mocks
from tools.project_files import engine_config, read_stack


@dataclass
class Registered:
    type: str
    name: str
    urn: str
    delete_before_replace: bool
    import_id: str
    ignore_changes: list[str]
    provider: str
    dependencies: list[str] = field(default_factory=list)


class OptionsMonitor(PlanMonitor):
    def __init__(self, mocks: PlanMocks) -> None:
        super().__init__(mocks)
        self.registered: dict[tuple[str, str], Registered] = {}

    def RegisterResource(self, request: Any) -> Any:
        response = super().RegisterResource(request)
        self.registered[(request.type, request.name)] = Registered(
            type=request.type,
            name=request.name,
            urn=response.urn,
            delete_before_replace=bool(request.deleteBeforeReplace),
            import_id=request.importId,
            ignore_changes=list(request.ignoreChanges),
            provider=request.provider,
            dependencies=list(request.dependencies),
        )
        return response

    def get(self, typ: str, name: str) -> Registered:
        return self.registered[(typ, name)]

    def of_type(self, typ: str) -> list[Registered]:
        return [r for (t, _), r in self.registered.items() if t == typ]


def evaluate(
    stack: str, root: Path, phase: str = "complete", overrides: dict[str, Any] | None = None
) -> tuple[PlanMocks, OptionsMonitor]:
    """Run __main__.py for `stack` at a deploy phase; returns the mocks and the options monitor."""
    config, secret_keys = engine_config(read_stack(stack, root))
    config.update({k: v if isinstance(v, str) else str(v).lower() for k, v in (overrides or {}).items()})
    mocks = PlanMocks()
    monitor = OptionsMonitor(mocks)
    pulumi.runtime.set_mocks(mocks, project=PROJECT_NAME, stack=stack, preview=False, monitor=monitor)
    set_all_config(config, secret_keys)
    previous = os.environ.get(PHASE_VARIABLE)
    os.environ[PHASE_VARIABLE] = phase
    try:
        run_under_mocks(lambda: runpy.run_path(str(root / "__main__.py"), run_name="__main__"), mocks)
    finally:
        if previous is None:
            os.environ.pop(PHASE_VARIABLE, None)
        else:
            os.environ[PHASE_VARIABLE] = previous
    return mocks, monitor
