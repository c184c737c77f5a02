"""The function catalog shipped with the code (the same file the Pulumi program and local runner read)."""

import functools
import json
from datetime import timedelta
from pathlib import Path
from typing import Any

# Transitional: the deployed code stops reading the catalog (deploy-time data stays out of the archive).
CATALOG_PATH = Path(__file__).resolve().parents[3] / "components" / "data" / "catalog.json"


@functools.cache
def catalog() -> dict[str, Any]:
    return json.loads(CATALOG_PATH.read_text())


def max_delivery_attempts() -> int:
    return int(catalog()["push_subscription"]["max_delivery_attempts"])


def in_flight(function: str) -> timedelta:
    """How long an attempt of `function` may still be running: twice its timeout. A repeat that finds
    the work claimed more recently than this backs off; past it, the earlier attempt has died."""
    spec = next(f for f in catalog()["functions"] if f["name"] == function)
    return timedelta(seconds=2 * int(spec["limits"]["timeout_seconds"]))
