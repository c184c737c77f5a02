"""The template's example values (components/data/example_values.json) and the check that finds them.

A setting is still at the template's example when its value, or one text among its entries (a list of
hosts, DNS records), is listed for that key; the `# REPLACE` comments in the stack files decide nothing.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

EXAMPLE_VALUES_FILE = Path(__file__).parent / "data" / "example_values.json"
EXAMPLE_VALUES: dict[str, tuple[str, ...]] = {
    key: tuple(values)
    for key, values in json.loads(EXAMPLE_VALUES_FILE.read_text(encoding="utf-8"))["values"].items()
}


def texts(value: Any) -> Iterator[str]:
    """Every text in a config value: the value itself, or the entries of its lists and mappings."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, list | tuple):
        for entry in value:
            yield from texts(entry)
    elif isinstance(value, dict):
        for entry in value.values():
            yield from texts(entry)


def example_text(key: str, value: Any) -> str | None:
    """The template's example text `value` still holds for `key` (e.g. "launch-ready-staging" for
    launchready:projectId), or None when the value is the user's own."""
    listed = EXAMPLE_VALUES.get(key, ())
    return next((text for text in texts(value) if text in listed), None)
