"""The function catalog shipped with the code (the same file the Pulumi program and local runner read)."""

import functools
import json
from pathlib import Path
from typing import Any

CATALOG_PATH = Path(__file__).resolve().parent.parent / "catalog.json"


@functools.cache
def catalog() -> dict[str, Any]:
    return json.loads(CATALOG_PATH.read_text())


def max_delivery_attempts() -> int:
    return int(catalog()["push_subscription"]["max_delivery_attempts"])
