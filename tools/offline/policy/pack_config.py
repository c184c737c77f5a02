"""The policy pack's configuration of a stack, generated from the stack files: never a hand-kept copy.

`pack_config(stack)` is what `pulumi preview --policy-pack policy --policy-pack-config
build/policy-config-<stack>.json` and `make policy` give the pack: the minimum log retention of the
stack's kind of environment, and every other stack's identifiers for `environment-separation`, read from
those stacks' own Pulumi.<stack>.yaml. A stack file that does not parse is left out (its own `make plan`
reports it).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from components.config_types import MIN_LOG_RETENTION_DAYS
from components.function_env import SOURCE_BUCKET_SUFFIX
from components.stack_config import (
    DEFAULT_LOG_RETENTION_DAYS,
    StackConfig,
    StackConfigError,
    parse_stack_config,
)
from tools.project_files import ROOT, engine_config, read_catalog, read_stack, stack_names


def pack_config_path(stack: str, root: Path = ROOT) -> Path:
    """Where the generated configuration goes: build/policy-config-<stack>.json."""
    return root / "build" / f"policy-config-{stack}.json"


def _config(stack: str, root: Path) -> StackConfig:
    return parse_stack_config(engine_config(read_stack(stack, root))[0], stack)


def stack_identifiers(config: StackConfig, root: Path = ROOT) -> dict[str, list[str]]:
    """The identifiers one stack's resources use, by the kinds the policy `environment-separation`
    compares (launchready_policies/environment.py IDENTIFIER_KINDS)."""
    webhook = read_catalog(root).function("stripe_webhook").trigger.path
    return {
        "projects": [config.project_id],
        "hostingSites": [config.site_id],
        "buckets": [config.project_id + SOURCE_BUCKET_SUFFIX],
        "apiHosts": [config.api_host],
        "webhookUrls": [f"https://{config.api_host}{webhook}"],
    }


def pack_config(stack: str, root: Path = ROOT) -> dict[str, Any]:
    """The pack configuration of `stack`. Raises StackConfigError when the stack's own file is invalid."""
    config = _config(stack, root)
    others: dict[str, Any] = {}
    for other in stack_names(root):
        if other == stack:
            continue
        try:
            others[other] = stack_identifiers(_config(other, root), root)
        except StackConfigError:
            continue
    minimum = DEFAULT_LOG_RETENTION_DAYS if config.is_production else MIN_LOG_RETENTION_DAYS
    return {
        "log-retention-minimum": {"minimumDays": minimum},
        "environment-separation": {"otherStacks": others},
    }


def write_pack_config(stack: str, root: Path = ROOT) -> Path:
    """Write build/policy-config-<stack>.json; returns its path. Raises StackConfigError."""
    path = pack_config_path(stack, root)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(pack_config(stack, root), indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return path
